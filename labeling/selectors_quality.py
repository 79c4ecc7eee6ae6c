"""A project's label quality as its latest consensus step measured it (the reviewers' page).

A *run* is what one consensus step stored at one `measured_at`: an `AgreementReport` and the
`AnnotatorReliability` rows of analysts and given-label sources; `CaseConsensus` always holds the
latest run's cases. Rates are fractions in 0..1; a confusion matrix is P(says column | truly row).
`quality_report` reads it all in at most five queries, whatever the number of analysts, sources
or pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Subquery

from labeling.models import (
    AgreementReport,
    AnnotatorReliability,
    CaseConsensus,
    LabelClass,
    Project,
)
from labeling.services.consensus import MIN_ANALYST_LABELS
from workbench.core.models import Job

# Krippendorff (2004, *Content Analysis*, §11.4.4): rely on data with alpha >= .800; data with
# .667 <= alpha < .800 only for tentative conclusions; below .667 not at all.
ALPHA_RELIABLE = 0.8
ALPHA_TENTATIVE = 0.667
READING_NONE = "Not measurable yet: too few cases have labels from two or more analysts."
READING_RELIABLE = "Reliable: analysts agree well enough to trust a single label."
READING_TENTATIVE = (
    "Tentative: good enough for tentative conclusions only; keep overlap on hard cases and "
    "adjudicate the disagreements."
)
READING_LOW = (
    "Too low to trust single labels: keep overlap, adjudicate, and coach analysts on the class "
    "pairs below."
)
READING_STRADDLES = "The interval reaches across {threshold}, so the reading is not settled."

CLASS_PAIRS_SHOWN = 10
ANALYST_PAIRS_SHOWN = 50
SOURCE_CONFUSIONS_SHOWN = 3
# Cells below this rate are rounding noise of the stored matrix (4 decimals), not confusions.
MIN_CONFUSION_RATE = 0.005
# A confusion expected on less than one of the annotator's labels is no evidence of anything (a
# rare class's row may rest on one or two labels and read 100%).
MIN_CONFUSION_LABELS = 1.0


def percent(value: float) -> str:
    """0.123 -> "12%", 0.0183 -> "1.8%": one decimal only where it still says something."""
    pct = 100.0 * value
    return f"{pct:.1f}%" if 0 < pct < 9.95 else f"{pct:.0f}%"


@dataclass(frozen=True)
class Figure:
    """An agreement figure with its bootstrap 95% interval and the cases behind it."""

    value: float | None
    low: float | None
    high: float | None
    n: int

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Figure:
        return cls(
            value=_number(raw.get("value")),
            low=_number(raw.get("low")),
            high=_number(raw.get("high")),
            n=int(raw.get("n") or 0),
        )


@dataclass(frozen=True)
class Confusion:
    """Saying `said` when the case truly is `truth`: `rate` = P(said | truth), `mass` = the same
    weighted by how common `truth` is (the share of all cases that go this way), `labels` = the
    mass times the annotator's labels (about how many of them went this way)."""

    truth: str
    said: str
    rate: float
    mass: float
    labels: float

    @property
    def rate_text(self) -> str:
        return percent(self.rate)

    @property
    def labels_text(self) -> str:
        return f"{self.labels:,.0f}"


@dataclass(frozen=True)
class Person:
    user_id: int
    username: str
    full_name: str = ""


@dataclass(frozen=True)
class AnalystRow:
    person: Person
    accuracy: float
    labels: int
    gold_labels: int
    gold_correct: int
    worst: Confusion | None

    @property
    def accuracy_text(self) -> str:
        return percent(self.accuracy)


@dataclass(frozen=True)
class SourceRow:
    name: str
    accuracy: float
    labels: int
    confusions: list[Confusion]

    @property
    def accuracy_text(self) -> str:
        return percent(self.accuracy)


@dataclass(frozen=True)
class ClassPair:
    a: str
    b: str
    figure: Figure


@dataclass(frozen=True)
class AnalystPair:
    a: Person
    b: Person
    figure: Figure


@dataclass(frozen=True)
class CaseCounts:
    """Cases with a consensus; `multi` of them rest on two or more analyst labels (these set the
    case's resolution and, below the threshold, go to adjudication)."""

    total: int = 0
    multi: int = 0
    disagree: int = 0
    below: int = 0
    below_multi: int = 0
    threshold: float = 0.0


@dataclass
class QualityReport:
    measured_at: datetime
    job: Job | None
    alpha: Figure | None
    reading: str
    analysts: list[AnalystRow] = field(default_factory=list)
    sources: list[SourceRow] = field(default_factory=list)
    class_pairs: list[ClassPair] = field(default_factory=list)
    class_pairs_total: int = 0
    analyst_pairs: list[AnalystPair] = field(default_factory=list)
    analyst_pairs_total: int = 0
    cases: CaseCounts = field(default_factory=CaseCounts)


def alpha_reading(figure: Figure | None) -> str:
    """Krippendorff's alpha in one plain sentence (his thresholds .667 and .8)."""
    if figure is None or figure.value is None:
        return READING_NONE
    value = figure.value
    if value >= ALPHA_RELIABLE:
        reading = READING_RELIABLE
    elif value >= ALPHA_TENTATIVE:
        reading = READING_TENTATIVE
    else:
        reading = READING_LOW
    if figure.low is None or figure.high is None:
        return reading
    for threshold in (ALPHA_RELIABLE, ALPHA_TENTATIVE):
        if figure.low < threshold <= figure.high:
            return f"{reading} {READING_STRADDLES.format(threshold=threshold)}"
    return reading


def quality_report(*, project: Project) -> QualityReport | None:
    """The latest consensus run of the project, ready to render; None before the first run."""
    run = _latest_run(project)
    if run is None:
        return None
    measured_at, agreement, reliabilities = run
    class_pairs = _dicts(agreement.class_pairs) if agreement else []
    analyst_pairs = _dicts(agreement.analyst_pairs) if agreement else []
    people = _people(
        [r.annotator_id for r in reliabilities]
        + [_int(p.get(k)) for p in analyst_pairs for k in ("a", "b")]
    )
    names = {c.pk: str(c) for c in LabelClass.objects.filter(project=project)}
    cases, label_counts = _case_counts(project)
    alpha = None
    if agreement is not None:
        alpha = Figure(agreement.alpha, agreement.alpha_low, agreement.alpha_high, agreement.cases)
    report = QualityReport(
        measured_at=measured_at,
        job=agreement.job if agreement is not None else reliabilities[0].job,
        alpha=alpha,
        reading=alpha_reading(alpha),
        class_pairs=[
            ClassPair(_class_name(names, p.get("a")), _class_name(names, p.get("b")), Figure.of(p))
            for p in _worst_first(class_pairs)[:CLASS_PAIRS_SHOWN]
        ],
        class_pairs_total=len(class_pairs),
        analyst_pairs=[
            AnalystPair(
                _person(people, _int(p.get("a"))), _person(people, _int(p.get("b"))), Figure.of(p)
            )
            for p in _worst_first(analyst_pairs)[:ANALYST_PAIRS_SHOWN]
        ],
        analyst_pairs_total=len(analyst_pairs),
        cases=cases,
    )
    for r in reliabilities:
        confusions = _confusions(r.confusion, names, label_counts, labels=r.labels)
        if r.annotator_id is not None:
            report.analysts.append(
                AnalystRow(
                    person=_person(people, r.annotator_id),
                    accuracy=r.accuracy,
                    labels=r.labels,
                    gold_labels=r.gold_labels,
                    gold_correct=r.gold_correct,
                    worst=confusions[0] if confusions else None,
                )
            )
        else:
            report.sources.append(
                SourceRow(
                    r.label_source, r.accuracy, r.labels, confusions[:SOURCE_CONFUSIONS_SHOWN]
                )
            )
    report.analysts.sort(key=lambda a: (a.accuracy, a.person.username))  # coaching first
    report.sources.sort(key=lambda s: (s.accuracy, s.name))
    return report


def _latest_run(
    project: Project,
) -> tuple[datetime, AgreementReport | None, list[AnnotatorReliability]] | None:
    """When the latest run was measured, its agreement and its reliabilities (two queries)."""
    agreement = (
        AgreementReport.objects.filter(project=project)
        .select_related("job")
        .order_by("-measured_at", "-pk")
        .first()
    )
    latest = (
        AnnotatorReliability.objects.filter(project=project)
        .order_by("-measured_at")
        .values("measured_at")[:1]
    )
    reliabilities = list(
        AnnotatorReliability.objects.filter(project=project, measured_at=Subquery(latest))
        .select_related("job")
        .order_by("pk")
    )
    times = [r.measured_at for r in reliabilities[:1]]
    times += [agreement.measured_at] if agreement is not None else []
    if not times:
        return None
    # One run writes both at one instant; whichever is older belongs to an earlier run.
    measured_at = max(times)
    if agreement is not None and agreement.measured_at != measured_at:
        agreement = None
    return measured_at, agreement, [r for r in reliabilities if r.measured_at == measured_at]


def _case_counts(project: Project) -> tuple[CaseCounts, dict[int, int]]:
    """The consensus counts, and how many cases have each consensus label (one grouped query;
    the latter estimates the class priors that weight a confusion)."""
    threshold = float(project.consensus_threshold)
    multi = Q(analyst_labels__gte=MIN_ANALYST_LABELS)
    below = Q(posterior__lt=threshold)
    rows = (
        CaseConsensus.objects.filter(project=project)
        .values("label_id")
        .annotate(
            n=Count("id"),
            multi=Count("id", filter=multi),
            disagree=Count("id", filter=Q(given_disagrees=True)),
            below=Count("id", filter=below),
            below_multi=Count("id", filter=below & multi),
        )
        .order_by()
    )
    totals = {"total": 0, "multi": 0, "disagree": 0, "below": 0, "below_multi": 0}
    per_label: dict[int, int] = {}
    for row in rows:
        per_label[row["label_id"]] = row["n"]
        totals["total"] += row["n"]
        for key in ("multi", "disagree", "below", "below_multi"):
            totals[key] += row[key]
    return CaseCounts(threshold=threshold, **totals), per_label


def _confusions(
    confusion: Any, names: dict[int, str], label_counts: dict[int, int], *, labels: int
) -> list[Confusion]:
    """The off-diagonal cells of a stored confusion, largest prior-weighted mass first, without
    those expected on less than one of the annotator's `labels`.

    Priors are the shares of the latest consensus labels (uniform before any): a 30% error rate
    on a class one case in a hundred belongs to weighs less than 10% on a common one.
    """
    if not isinstance(confusion, dict):
        return []
    classes, matrix = confusion.get("classes") or [], confusion.get("matrix") or []
    k = len(classes)
    if k < 2 or len(matrix) != k:
        return []
    counts = [label_counts.get(pk, 0) if (pk := _int(c)) is not None else 0 for c in classes]
    total = sum(counts)
    priors = [n / total for n in counts] if total else [1.0 / k] * k
    cells = []
    for r, row in enumerate(matrix):
        if not isinstance(row, list) or len(row) != k:
            return []
        for c, raw in enumerate(row):
            rate = _number(raw)
            if r == c or rate is None or rate < MIN_CONFUSION_RATE:
                continue
            mass = priors[r] * rate
            if mass * labels < MIN_CONFUSION_LABELS:
                continue
            cells.append(
                Confusion(
                    truth=_class_name(names, classes[r]),
                    said=_class_name(names, classes[c]),
                    rate=rate,
                    mass=mass,
                    labels=mass * labels,
                )
            )
    cells.sort(key=lambda cell: (-cell.mass, -cell.rate, cell.truth, cell.said))
    return cells


def _people(ids: Iterable[int | None]) -> dict[int, Person]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    users = (
        get_user_model()
        .objects.filter(pk__in=wanted)
        .only("id", "username", "first_name", "last_name")
    )
    return {
        u.pk: Person(user_id=u.pk, username=u.get_username(), full_name=u.get_full_name())
        for u in users
    }


def _person(people: dict[int, Person], user_id: int | None) -> Person:
    if user_id is None:
        return Person(user_id=0, username="unknown analyst")
    return people.get(user_id) or Person(user_id=user_id, username=f"user #{user_id}")


def _class_name(names: dict[int, str], class_id: Any) -> str:
    pk = _int(class_id)
    return names.get(pk, f"class #{pk}") if pk is not None else "unknown class"


def _worst_first(pairs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lowest value first; pairs without a value (not measurable) last."""

    def key(p: dict[str, Any]) -> tuple[bool, float, int]:
        value = _number(p.get("value"))
        return (value is None, value if value is not None else 0.0, -int(p.get("n") or 0))

    return sorted(pairs, key=key)


def _dicts(raw: Any) -> list[dict[str, Any]]:
    return [p for p in raw if isinstance(p, dict)] if isinstance(raw, list) else []


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    value = float(raw)
    return value if value == value else None  # NaN stored by mistake reads as "not measured"


def _int(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    return None
