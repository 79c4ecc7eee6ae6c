"""Audit events: every service that changes a label, a resolution, a model or settings calls this."""

from __future__ import annotations

from typing import Any

from django.db import models

from workbench.core import sql
from workbench.core.models import AuditEvent


def audit_event(
    *,
    actor: Any,
    action: str,
    obj: models.Model,
    project: models.Model | None = None,
    project_id: int | None = None,
    before: Any = None,
    after: Any = None,
) -> AuditEvent:
    """An unsaved event, for a service that writes several in one statement (`sql.insert`).

    Give the project or, where only its id is at hand, `project_id`.
    """
    return AuditEvent(
        actor=actor if getattr(actor, "pk", None) else None,
        project_id=project.pk if project is not None else project_id,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        before=before,
        after=after,
    )


def audit_record(**event: Any) -> AuditEvent:
    """Write one event (the arguments of `audit_event`); call it inside the transaction that
    makes the change."""
    return sql.insert(audit_event(**event))[0]
