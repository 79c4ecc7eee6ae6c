"""What the dashboard page and its plot URLs read: one function for each, by role.

Reviewers and admins get every panel; an analyst gets their own row of the people panel only
(nothing else is computed for them, so nothing else can leak into the page). The expensive
figures (data quality counts, the champion's reliability and confusions, the stopping signal's
stop-set predictions, everyone's answers of the people panel's window) come from the stored
`DashboardSnapshot`; a page that finds it missing, stale or about another champion asks a worker
for a new one and shows what is stored meanwhile: no request computes them.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from active_learning.dashboard import cache, model_panel, people_panel
from active_learning.dashboard.data_panel import data_panel
from active_learning.models import DashboardSnapshot
from active_learning.services.dashboard import dashboard_snapshot_request, snapshot_due
from labeling.models import Project
from labeling.selectors_quality import quality_report

PLOTS = ("learning-curve", "reliability", "class-points", "confusions")


def dashboard_context(*, project: Project, user_id: int, full: bool) -> dict[str, Any]:
    report = quality_report(project=project)
    if not full:
        return {
            "project": project,
            "full": False,
            "people": people_panel.people_panel(project=project, report=report, only=user_id),
        }
    classes = model_panel.class_map(project=project)
    panel = model_panel.model_panel(project=project, classes=classes)
    snapshot = _snapshot(project)
    champion_pk = panel.champion.pk if panel.champion is not None else None
    if snapshot_due(snapshot=snapshot, champion_pk=champion_pk):
        dashboard_snapshot_request(project=project)
    evaluation = _evaluation(snapshot, panel)
    plots = _plot_data(panel, evaluation)
    return {
        "project": project,
        "full": True,
        "model": panel,
        "evaluation": evaluation,
        "plot_versions": {
            name.replace("-", "_"): cache.fingerprint(data) for name, data in plots.items()
        },
        "stopping": model_panel.stopping(
            project=project, stop_set=snapshot.stop_set if snapshot is not None else None
        ),
        "data": data_panel(project=project, classes=classes, snapshot=snapshot),
        "evaluation_pending": panel.champion is not None and not evaluation,
        "report": report,
        "people": people_panel.people_panel(
            project=project, report=report, window=_people_window(snapshot)
        ),
    }


def _snapshot(project: Project) -> DashboardSnapshot | None:
    return DashboardSnapshot.objects.filter(project=project).first()


def _people_window(snapshot: DashboardSnapshot | None) -> dict[str, Any]:
    """Everyone's window figures as stored (no rows before the first snapshot)."""
    if snapshot is not None and snapshot.people is not None:
        return snapshot.people
    return {"days": [], "per_day": {}, "totals": {}, "median_seconds": {}}


def _evaluation(
    snapshot: DashboardSnapshot | None, panel: model_panel.ModelPanel
) -> dict[str, Any]:
    """The champion's reliability and confusions as stored ({} when the snapshot is about
    another champion or has none)."""
    if snapshot is None or panel.champion is None or snapshot.champion_id != panel.champion.pk:
        return {}
    return snapshot.evaluation or {}


def _plot_data(panel: model_panel.ModelPanel, evaluation: dict[str, Any]) -> dict[str, Any]:
    return {
        "learning-curve": panel.learning_curve,
        "reliability": {k: evaluation.get(k) for k in ("n", "ece", "bins")},
        "class-points": panel.class_points,
        "confusions": {"confusions": evaluation.get("confusions") or []},
    }


def plot_png(*, project: Project, name: str) -> tuple[bytes, str]:
    """The plot's PNG and the fingerprint of its data (drawn once per fingerprint)."""
    from active_learning.dashboard import plots

    classes = model_panel.class_map(project=project)
    panel = model_panel.model_panel(project=project, classes=classes)
    evaluation: dict[str, Any] = {}
    if name in ("reliability", "confusions"):
        evaluation = _evaluation(_snapshot(project), panel)
    data = _plot_data(panel, evaluation)[name]
    digest = cache.fingerprint(data)
    path = cache.plot_path(project, name, digest)
    try:
        return path.read_bytes(), digest
    except OSError:
        png = plots.DRAW[name](data)
        cache.plot_put(path, png)
        return png, digest


CSV_COLUMNS = (
    "kind", "name", "tier", "target_precision", "threshold", "precision", "precision_low",
    "precision_high", "recall", "recall_low", "recall_high", "evaluation_labels", "positives",
    "enough_evidence", "reason", "more_labels_to_prove_precision",
    "more_labels_for_recall_within_0.02",
)  # fmt: skip


def operating_points_csv(*, project: Project) -> str:
    """The champion's operating points per tier and class, one row each (header only without)."""
    classes = model_panel.class_map(project=project)
    panel = model_panel.model_panel(project=project, classes=classes)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)

    def cell(value: Any) -> Any:
        return "" if value is None else (round(value, 6) if isinstance(value, float) else value)

    for p in panel.operating_points:
        pci, rci = p.precision_ci or (None, None), p.recall_ci or (None, None)
        writer.writerow(
            [cell(v) for v in (
                p.kind, p.name, p.tier, p.target, p.threshold, p.precision, pci[0], pci[1],
                p.recall, rci[0], rci[1], p.n_samples, p.n_positives,
                "yes" if p.enough_evidence else "no", p.reason, p.more_labels_needed,
                p.labels_to_narrow,
            )]
        )  # fmt: skip
    return out.getvalue()
