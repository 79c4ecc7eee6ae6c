"""Export speed on PostgreSQL: seconds and peak memory of `case_export` per format, with and
without provenance, against `COPY (SELECT ...) TO STDOUT` of the same rows as the floor.

For each size (100,000 and 1,000,000 cases by default; `--sizes` to choose) a scratch database
`bench_export` (created and dropped here) is migrated and bulk-loaded with COPY: N cases of
generated merchants with metadata, 300,000 annotations by 20 analysts (10% superseded) on up to
150,000 cases, their resolved labels (annotation and consensus), a label issue for every fifth
case and a champion's prediction for every case. Each export (csv, jsonl, parquet, each with and
without `--include provenance`) runs in a fresh child process that reports its peak RSS; the
floor is the server's COPY of the same join (cases; with provenance also the annotations with
annotator and class names) in the same run. Targets at 1,000,000 cases: CSV and Parquet under
30 s without provenance, under 90 s with it; peak memory under 500 MB at any size.
Writes bench/results/export_speed.json and .png.

    .venv/bin/python bench/export_speed.py [--sizes 100000 1000000] [--formats csv parquet]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_PG_DB", "bench_export")
os.environ["DATABASE_URL"] = f"{SERVER}/{DB_NAME}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

ANNOTATIONS = 300_000
MAX_ANNOTATED = 150_000
ANALYSTS = 20
CLASSES = ["legit", "gambling", "weapons", "adult", "crypto", "pharmacy", "counterfeit", "mlm"]
POOL = 20_000
FORMATS = ("csv", "jsonl", "parquet")
TARGETS = {"seconds_1m": 30.0, "seconds_1m_provenance": 90.0, "peak_mb": 500.0}
SLUG = "bench-export"


def _setup_django() -> None:
    import django

    django.setup()


def load(n: int) -> None:
    """A migrated scratch database holding one project of `n` cases, bulk-loaded with COPY."""
    from bench.common import scratch_database_create

    registry = sys.modules.get("django.apps")
    if registry is not None and registry.apps.ready:
        from django.db import connections

        connections.close_all()  # the previous size's connection: the database is dropped now
    scratch_database_create(SERVER, DB_NAME)
    _setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from active_learning.ml.hashing import content_hash
    from active_learning.models import ModelStatus, ModelVersion
    from labeling.models import LabelClass, Project
    from labeling.synthetic import iter_records

    project = Project.objects.create(name="Export bench", slug=SLUG)
    classes = [
        LabelClass.objects.create(project=project, name=name, shortcut_key=str(i + 1), order=i)
        for i, name in enumerate(CLASSES)
    ]
    class_ids = [c.pk for c in classes]
    users = [
        get_user_model().objects.create(username=f"analyst{i:02d}", password="!")
        for i in range(ANALYSTS)
    ]
    champion = ModelVersion.objects.create(project=project, number=7, status=ModelStatus.CHAMPION)
    name_to_id = {c.name: c.pk for c in classes}
    pool = []
    for r in iter_records(min(n, POOL), seed=1, noise=0.2):
        label = r.given_label if r.given_label in name_to_id else None
        meta = json.dumps(
            {
                "business_name": r.business_name,
                "website": r.website,
                "mcc": r.mcc,
                "country": r.country,
            }
        )
        pool.append((r.description, meta, content_hash(r.description), label))
    fallback = class_ids[0]
    now = datetime.now(UTC)
    rng = random.Random(7)
    started = time.perf_counter()
    raw = connection.connection  # psycopg 3
    with raw.cursor() as cur:
        sql = (
            "COPY labeling_case (project_id, external_id, text, metadata, given_label_id, "
            "given_label_source, split, content_hash, imported_at, updated_at, changed_at) "
            "FROM STDIN"
        )
        with cur.copy(sql) as copy:
            for i in range(n):
                text, meta, digest, label = pool[i % len(pool)]
                given = name_to_id.get(label, fallback) if label else rng.choice(class_ids)
                split = "eval" if i % 10 == 0 else "pool"
                copy.write_row(
                    (
                        project.pk,
                        f"M{i:09d}",
                        text,
                        meta,
                        given,
                        "import",
                        split,
                        digest,
                        now,
                        now,
                        now,
                    )
                )
        cur.execute(
            "SELECT id, content_hash FROM labeling_case WHERE project_id = %s ORDER BY id",
            [project.pk],
        )
        cases = cur.fetchall()
        annotated = cases[: min(MAX_ANNOTATED, int(0.75 * n))]
        with cur.copy(
            "COPY labeling_annotation (case_id, annotator_id, label_id, skipped, skip_reason, "
            "noise_flag, ambiguous, exclude, exclude_reason, comment, duration_ms, shown, source, "
            "submission_id, content_hash, superseded_at, created_at) FROM STDIN"
        ) as copy:
            shown = json.dumps(
                {"suggestion": class_ids[1], "model_version": champion.pk, "blind": False}
            )
            for i in range(ANNOTATIONS):
                case_id, digest = annotated[i % len(annotated)]
                superseded = now if i % 10 == 9 else None
                copy.write_row(
                    (
                        case_id,
                        users[i % ANALYSTS].pk,
                        class_ids[(case_id + i) % len(class_ids)],
                        False,
                        "",
                        i % 17 == 0,
                        i % 23 == 0,
                        False,
                        "",
                        "checked the website" if i % 5 == 0 else "",
                        1500 + i % 9000,
                        shown,
                        "queue",
                        uuid.UUID(int=rng.getrandbits(128)),
                        digest,
                        superseded,
                        now - timedelta(seconds=i),
                    )
                )
        with cur.copy(
            "COPY labeling_resolvedlabel (case_id, label_id, source, confidence, agreement, "
            "doubtful, excluded, updated_at) FROM STDIN"
        ) as copy:
            for i, (case_id, _) in enumerate(annotated):
                consensus = i % 3 == 0
                copy.write_row(
                    (
                        case_id,
                        class_ids[case_id % len(class_ids)],
                        "consensus" if consensus else "annotation",
                        0.93 if consensus else None,
                        0.5 + (i % 5) / 10,
                        False,
                        i % 97 == 0,
                        now,
                    )
                )
        with cur.copy(
            "COPY active_learning_labelissue (project_id, case_id, given_label_id, "
            "suggested_label_id, suggested_p, score, self_confidence, in_prune_set, detected_at) "
            "FROM STDIN"
        ) as copy:
            for case_id, _ in cases[::5]:
                copy.write_row(
                    (project.pk, case_id, class_ids[0], class_ids[2], 0.7, 0.7, 0.3, True, now)
                )
        with cur.copy(
            "COPY active_learning_prediction (case_id, model_version_id, predicted_label_id, "
            "confidence, created_at) FROM STDIN"
        ) as copy:
            for case_id, _ in cases:
                copy.write_row(
                    (case_id, champion.pk, class_ids[case_id % len(class_ids)], 0.81, now)
                )
    raw.commit()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(
        f"loaded {n:,} cases, {ANNOTATIONS:,} annotations in {time.perf_counter() - started:.1f} s",
        flush=True,
    )


FLOOR_CASES = """
COPY (
  SELECT c.external_id, c.text, c.metadata::text, c.split, gl.name, c.given_label_source,
         COALESCE(rl.name, gl.name), COALESCE(r.source, 'given'), r.confidence, r.agreement,
         COALESCE(r.doubtful, false), COALESCE(r.excluded, false), li.score, sl.name, pl.name,
         p.confidence, CASE WHEN p.case_id IS NULL THEN NULL ELSE 7 END,
         (SELECT count(*) FROM labeling_annotation a WHERE a.case_id = c.id
            AND a.superseded_at IS NULL AND a.label_id IS NOT NULL AND NOT a.skipped
            AND a.content_hash = c.content_hash),
         c.changed_at
  FROM labeling_case c
  LEFT JOIN labeling_labelclass gl ON gl.id = c.given_label_id
  LEFT JOIN labeling_resolvedlabel r ON r.case_id = c.id
  LEFT JOIN labeling_labelclass rl ON rl.id = r.label_id
  LEFT JOIN active_learning_labelissue li ON li.case_id = c.id
  LEFT JOIN labeling_labelclass sl ON sl.id = li.suggested_label_id
  LEFT JOIN active_learning_prediction p ON p.case_id = c.id AND p.model_version_id = %(champion)s
  LEFT JOIN labeling_labelclass pl ON pl.id = p.predicted_label_id
  WHERE c.project_id = %(project)s AND NOT COALESCE(r.excluded, false)
  ORDER BY c.id
) TO STDOUT (FORMAT csv)
"""
FLOOR_ANNOTATIONS = """
COPY (
  SELECT c.external_id, a.id, u.username, l.name, a.source, a.skipped, a.noise_flag, a.ambiguous,
         a.exclude, a.exclude_reason, a.comment, a.duration_ms, a.shown::text,
         a.content_hash <> c.content_hash, a.superseded_at IS NOT NULL, a.created_at
  FROM labeling_annotation a
  JOIN labeling_case c ON c.id = a.case_id
  JOIN auth_user u ON u.id = a.annotator_id
  LEFT JOIN labeling_labelclass l ON l.id = a.label_id
  WHERE c.project_id = %(project)s
  ORDER BY a.case_id, a.id
) TO STDOUT (FORMAT csv)
"""


def floor(tmp: Path, provenance: bool) -> float:
    """Seconds for the server to COPY the same rows (joins, names, counts) to a file here."""
    import psycopg

    with psycopg.connect(f"{SERVER}/{DB_NAME}") as conn:
        project, champion = conn.execute(
            "SELECT p.id, m.id FROM labeling_project p JOIN active_learning_modelversion m "
            "ON m.project_id = p.id AND m.status = 'champion' WHERE p.slug = %s",
            [SLUG],
        ).fetchone()
        params = {"project": project, "champion": champion}
        started = time.perf_counter()
        statements = [FLOOR_CASES] + ([FLOOR_ANNOTATIONS] if provenance else [])
        for index, statement in enumerate(statements):
            with (
                conn.cursor() as cur,
                open(tmp / f"floor{index}.csv", "wb") as out,
                cur.copy(statement, params) as copy,
            ):
                for block in copy:
                    out.write(block)
        return time.perf_counter() - started


def _peak_rss_kb() -> int:
    """This process's own peak RSS: VmHWM, which starts afresh at exec. (ru_maxrss does not on
    Linux: a child forked from the loader reported the loader's 560 MB at 1M cases.)"""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(fmt: str, provenance: bool, out: str) -> None:
    """One export in this fresh process; prints its figures as JSON."""
    _setup_django()
    from labeling.models import Project
    from labeling.services.exports import ExportOptions, case_export

    project = Project.objects.get(slug=SLUG)
    result = case_export(
        project=project, fmt=fmt, path=Path(out), options=ExportOptions(provenance=provenance)
    )
    peak_kb = _peak_rss_kb()
    size = sum(p.stat().st_size for p in result.files)
    print(
        json.dumps(
            {
                "rows": result.rows,
                "annotations": result.annotations,
                "seconds": result.seconds,
                "peak_mb": round(peak_kb / 1024, 1),
                "file_mb": round(size / 1e6, 1),
            }
        )
    )


def run_export(fmt: str, provenance: bool, tmp: Path) -> dict:
    out = tmp / f"export.{fmt}"
    args = [sys.executable, __file__, "--child", fmt, "1" if provenance else "0", str(out)]
    done = subprocess.run(
        args, cwd=ROOT, env=os.environ, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    for path in tmp.iterdir():
        path.unlink()
    return figures


def plot(results: list[dict]) -> None:
    from bench.common import new_figure, save_figure

    fig, axes = new_figure(1, 2, figsize=(11, 4))
    for ax, key, title in ((axes[0], "seconds", "seconds"), (axes[1], "peak_mb", "peak RSS (MB)")):
        labels, values, colours = [], [], []
        for size in results:
            for run in size["runs"]:
                labels.append(
                    f"{size['cases'] // 1000}k {run['format']}{'+p' if run['provenance'] else ''}"
                )
                values.append(run[key])
                colours.append("tab:orange" if run["provenance"] else "tab:blue")
            if key == "seconds":
                for provenance in (False, True):
                    labels.append(f"{size['cases'] // 1000}k COPY{'+p' if provenance else ''}")
                    values.append(
                        size["copy_floor_seconds"]["provenance" if provenance else "cases"]
                    )
                    colours.append("tab:gray")
        ax.barh(labels, values, color=colours)
        ax.set_title(f"export_cases: {title}")
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
    save_figure(fig, "export_speed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument(
        "--keep", action="store_true", help="leave the scratch database (for profiling)"
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("FORMAT", "PROVENANCE", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1] == "1", args.child[2])
        return
    from bench.common import scratch_database_drop, write_result

    results = []
    try:
        for n in args.sizes:
            load(n)
            size: dict = {"cases": n, "annotations": ANNOTATIONS, "runs": []}
            with tempfile.TemporaryDirectory() as tmp_name:
                tmp = Path(tmp_name)
                size["copy_floor_seconds"] = {
                    "cases": round(floor(tmp, False), 2),
                    "provenance": round(floor(tmp, True), 2),
                }
                for file in tmp.iterdir():
                    file.unlink()
                for fmt in args.formats:
                    for provenance in (False, True):
                        run = {
                            "format": fmt,
                            "provenance": provenance,
                            **run_export(fmt, provenance, tmp),
                        }
                        floor_s = size["copy_floor_seconds"][
                            "provenance" if provenance else "cases"
                        ]
                        run["ratio_to_copy"] = round(run["seconds"] / floor_s, 2)
                        size["runs"].append(run)
                        print(
                            f"{n:>9,} cases {fmt:>7}{' +provenance' if provenance else '':12} "
                            f"{run['seconds']:7.1f} s (COPY floor {floor_s:.1f} s, x{run['ratio_to_copy']}) "
                            f"peak {run['peak_mb']} MB, {run['file_mb']} MB written",
                            flush=True,
                        )
            results.append(size)
            write_result("export_speed", {"targets": TARGETS, "sizes": results})
    finally:
        if not args.keep:
            scratch_database_drop(SERVER, DB_NAME)
    checks: dict[str, bool] = {
        "peak_under_500_mb": all(
            r["peak_mb"] < TARGETS["peak_mb"] for s in results for r in s["runs"]
        )
    }
    for size in results:
        if size["cases"] >= 1_000_000:
            for run in size["runs"]:
                if run["format"] in ("csv", "parquet"):
                    limit = TARGETS["seconds_1m_provenance" if run["provenance"] else "seconds_1m"]
                    key = f"1m_{run['format']}{'_provenance' if run['provenance'] else ''}_under_{limit:.0f}_s"
                    checks[key] = run["seconds"] < limit
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'} {name}")
    write_result("export_speed", {"targets": TARGETS, "sizes": results, "checks": checks})
    plot(results)


if __name__ == "__main__":
    main()
