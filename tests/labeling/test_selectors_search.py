"""The case search: filters, sorts and keyset pages against a plain-Python model, cursors, words
over business names and id prefixes, and what moves a case up the default order."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labeling.selectors_search import (
    BadCursor,
    SearchCursor,
    SearchFilters,
    SearchSort,
    case_by_external_id,
    case_search,
)
from tests.labeling.search_reference import (
    T0,
    CaseSpec,
    all_pages,
    embedded_check,
    expected_ids,
    world_create,
)

pytestmark = pytest.mark.django_db

SOURCES = ["given", "annotation", "consensus", "review", "adjudicated"]

specs_strategy = st.lists(
    st.builds(
        CaseSpec,
        changed=st.integers(0, 3),  # few distinct times: ties everywhere
        given=st.none() | st.integers(0, 2),
        split=st.sampled_from(["pool", "eval"]),
        resolved=st.none()
        | st.tuples(st.none() | st.integers(0, 2), st.sampled_from(SOURCES), st.booleans()),
        issue=st.none() | st.tuples(st.sampled_from([0.1, 0.5, 0.9]), st.booleans()),
        prediction=st.none() | st.tuples(st.integers(0, 2), st.sampled_from([0.3, 0.6])),
        labelled_by=st.lists(st.integers(0, 1), max_size=2, unique=True).map(tuple),
    ),
    min_size=4,
    max_size=20,
)


FILTERS = (
    "given",
    "resolved",
    "source",
    "doubtful",
    "issue_flagged",
    "score",
    "split",
    "labelled_by",
    "changed",
)


@st.composite
def filter_choices(draw: st.DrawFn) -> dict:
    """At most two filters at once (more would leave little to page through), as indexes
    resolved into ids once the world exists; any sort and page size."""
    active = draw(st.sets(st.sampled_from(FILTERS), max_size=2))
    scores = st.sampled_from([0.1, 0.5, 0.9])
    out: dict = {name: None for name in FILTERS}
    out.update(source="", doubtful=False, issue_flagged=False, split="")
    out.update(score_min=None, score_max=None, changed_from=None, changed_span=None)
    if "given" in active:
        out["given"] = draw(st.integers(0, 2))
    if "resolved" in active:
        out["resolved"] = draw(st.integers(0, 2))
    if "source" in active:
        out["source"] = draw(st.sampled_from(SOURCES))
    out["doubtful"] = "doubtful" in active
    out["issue_flagged"] = "issue_flagged" in active
    if "score" in active:
        out["score_min"] = draw(st.none() | scores)
        out["score_max"] = draw(st.none() | scores)
    if "split" in active:
        out["split"] = draw(st.sampled_from(["pool", "eval"]))
    if "labelled_by" in active:
        out["labelled_by"] = draw(st.integers(0, 1))
    if "changed" in active:
        out["changed_from"] = draw(st.integers(0, 3))
        out["changed_span"] = draw(st.none() | st.integers(1, 3))
    # "case" is in every case's text: the same cases, found through the words' own path.
    out["query"] = draw(st.sampled_from(["", "case"]))
    out["sort"] = draw(st.sampled_from(SearchSort.values))
    out["page_size"] = draw(st.integers(1, 4))
    return out


def _filters(world, c: dict) -> SearchFilters:
    start = T0 + timedelta(hours=c["changed_from"]) if c["changed_from"] is not None else None
    end = start + timedelta(hours=c["changed_span"]) if c["changed_span"] else None
    return SearchFilters(
        query=c["query"],
        given_label_id=world.classes[c["given"]].pk if c["given"] is not None else None,
        resolved_label_id=world.classes[c["resolved"]].pk if c["resolved"] is not None else None,
        source=c["source"],
        doubtful=c["doubtful"],
        issue_flagged=c["issue_flagged"],
        score_min=c["score_min"],
        score_max=c["score_max"],
        split=c["split"],
        labelled_by_id=world.people[c["labelled_by"]].pk if c["labelled_by"] is not None else None,
        changed_from=start,
        changed_before=end,
        sort=c["sort"],
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(specs=specs_strategy, choices=filter_choices(), sort_offset=st.integers(0, 2))
def test_pages_walk_exactly_the_matching_cases_in_order(specs, choices, sort_offset) -> None:
    """Whatever the data (ties in every sort key, cases without a score or a prediction) and
    the filters, following each page's cursor yields every matching case once, in the promised
    order, each page full but the last: for the drawn filters, and for each filter alone (in a
    sort that rotates with the filter)."""
    from tests.labeling.search_reference import filter_variants

    world = world_create(specs)
    size = choices["page_size"]
    alone = filter_variants(world)[sort_offset::3]  # every filter once, sorts rotating
    for filters in [_filters(world, choices), *alone]:
        pages = all_pages(world.project, filters, page_size=size)
        flat = [pk for page in pages for pk in page]
        assert flat == expected_ids(world, filters), filters
        assert all(len(page) == size for page in pages[:-1]) and len(pages[-1]) <= size


def test_every_filter_alone_in_every_sort_on_a_larger_world() -> None:
    """The check the embedded (SQLite) run makes, here on the configured database."""
    assert embedded_check(seed=3, n=60) == 11 * 3


def test_the_embedded_default_searches_the_same(tmp_path) -> None:
    """SQLite (the demo's database): migrations apply, and every filter, sort and page and the
    words search (business name, id prefix in any case) give the Python model's answers."""
    from tests.worker import manage, service_env

    env = service_env(
        DATABASE_URL=None, CELERY_BROKER_URL=None, WORKBENCH_VAR_DIR=str(tmp_path / "var")
    )
    manage("migrate", "--no-input", env=env, timeout=300)
    script = (
        "from tests.labeling.search_reference import embedded_check; "
        "from django.db import connection; print('RESULT', connection.vendor, embedded_check())"
    )
    out = manage("shell", "-c", script, env=env, timeout=300).stdout
    assert out.split("RESULT", 1)[1].split() == ["sqlite", str(11 * 3)]


@given(value=st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_any_after_value_is_a_cursor_or_refused_in_words(value) -> None:
    """A hand-edited page link never raises anything but BadCursor."""
    try:
        cursor = SearchCursor.loads(value)
    except BadCursor:
        return
    assert SearchCursor.loads(cursor.dumps()) == cursor


@pytest.mark.parametrize(
    "cursor",
    [
        SearchCursor("changed", 0, T0 + timedelta(microseconds=7), 12),
        SearchCursor("issue", 0, 0.1 + 0.2, 3),
        SearchCursor("issue", 1, T0, 3),
        SearchCursor("confidence", 0, 1e-9, 99),
    ],
)
def test_cursors_survive_the_round_trip_exactly(cursor) -> None:
    assert SearchCursor.loads(cursor.dumps()) == cursor


@pytest.mark.parametrize(
    "raw",
    [
        ["changed", 0, 0.5, 1],  # a number where a time belongs
        ["issue", 0, "2026-01-01T00:00:00+00:00", 1],  # a time where a score belongs
        ["changed", 0, "2026-01-01T00:00:00", 1],  # a time without its zone
        ["nonsense", 0, 0.5, 1],
        ["issue", 2, 0.5, 1],
        ["issue", 0, 0.5, -1],
        ["issue", 0, True, 1],
        ["issue", 0, 0.5],
    ],
)
def test_cursors_this_search_never_wrote_are_refused(raw) -> None:
    import base64

    token = base64.urlsafe_b64encode(json.dumps(raw).encode()).decode()
    with pytest.raises(BadCursor):
        SearchCursor.loads(token)


def test_a_cursor_of_another_sort_is_refused() -> None:
    world = world_create([CaseSpec(changed=0, given=0)])
    cursor = SearchCursor("issue", 0, 0.5, world.cases[0].pk)
    with pytest.raises(BadCursor):
        case_search(project=world.project, filters=SearchFilters(), after=cursor)


def test_business_names_and_descriptions_are_searched_together() -> None:
    """ "Bright Fashion" finds the card titled so, though neither word is in its description;
    words from the name and the description combine."""
    world = world_create(
        [
            CaseSpec(changed=0, given=0, name="Bright Fashion"),
            CaseSpec(changed=1, given=0, name="Dull Hardware"),
        ]
    )
    bright = world.cases[0].pk

    def found(query: str) -> list[int]:
        page = case_search(project=world.project, filters=SearchFilters(query=query))
        return [row.case.pk for row in page.rows]

    assert found("Bright Fashion") == [bright]
    assert found("fashion case") == [bright]  # one word of the name, one of the description
    assert found("velvet") == []


def test_ids_match_by_prefix_in_any_case() -> None:
    world = world_create([CaseSpec(changed=i, given=0) for i in range(3)])
    page = case_search(project=world.project, filters=SearchFilters(query="s000"))
    assert [r.case.external_id for r in page.rows] == ["S0002", "S0001", "S0000"]
    assert case_by_external_id(project=world.project, query="s0001") == world.cases[1]
    assert case_by_external_id(project=world.project, query="S000") is None


def test_an_id_that_differs_from_two_only_in_case_opens_neither() -> None:
    """Ids are unique as written: `Ab-1` and `aB-1` may both exist; `ab-1` names neither for
    sure (the results list both), while each spelt exactly opens itself."""
    from tests.factories import CaseFactory, ProjectFactory

    project = ProjectFactory()
    CaseFactory(project=project, external_id="Ab-1")
    CaseFactory(project=project, external_id="aB-1")
    assert case_by_external_id(project=project, query="aB-1").external_id == "aB-1"
    assert case_by_external_id(project=project, query="ab-1") is None
    page = case_search(project=project, filters=SearchFilters(query="ab-1"))
    assert sorted(r.case.external_id for r in page.rows) == ["Ab-1", "aB-1"]


@pytest.mark.postgres
def test_common_words_take_the_ordered_path_with_the_same_answer(monkeypatch) -> None:
    """Past TEXT_SCAN_CAP matches the page walks the sort order testing each case instead of
    reading every match first: the cases and their order are the same."""
    from labeling import selectors_search

    world = world_create([CaseSpec(changed=i % 3, given=0, name="Common Goods") for i in range(9)])
    filters = SearchFilters(query="goods")
    few = all_pages(world.project, filters, page_size=2)
    monkeypatch.setattr(selectors_search, "TEXT_SCAN_CAP", 3)
    many = all_pages(world.project, filters, page_size=2)
    assert many == few and sum(map(len, few)) == 9
    assert [pk for page in few for pk in page] == expected_ids(world, replace(filters, query=""))


def test_the_results_carry_the_labels_status_and_the_models_view() -> None:
    """Given, resolved (with how far it is trusted, as the queue's similar cases say it) and
    the champion's prediction with its confidence, and the issue score."""
    world = world_create(
        [
            CaseSpec(
                changed=0,
                given=0,
                resolved=(1, "review", False),
                issue=(0.9, True),
                prediction=(2, 0.6),
            ),
            CaseSpec(changed=1, given=1),
        ]
    )
    rows = {r.case.pk: r for r in case_search(project=world.project, filters=SearchFilters()).rows}
    reviewed, plain = rows[world.cases[0].pk], rows[world.cases[1].pk]
    c0, c1, c2 = world.classes
    assert (reviewed.given, reviewed.resolved, reviewed.status_text) == (c0, c1, "reviewed")
    assert (reviewed.predicted, reviewed.confidence) == (c2, pytest.approx(0.6))
    assert (reviewed.issue_score, reviewed.issue_flagged) == (pytest.approx(0.9), True)
    assert (plain.given, plain.resolved, plain.status_text) == (c1, c1, "given")
    assert (plain.predicted, plain.issue_score) == (None, None)


def test_without_a_model_side_the_model_filters_say_so(monkeypatch) -> None:
    from labeling import hooks
    from workbench.errors import ApplicationError

    world = world_create([CaseSpec(changed=0, given=0, issue=(0.5, True))])
    monkeypatch.setattr(hooks, "_registered", hooks.ModelSide())
    page = case_search(project=world.project, filters=SearchFilters())
    assert [r.case.pk for r in page.rows] == [world.cases[0].pk] and not page.model_columns
    with pytest.raises(ApplicationError, match="not available"):
        case_search(project=world.project, filters=SearchFilters(issue_flagged=True))


def test_a_label_moves_its_case_to_the_top_of_the_default_order() -> None:
    """The last change is a label's too: the resolution changed, so the case's changed_at."""
    from labeling.services.annotations import annotation_submit
    from tests.factories import AnalystFactory

    world = world_create([CaseSpec(changed=5, given=0), CaseSpec(changed=0, given=0)])
    older = world.cases[1]
    first = case_search(project=world.project, filters=SearchFilters()).rows[0]
    assert first.case.pk == world.cases[0].pk
    annotation_submit(
        item_or_case=older,
        analyst=AnalystFactory(),
        submission_id=uuid.uuid4(),
        label=world.classes[1],
    )
    rows = case_search(project=world.project, filters=SearchFilters()).rows
    assert rows[0].case.pk == older.pk and rows[0].status_text == "verified by an analyst"


def test_a_reimport_that_changes_a_case_moves_it_up(tmp_path) -> None:
    from labeling.models import Case
    from labeling.services.imports import case_import

    world = world_create([CaseSpec(changed=5, given=0), CaseSpec(changed=0, given=0)])
    older = world.cases[1]
    path = tmp_path / "update.jsonl"
    path.write_text(json.dumps({"id": older.external_id, "text": "New words"}) + "\n")
    assert case_import(project=world.project, path=path, update=True).ok
    older.refresh_from_db()
    assert older.changed_at > T0 + timedelta(hours=5)
    assert Case.objects.filter(pk=world.cases[0].pk, changed_at=T0 + timedelta(hours=5)).exists()


def test_seeded_worlds_of_many_pages() -> None:
    """Several seeded worlds of 100+ cases, all filters alone, pages of 7."""
    from tests.labeling.search_reference import filter_variants, random_specs

    for seed in (1, 2):
        world = world_create(random_specs(random.Random(seed), 110))
        for filters in filter_variants(world):
            flat = [pk for p in all_pages(world.project, filters, page_size=7) for pk in p]
            assert flat == expected_ids(world, filters)
