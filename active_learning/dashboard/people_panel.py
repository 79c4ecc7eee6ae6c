"""The dashboard's people panel: each analyst's pace, time per case, skips and agreement.

Over the last WINDOW_DAYS of current (not superseded) queue and review answers: labels per day
(the last DAYS_SHOWN days), median time per case (the page's measured `duration_ms`), skip rate;
from the latest consensus run (`labeling.selectors_quality`): Dawid-Skene's accuracy estimate and
the mean Cohen's kappa with the analysts they share cases with. `only` restricts the panel to one
user: an analyst is never sent another person's figures. The window's figures for everyone
(`window_compute`, ~70 ms at a million cases) are stored in the dashboard snapshot and read from
there on a reviewer's page; an analyst's own row is counted live (their answers only).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models.functions import TruncDate
from django.utils import timezone

from labeling.models import Annotation, Case, Project
from labeling.selectors_quality import QualityReport

WINDOW_DAYS = 30
DAYS_SHOWN = 14
CHUNK = 10_000


@dataclass(frozen=True)
class PersonRow:
    user_id: int
    username: str
    full_name: str
    per_day: tuple[int, ...]  # oldest day first, DAYS_SHOWN of them
    labels: int  # in the window, skips excluded
    answers: int  # in the window, skips included
    median_seconds: float | None
    skip_rate: float | None
    accuracy: float | None  # Dawid-Skene, latest consensus run
    kappa: float | None  # mean pairwise Cohen's kappa, latest consensus run
    kappa_pairs: int


@dataclass
class PeoplePanel:
    days: list[date] = field(default_factory=list)
    rows: list[PersonRow] = field(default_factory=list)
    alpha: Any = None  # the project's Krippendorff alpha (None for an analyst's own view)


def _project_cases(project: Project, case_ids: list[int]) -> set[int]:
    """Which of `case_ids` are the project's (PostgreSQL: one array parameter, ~10x cheaper than
    10,000 placeholders)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {Case._meta.db_table} WHERE project_id = %s AND id = ANY(%s)",
                [project.pk, case_ids],
            )
            return {row[0] for row in cursor.fetchall()}
    mine: set[int] = set()
    for start in range(0, len(case_ids), CHUNK):
        mine.update(
            Case.objects.filter(project=project, pk__in=case_ids[start : start + CHUNK])
            .order_by()
            .values_list("pk", flat=True)
        )
    return mine


def window_compute(*, project: Project, only: int | None = None) -> dict[str, Any]:
    """The window's answers per analyst (`only`: one user), JSON-able: the days shown (ISO),
    each analyst's labels on those days, labels and skips in the window, median seconds."""
    today = timezone.localdate()
    days = [today - timedelta(days=DAYS_SHOWN - 1 - i) for i in range(DAYS_SHOWN)]
    since = timezone.now() - timedelta(days=WINDOW_DAYS)
    # The window's answers first, then which of their cases are this project's: filtering on
    # the case's project in one statement makes PostgreSQL hash every case of the project
    # (~200 ms at a million cases) to keep a few thousand answers.
    answers = Annotation.objects.filter(superseded_at__isnull=True, created_at__gte=since)
    if only is not None:
        answers = answers.filter(annotator_id=only)
    window = list(
        answers.order_by()
        .annotate(day=TruncDate("created_at"))
        .values_list("case_id", "annotator_id", "day", "skipped", "duration_ms")
    )
    mine = _project_cases(project, sorted({row[0] for row in window}))
    per_day: dict[int, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    durations: dict[int, list[int]] = defaultdict(list)
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # labels, skips
    for case_id, user_id, day, skipped, duration in window:
        if case_id not in mine:
            continue
        totals[user_id][1 if skipped else 0] += 1
        if not skipped:
            per_day[user_id][day] += 1
        if duration is not None:
            durations[user_id].append(int(duration))
    return {
        "days": [d.isoformat() for d in days],
        "per_day": {str(u): [per_day[u].get(d, 0) for d in days] for u in totals},
        "totals": {str(u): list(t) for u, t in totals.items()},
        "median_seconds": {
            str(u): statistics.median(durations[u]) / 1000 if durations.get(u) else None
            for u in totals
        },
    }


def people_panel(
    *,
    project: Project,
    report: QualityReport | None,
    only: int | None = None,
    window: dict[str, Any] | None = None,
) -> PeoplePanel:
    """The panel from `window` (`window_compute`'s dict, e.g. the snapshot's), or counted now."""
    if window is None:
        window = window_compute(project=project, only=only)
    days = [date.fromisoformat(d) for d in window["days"]]
    totals = {int(u): t for u, t in window["totals"].items()}
    per_day = {int(u): tuple(n) for u, n in window["per_day"].items()}
    medians = {int(u): m for u, m in window["median_seconds"].items()}
    accuracy = {}
    kappas: dict[int, list[float]] = defaultdict(list)
    if report is not None:
        accuracy = {row.person.user_id: row.accuracy for row in report.analysts}
        for pair in report.analyst_pairs:
            if pair.figure.value is not None:
                kappas[pair.a.user_id].append(pair.figure.value)
                kappas[pair.b.user_id].append(pair.figure.value)
    ids = set(totals) | set(accuracy)
    if only is not None:
        ids &= {only}
        ids.add(only)
    users = {
        u.pk: u
        for u in get_user_model()
        .objects.filter(pk__in=ids)
        .only("pk", "username", "first_name", "last_name")
    }
    rows = []
    for user_id in ids:
        user = users.get(user_id)
        if user is None:
            continue
        labels, skips = totals.get(user_id, (0, 0))
        pairs = kappas.get(user_id) or []
        rows.append(
            PersonRow(
                user_id=user_id,
                username=user.get_username(),
                full_name=user.get_full_name(),
                per_day=per_day.get(user_id, (0,) * len(days)),
                labels=labels,
                answers=labels + skips,
                median_seconds=medians.get(user_id),
                skip_rate=skips / (labels + skips) if labels + skips else None,
                accuracy=accuracy.get(user_id),
                kappa=sum(pairs) / len(pairs) if pairs else None,
                kappa_pairs=len(pairs),
            )
        )
    rows.sort(key=lambda r: (-r.labels, r.username))
    alpha = report.alpha if report is not None and only is None else None
    return PeoplePanel(days=days, rows=rows, alpha=alpha)
