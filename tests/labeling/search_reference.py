"""A plain-Python model of the case search, to check the database's answers against.

`CaseSpec` describes one case and everything the search reads of it; `world_create` writes a list
of them into a new project; `expected_ids` filters and sorts them the way the search promises to;
`all_pages` walks `case_search` page by page. `embedded_check` runs a fixed world through every
sort and filter on whatever database is configured (the SQLite subprocess test runs it).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class CaseSpec:
    """One case: indexes into the world's classes and people; None where the case has none."""

    changed: int  # hours after T0 (small ranges give ties)
    given: int | None
    split: str = "pool"
    resolved: tuple[int | None, str, bool] | None = None  # (label, source, doubtful)
    issue: tuple[float, bool] | None = None  # (score, flagged)
    prediction: tuple[int, float] | None = None  # (label, confidence)
    labelled_by: tuple[int, ...] = ()  # people with a current, non-skipped answer
    name: str = ""


@dataclass
class World:
    project: Any
    classes: list[Any]
    people: list[Any]
    cases: list[Any]  # in spec order
    specs: list[CaseSpec]
    champion_id: int


def world_create(specs: list[CaseSpec], *, people: int = 2, classes: int = 3) -> World:
    """A new project holding `specs` (and a champion with the specs' predictions)."""
    from django.contrib.auth import get_user_model

    from active_learning.models import LabelIssue, ModelStatus, ModelVersion, Prediction
    from labeling.models import Annotation, Case, LabelClass, Project, ResolvedLabel
    from workbench.core.hashing import content_hash

    tag = uuid.uuid4().hex[:8]
    project = Project.objects.create(name=f"Search {tag}", slug=f"search-{tag}")
    made = [
        LabelClass.objects.create(project=project, name=f"c{i}", shortcut_key=str(i + 1))
        for i in range(classes)
    ]
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"p{i}-{tag}", password="!") for i in range(people)
    )
    rows = []
    for i, spec in enumerate(specs):
        text = f"Case {i} of {tag}"
        rows.append(
            Case(
                project=project,
                external_id=f"S{i:04d}",
                text=text,
                metadata={"business_name": spec.name} if spec.name else {},
                given_label=made[spec.given] if spec.given is not None else None,
                split=spec.split,
                content_hash=content_hash(text),
                changed_at=T0 + timedelta(hours=spec.changed),
            )
        )
    cases = Case.objects.bulk_create(rows)
    version = ModelVersion.objects.create(project=project, number=1, status=ModelStatus.CHAMPION)
    resolved, issues, predictions, answers = [], [], [], []
    for case, spec in zip(cases, specs, strict=True):
        if spec.resolved is not None:
            label, source, doubtful = spec.resolved
            resolved.append(
                ResolvedLabel(
                    case=case,
                    label=made[label] if label is not None else None,
                    source=source,
                    doubtful=doubtful,
                )
            )
        if spec.issue is not None:
            score, flagged = spec.issue
            issues.append(
                LabelIssue(
                    project=project,
                    case=case,
                    score=score,
                    self_confidence=1 - score,
                    in_prune_set=flagged,
                )
            )
        if spec.prediction is not None:
            label, confidence = spec.prediction
            predictions.append(
                Prediction(
                    case=case,
                    model_version=version,
                    predicted_label=made[label],
                    confidence=confidence,
                )
            )
        for who in spec.labelled_by:
            answers.append(
                Annotation(
                    case=case,
                    annotator=users[who],
                    label=made[0],
                    submission_id=uuid.uuid4(),
                    content_hash=case.content_hash,
                )
            )
    ResolvedLabel.objects.bulk_create(resolved)
    LabelIssue.objects.bulk_create(issues)
    Prediction.objects.bulk_create(predictions)
    Annotation.objects.bulk_create(answers)
    # The people are members, as the form offers them.
    for user in users:
        project.memberships.create(user=user, role="analyst")
    return World(project, made, list(users), cases, specs, version.pk)


def expected_ids(world: World, filters: Any) -> list[int]:
    """The case ids `filters` should return, in order (the search's promise, in Python).
    Words are not modelled: a query must match every case (e.g. "case", in every text)."""
    from labeling.selectors_search import SearchSort

    f = filters
    class_index = {c.pk: i for i, c in enumerate(world.classes)}
    person_index = {p.pk: i for i, p in enumerate(world.people)}
    kept = []
    for case, spec in zip(world.cases, world.specs, strict=True):
        current = spec.resolved[0] if spec.resolved is not None else spec.given
        source = spec.resolved[1] if spec.resolved is not None else "given"
        checks = [
            f.given_label_id is None or spec.given == class_index[f.given_label_id],
            f.resolved_label_id is None or current == class_index[f.resolved_label_id],
            not f.source or source == f.source,
            not f.doubtful or (spec.resolved is not None and spec.resolved[2]),
            not f.split or spec.split == f.split,
            f.labelled_by_id is None or person_index[f.labelled_by_id] in spec.labelled_by,
            not f.issue_flagged or (spec.issue is not None and spec.issue[1]),
            f.score_min is None or (spec.issue is not None and spec.issue[0] >= f.score_min),
            f.score_max is None or (spec.issue is not None and spec.issue[0] <= f.score_max),
            f.changed_from is None or T0 + timedelta(hours=spec.changed) >= f.changed_from,
            f.changed_before is None or T0 + timedelta(hours=spec.changed) < f.changed_before,
        ]
        if all(checks):
            kept.append((case, spec))

    def by_change(pair: tuple[Any, CaseSpec]) -> tuple[int, int]:
        return (-pair[1].changed, -pair[0].pk)

    if f.sort == SearchSort.ISSUE:
        first = sorted(
            (p for p in kept if p[1].issue is not None),
            key=lambda p: (-p[1].issue[0], -p[0].pk),  # type: ignore[index]
        )
        rest = sorted((p for p in kept if p[1].issue is None), key=by_change)
        ordered = first + rest
    elif f.sort == SearchSort.CONFIDENCE:
        first = sorted(
            (p for p in kept if p[1].prediction is not None),
            key=lambda p: (p[1].prediction[1], p[0].pk),  # type: ignore[index]
        )
        rest = sorted((p for p in kept if p[1].prediction is None), key=by_change)
        ordered = first + rest
    else:
        ordered = sorted(kept, key=by_change)
    return [case.pk for case, _ in ordered]


def all_pages(project: Any, filters: Any, *, page_size: int) -> list[list[int]]:
    """Every page of the search, first to last, following each page's cursor."""
    from labeling.models import Case
    from labeling.selectors_search import case_search

    pages, after = [], None
    # More pages than the project has cases would mean a cursor that stands still.
    for _ in range(Case.objects.filter(project=project).count() + 2):
        page = case_search(project=project, filters=filters, after=after, page_size=page_size)
        pages.append([row.case.pk for row in page.rows])
        if page.next_cursor is None:
            return pages
        after = page.next_cursor
    raise AssertionError("the pages never end")


def random_specs(rng: random.Random, n: int) -> list[CaseSpec]:
    sources = ["given", "annotation", "consensus", "review", "adjudicated"]
    specs = []
    for _ in range(n):
        resolved = None
        if rng.random() < 0.5:
            label = rng.choice([None, 0, 1, 2])
            resolved = (label, rng.choice(sources), rng.random() < 0.3)
        specs.append(
            CaseSpec(
                changed=rng.randrange(4),
                given=rng.choice([None, 0, 1, 2]),
                split=rng.choice(["pool", "pool", "eval"]),
                resolved=resolved,
                issue=(rng.choice([0.1, 0.5, 0.9]), rng.random() < 0.5)
                if rng.random() < 0.6
                else None,
                prediction=(rng.randrange(3), rng.choice([0.3, 0.6]))
                if rng.random() < 0.7
                else None,
                labelled_by=tuple(i for i in range(2) if rng.random() < 0.3),
            )
        )
    return specs


def filter_variants(world: World) -> list[Any]:
    """One filter at a time, each sort: what the embedded check walks."""
    from dataclasses import replace

    from labeling.selectors_search import SearchFilters, SearchSort

    one_at_a_time = [
        SearchFilters(),
        SearchFilters(given_label_id=world.classes[1].pk),
        SearchFilters(resolved_label_id=world.classes[0].pk),
        SearchFilters(source="given"),
        SearchFilters(source="review"),
        SearchFilters(doubtful=True),
        SearchFilters(issue_flagged=True),
        SearchFilters(score_min=0.5, score_max=0.9),
        SearchFilters(split="eval"),
        SearchFilters(labelled_by_id=world.people[0].pk),
        SearchFilters(changed_from=T0 + timedelta(hours=1), changed_before=T0 + timedelta(hours=3)),
    ]
    return [replace(f, sort=s) for f in one_at_a_time for s in SearchSort.values]


def embedded_check(seed: int = 7, n: int = 40) -> int:
    """Every filter alone in every sort, walked 3 cases a page, equals the Python model; and
    words find business names and id prefixes in any case. Returns the searches checked."""
    from labeling.selectors_search import SearchFilters, case_search

    world = world_create(random_specs(random.Random(seed), n))
    checked = 0
    for filters in filter_variants(world):
        pages = all_pages(world.project, filters, page_size=3)
        flat = [pk for page in pages for pk in page]
        assert flat == expected_ids(world, filters), filters
        checked += 1
    named = world_create([CaseSpec(changed=0, given=0, name="Bright Fashion Ltd")] * 1)
    for query in ("bright fashion", "Fashion", "s000", "S0000"):
        page = case_search(project=named.project, filters=SearchFilters(query=query))
        assert [r.case.pk for r in page.rows] == [named.cases[0].pk], query
    assert case_search(project=named.project, filters=SearchFilters(query="nothing")).rows == []
    return checked
