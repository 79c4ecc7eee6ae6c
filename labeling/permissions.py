"""Who may do what in a project: roles ranked analyst < reviewer < admin, checked on every view.

Roles are groups with permissions (`analyst`, `reviewer`, `admin`, created by a migration with
the Project permissions label_cases, review_cases, administer_project) and, per project,
`ProjectMembership.role`: a member's role is the higher of the two, so a user in the reviewer
group reviews in every project they belong to. Staff and superusers count as admins of every
project. A user who is not a member gets 404 (a project's existence and its case ids never
leak), a member whose role is too low gets 403.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404

from labeling import statements as st
from labeling.models import Case, Project, ProjectRole
from workbench.core import sql

ANALYST = str(ProjectRole.ANALYST)
REVIEWER = str(ProjectRole.REVIEWER)
ADMIN = str(ProjectRole.ADMIN)
RANK = {ANALYST: 1, REVIEWER: 2, ADMIN: 3}


def project_role(*, user: Any, project: Project) -> str | None:
    """The user's role in the project, `admin` for staff and superusers, None for outsiders."""
    if not getattr(user, "is_authenticated", False):
        return None
    if user.is_staff or user.is_superuser:
        return ADMIN
    role = project.memberships.filter(user_id=user.pk).values_list("role", flat=True).first()
    if not role:
        return None
    return max(str(role), group_role(user=user), key=lambda r: RANK.get(r, 0))


GROUP_PERMISSIONS = (
    (ADMIN, "labeling.administer_project"),
    (REVIEWER, "labeling.review_cases"),
    (ANALYST, "labeling.label_cases"),
)


def group_role(*, user: Any) -> str:
    """The highest role the user's groups (or own permissions) grant in every project they
    belong to ("" for none): one query, where `has_perm` loads all of the user's permissions
    in two (every page of a project asks)."""
    codename = {role: permission.split(".", 1)[1] for role, permission in GROUP_PERMISSIONS}
    granted = set(
        Permission.objects.filter(
            Q(group__user=user) | Q(user=user),
            content_type__app_label="labeling",
            codename__in=list(codename.values()),
        ).values_list("codename", flat=True)
    )
    return next((role for role, name in codename.items() if name in granted), "")


def role_allows(role: str | None, needed: str) -> bool:
    return role is not None and RANK.get(role, 0) >= RANK[needed]


_PROJECT_FIELDS = tuple(f.attname for f in Project._meta.concrete_fields)
_BY_RANK = {rank: role for role, rank in RANK.items()}


def project_for(*, user: Any, slug: str, needed: str = ANALYST) -> tuple[Project, str]:
    """The project and the user's role; 404 for outsiders, 403 when the role is below `needed`.

    One plain statement (every page of a project asks, the queue at every answer) giving the
    roles as `project_role` does.
    """
    if not getattr(user, "is_authenticated", False):
        raise Http404("No such project.")
    codename = {role: permission.split(".", 1)[1] for role, permission in GROUP_PERMISSIONS}
    row = sql.fetch_one(
        st.project_for(_PROJECT_FIELDS), {"slug": slug, "user": user.pk, **codename}
    )
    if row is None:
        raise Http404("No such project.")
    project = sql.load(Project, _PROJECT_FIELDS, row[: len(_PROJECT_FIELDS)])
    member, rank = row[len(_PROJECT_FIELDS) :]
    if user.is_staff or user.is_superuser:
        role = ADMIN
    elif member:
        role = max(str(member), _BY_RANK.get(int(rank or 0), ""), key=lambda r: RANK.get(r, 0))
    else:
        raise Http404("No such project.")
    if not role_allows(role, needed):
        raise PermissionDenied
    return project, role


def case_for(*, project: Project, key: str) -> Case:
    """A case of this project by external id, else by primary key ("pk:123" or digits); 404 else."""
    if "\x00" in key:  # no id holds a NUL (imports refuse it); PostgreSQL cannot even compare one
        raise Http404("No such case in this project.")
    case = Case.objects.filter(project=project, external_id=key).first()
    if case is None:
        raw = key.removeprefix("pk:")
        if raw.isascii() and raw.isdigit():  # "²".isdigit(), yet int("²") fails
            case = Case.objects.filter(project=project, pk=int(raw)).first()
    if case is None:
        raise Http404("No such case in this project.")
    return case
