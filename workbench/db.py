"""Small helpers for declaring database constraints the same way in every app."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


def choices_check(
    field: str, choices: type[models.TextChoices], name: str
) -> models.CheckConstraint:
    """A CHECK that `field` holds one of the enum's values (Django does not add one itself)."""
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)


def unit_interval_check(field: str, name: str) -> models.CheckConstraint:
    """A CHECK that `field` lies in [0, 1]."""
    return models.CheckConstraint(
        condition=Q(**{f"{field}__gte": 0, f"{field}__lte": 1}), name=name
    )
