"""Import speed: rows/second and peak memory of `case_import` on PostgreSQL, against plain COPY.

For each size (100,000 and 1,000,000 rows by default; `--rows` to choose) a CSV of generated
merchants is written (a pool of synthetic records cycled under unique ids), then imported into a
scratch database `bench_import` (created and dropped here) by a child process that reports its
peak RSS; the same file is then loaded with a plain server-side `COPY ... FROM STDIN (FORMAT csv)`
into a bare table, and the imported case rows are COPYed back into the emptied case table (same
indexes: the database's own floor; the ratio target is checked against this). Targets: >= 0.3x
COPY's rate, 1,000,000 rows < 60 s, peak < 500 MB.
Figures are printed and written to bench/results/import_speed.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
SCRATCH_DB = "bench_import"
POOL = 20_000  # distinct generated merchants, cycled under unique ids
COLUMNS = ["id", "text", "label", "business_name", "website", "mcc", "country"]
RESULT = ROOT / "bench" / "results" / "import_speed.json"
TARGETS = {"copy_ratio": 0.3, "seconds_1m": 60.0, "peak_mb": 500.0}


def write_csv(path: Path, rows: int) -> None:
    from labeling.synthetic import iter_records

    pool = [
        (r.description, r.given_label, r.business_name, r.website, r.mcc, r.country)
        for r in iter_records(min(rows, POOL), seed=1, noise=0.2)
    ]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for i in range(rows):
            writer.writerow((f"B{i:08d}", *pool[i % len(pool)]))


def admin_sql(*statements: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def plain_copy(path: Path) -> float:
    """Seconds for the server to COPY the CSV into a bare table of text columns."""
    import psycopg

    with psycopg.connect(f"{SERVER}/{SCRATCH_DB}") as conn:
        conn.execute("DROP TABLE IF EXISTS bench_plain")
        conn.execute(f"CREATE TABLE bench_plain ({', '.join(c + ' text' for c in COLUMNS)})")
        conn.commit()
        started = time.perf_counter()
        sql = "COPY bench_plain FROM STDIN (FORMAT csv, HEADER true)"
        with conn.cursor() as cur, open(path, "rb") as f, cur.copy(sql) as copy:
            while block := f.read(1 << 20):
                copy.write(block)
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE bench_plain")
        conn.commit()
    return seconds


def plain_copy_cases(tmp: Path) -> float:
    """Seconds to COPY the imported case rows, exported as they are, back into the emptied
    case table (same table, same indexes, no Python per row): the database's own floor."""
    import psycopg

    dump = tmp / "cases.copy"
    cols = "project_id, external_id, text, metadata, given_label_id, split, content_hash, "
    cols += "imported_at, updated_at"
    with psycopg.connect(f"{SERVER}/{SCRATCH_DB}") as conn:
        sql = f"COPY (SELECT {cols} FROM labeling_case) TO STDOUT"
        with conn.cursor() as cur, open(dump, "wb") as f, cur.copy(sql) as copy:
            for block in copy:
                f.write(block)
        conn.execute("TRUNCATE labeling_case CASCADE")
        conn.commit()
        started = time.perf_counter()
        sql = f"COPY labeling_case ({cols}) FROM STDIN"
        with conn.cursor() as cur, open(dump, "rb") as f, cur.copy(sql) as copy:
            while block := f.read(1 << 20):
                copy.write(block)
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("TRUNCATE labeling_case CASCADE")
        conn.commit()
    dump.unlink()
    return seconds


def child(path: Path, slug: str) -> None:
    """Runs in the scratch database: a project with the taxonomy's classes, then the import."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
    import django

    django.setup()
    from labeling.models import LabelClass, Project
    from labeling.services.imports import case_import
    from labeling.synthetic import label_class_specs

    project = Project.objects.create(slug=slug, name=slug)
    LabelClass.objects.bulk_create(
        LabelClass(project=project, name=s["name"], tier=s["tier"], shortcut_key=s["shortcut_key"])
        for s in label_class_specs()
    )
    started = time.perf_counter()
    report = case_import(project=project, path=path)
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"ok": report.ok, "created": report.created, "seconds": seconds, "peak_kb": peak_kb}
    print(json.dumps(out))


def run_import(path: Path, slug: str) -> dict:
    env = {**os.environ, "DATABASE_URL": f"{SERVER}/{SCRATCH_DB}", "CONN_MAX_AGE": "0"}
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(path), slug],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", nargs=2, metavar=("FILE", "SLUG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1])
        return
    admin_sql(f"DROP DATABASE IF EXISTS {SCRATCH_DB}", f"CREATE DATABASE {SCRATCH_DB}")
    results = []
    try:
        env = {**os.environ, "DATABASE_URL": f"{SERVER}/{SCRATCH_DB}"}
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
            env=env,
            cwd=ROOT,
            check=True,
        )
        with tempfile.TemporaryDirectory() as tmp:
            for rows in args.rows:
                path = Path(tmp) / f"merchants-{rows}.csv"
                write_csv(path, rows)
                size_mb = path.stat().st_size / 1e6
                imported = run_import(path, slug=f"bench-{rows}")
                assert imported["ok"] and imported["created"] == rows, imported
                cases_seconds = plain_copy_cases(Path(tmp))
                copy_seconds = plain_copy(path)
                rate = rows / imported["seconds"]
                copy_rate = rows / cases_seconds
                result = {
                    "rows": rows,
                    "file_mb": round(size_mb, 1),
                    "import_seconds": round(imported["seconds"], 2),
                    "import_rows_per_second": round(rate),
                    "copy_seconds": round(cases_seconds, 2),
                    "copy_rows_per_second": round(copy_rate),
                    "ratio_to_copy": round(rate / copy_rate, 3),
                    "raw_csv_copy_seconds": round(copy_seconds, 2),
                    "ratio_to_raw_csv_copy": round(copy_seconds / imported["seconds"], 3),
                    "peak_rss_mb": round(imported["peak_kb"] / 1024, 1),
                }
                results.append(result)
                print(
                    f"{rows:>9,} rows ({size_mb:.0f} MB): import {result['import_seconds']} s "
                    f"({rate:,.0f} rows/s, peak {result['peak_rss_mb']} MB); plain COPY of the "
                    f"case rows {result['copy_seconds']} s ({copy_rate:,.0f} rows/s), ratio "
                    f"{result['ratio_to_copy']}; raw CSV COPY into a bare table "
                    f"{result['raw_csv_copy_seconds']} s, ratio {result['ratio_to_raw_csv_copy']}",
                    flush=True,
                )
                path.unlink()
    finally:
        admin_sql(f"DROP DATABASE IF EXISTS {SCRATCH_DB}")
    checks = {
        "ratio_at_least_0.3": all(r["ratio_to_copy"] >= TARGETS["copy_ratio"] for r in results),
        "peak_under_500_mb": all(r["peak_rss_mb"] < TARGETS["peak_mb"] for r in results),
    }
    million = [r for r in results if r["rows"] >= 1_000_000]
    if million:
        checks["1m_under_60_s"] = all(r["import_seconds"] < TARGETS["seconds_1m"] for r in million)
    for name, ok in checks.items():
        print(f"{name}: {'pass' if ok else 'FAIL'}")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(
        json.dumps(
            {
                "benchmark": "import_speed",
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                "targets": TARGETS,
                "results": results,
                "checks": checks,
                "comparison": "Label Studio: 347 s and 2.6 GiB for 1,000,000 tasks",
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
