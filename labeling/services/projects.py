"""Creating projects from a YAML file of classes and settings, and managing membership.

The file format is documented in docs/classes.md, with docs/classes.example.yaml. Errors name
the file, the line (from the YAML's own positions) and the setting or class field.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction

from labeling.models import (
    RESERVED_KEYS,
    SHORTCUT_KEY_ORDER,
    LabelClass,
    Project,
    ProjectMembership,
    ProjectRole,
    Tier,
)
from workbench.core.audit import audit_record
from workbench.errors import ApplicationError

PROJECT_SETTINGS = (
    "description",
    "batch_size",
    "retrain_after_n",
    "strategy",
    "overlap",
    "overlap_fraction",
    "evaluation_fraction",
    "evaluation_overlap",
    "warmup_evaluation_fraction",
    "target_precision",
    "given_label_weight",
    "classes_fixed",
    "blind_mode",
    "consensus_threshold",
    "noise_aware_overlap",
    "overlap_margin",
    "overlap_budget",
    "gold_fraction",
    "embedding_backend",
)
CLASS_FIELDS = (
    "name",
    "display_name",
    "tier",
    "description",
    "guideline",
    "examples",
    "shortcut_key",
)

ERR_SLUG_TAKEN = "A project with slug '{slug}' already exists."
ERR_NO_CLASSES = "{source}: 'classes' must be a non-empty list."
ERR_UNKNOWN_KEY = "{source}: unknown setting '{key}' (allowed: {allowed})."
ERR_CLASS_FIELD = "{source}: class #{index} ('{name}'), field '{field}': {problem}"
ERR_SETTING = "{source}: setting '{field}': {problem}"
TEXT_FIELDS = ("name", "display_name", "description", "guideline")
ERR_YAML = "{source}: not valid YAML: {problem}"


def next_free_shortcut_key(taken: set[str]) -> str:
    """The first key of SHORTCUT_KEY_ORDER not in `taken` (digits, then letters)."""
    for key in SHORTCUT_KEY_ORDER:
        if key not in taken:
            return key
    raise ApplicationError("No free shortcut key is left for a new label class.")


Where = Callable[..., str]


def _plain(source: str) -> Where:
    """Where a problem is when no positions are known: just the source."""
    return lambda *path: source


def _validate_classes(classes: Any, where: Where) -> list[dict[str, Any]]:
    if not isinstance(classes, list) or not classes:
        raise ApplicationError(ERR_NO_CLASSES.format(source=where("classes")))
    cleaned: list[dict[str, Any]] = []
    names: set[str] = set()
    keys: set[str] = set()
    for index, raw in enumerate(classes, start=1):
        if isinstance(raw, dict):  # an empty YAML value (`description:`) means not given
            raw = {k: v for k, v in raw.items() if not (k in TEXT_FIELDS and v is None)}
        name = str(raw.get("name", "")).strip() if isinstance(raw, dict) else ""

        def fail(
            field: str, problem: str, index: int = index, name: str = name
        ) -> ApplicationError:
            at = where("classes", index - 1, field) if field != "-" else where("classes", index - 1)
            return ApplicationError(
                ERR_CLASS_FIELD.format(
                    source=at, index=index, name=name, field=field, problem=problem
                )
            )

        if not isinstance(raw, dict):
            raise fail("-", "each class must be a mapping")
        unknown = set(raw) - set(CLASS_FIELDS)
        if unknown:
            raise fail(sorted(unknown)[0], f"unknown field (allowed: {', '.join(CLASS_FIELDS)})")
        for text_field in TEXT_FIELDS:
            if text_field in raw and not isinstance(raw[text_field], str | int | float):
                raise fail(text_field, "must be a text")
        if not name:
            raise fail("name", "is required")
        if name in names:
            raise fail("name", "duplicate class name")
        tier = str(raw.get("tier", Tier.SUPPORTABLE))
        if tier not in Tier.values:
            raise fail("tier", f"'{tier}' is not one of {', '.join(Tier.values)}")
        key = raw.get("shortcut_key")
        if key is not None:
            key = str(key)
            if key in RESERVED_KEYS:
                raise fail(
                    "shortcut_key", f"'{key}' is reserved by the queue ({' '.join(RESERVED_KEYS)})"
                )
            if len(key) != 1 or not (key.isdigit() or ("a" <= key <= "z")):
                raise fail("shortcut_key", f"'{key}' must be one digit or lower-case letter")
            if key in keys:
                raise fail("shortcut_key", f"'{key}' is used by another class")
            keys.add(key)
        examples = raw.get("examples", [])
        if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
            raise fail("examples", "must be a list of texts")
        problems = _field_problems(
            {**raw, "name": name, "tier": tier, "shortcut_key": key or "1", "examples": examples}
        )
        if problems:
            raise fail(*problems)
        names.add(name)
        cleaned.append(
            {**raw, "name": name, "tier": tier, "shortcut_key": key, "examples": examples}
        )
    for item in cleaned:
        if item["shortcut_key"] is None:
            key = next_free_shortcut_key(keys)
            item["shortcut_key"] = key
            keys.add(key)
    return cleaned


def _field_problems(item: dict[str, Any]) -> tuple[str, str] | None:
    """The first (field, problem) the LabelClass model finds in `item` (lengths), or None."""
    values = {f: str(item[f]) for f in TEXT_FIELDS if item.get(f) is not None}
    try:
        LabelClass(**values, tier=item["tier"], shortcut_key=item["shortcut_key"]).clean_fields(
            exclude=["project", "examples", "order", "version"]
        )
    except ValidationError as exc:
        field, problems = next(iter(exc.message_dict.items()))
        return field, " ".join(problems)
    return None


@transaction.atomic
def project_create(
    *,
    slug: str,
    name: str | None = None,
    classes: list[dict[str, Any]],
    settings: dict[str, Any] | None = None,
    actor: Any = None,
    source: str = "project",
    where: Where | None = None,
) -> Project:
    """Create a project and its label classes, validated as a whole, or nothing at all.

    `where(*path)` names the place of a setting or class field in messages (file and line)."""
    where = where or _plain(source)
    settings = dict(settings or {})
    unknown = set(settings) - set(PROJECT_SETTINGS)
    if unknown:
        key = sorted(unknown)[0]
        raise ApplicationError(
            ERR_UNKNOWN_KEY.format(source=where(key), key=key, allowed=", ".join(PROJECT_SETTINGS))
        )
    if Project.objects.filter(slug=slug).exists():
        raise ApplicationError(ERR_SLUG_TAKEN.format(slug=slug))
    cleaned = _validate_classes(classes, where)
    project = Project(slug=slug, name=name or slug.replace("-", " ").title(), **settings)
    try:
        project.full_clean()
    except ValidationError as exc:
        field, problems = next(iter(exc.message_dict.items()))
        if field == "slug":
            raise ApplicationError(f"slug '{slug}': {' '.join(problems)}") from exc
        raise ApplicationError(
            ERR_SETTING.format(source=where(field), field=field, problem=" ".join(problems))
        ) from exc
    project.save()
    LabelClass.objects.bulk_create(
        [
            LabelClass(
                project=project,
                name=item["name"],
                display_name=item.get("display_name")
                or item["name"].replace("_", " ").capitalize(),
                tier=item["tier"],
                description=item.get("description", ""),
                guideline=item.get("guideline", ""),
                examples=item["examples"],
                shortcut_key=item["shortcut_key"],
                order=order,
            )
            for order, item in enumerate(cleaned)
        ]
    )
    audit_record(
        actor=actor,
        action="project.create",
        obj=project,
        project=project,
        after={"settings": settings, "classes": [c["name"] for c in cleaned]},
    )
    return project


def _yaml_where(source: str, root: yaml.Node | None) -> Where:
    """`where(*path)`: "file, line N" of the deepest node `path` reaches (keys and list indexes),
    read from the YAML's own positions."""

    def where(*path: Any) -> str:
        node, line = root, None
        for step in path:
            if isinstance(node, yaml.MappingNode):
                match = [(k, v) for k, v in node.value if k.value == step]
                if not match:
                    break
                line = match[0][0].start_mark.line
                node = match[0][1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                if step >= len(node.value):
                    break
                node = node.value[step]
                line = node.start_mark.line
            else:
                break
        if line is None and node is not None and node is not root:
            line = node.start_mark.line
        return source if line is None else f"{source}, line {line + 1}"

    return where


def project_create_from_yaml(*, slug: str, path: Path, actor: Any = None) -> Project:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ApplicationError(ERR_YAML.format(source=source, problem=exc)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ApplicationError(f"{source}: cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise ApplicationError(f"{source}: the top level must be a mapping with a 'classes' list.")
    classes = data.pop("classes", None)
    name = data.pop("name", None)
    if name is not None and not isinstance(name, str):
        raise ApplicationError(f"{_yaml_where(source, root)('name')}: 'name' must be a text.")
    return project_create(
        slug=slug,
        name=name,
        classes=classes,
        settings=data,
        actor=actor,
        source=source,
        where=_yaml_where(source, root),
    )


@transaction.atomic
def membership_set(
    *, project: Project, user: Any, role: str, actor: Any = None
) -> ProjectMembership:
    """Add `user` to `project` with `role`, or change their role."""
    if role not in ProjectRole.values:
        raise ApplicationError(f"Role '{role}' is not one of {', '.join(ProjectRole.values)}.")
    membership, created = ProjectMembership.objects.get_or_create(
        project=project, user=user, defaults={"role": role}
    )
    before = None if created else {"role": membership.role}
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    audit_record(
        actor=actor,
        action="membership.set",
        obj=membership,
        project=project,
        before=before,
        after={"role": role},
    )
    return membership
