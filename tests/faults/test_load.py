"""Load: 20 analysts for 60 s over HTTP, with no server error and no case handed out twice.

gunicorn (3 workers) on this run's own servers; each analyst answers a card every 0.2-0.8 s
through the queue page's htmx round trip (the benchmark's clients, bench/http_analysts.py, at
a much faster pace than a person's). Each case has one queue item, so a case shown to two
analysts, or labelled twice, is a duplicate claim.
"""

from __future__ import annotations

import pytest
from django.db.models import Count

from bench.http_analysts import run_analysts
from labeling.models import Annotation, QueueItem, QueueStatus
from tests.faults.conftest import stored_submissions

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

ANALYSTS = 20
SECONDS = 60
THINK = (0.2, 0.8)


def test_twenty_analysts_for_a_minute_get_no_5xx_and_no_duplicate_claims(
    web, crowd_project
) -> None:
    project, label, keys = crowd_project(cases=4000, analysts=ANALYSTS)
    crowd = run_analysts(
        port=web,
        session_keys=keys,
        project_slug=project.slug,
        label_id=label.pk,
        duration=SECONDS,
        think=THINK,
        tolerate_errors=True,  # count every failure rather than stop at the first
    )
    answers = crowd.answers
    assert len(answers) >= ANALYSTS * SECONDS // 2, f"only {len(answers)} answers in {SECONDS} s"
    assert not crowd.server_errors(), sorted(set(crowd.server_errors()))
    assert not [a for a in answers if a.status != 200], "an answer was not acknowledged"
    assert not crowd.failed_pages and not crowd.errors, (crowd.failed_pages, crowd.errors[:3])

    # No case shown to two analysts; no item labelled twice; every acknowledged label stored.
    shared = {case: who for case, who in crowd.seen.items() if len(who) > 1}
    assert not shared, shared
    doubled = (
        Annotation.objects.filter(case__project=project, superseded_at__isnull=True)
        .values("case_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not doubled.exists(), list(doubled[:5])
    acked = {a.submission for a in answers}
    assert stored_submissions(acked) == acked
    assert Annotation.objects.filter(case__project=project).count() == len(acked)
    held_twice = (
        QueueItem.objects.filter(project=project, status=QueueStatus.CLAIMED)
        .values("case_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not held_twice.exists()
