"""The buffer of open pool items grows with the analysts' pace and the last retrain's duration."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import Annotation, AnnotationSource, QueueItem, QueueKind, QueueStatus
from labeling.selectors import queue_pace, retrain_seconds_last
from labeling.services.queue.refill import (
    BUFFER_CAP_FACTOR,
    PACE_WINDOW,
    SAFETY,
    buffer_size,
    queue_buffer,
    queue_top_up,
)
from tests.factories import AnalystFactory, AnnotationFactory, CaseFactory, ProjectFactory
from workbench.core.models import Job, JobKind, JobStatus


def test_buffer_size_grows_with_pace_and_retrain_duration() -> None:
    """pace x duration x safety, never below the usual target, never above the cap."""
    size = lambda pace, seconds: buffer_size(  # noqa: E731
        target=200, labels_per_second=pace, retrain_seconds=seconds, cap=1000
    )
    assert size(0.0, 600) == size(1.0, None) == size(0.1, 100) == 200  # the target floor
    assert size(0.5, 300) == 300  # 0.5/s x 300 s x 2
    assert size(1.0, 300) == 600 > size(0.5, 300)  # a faster team needs more
    assert size(0.5, 600) == 600 > size(0.5, 300)  # so does a longer retrain
    assert size(5.0, 3600) == 1000  # capped
    assert buffer_size(target=10, labels_per_second=1 / 3, retrain_seconds=10, cap=99) == 10
    assert buffer_size(target=1, labels_per_second=1 / 3, retrain_seconds=10, cap=99) == 7
    assert SAFETY == 2.0


def _answers(project, *, now, ages_seconds, source=AnnotationSource.QUEUE) -> None:
    """Queue answers `ages_seconds` before `now`, on new cases, by one analyst."""
    analyst = AnalystFactory()
    for age in ages_seconds:
        annotation = AnnotationFactory(
            case=CaseFactory(project=project), annotator=analyst, source=source
        )
        Annotation.objects.filter(pk=annotation.pk).update(created_at=now - timedelta(seconds=age))


def _retrain(project, *, now, asked_ago, took, status=JobStatus.SUCCEEDED) -> Job:
    job = Job.objects.create(kind=JobKind.RETRAIN, project=project, status=status)
    Job.objects.filter(pk=job.pk).update(
        created_at=now - timedelta(seconds=asked_ago),
        finished_at=now - timedelta(seconds=asked_ago - took),
    )
    return job


@pytest.mark.django_db
def test_the_buffer_is_measured_from_recent_answers_and_the_last_retrain() -> None:
    """Queue answers of the last 15 minutes set the pace (over the span since the first of
    them); the last successful retrain's duration, from being asked for to done, the time."""
    project = ProjectFactory(batch_size=10)  # target 40, cap 200
    now = timezone.now()
    assert queue_buffer(project=project, now=now) == 40  # nothing measured yet
    # 60 answers over the last 595 s, plus ones that must not count: too old, or a review.
    _answers(project, now=now, ages_seconds=[595 - 10 * i for i in range(60)])
    _answers(project, now=now, ages_seconds=[PACE_WINDOW.total_seconds() + 60] * 5)
    _answers(project, now=now, ages_seconds=[30] * 5, source=AnnotationSource.REVIEW)
    pace = queue_pace(project=project, since=now - PACE_WINDOW, now=now)
    assert pace == pytest.approx(60 / 595, rel=0.01)
    _retrain(project, now=now, asked_ago=2000, took=900)
    _retrain(project, now=now, asked_ago=1000, took=240)  # the last one: 240 s
    _retrain(project, now=now, asked_ago=100, took=90, status=JobStatus.FAILED)
    assert retrain_seconds_last(project=project) == pytest.approx(240)
    assert queue_buffer(project=project, now=now) == 49  # 60/595 per s x 240 s x 2 = 48.4
    _answers(project, now=now, ages_seconds=[5] * 120)  # the team speeds up: 180 in the window
    assert queue_buffer(project=project, now=now) == 146  # 180/595 x 240 x 2 = 145.2
    _retrain(project, now=now, asked_ago=100, took=80)  # and retrains get quick again
    assert queue_buffer(project=project, now=now) == 49  # 180/595 x 80 x 2 = 48.4
    _retrain(project, now=now, asked_ago=700, took=690)  # a slow one: 363 wanted
    assert queue_buffer(project=project, now=now) == BUFFER_CAP_FACTOR * 10  # capped at 200


@pytest.mark.django_db
def test_a_top_up_fills_to_the_measured_buffer() -> None:
    """No model: random cases, up to the buffer (100 answers in 597 s x 300 s x 2 = 100.5)."""
    project = ProjectFactory(batch_size=10, evaluation_fraction=0.0, noise_aware_overlap=False)
    now = timezone.now()
    CaseFactory.create_batch(150, project=project)
    _answers(project, now=now, ages_seconds=[597 - 6 * i for i in range(100)])
    _retrain(project, now=now, asked_ago=1000, took=300)
    assert queue_buffer(project=project, now=now) == 101
    assert queue_top_up(project_id=project.pk) == 101
    open_pool = QueueItem.objects.filter(
        project=project, status=QueueStatus.OPEN, kind=QueueKind.POOL
    )
    assert open_pool.count() == 101
    assert queue_top_up(project_id=project.pk) == 0  # full: nothing to do
