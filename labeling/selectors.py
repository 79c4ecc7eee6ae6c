"""Read queries of the labeling app."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, F, Q, QuerySet

from labeling.models import Annotation, Case, Project, QueueAction, QueueItem, QueueStatus


def project_list_for(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Project]:
    """Projects the user may see (all of them for superusers), with headline counts."""
    projects = Project.objects.all()
    if not getattr(user, "is_superuser", False):
        projects = projects.filter(memberships__user=user)
    return projects.annotate(
        n_cases=Count("cases", distinct=True),
        n_classes=Count("label_classes", distinct=True),
        n_open=Count("queue_items", filter=Q(queue_items__status=QueueStatus.OPEN), distinct=True),
    ).order_by("name")


def queue_items_held(*, project: Project, analyst: Any) -> list[QueueItem]:
    """The analyst's claimed items in the order the page shows them (undone first, then oldest)."""
    return list(
        QueueItem.objects.select_related("case")
        .filter(project=project, assigned_to=analyst, status=QueueStatus.CLAIMED)
        .order_by(F("front_at").desc(nulls_last=True), "claimed_at", "id")
    )


def queue_open_count(*, project: Project) -> int:
    """Open items of the project (served by the `queueitem_open_claim` partial index)."""
    return QueueItem.objects.filter(project=project, status=QueueStatus.OPEN).count()


def queue_undo_stack(*, project: Project, analyst: Any) -> list[QueueAction]:
    """The analyst's undoable actions, newest first (the page's undo shows the first)."""
    from labeling.services.annotations import UNDO_DEPTH

    recent = (
        QueueAction.objects.select_related("annotation", "annotation__case", "annotation__label")
        .filter(project=project, analyst=analyst)
        .order_by("-id")[:UNDO_DEPTH]
    )
    return [a for a in recent if a.undone_at is None]


def annotations_current(*, case: Case) -> QuerySet[Annotation]:
    """The case's current (non-superseded) annotations, newest first, stale ones included."""
    return case.annotations.filter(superseded_at__isnull=True).select_related("annotator", "label")


def project_is_admin(*, user: AbstractBaseUser | AnonymousUser, project: Project) -> bool:
    """Staff, or an admin member of the project: who may import cases."""
    from labeling.models import ProjectRole

    if getattr(user, "is_staff", False):
        return True
    return project.memberships.filter(user_id=user.pk, role=ProjectRole.ADMIN).exists()
