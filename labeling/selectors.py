"""Read queries of the labeling app."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Q, QuerySet

from labeling.models import Project, QueueStatus


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
