"""The project dashboard's render time at 1,000,000 cases with 20 model versions (PostgreSQL).

A scratch database (default `dashboard_bench` on postgres://postgres@127.0.0.1:5432/, created,
migrated and dropped here) gets the case search benchmark's data set (`bench/case_search.py`'s
`load`: N generated merchants with given labels, 3% resolved by people with their annotations,
a label issue for every labelled pool case, one version's prediction for every case), then 19
more model versions with metrics from `evaluate()` on the evaluation labels (20 classes), every
other one promoted, each with stored predictions for the stop set and the labelled evaluation
cases, as scoring leaves them. Then VACUUM ANALYZE.

Timed through Django's test client in this process as a reviewer (template included), with the
dashboard's snapshot stored as the retrain chain's last step leaves it:
- `snapshot_refresh`: the background step itself (counts, champion evaluation, stop-set cache;
  a worker's time, never a request's);
- `cold`: the first render after the disk cache (plots, stop-set predictions) and Django's cache
  are cleared (untimed; the snapshot, a database row, stays);
- `warm`: renders with every plot drawn (what nearly every request sees);
- `after_snapshot`: the first render after a new snapshot was stored (its plots' URLs change
  only where their data did);
- each plot's URL, cached (a file read) and drawn (matplotlib).
The issue's target: a render under 300 ms.

    .venv/bin/python bench/dashboard_speed.py [--cases 1000000] [--repeats 20] [--keep-db]
    .venv/bin/python bench/dashboard_speed.py --reuse-db [--keep-db]   # time a kept database again

Writes bench/results/dashboard_speed.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("BENCH_PG_DB", "dashboard_bench")
SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ["BENCH_PG_DB"]
DATA_DIR = Path(tempfile.mkdtemp(prefix="dashboard-bench-"))

from bench.common import (  # noqa: E402
    scratch_database_create,
    scratch_database_drop,
    scratch_environment,
    write_result,
)

scratch_environment(SERVER, DB_NAME, DATA_DIR)

from bench import case_search  # noqa: E402  (reads DATABASE_URL/BENCH_PG_DB set above)

TARGET_MS = 300.0
VERSIONS = 20


def _versions(loaded: dict[str, Any], seed: int = 0) -> dict[str, int]:
    """Versions 2..VERSIONS with real metrics and stop-set + evaluation predictions (COPY)."""
    from django.db import transaction
    from django.utils import timezone

    from active_learning.dashboard.model_panel import stop_set_mask
    from active_learning.ml.metrics import evaluate
    from active_learning.models import ModelStatus, ModelVersion, Prediction
    from active_learning.selectors import evaluation_set
    from labeling.models import Case, LabelClass, Split

    project = loaded["project"]
    rng = np.random.default_rng(seed)
    classes = list(LabelClass.objects.filter(project=project).order_by("pk"))
    ids = [c.pk for c in classes]
    tiers = {c.pk: c.tier for c in classes}
    labels = evaluation_set(project=project)
    stop = np.array(
        Case.objects.filter(project=project, split=Split.POOL).values_list("pk", flat=True)
    )
    stop = stop[stop_set_mask(project=project, case_ids=stop)]
    truth = labels.labels
    base_stop = rng.choice(ids, size=stop.size)
    now = timezone.now()
    ModelVersion.objects.filter(project=project).update(
        status=ModelStatus.RETIRED, promoted_at=now - timedelta(days=60)
    )
    rows = 0
    champion = None
    for number in range(2, VERSIONS + 1):
        skill = min(0.92, 0.55 + 0.02 * number)
        proba = rng.dirichlet(np.ones(len(ids)) * 0.5, size=truth.size)
        hit = rng.random(truth.size) < skill
        for i in np.flatnonzero(hit):
            proba[i] *= 0.2
            proba[i, ids.index(int(truth[i]))] += 0.8
        report = evaluate(
            truth, proba, classes=ids, tiers=tiers, target_precision=project.target_precision,
            n_bootstrap=200, random_state=number, sample_weight=labels.weights,
        )  # fmt: skip
        promoted = number % 2 == 1 or number == 2
        when = now - timedelta(days=VERSIONS - number)
        version = ModelVersion.objects.create(
            project=project, number=number,
            status=ModelStatus.RETIRED if promoted else ModelStatus.READY,
            metrics=report.to_json(), n_train=40_000 + 2_000 * number, n_eval=report.n_samples,
            params={"n_from_analysts": 1_000 * number}, trained_at=when,
            promoted_at=when if promoted else None,
            decision={"promote": promoted, "reason": f"bench decision of v{number}"},
            decision_reason=f"bench decision of v{number}",
        )  # fmt: skip
        champion = version if promoted else champion
        flips = rng.random(stop.size) < max(0.002, 0.2 / number)
        base_stop = np.where(flips, rng.choice(ids, size=stop.size), base_stop)
        top = proba.argmax(axis=1)
        stamp = timezone.now()

        def prediction_rows(
            version: Any = version, top: Any = top, proba: Any = proba,
            stamp: Any = stamp, base_stop: Any = base_stop,
        ) -> Any:  # fmt: skip
            for case_id, t, p in zip(labels.case_ids.tolist(), top.tolist(), proba, strict=True):
                c = float(p[t])
                yield (case_id, version.pk, ids[t], c, 1 - c, f"[[{ids[t]}, {c:.4f}]]", stamp)
            for case_id, label in zip(stop.tolist(), base_stop.tolist(), strict=True):
                yield (case_id, version.pk, label, 0.8, 0.2, f"[[{label}, 0.8]]", stamp)

        with transaction.atomic():
            rows += case_search._copy(
                Prediction._meta.db_table,
                "case_id, model_version_id, predicted_label_id, confidence, uncertainty, top_k,"
                " created_at",
                prediction_rows(),
            )
    assert champion is not None
    ModelVersion.objects.filter(pk=champion.pk).update(status=ModelStatus.CHAMPION)
    case_search._vacuum()
    return {
        "versions": VERSIONS,
        "evaluation_labels": int(truth.size),
        "stop_set": int(stop.size),
        "version_prediction_rows": rows,
        "champion": champion.number,
    }


def _requests_sent(project: Any) -> Any:
    """When a page last asked a worker for a snapshot (None: never)."""
    from active_learning.models import DashboardSnapshot

    return (
        DashboardSnapshot.objects.filter(project=project)
        .values_list("requested_at", flat=True)
        .first()
    )


def _time(fn: Any, repeats: int, before: Any = None) -> dict[str, float]:
    """`fn`'s time over `repeats` calls, each after an untimed call of `before`."""
    samples = []
    for _ in range(repeats):
        if before is not None:
            before()
        started = time.perf_counter()
        fn()
        samples.append(1000 * (time.perf_counter() - started))
    return _summary(samples)


def _summary(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "median_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[min(len(samples) - 1, int(0.95 * len(samples)))], 1),
        "max_ms": round(samples[-1], 1),
        "n": len(samples),
        "samples_ms": [round(x, 1) for x in samples],  # sorted: a shared machine's tail shows
    }


def _parts(project: Any, user_id: int, repeats: int) -> dict[str, Any]:
    """Each selector of a warm render alone (the rest of the page is the template)."""
    from active_learning.dashboard import data_panel, model_panel, page, people_panel
    from labeling.selectors_quality import quality_report

    classes = model_panel.class_map(project=project)
    panel = model_panel.model_panel(project=project, classes=classes)
    report = quality_report(project=project)
    assert panel.champion is not None
    snapshot = page._snapshot(project)
    return {
        "quality_report": _time(lambda: quality_report(project=project), repeats),
        "model_panel": _time(
            lambda: model_panel.model_panel(
                project=project, classes=model_panel.class_map(project=project)
            ),
            repeats,
        ),
        "snapshot_read": _time(lambda: page._snapshot(project), repeats),
        "stopping": _time(
            lambda: model_panel.stopping(project=project, stop_set=snapshot.stop_set), repeats
        ),
        "data_panel": _time(
            lambda: data_panel.data_panel(project=project, classes=classes, snapshot=snapshot),
            repeats,
        ),
        "people_panel": _time(
            lambda: people_panel.people_panel(
                project=project, report=report, window=snapshot.people
            ),
            repeats,
        ),
    }


def _reuse(cases: int) -> dict[str, Any]:
    """A database a `--keep-db` run left: its project, reviewer and sizes."""
    from django.contrib.auth import get_user_model

    from active_learning.models import ModelStatus, ModelVersion, Prediction
    from labeling.models import Case, Project

    project = Project.objects.get(slug="search")
    assert Case.objects.filter(project=project).count() == cases, "run with the same --cases"
    return {
        "project": project,
        "reviewer": get_user_model().objects.get(username=case_search.REVIEWER),
        "sizes": {
            "cases": cases,
            "versions": ModelVersion.objects.filter(project=project).count(),
            "predictions": Prediction.objects.filter(model_version__project=project).count(),
            "champion": ModelVersion.objects.get(
                project=project, status=ModelStatus.CHAMPION
            ).number,
        },
        "reused": True,
    }


def run(cases: int, repeats: int, reuse: bool = False) -> dict[str, Any]:
    from django.core.cache import cache as django_cache
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from active_learning.dashboard import cache, page
    from active_learning.services.dashboard import dashboard_snapshot_refresh

    started = time.perf_counter()
    if reuse:
        loaded = _reuse(cases)
        sizes = loaded["sizes"]
    else:
        loaded = case_search.load(cases)
        sizes = {**loaded["sizes"], **_versions(loaded)}
    load_seconds = time.perf_counter() - started
    print(f"  loaded in {load_seconds:.0f} s: {sizes}", flush=True)
    project = loaded["project"]
    client = Client()
    client.force_login(loaded["reviewer"])
    url = reverse("active_learning:dashboard", args=[project.slug])

    def render() -> None:
        response = client.get(url)
        assert response.status_code == 200, response.status_code

    def clear_all() -> None:
        shutil.rmtree(cache.folder(project), ignore_errors=True)
        django_cache.clear()

    def refresh() -> None:
        dashboard_snapshot_refresh(project=project, force=True)

    clear_all()
    snapshot_refresh = _time(refresh, 3)
    sent_before = _requests_sent(project)
    cold = _time(render, max(10, repeats // 2), before=clear_all)
    render()
    queries_before = len(connection.queries)
    warm = _time(render, repeats)
    after_snapshot = _time(render, max(10, repeats // 2), before=refresh)  # a worker's time
    render()
    assert _requests_sent(project) == sent_before, "a render asked for a snapshot"
    parts = _parts(project, loaded["reviewer"].pk, repeats)
    plots: dict[str, Any] = {}
    for name in page.PLOTS:
        plot_url = reverse("active_learning:dashboard_plot", args=[project.slug, name])

        def fetch(plot_url: str = plot_url) -> None:
            assert client.get(plot_url).status_code == 200

        def drawn(name: str = name, fetch: Any = fetch) -> None:
            for path in cache.folder(project).glob(f"{name}-*.png"):
                path.unlink()
            fetch()

        fetch()  # drawn once: the cached timings read the file
        plots[name] = {"cached": _time(fetch, repeats), "drawn": _time(drawn, 3)}
    del queries_before
    result = {
        "cases": cases,
        "repeats": repeats,
        "target_warm_ms": TARGET_MS,
        "load_seconds": None if reuse else round(load_seconds, 1),
        "sizes": sizes,
        "snapshot_refresh": snapshot_refresh,
        "page": {"cold": cold, "warm": warm, "after_snapshot": after_snapshot},
        "warm_parts": parts,
        "plots": plots,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(f"  snapshot refresh (background) {snapshot_refresh}", flush=True)
    print(f"  page warm {warm}, after a new snapshot {after_snapshot}, cold {cold}", flush=True)
    print(f"  warm parts (median ms): { {k: v['median_ms'] for k, v in parts.items()} }")
    for name, figures in plots.items():
        print(f"  {name}: cached {figures['cached']}, drawn {figures['drawn']}", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--reuse-db", action="store_true", help="time a --keep-db run's data again")
    args = parser.parse_args()
    if not args.reuse_db:
        scratch_database_create(SERVER, DB_NAME)
    case_search._setup()
    try:
        result = run(args.cases, args.repeats, reuse=args.reuse_db)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            scratch_database_drop(SERVER, DB_NAME)
        shutil.rmtree(DATA_DIR, ignore_errors=True)
    path = write_result("dashboard_speed", result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
