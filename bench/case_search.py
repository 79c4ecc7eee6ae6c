"""The case search's first page at 1,000,000 cases on PostgreSQL: each filter alone, words.

A scratch database (default `search_bench` on postgres://postgres@127.0.0.1:5432/, created,
migrated and dropped here) gets, by COPY, N generated merchants (`labeling.synthetic`: business
names, descriptions, metadata, 20 classes, given labels with 20% noise) imported in ten batches
over 180 days, plus RARE_NAMED cases named "Bright Fashion ..."; then what months of use leave:
3% of the cases resolved by people (analysts 80%, consensus 10%, reviewers 8%, adjudicators 2%,
changed in the last 60 days) with their annotations (12 analysts with skewed volumes, one new
analyst with 30 answers; reviewers' decisions by the searching reviewer), the detector's
doubtful marks on 8% of the given labels, a label issue for every labelled pool case (in the
prune set above 0.5), and a champion's prediction for every case. Then VACUUM ANALYZE.

Timed, warm (each value once untimed first): the first page with the default sort (last
change) with no filter, with each filter alone (values cycled: every class, source, analyst,
several score ranges and date windows), for words (a rare and a common one, plus words of
0.1-5% of the cases and an id prefix), and the other two sorts; as the selector alone
(`service`: form parsing and `case_search`) and as the page (`page`: the view through
Django's test client in this process, template included). Baseline in the same run: the
project's plain `count(*)` and its first 50 cases by id. The slowest value of each scenario is
EXPLAIN ANALYZEd into the JSON.

    .venv/bin/python bench/case_search.py [--cases 1000000] [--repeats 40] [--keep-db]

Writes bench/results/case_search.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_PG_DB", "search_bench")
os.environ["DATABASE_URL"] = f"{SERVER}/{DB_NAME}"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

from bench.common import scratch_database_create, scratch_database_drop, write_result  # noqa: E402

TARGET_P95_MS = 50.0
RARE_NAMED = 12  # cases named "Bright Fashion <suffix>": the issue's example
ANALYSTS = 12
RESOLVED_SHARE = 0.03
DOUBTFUL_SHARE = 0.08
REVIEWER = "reviewer"
NEWCOMER = "newcomer"
NEWCOMER_ANSWERS = 30
SOURCES = (("annotation", 0.80), ("consensus", 0.10), ("review", 0.08), ("adjudicated", 0.02))


def _setup() -> None:
    import django

    django.setup()


def _copy(table: str, columns: str, rows: Any) -> int:
    from django.db import connection

    count = 0
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def load(n: int, seed: int = 0) -> dict[str, Any]:
    """Everything the search reads, for `n` generated cases; returns names the scenarios use."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from active_learning.models import LabelIssue, ModelStatus, ModelVersion, Prediction
    from labeling.models import Annotation, Case, LabelClass, ProjectMembership, ResolvedLabel
    from labeling.services.projects import project_create
    from labeling.splits import split_function
    from labeling.synthetic import iter_records, label_class_specs
    from workbench.core.hashing import content_hash

    rng = np.random.default_rng(seed)
    fields = ("name", "display_name", "tier", "description", "guideline", "shortcut_key")
    specs = [{k: spec[k] for k in fields} for spec in label_class_specs()]  # type: ignore[literal-required]
    project = project_create(slug="search", classes=specs)
    classes = dict(LabelClass.objects.filter(project=project).values_list("name", "pk"))
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=name, password="!")
        for name in [REVIEWER, NEWCOMER, *(f"analyst{i:02d}" for i in range(ANALYSTS))]
    )
    reviewer, newcomer, analysts = users[0], users[1], users[2:]
    ProjectMembership.objects.bulk_create(
        ProjectMembership(project=project, user=u, role="reviewer" if u is reviewer else "analyst")
        for u in users
    )
    split = split_function(
        split_seed=project.split_seed, evaluation_fraction=project.evaluation_fraction
    )
    now = timezone.now()
    batches = [now - timedelta(days=180 - 18 * b) for b in range(10)]
    truth = np.empty(n, dtype=np.int64)
    given = np.zeros(n, dtype=np.int64)  # 0: none
    is_eval = np.zeros(n, dtype=bool)
    started = time.perf_counter()

    def case_rows() -> Any:
        for i, record in enumerate(iter_records(n, seed=seed + 1, noise=0.2)):
            text = record.text
            sp = split(record.external_id)
            is_eval[i] = sp == "eval"
            truth[i] = classes[record.true_label]
            given[i] = classes[record.given_label]
            stamp = batches[i * 10 // n]
            yield (
                i + 1,
                project.pk,
                record.external_id,
                text,
                json.dumps(record.metadata()),
                int(given[i]),
                "import",
                sp,
                content_hash(text),
                stamp,
                stamp,
                stamp,
            )

    with transaction.atomic():
        _copy(
            Case._meta.db_table,
            "id, project_id, external_id, text, metadata, given_label_id, given_label_source,"
            " split, content_hash, imported_at, updated_at, changed_at",
            case_rows(),
        )
    # The issue's example: a few cases, anywhere in the table, named "Bright Fashion ...".
    rare = rng.choice(n, size=RARE_NAMED, replace=False) + 1
    suffixes = ["Ltd", "Outlet", "Studio", "Boutique", "Co.", "House"]
    with connection.cursor() as cursor:
        for k, pk in enumerate(rare):
            cursor.execute(
                f"UPDATE {Case._meta.db_table} SET metadata = jsonb_set(metadata, "
                "'{business_name}', to_jsonb(%s::text)) WHERE id = %s",
                [f"Bright Fashion {suffixes[k % len(suffixes)]}", int(pk)],
            )
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{Case._meta.db_table}', 'id'), {n})")
    print(f"  cases: {time.perf_counter() - started:.0f} s", flush=True)

    # People's resolutions (recent), their annotations, the detector's doubtful marks.
    started = time.perf_counter()
    ids = np.arange(1, n + 1)
    resolved_mask = rng.random(n) < RESOLVED_SHARE
    names, weights = zip(*SOURCES, strict=True)
    source = rng.choice(names, size=n, p=np.array(weights))
    changed = now - timedelta(days=60) * rng.random(n)
    label_right = rng.random(n) < 0.9
    resolved_label = np.where(label_right, truth, given)
    pool_labelled = ~is_eval & (given > 0)
    doubtful_given = pool_labelled & ~resolved_mask & (rng.random(n) < DOUBTFUL_SHARE)
    excluded = resolved_mask & np.isin(source, ["review", "adjudicated"]) & (rng.random(n) < 0.05)
    flags = resolved_mask & (source == "annotation") & (rng.random(n) < 0.03)
    retrain = now - timedelta(days=2)

    def resolved_rows() -> Any:
        for i in np.flatnonzero(resolved_mask | doubtful_given):
            if resolved_mask[i]:
                label = None if excluded[i] else int(resolved_label[i])
                yield (
                    int(ids[i]),
                    label,
                    str(source[i]),
                    None,
                    None,
                    bool(flags[i]),
                    bool(excluded[i]),
                    changed[i],
                )
            else:
                yield (int(ids[i]), int(given[i]), "given", None, None, True, False, retrain)

    weights_analysts = 1.0 / np.arange(1, ANALYSTS + 1)
    weights_analysts /= weights_analysts.sum()
    newcomer_cases = set(
        rng.choice(
            np.flatnonzero(resolved_mask & (source == "annotation")),
            NEWCOMER_ANSWERS,
            replace=False,
        ).tolist()
    )

    def annotation_rows() -> Any:
        digest = "0" * 64
        for i in np.flatnonzero(resolved_mask):
            kind = str(source[i])
            if kind in ("review", "adjudicated"):
                people = [(reviewer.pk, "review" if kind == "review" else "adjudication")]
            else:
                first = (
                    newcomer
                    if i in newcomer_cases
                    else analysts[rng.choice(ANALYSTS, p=weights_analysts)]
                )
                people = [(first.pk, "queue")]
                if kind == "consensus":
                    people.append((analysts[rng.integers(ANALYSTS)].pk, "queue"))
            for who, src in people:
                yield (
                    int(ids[i]),
                    who,
                    int(resolved_label[i]),
                    False,
                    "",
                    bool(flags[i]),
                    False,
                    bool(excluded[i]),
                    "",
                    "",
                    "{}",
                    src,
                    uuid.uuid4(),
                    digest,
                    changed[i],
                )

    with transaction.atomic():
        rows = _copy(
            ResolvedLabel._meta.db_table,
            "case_id, label_id, source, confidence, agreement, doubtful, excluded, updated_at",
            resolved_rows(),
        )
        answers = _copy(
            Annotation._meta.db_table,
            "case_id, annotator_id, label_id, skipped, skip_reason, noise_flag, ambiguous,"
            " exclude, exclude_reason, comment, shown, source, submission_id, content_hash,"
            " created_at",
            annotation_rows(),
        )
        with connection.cursor() as cursor:  # a person's change moves the case up
            cursor.execute(
                f"UPDATE {Case._meta.db_table} c SET changed_at = r.updated_at"
                f" FROM {ResolvedLabel._meta.db_table} r"
                " WHERE r.case_id = c.id AND r.source <> 'given'"
            )
    print(
        f"  {rows} resolutions, {answers} annotations: {time.perf_counter() - started:.0f} s",
        flush=True,
    )

    # The detector's label issues (pool cases with a given label) and the champion's scores.
    started = time.perf_counter()
    wrong = given != truth
    score = np.where(wrong, rng.beta(5, 1.5, n), rng.beta(0.5, 6, n))
    version = ModelVersion.objects.create(project=project, number=1, status=ModelStatus.CHAMPION)
    confidence = rng.beta(6, 1.5, n)
    predicted = np.where(rng.random(n) < 0.85, truth, given)

    def issue_rows() -> Any:
        for i in np.flatnonzero(pool_labelled):
            s = float(score[i])
            yield (
                project.pk,
                int(ids[i]),
                int(given[i]),
                int(truth[i]),
                1 - s / 2,
                s,
                1 - s,
                s > 0.5,
                "[]",
                retrain,
            )

    def prediction_rows() -> Any:
        for i in range(n):
            c = float(confidence[i])
            yield (int(ids[i]), version.pk, int(predicted[i]), c, 1 - c, retrain)

    with transaction.atomic():
        issues = _copy(
            LabelIssue._meta.db_table,
            "project_id, case_id, given_label_id, suggested_label_id, suggested_p, score,"
            ' self_confidence, in_prune_set, "group", detected_at',
            issue_rows(),
        )
        predictions = _copy(
            Prediction._meta.db_table,
            "case_id, model_version_id, predicted_label_id, confidence, uncertainty, created_at",
            prediction_rows(),
        )
    print(
        f"  {issues} label issues, {predictions} predictions: "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )
    connection.close()
    _vacuum()
    return {
        "project": project,
        "reviewer": reviewer,
        "analysts": [u.username for u in analysts[:3]] + [NEWCOMER],
        "classes": list(classes),
        "batches": batches,
        "now": now,
        "sizes": {
            "cases": n,
            "resolutions": rows,
            "annotations": answers,
            "label_issues": issues,
            "in_prune_set": int((pool_labelled & (score > 0.5)).sum()),
            "predictions": predictions,
        },
    }


def _vacuum() -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/{DB_NAME}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def scenarios(env: dict[str, Any], words: dict[str, list[str]]) -> list[tuple[str, list[dict]]]:
    """(name, the query strings cycled through) of every measured first page."""
    day = env["now"].date()
    batch = env["batches"][4].date()
    return [
        ("no filter", [{}]),
        ("given label", [{"given": c} for c in env["classes"]]),
        ("resolved label", [{"resolved": c} for c in env["classes"]]),
        ("resolved by", [{"source": s} for s in ("given", *dict(SOURCES))]),
        ("doubtful", [{"doubtful": "on"}]),
        ("label issue", [{"issue": "on"}]),
        (
            "issue score range",
            [{"score_min": "0.9"}, {"score_min": "0.5", "score_max": "0.6"}, {"score_max": "0.02"}],
        ),
        ("split", [{"split": "eval"}, {"split": "pool"}]),
        ("labelled by me", [{"labelled_by": "me"}]),
        ("labelled by an analyst", [{"labelled_by": a} for a in env["analysts"]]),
        (
            "last changed",
            [
                {"changed_from": str(day - timedelta(days=7)), "changed_to": str(day)},
                {"changed_from": str(batch), "changed_to": str(batch)},
                {
                    "changed_from": str(day - timedelta(days=40)),
                    "changed_to": str(day - timedelta(days=30)),
                },
            ],
        ),
        ("words, rare", [{"q": w} for w in words["rare"]]),
        ("words, common", [{"q": w} for w in words["common"]]),
        *[
            (f"words, {band}", [{"q": w} for w in ws])
            for band, ws in words.items()
            if band not in ("rare", "common")
        ],
        ("id prefix", [{"q": "m000123"}, {"q": "M0004"}, {"q": "m00"}]),
        ("sort: issue score", [{"sort": "issue"}]),
        ("sort: model confidence", [{"sort": "confidence"}]),
    ]


def word_bands(project: Any, n: int) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Words by how many cases hold them (counted here through the full-text index)."""
    from django.contrib.postgres.search import SearchQuery

    from labeling.models import Case
    from labeling.selectors_search import search_vector

    wanted = {
        "rare": ["Bright Fashion", "mapleescapes", "metrofarms"],
        "common": ["customers", "business"],
        "0.1%": ["knife", "blade"],
        "0.5%": ["winnings", "baccarat"],
        "1%": ["domain", "backup"],
        "5%": ["volume", "local"],
    }
    counts = {}
    for words in wanted.values():
        for word in words:
            counts[word] = (
                Case.objects.filter(project=project)
                .alias(d=search_vector())
                .filter(d=SearchQuery(word, config="english", search_type="websearch"))
                .count()
            )
    return wanted, counts


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def measure(env: dict[str, Any], params_list: list[dict], repeats: int) -> dict[str, Any]:
    """Service and page times (ms) of the first page, cycling through `params_list`."""
    from django.test import Client
    from django.urls import reverse

    from labeling.forms import CaseSearchForm
    from labeling.selectors_search import SearchFilters, case_search, case_search_choices

    project, reviewer = env["project"], env["reviewer"]
    client = env.setdefault("client", Client())
    if not env.get("logged_in"):
        client.force_login(reviewer)
        env["logged_in"] = True
    url = reverse("labeling:case_search", args=[project.slug])

    def service(params: dict) -> int:
        """What the view does besides the page around it: the form and the selector."""
        choices = case_search_choices(project=project)
        form = CaseSearchForm(
            params or None, classes=choices.classes, analysts=choices.people, user=reviewer
        )
        assert not form.is_bound or form.is_valid(), form.errors
        filters = form.filters() if form.is_bound else SearchFilters()
        classes = {c.pk: c for c in choices.classes}
        return len(case_search(project=project, filters=filters, classes=classes).rows)

    def page(params: dict, **headers: str) -> int:
        response = client.get(url, params, **headers)
        assert response.status_code == 200, response.status_code
        return response.content.count(b"<tr")

    for params in params_list:  # warm: plans, caches, connection
        service(params)
        page(params)
    times: dict[str, list[float]] = {"service": [], "page": [], "swap": []}
    per_value: dict[str, list[float]] = {}
    rows = {}
    for k in range(repeats):
        params = params_list[k % len(params_list)]
        t0 = time.perf_counter()
        rows[str(params)] = service(params)
        t1 = time.perf_counter()
        page(params)
        t2 = time.perf_counter()
        page(params, HTTP_HX_REQUEST="true")
        t3 = time.perf_counter()
        times["service"].append(1000 * (t1 - t0))
        times["page"].append(1000 * (t2 - t1))
        times["swap"].append(1000 * (t3 - t2))
        per_value.setdefault(str(params), []).append(1000 * (t2 - t1))
    slowest = max(per_value, key=lambda key: statistics.median(per_value[key]))
    by_key = {str(p): p for p in params_list}
    out: dict[str, Any] = {"values": len(params_list)}
    for name, values in times.items():
        out[f"{name}_ms"] = {
            "p50": _percentile(values, 50),
            "p95": _percentile(values, 95),
            "max": max(values),
        }
    out["rows_first_page"] = rows
    out["slowest_value"] = by_key[slowest]
    out["slowest_page_median_ms"] = statistics.median(per_value[slowest])
    return out


def explain(env: dict[str, Any], params: dict) -> list[str]:
    """EXPLAIN ANALYZE of the page's key query (the sorted ids) for `params`."""
    from django.db import connection

    from labeling.forms import CaseSearchForm
    from labeling.selectors_search import SearchFilters, case_search, case_search_choices

    project, reviewer = env["project"], env["reviewer"]
    choices = case_search_choices(project=project)
    form = CaseSearchForm(
        params or None, classes=choices.classes, analysts=choices.people, user=reviewer
    )
    filters = form.filters() if form.is_bound and form.is_valid() else SearchFilters()
    captured: list[tuple[str, Any]] = []

    def capture(execute: Any, sql: str, sql_params: Any, many: bool, context: Any) -> Any:
        captured.append((sql, sql_params))
        return execute(sql, sql_params, many, context)

    with connection.execute_wrapper(capture):
        case_search(project=project, filters=filters)
    keyed = [q for q in captured if "ORDER BY" in q[0] and "LIMIT 51" in q[0]]
    sql_text, sql_params = keyed[0] if keyed else captured[-1]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql_text}", sql_params)
        return [r[0] for r in cursor.fetchall()]


def baselines(env: dict[str, Any], repeats: int) -> dict[str, Any]:
    from labeling.models import Case

    project = env["project"]
    out = {}
    for name, run in (
        ("count(*) of the project's cases", lambda: Case.objects.filter(project=project).count()),
        (
            "first 50 cases by id",
            lambda: list(Case.objects.filter(project=project).order_by("-id")[:50]),
        ),
    ):
        run()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run()
            times.append(1000 * (time.perf_counter() - t0))
        out[name] = {"p50": _percentile(times, 50), "p95": _percentile(times, 95)}
    return out


CONFIDENCE_INDEX = (
    "CREATE INDEX CONCURRENTLY bench_prediction_confidence"
    " ON active_learning_prediction (model_version_id, confidence, case_id)"
)


def with_confidence_index(env: dict[str, Any], repeats: int) -> dict[str, Any]:
    """The confidence sort again with what would serve it: an index over every prediction row
    (the product keeps only a partial one, over rows with top-k). Its build time stands for
    what each scoring's million new rows would pay to maintain it."""
    import psycopg

    with psycopg.connect(f"{SERVER}/{DB_NAME}", autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute(CONFIDENCE_INDEX)
        conn.execute("ANALYZE active_learning_prediction")
        build = time.perf_counter() - started
    result = measure(env, [{"sort": "confidence"}], repeats)
    with psycopg.connect(f"{SERVER}/{DB_NAME}", autocommit=True) as conn:
        conn.execute("DROP INDEX CONCURRENTLY bench_prediction_confidence")
    return {
        "index": CONFIDENCE_INDEX,
        "build_seconds": round(build, 1),
        "service_ms": result["service_ms"],
        "page_ms": result["page_ms"],
        "swap_ms": result["swap_ms"],
    }


def run(n: int, repeats: int) -> dict[str, Any]:
    started = time.perf_counter()
    env = load(n)
    load_seconds = time.perf_counter() - started
    print(f"loaded {n:,} cases in {load_seconds:.0f} s", flush=True)
    words, counts = word_bands(env["project"], n)
    print(f"word counts {counts}", flush=True)
    base = baselines(env, repeats)
    print(f"baselines {base}", flush=True)
    results = {}
    for name, params_list in scenarios(env, words):
        result = measure(env, params_list, repeats)
        result["plan_of_slowest"] = explain(env, result["slowest_value"])
        results[name] = result
        s, p, w = result["service_ms"], result["page_ms"], result["swap_ms"]
        mark = "" if p["p95"] < TARGET_P95_MS else "  <-- over target"
        print(
            f"{name:26s} p50/p95 ms: service {s['p50']:5.1f} {s['p95']:6.1f} | "
            f"page {p['p50']:5.1f} {p['p95']:6.1f} | swap {w['p50']:5.1f} {w['p95']:6.1f}{mark}",
            flush=True,
        )
    confidence_index = with_confidence_index(env, repeats)
    print(f"with a full confidence index: {confidence_index}", flush=True)
    return {
        "cases": n,
        "repeats": repeats,
        "target_page_p95_ms": TARGET_P95_MS,
        "load_seconds": round(load_seconds, 1),
        "sizes": env["sizes"],
        "word_counts": counts,
        "baselines_ms": base,
        "scenarios": results,
        "confidence_sort_with_full_index": confidence_index,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    scratch_database_create(SERVER, DB_NAME)
    _setup()
    try:
        result = run(args.cases, args.repeats)
    finally:
        if not args.keep_db:
            scratch_database_drop(SERVER, DB_NAME)
    path = write_result("case_search", result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
