"""Roles are groups with permissions; a project membership decides where they apply."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from labeling.permissions import project_role
from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_migration_creates_the_three_role_groups() -> None:
    perms = {
        g.name: sorted(p.codename for p in g.permissions.all())
        for g in Group.objects.filter(name__in=["analyst", "reviewer", "admin"])
    }
    assert perms == {
        "analyst": ["label_cases"],
        "reviewer": ["label_cases", "review_cases"],
        "admin": ["administer_project", "label_cases", "review_cases"],
    }


def test_group_raises_a_members_role_but_never_admits_an_outsider(client) -> None:
    project = ProjectFactory()
    member, outsider = UserFactory(), UserFactory()
    project.memberships.create(user=member, role="analyst")
    search = reverse("labeling:case_search", args=[project.slug])
    client.force_login(member)
    assert project_role(user=member, project=project) == "analyst"
    assert client.get(search).status_code == 403

    reviewers = Group.objects.get(name="reviewer")
    member.groups.add(reviewers)
    outsider.groups.add(Group.objects.get(name="admin"))
    member = type(member).objects.get(pk=member.pk)  # drop the cached permissions
    assert project_role(user=member, project=project) == "reviewer"
    client.force_login(member)
    assert client.get(search).status_code == 200

    client.force_login(outsider)
    assert project_role(user=outsider, project=project) is None
    assert client.get(search).status_code == 404
