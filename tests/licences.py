"""Licence policy for the runtime dependency closure (DESIGN "Licences").

Reads each distribution's License-Expression, then License, then its classifiers. Permissive
licences pass; LGPL and MPL pass because we use those packages unmodified; GPL and AGPL fail.
Dual licences pass when one permissive option is offered ("Artistic OR GPL").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PERMISSIVE = re.compile(
    r"\b(MIT|BSD|Apache|ISC|PSF|Python Software Foundation|Unlicense|Zlib|HPND|CC0|"
    r"MPL|Mozilla Public License|LGPL|Lesser General Public|Library General Public|Artistic|"
    r"Public Domain|WTFPL|BlueOak|0BSD|UPL|Historical Permission)",
    re.IGNORECASE,
)
COPYLEFT = re.compile(r"\b(A?GPL|Affero|General Public License)", re.IGNORECASE)
LESSER = re.compile(r"\b(LGPL|Lesser General Public|Library General Public)", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    name: str
    version: str
    licence: str
    allowed: bool


def licence_text(dist: metadata.Distribution) -> str:
    """License-Expression, else a License field naming a licence, else the licence classifiers."""
    meta = dist.metadata
    expression = meta.get("License-Expression")
    if expression:
        return expression.strip()
    licence = (meta.get("License") or "").strip()
    first_line = licence.splitlines()[0] if licence else ""
    # "Dual License" or "OSI Approved" name no licence: fall through to the classifiers then.
    if (
        first_line
        and len(first_line) < 200
        and (PERMISSIVE.search(first_line) or COPYLEFT.search(first_line))
    ):
        return first_line
    classifiers = [
        c.split("::")[-1].strip()
        for c in meta.get_all("Classifier") or []
        if c.startswith("License ::") and c.strip() != "License :: OSI Approved"
    ]
    if classifiers:
        return " OR ".join(classifiers)
    return _licence_from_files(dist) or (licence[:200] if licence else "UNKNOWN")


_FILE_MARKERS = (
    ("GNU AFFERO GENERAL PUBLIC LICENSE", "AGPL (from licence file)"),
    ("GNU LESSER GENERAL PUBLIC LICENSE", "LGPL (from licence file)"),
    ("GNU GENERAL PUBLIC LICENSE", "GPL (from licence file)"),
    ("Permission is hereby granted, free of charge", "MIT (from licence file)"),
    ("Redistribution and use in source and binary forms", "BSD (from licence file)"),
    ("Apache License", "Apache (from licence file)"),
)


def _licence_from_files(dist: metadata.Distribution) -> str:
    """Last resort for metadata that only says "OSI Approved": recognise the shipped licence text."""
    for name in dist.metadata.get_all("License-File") or []:
        text = dist.read_text(f"licenses/{name}") or dist.read_text(name) or ""
        for marker, verdict in _FILE_MARKERS:
            if marker.lower() in text.lower():
                return verdict
    return ""


def is_allowed(text: str) -> bool:
    """True when some alternative of the licence is permissive, or the copyleft is only LGPL."""
    for option in re.split(r"\s+OR\s+|\s*/\s*|\s+or\s+", text):
        option = option.strip("() ")
        if not option:
            continue
        copyleft = COPYLEFT.search(option) and not LESSER.search(option)
        if not copyleft and PERMISSIVE.search(option):
            return True
    return False


def runtime_closure(
    roots: Iterable[str], lookup: Callable[[str], metadata.Distribution] = metadata.distribution
) -> list[metadata.Distribution]:
    """Every installed distribution reachable from `roots` through unconditional or extra-less markers."""
    env = {k: str(v) for k, v in default_environment().items()}
    seen: dict[str, metadata.Distribution] = {}
    stack: list[Requirement] = [Requirement(r) for r in roots]
    while stack:
        req = stack.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        dist = lookup(req.name)
        seen[name] = dist
        for raw in dist.requires or []:
            child = Requirement(raw)
            wanted_extras = req.extras
            if child.marker is not None and not any(
                child.marker.evaluate({**env, "extra": e}) for e in (wanted_extras or {""})
            ):
                continue
            stack.append(child)
    return sorted(seen.values(), key=lambda d: canonicalize_name(d.metadata["Name"]))


def verdicts(dists: Iterable[metadata.Distribution]) -> list[Verdict]:
    out = []
    for dist in dists:
        text = licence_text(dist)
        out.append(Verdict(dist.metadata["Name"], dist.version, text, is_allowed(text)))
    return out
