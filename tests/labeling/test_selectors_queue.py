"""The queue card's similar cases: resolved labels with how far each can be trusted."""

from __future__ import annotations

import pytest

from labeling.models import LabelClass, ResolutionSource, ResolvedLabel
from labeling.selectors_queue import project_classes_by_id, similar_cases
from tests.factories import CaseFactory, ProjectFactory, QueueItemFactory

pytestmark = pytest.mark.django_db

# (similarity, resolution or None, the status the card shows) most similar first.
NEIGHBOURS = [
    (0.95, {"source": ResolutionSource.GIVEN, "doubtful": True, "label": "ok"}, "doubtful"),
    (0.93, None, "given"),
    (0.91, {"source": ResolutionSource.GIVEN, "doubtful": True, "label": "ok"}, "doubtful"),
    (0.90, {"source": ResolutionSource.ANNOTATION, "label": "gambling"}, "verified"),
    (0.88, None, "given"),
    (0.86, {"source": ResolutionSource.CONSENSUS, "label": "gambling"}, "consensus"),
    (0.84, {"source": ResolutionSource.REVIEW, "label": "skill"}, "reviewed"),
    (0.80, {"source": ResolutionSource.ADJUDICATED, "label": "skill"}, "reviewed"),
]


@pytest.fixture
def card_item():
    project = ProjectFactory()
    by_name = {
        name: LabelClass.objects.create(project=project, name=name, shortcut_key=str(k))
        for k, name in enumerate(["ok", "gambling", "skill"], start=1)
    }
    rows = []
    for i, (similarity, resolution, _) in enumerate(NEIGHBOURS):
        case = CaseFactory(project=project, text=f"neighbour {i}", given_label=by_name["ok"])
        if resolution is not None:
            label = by_name[resolution["label"]]
            ResolvedLabel.objects.create(case=case, **{**resolution, "label": label})
        # What the pipeline stored: the label at the time (the given one), since changed.
        rows.append({"case_id": case.pk, "label_id": by_name["ok"].pk, "similarity": similarity})
    item = QueueItemFactory(case=CaseFactory(project=project), similar_cases=rows)
    return project, item, by_name


def test_similar_cases_prefer_peoples_labels_and_say_how_far_each_is_trusted(
    card_item, django_assert_num_queries
) -> None:
    """Of eight stored neighbours the card shows five: the four analysts', reviewers' and
    consensus labels first, then the most similar given one; never a doubtful label while a
    better one is there. Each shows its resolved label (not the stored given one) and status,
    most similar first, read in one query."""
    project, item, _ = card_item
    classes = project_classes_by_id(project=project)
    with django_assert_num_queries(1):
        shown = similar_cases(item=item, project=project, classes=classes, blind=False)
    assert [s.similarity for s in shown] == [0.93, 0.90, 0.86, 0.84, 0.80]
    assert [s.status for s in shown] == ["given", "verified", "consensus", "reviewed", "reviewed"]
    assert [s.status_text for s in shown] == [
        "given",
        "verified by an analyst",
        "consensus",
        "reviewed",
        "reviewed",
    ]
    assert [s.label.name for s in shown] == ["ok", "gambling", "gambling", "skill", "skill"]


def test_doubtful_neighbours_fill_in_and_say_so(card_item) -> None:
    """With only doubtful and given neighbours left, the doubtful ones are shown as doubtful."""
    project, item, _ = card_item
    item.similar_cases = item.similar_cases[:3]
    classes = project_classes_by_id(project=project)
    shown = similar_cases(item=item, project=project, classes=classes, blind=False)
    assert [(s.similarity, s.status) for s in shown] == [
        (0.95, "doubtful"),
        (0.93, "given"),
        (0.91, "doubtful"),
    ]


def test_blind_cards_still_prefer_trusted_neighbours_but_show_no_label_or_status(
    card_item,
) -> None:
    project, item, _ = card_item
    classes = project_classes_by_id(project=project)
    shown = similar_cases(item=item, project=project, classes=classes, blind=True)
    assert [s.similarity for s in shown] == [0.93, 0.90, 0.86, 0.84, 0.80]
    assert all(s.label is None and s.status == "" for s in shown)


def test_the_classes_cache_serves_no_class_older_than_the_last_change(card_item) -> None:
    """Whatever writes a class (save, update, bulk_update, create, bulk_create, delete), the
    next read of the project's classes shows it; unchanged, they come from the cache."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    project, _, by_name = card_item

    def names() -> list[str]:
        return [str(c) for c in project_classes_by_id(project=project).values()]

    def edit(c: LabelClass, name: str) -> None:
        c.display_name = name
        c.save(update_fields=["display_name"])

    def bulk_update(c: LabelClass, name: str) -> None:
        c.display_name = name
        LabelClass.objects.bulk_update([c], ["display_name"])

    changes = [
        lambda: edit(by_name["ok"], "Edited"),
        lambda: LabelClass.objects.filter(name="gambling").update(display_name="Betting"),
        lambda: bulk_update(by_name["skill"], "Bulk"),
        lambda: LabelClass.objects.create(project=project, name="crypto", shortcut_key="7"),
        lambda: LabelClass.objects.bulk_create(
            [LabelClass(project=project, name="arms", shortcut_key="8")]
        ),
        lambda: LabelClass.objects.filter(name="arms").delete(),
        lambda: LabelClass.objects.get(name="crypto").delete(),
    ]
    seen = []
    for change in [*changes, lambda: None]:
        shown = names()
        fresh = LabelClass.objects.filter(project=project).order_by("order", "name", "id")
        assert shown == [str(c) for c in fresh]
        with CaptureQueriesContext(connection) as queries:
            assert names() == shown
        assert len(queries) == 1  # the key only: the classes come from the cache
        seen.append(shown)
        change()
    assert "Edited" in seen[1] and "Betting" in seen[2] and "Bulk" in seen[3]
    assert "crypto" in seen[4] and "arms" in seen[5] and seen[7] == seen[3]
