"""The demo's users, roles, project and generated cases, created idempotently (`make demo` may
run twice): 5,000 synthetic merchants with 20% label noise load only into an empty project.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from labeling.models import Project, ProjectRole
from labeling.services.demo_data import demo_data_ensure
from labeling.services.projects import membership_set, project_create
from labeling.synthetic.taxonomy import label_class_specs

DEMO_SLUG = "merchant-risk"
DEMO_USERS = {
    "admin": ProjectRole.ADMIN,
    "analyst": ProjectRole.ANALYST,
    "reviewer": ProjectRole.REVIEWER,
}


def _credentials(path: Path) -> dict[str, str]:
    """Passwords are random per installation, kept in var/ so a second run prints the same ones."""
    if path.exists():
        stored = json.loads(path.read_text())
        if set(stored) == set(DEMO_USERS):
            return dict(stored)
    creds = {name: secrets.token_urlsafe(9) for name in DEMO_USERS}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(creds, indent=2))
    path.chmod(0o600)
    return creds


@transaction.atomic
def demo_users_ensure(*, credentials_path: Path) -> dict[str, str]:
    """Users admin, analyst and reviewer with their role groups; returns name -> password."""
    creds = _credentials(credentials_path)
    user_model = get_user_model()
    for name, role in DEMO_USERS.items():
        user, _ = user_model.objects.get_or_create(username=name)
        user.is_staff = user.is_superuser = role == ProjectRole.ADMIN
        user.set_password(creds[name])
        user.save()
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    return creds


@transaction.atomic
def demo_project_ensure() -> Project:
    """The demo project with the synthetic taxonomy's classes, every demo user a member, and
    5,000 generated cases when it has none."""
    project = Project.objects.filter(slug=DEMO_SLUG).first()
    if project is None:
        classes = [
            {
                k: spec[k]
                for k in (
                    "name",
                    "display_name",
                    "tier",
                    "description",
                    "guideline",
                    "shortcut_key",
                )
            }
            for spec in label_class_specs()
        ]
        project = project_create(
            slug=DEMO_SLUG,
            name="Merchant risk (demo)",
            classes=classes,
            settings={
                "description": "Generated merchants with 20% injected label noise: decide which "
                "are supportable, restricted or prohibited.",
                "overlap": 2,
                "overlap_fraction": 0.1,
                "evaluation_fraction": 0.1,
            },
        )
    user_model = get_user_model()
    for name, role in DEMO_USERS.items():
        membership_set(project=project, user=user_model.objects.get(username=name), role=role)
    demo_data_ensure(project=project)
    return project
