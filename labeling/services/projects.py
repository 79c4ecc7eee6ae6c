"""Creating projects from a YAML file of classes and settings, and managing membership.

File format (all settings optional; `classes` required):

    name: Merchant risk
    description: ...
    overlap: 2
    evaluation_fraction: 0.1
    classes:
      - {name: gambling, tier: restricted, description: ..., guideline: ..., shortcut_key: "4"}
"""

from __future__ import annotations

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
ERR_YAML = "{source}: not valid YAML: {problem}"


def next_free_shortcut_key(taken: set[str]) -> str:
    """The first key of SHORTCUT_KEY_ORDER not in `taken` (digits, then letters)."""
    for key in SHORTCUT_KEY_ORDER:
        if key not in taken:
            return key
    raise ApplicationError("No free shortcut key is left for a new label class.")


def _validate_classes(classes: Any, source: str) -> list[dict[str, Any]]:
    if not isinstance(classes, list) or not classes:
        raise ApplicationError(ERR_NO_CLASSES.format(source=source))
    cleaned: list[dict[str, Any]] = []
    names: set[str] = set()
    keys: set[str] = set()
    for index, raw in enumerate(classes, start=1):
        name = str(raw.get("name", "")).strip() if isinstance(raw, dict) else ""

        def fail(
            field: str, problem: str, index: int = index, name: str = name
        ) -> ApplicationError:
            return ApplicationError(
                ERR_CLASS_FIELD.format(
                    source=source, index=index, name=name, field=field, problem=problem
                )
            )

        if not isinstance(raw, dict):
            raise fail("-", "each class must be a mapping")
        unknown = set(raw) - set(CLASS_FIELDS)
        if unknown:
            raise fail(sorted(unknown)[0], f"unknown field (allowed: {', '.join(CLASS_FIELDS)})")
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


@transaction.atomic
def project_create(
    *,
    slug: str,
    name: str | None = None,
    classes: list[dict[str, Any]],
    settings: dict[str, Any] | None = None,
    actor: Any = None,
    source: str = "project",
) -> Project:
    """Create a project and its label classes, validated as a whole, or nothing at all."""
    settings = dict(settings or {})
    unknown = set(settings) - set(PROJECT_SETTINGS)
    if unknown:
        raise ApplicationError(
            ERR_UNKNOWN_KEY.format(
                source=source, key=sorted(unknown)[0], allowed=", ".join(PROJECT_SETTINGS)
            )
        )
    if Project.objects.filter(slug=slug).exists():
        raise ApplicationError(ERR_SLUG_TAKEN.format(slug=slug))
    cleaned = _validate_classes(classes, source)
    project = Project(slug=slug, name=name or slug.replace("-", " ").title(), **settings)
    try:
        project.full_clean()
    except ValidationError as exc:
        field, problems = next(iter(exc.message_dict.items()))
        raise ApplicationError(f"{source}: setting '{field}': {' '.join(problems)}") from exc
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


def project_create_from_yaml(*, slug: str, path: Path, actor: Any = None) -> Project:
    source = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ApplicationError(ERR_YAML.format(source=source, problem=exc)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ApplicationError(f"{source}: cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise ApplicationError(f"{source}: the top level must be a mapping with a 'classes' list.")
    classes = data.pop("classes", None)
    name = data.pop("name", None)
    return project_create(
        slug=slug, name=name, classes=classes, settings=data, actor=actor, source=source
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
