"""Metadata search never turns input into ORM lookups: `key=value` names a JSON key and
compares text (or a number or boolean explicitly), so lookup words and odd values neither fail
nor change what the search means."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import ProjectRole
from labeling.selectors_search import SearchFilters, case_search
from tests.factories import AnalystFactory, CaseFactory, ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(client):
    project = ProjectFactory()
    cases = {
        "plain": {"country": "MT", "mcc": 7995, "url": "https://example.org"},
        "lookup-words": {"regex": ".*", "isnull": "foo", "has_key": "url", "range": "1"},
        "numbers": {"k": 1.5, "flag": True, "mcc": "5719"},
        "empty": {},
    }
    for external_id, metadata in cases.items():
        CaseFactory(project=project, external_id=external_id, metadata=metadata)
    reviewer = AnalystFactory()
    project.memberships.create(user=reviewer, role=ProjectRole.REVIEWER)
    client.force_login(reviewer)
    return project


def found(project, q: str) -> list[str]:
    page = case_search(project=project, filters=SearchFilters(query=q))
    assert page.kind == "metadata", q
    return sorted(row.case.external_id for row in page.rows)


@pytest.mark.parametrize(
    "q",
    [
        "isnull=foo",
        "regex=(",
        "range=1",
        "k=1e999",
        "k=NaN",
        "k=-Infinity",
        "mcc=" + "9" * 5000,
        "mcc=99999999999999999999999",
        "contains={}",
        "has_key=url",
        "regex=.*",
    ],
)
def test_lookup_words_and_odd_values_never_fail_the_page(client, world, q) -> None:
    response = client.get(reverse("labeling:case_search", args=[world.slug]), {"q": q[:500]})
    assert response.status_code == 200, q


def test_lookup_words_are_metadata_keys_like_any_other(world) -> None:
    assert found(world, "regex=.*") == ["lookup-words"]  # not "every case with a regex"
    assert found(world, "regex=(") == []
    assert found(world, "has_key=url") == ["lookup-words"]  # not "every case with a url key"
    assert found(world, "isnull=foo") == ["lookup-words"]
    assert found(world, "isnull=true") == []
    assert found(world, "range=1") == ["lookup-words"]
    assert found(world, "k=1e999") == [] and found(world, "k=NaN") == []


def test_values_match_as_text_and_as_numbers_or_booleans(world) -> None:
    assert found(world, "country=MT") == ["plain"]
    assert found(world, "country=mt") == []  # exact text
    assert found(world, "mcc=7995") == ["plain"]  # the number 7995
    assert found(world, "mcc=5719") == ["numbers"]  # the text "5719"
    assert found(world, "k=1.5") == ["numbers"]
    assert found(world, "flag=true") == ["numbers"]
    assert found(world, "url=https://example.org") == ["plain"]
