"""Resolution from queue labels: majority over current labels; a tie keeps the earlier label;
flags give no label."""

from __future__ import annotations

import pytest
from django.utils import timezone

from labeling.models import ResolutionSource, ResolvedLabel
from labeling.services.resolution import resolution_recompute
from tests.factories import AnalystFactory, AnnotationFactory, CaseFactory, LabelClassFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(project):
    return CaseFactory(project=project, given_label=LabelClassFactory(project=project))


def _label(case, label=None, **kwargs):
    return AnnotationFactory(case=case, annotator=AnalystFactory(), label=label, **kwargs)


def _resolve(case) -> ResolvedLabel:
    return resolution_recompute(case=case)


def test_without_annotations_the_given_label_stands(case) -> None:
    """No annotation: the resolution is the imported label, source `given`."""
    resolved = _resolve(case)
    assert (resolved.label, resolved.source) == (case.given_label, ResolutionSource.GIVEN)


def test_the_majority_of_current_labels_wins(case, project) -> None:
    """Two of three analysts agree: their label, with agreement 2/3."""
    a, b = LabelClassFactory(project=project), LabelClassFactory(project=project)
    _label(case, a), _label(case, a), _label(case, b)
    resolved = _resolve(case)
    assert (resolved.label, resolved.source) == (a, ResolutionSource.ANNOTATION)
    assert resolved.agreement == pytest.approx(2 / 3)


def test_a_tie_without_an_earlier_label_gives_no_label(case, project) -> None:
    """One vote each and nothing resolved before: unresolved, and marked tied."""
    (
        _label(case, LabelClassFactory(project=project)),
        _label(case, LabelClassFactory(project=project)),
    )
    resolved = _resolve(case)
    assert resolved.label is None and resolved.tied


def test_a_tie_keeps_the_earlier_resolution(case, project) -> None:
    """The first label resolved the case; a second, different one ties: the first stands."""
    a, b = LabelClassFactory(project=project), LabelClassFactory(project=project)
    _label(case, a)
    assert _resolve(case).label == a
    _label(case, b)
    resolved = _resolve(case)
    assert (resolved.label, resolved.source, resolved.tied) == (
        a,
        ResolutionSource.ANNOTATION,
        True,
    )
    assert resolved.agreement == pytest.approx(0.5)


@pytest.mark.parametrize("flag", ["noise_flag", "ambiguous"])
def test_a_flag_without_a_label_gives_none_and_makes_the_given_label_doubtful(case, flag) -> None:
    """Noise or ambiguous without a label: no resolved label, the given label doubtful."""
    _label(case, **{flag: True})
    resolved = _resolve(case)
    assert resolved.label is None and resolved.doubtful


def test_superseded_stale_and_skipped_annotations_do_not_vote(case, project) -> None:
    """Only current answers on the current text count."""
    a, b = LabelClassFactory(project=project), LabelClassFactory(project=project)
    _label(case, b, superseded_at=timezone.now())
    _label(case, b, content_hash="0" * 64)
    _label(case, None, skipped=True)
    _label(case, a)
    assert _resolve(case).label == a


def test_a_changed_resolution_is_audited_and_an_unchanged_one_is_not(case, project) -> None:
    """Each change writes one audit event with before and after."""
    _resolve(case)
    _resolve(case)
    assert case.project.audit_events.filter(action="resolution.change").count() == 1
    _label(case, LabelClassFactory(project=project))
    _resolve(case)
    event = case.project.audit_events.filter(action="resolution.change").first()
    assert event.before["source"] == "given" and event.after["source"] == "annotation"


def test_a_reviewed_resolution_is_not_overridden_by_queue_labels(case, project) -> None:
    """Review and adjudication outrank the majority vote."""
    ResolvedLabel.objects.create(case=case, label=case.given_label, source=ResolutionSource.REVIEW)
    _label(case, LabelClassFactory(project=project))
    assert _resolve(case).label == case.given_label
