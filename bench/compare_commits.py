"""Two versions of the code measured in one run on this machine: queue and pipeline side by side.

Each side (`--base`, `--new`: a git ref, checked out with `git worktree add --detach` into a
temporary folder, or WORKTREE for this working tree as it is) runs its OWN bench/queue_latency.py
and bench/pipeline.py with this project's interpreter, cwd and PYTHONPATH set to its tree, and its
own scratch database, data, var and results folders. Rounds alternate base, new, base, new...,
each run starting once the 1-minute load is down to 1.5 (waiting up to `--settle` s).
Prints each queue scenario's p50/p95/p99 (ms) and each pipeline step's seconds per side with the
new/base ratio (medians when `--rounds` > 1), and PASS/FAIL for the refactor's limits: queue
"20 analysts, 3-5 s per case" p95 new <= 1.05x base and < 20 ms; pipeline score + prune + refresh
new <= 1.10x base. First each benchmark runs once, untimed, at 2,000 cases on each side
(`--preflight 0`: not), so a side whose script no longer fits its schema fails in minutes.
Writes bench/results/compare_commits.json and .png. Exit status 1 if a check fails, 2 if a
benchmark fails.

    .venv/bin/python bench/compare_commits.py [--base 7346915] [--new WORKTREE] [--bench both]
    .venv/bin/python bench/compare_commits.py --bench queue --sizes 1000000 --duration 60
    .venv/bin/python bench/compare_commits.py --new 7346915 --sizes 10000 --duration 10  # A/A
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import DATASET_DIR, new_figure, save_figure, write_result  # noqa: E402

DEFAULT_BASE = "7346915"  # the last commit before the workbench/core refactor
WORKTREE = "WORKTREE"
PYTHON = ROOT / ".venv" / "bin" / "python"
SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
SCRIPTS = {"queue": "queue_latency", "pipeline": "pipeline"}
TARGET_SCENARIO = "20 analysts, 3-5 s per case"
QUEUE_MAX_RATIO, QUEUE_MAX_P95_MS = 1.05, 20.0
PIPELINE_MAX_RATIO = 1.10
PIPELINE_TARGET_STEPS = ("score_pool", "predictions_prune", "refresh_queue")
# Parts of bench/pipeline.py that score + prune + refresh does not need: 10 retrain cycles at
# 100k, the Celery embed workers, the Banking77 cache. Passed only if both sides' scripts take
# them (matrix_sync, find_label_issues and train_model always run: scoring needs a model).
PIPELINE_SKIPS = ("--skip-retrains", "--skip-workers", "--skip-cache")
PREFLIGHT_DURATION = 5.0  # queue: seconds per scenario of the untimed first run
NOISY_LOAD = 1.5  # 1-minute load average above which a run is flagged as disturbed (2 cores)
# Identity of the code a subprocess imports: each must come from the side's own tree.
PROBE = (
    "import json, bench.common, labeling, active_learning, workbench; print(json.dumps("
    "{m.__name__: m.__file__ for m in (bench.common, labeling, active_learning, workbench)}))"
)


@dataclass
class Side:
    """One version of the code: where it is checked out and what its runs measured."""

    label: str  # "base" or "new"
    ref: str
    commit: str  # the resolved commit (HEAD's for WORKTREE)
    tree: Path
    scratch: Path  # results, var and pipeline data folders of this side's runs
    temporary: bool  # a `git worktree` made here (False: this working tree as it is)
    uncommitted: list[str] = field(default_factory=list)
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def describe(self) -> str:
        what = f"{self.ref} = {self.commit[:10]}"
        if self.ref == WORKTREE:
            what = f"WORKTREE: HEAD {self.commit[:10]} + {len(self.uncommitted)} uncommitted paths"
        return f"{self.label:4s} {what}  ({self.tree})"


# --- git and the sides -----------------------------------------------------------------------


def _git(*args: str) -> str:
    """A read-only git command on this repository (no optional index refresh)."""
    return subprocess.run(
        ["git", "--no-optional-locks", "-C", str(ROOT), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def side_prepare(label: str, ref: str, tmp: Path) -> Side:
    scratch = tmp / label
    scratch.mkdir()
    if ref == WORKTREE:
        uncommitted = _git("status", "--porcelain").splitlines()
        return Side(label, ref, _git("rev-parse", "HEAD"), ROOT, scratch, False, uncommitted)
    try:
        commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    except subprocess.CalledProcessError:
        raise SystemExit(f"not a commit here: {ref!r}") from None
    tree = tmp / f"{label}-tree"
    _git("worktree", "add", "--detach", str(tree), commit)
    return Side(label, ref, commit, tree, scratch, True)


def side_remove(side: Side) -> None:
    if not side.temporary or not side.tree.exists():
        return
    try:
        _git("worktree", "remove", "--force", str(side.tree))
    except subprocess.CalledProcessError:
        shutil.rmtree(side.tree, ignore_errors=True)
        _git("worktree", "prune")


def side_env(side: Side, bench: str) -> dict[str, str]:
    """The environment of a side's run: its tree first on the path, its own DB and folders."""
    env = dict(os.environ)
    for name in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "WORKBENCH_DATA_DIR"):
        env.pop(name, None)
    env.update(
        PYTHONPATH=str(side.tree),
        BENCH_PG_DB=f"bench_cmp_{side.label}_{bench}",
        BENCH_DATA_DIR=str(side.scratch / "pipeline_data"),
        BENCH_RESULTS_DIR=str(side.scratch / "results"),
        WORKBENCH_VAR_DIR=str(side.scratch / "var"),  # secret key, filesystem broker, data
        BANKING77_DIR=str(DATASET_DIR),
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def side_check_imports(side: Side) -> dict[str, str]:
    """Import the packages as a side's run would; fail unless all come from its own tree."""
    out = subprocess.run(
        [str(PYTHON), "-c", PROBE],
        cwd=side.tree,
        env=side_env(side, "probe"),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    files = json.loads(out.strip().splitlines()[-1])
    tree = side.tree.resolve()
    for module, path in files.items():
        if not Path(path).resolve().is_relative_to(tree):
            raise SystemExit(f"{side.label}: {module} imports from {path}, not from {tree}")
    return files


def script_flags(side: Side, bench: str) -> set[str]:
    """The options a side's benchmark script accepts (from its --help)."""
    script = side.tree / "bench" / f"{SCRIPTS[bench]}.py"
    out = subprocess.run(
        [str(PYTHON), str(script), "--help"],
        cwd=side.tree,
        env=side_env(side, bench),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(re.findall(r"(?<![\w-])--[a-z][\w-]*", out))


def common_flags(bench: str, sides: list[Side]) -> set[str]:
    """The options every side's script takes; fails if one lacks --sizes (or --duration)."""
    flags = set.intersection(*(script_flags(side, bench) for side in sides))
    needed = ["--sizes"] + (["--duration"] if bench == "queue" else [])
    missing = [flag for flag in needed if flag not in flags]
    if missing:
        raise SystemExit(f"bench/{SCRIPTS[bench]}.py lacks {missing} on one side")
    return flags


def bench_arguments(bench: str, flags: set[str], sizes: list[int], duration: float) -> list[str]:
    """The same arguments for both sides: only options that every side's script takes."""
    argv = ["--sizes", *map(str, sizes)]
    if bench == "queue":
        return [*argv, "--duration", str(duration)]
    return argv + [flag for flag in PIPELINE_SKIPS if flag in flags]


# --- running ---------------------------------------------------------------------------------


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


def _child_signals() -> None:
    # Started in the background, this process may ignore SIGINT, and the child would inherit that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _call(command: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Run a benchmark in its own session; on Ctrl-C give it one SIGINT to drop its database."""
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, start_new_session=True, preexec_fn=_child_signals
    )
    try:
        return proc.wait()
    except BaseException:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", f"{SERVER}/postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql],
        check=True,
        capture_output=True,
    )


def load_report(what: str) -> list[float]:
    """Print `uptime` before a run; warn when the machine is busy. Returns the load averages."""
    try:
        uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        uptime = ""
    load = [round(x, 2) for x in os.getloadavg()]
    print(f"\n=== {what}\n    {uptime or f'load average: {load}'}", flush=True)
    if load[0] > NOISY_LOAD:
        print(
            f"    WARNING: 1-minute load {load[0]:.2f} > {NOISY_LOAD}: other work is running, "
            "this run's figures are inflated (compare runs made on a quiet machine)",
            flush=True,
        )
    return load


def settle(limit: float) -> float:
    """Wait up to `limit` s for the 1-minute load to fall to NOISY_LOAD; returns the wait.

    The previous run's own load (PostgreSQL and 20 analyst threads on 2 cores) takes 30-60 s to
    decay from the 1-minute average; without the wait every run but the first starts "busy".
    """
    t0 = time.monotonic()
    while os.getloadavg()[0] > NOISY_LOAD and time.monotonic() - t0 < limit:
        time.sleep(5)
    return round(time.monotonic() - t0, 1)


def _share_embedding_cache(side: Side, sides: list[Side]) -> None:
    """Copy cached base vectors (named by model and content hash) the side's tree lacks."""
    target = side.tree / "bench" / "results" / ".cache"
    sources = {ROOT, *(s.tree for s in sides)} - {side.tree}
    for source in sources:
        for path in (source / "bench" / "results" / ".cache").glob("*.npy"):
            if not path.name.endswith(".tmp.npy") and not (target / path.name).exists():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / path.name)


def _honours_results_dir(tree: Path) -> bool:
    return "BENCH_RESULTS_DIR" in (tree / "bench" / "common.py").read_text(encoding="utf-8")


def run_once(
    side: Side, bench: str, argv: list[str], round_no: int, sides: list[Side], settle_s: float
) -> dict[str, Any]:
    """One benchmark run of one side; returns its figures with the load at its start."""
    name = SCRIPTS[bench]
    results = side.scratch / "results"
    results.mkdir(exist_ok=True)
    fresh = results / f"{name}.json"
    fresh.unlink(missing_ok=True)
    # An older bench/common.py ignores BENCH_RESULTS_DIR and writes into its tree's bench/results:
    # separate for a git worktree; for this working tree its files are put back afterwards.
    legacy = not _honours_results_dir(side.tree)
    own = side.tree / "bench" / "results"
    backup = side.scratch / "backup"
    if legacy and not side.temporary:
        backup.mkdir(exist_ok=True)
        for suffix in (".json", ".png"):
            if (own / f"{name}{suffix}").exists():
                shutil.copy2(own / f"{name}{suffix}", backup / f"{name}{suffix}")
    if bench == "pipeline":
        _share_embedding_cache(side, sides)
    env = side_env(side, bench)
    command = [str(PYTHON), str(side.tree / "bench" / f"{name}.py"), *argv]
    when = f"round {round_no}" if round_no else "preflight (not counted)"
    waited = settle(settle_s) if round_no else 0.0
    load = load_report(f"{when}, {bench}, {side.describe()} (waited {waited:.0f} s for load)")
    print(f"    {' '.join(command)}", flush=True)
    started, wall = time.strftime("%Y-%m-%dT%H:%M:%S"), time.time()
    t0 = time.perf_counter()
    try:
        code = _call(command, side.tree, env)
    finally:
        if legacy:
            produced = own / f"{name}.json"
            if produced.exists() and produced.stat().st_mtime >= wall - 1:
                shutil.copy2(produced, fresh)
            for saved in backup.glob(f"{name}.*"):
                shutil.copy2(saved, own / saved.name)
        _psql(f"DROP DATABASE IF EXISTS {env['BENCH_PG_DB']} WITH (FORCE)")  # if interrupted
    seconds = round(time.perf_counter() - t0, 1)
    if code != 0:
        raise RuntimeError(f"{side.label}: bench/{name}.py exited with {code}")
    if not fresh.exists():
        raise RuntimeError(f"{side.label}: bench/{name}.py wrote no {name}.json")
    print(f"    {side.label} {bench} done in {seconds:.0f} s", flush=True)
    return {
        "round": round_no,
        "started": started,
        "load_average_at_start": load,
        "waited_for_load_s": waited,
        "seconds": seconds,
        "command": command[1:],
        "result": json.loads(fresh.read_text(encoding="utf-8")),
    }


# --- figures ---------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return round(float(statistics.median(values)), 3)


def _ratio(new: float, base: float) -> float | None:
    return round(new / base, 3) if base else None


def summarize_queue(base: list[dict], new: list[dict]) -> dict[str, Any]:
    """Per size and scenario: median p50/p95/p99 of each side's rounds, and p95 new/base."""
    out: dict[str, Any] = {}
    for size, block in base[0]["result"]["results"].items():
        if size not in new[0]["result"]["results"]:
            continue
        rows: dict[str, Any] = {}
        for scenario in block["scenarios"]:
            row: dict[str, Any] = {}
            for label, runs in (("base", base), ("new", new)):
                figures = [r["result"]["results"][size]["scenarios"].get(scenario) for r in runs]
                if None in figures:
                    break
                row[label] = {
                    **{k: _median([f[k] for f in figures]) for k in ("p50_ms", "p95_ms", "p99_ms")},
                    "p95_ms_per_round": [f["p95_ms"] for f in figures],
                    "operations": sum(f["operations"] for f in figures),
                    "duplicate_claims": max(f["duplicate_claims"] for f in figures),
                    "double_labels": max(f["double_labels"] for f in figures),
                }
            else:
                row["p95_ratio"] = _ratio(row["new"]["p95_ms"], row["base"]["p95_ms"])
                rows[scenario] = row
        out[size] = rows
    return out


def _steps_total(block: dict[str, Any]) -> float:
    return float(sum(block["steps"][s]["seconds"] for s in PIPELINE_TARGET_STEPS))


def summarize_pipeline(base: list[dict], new: list[dict]) -> dict[str, Any]:
    """Per size and step: median seconds of each side's rounds, the ratio, and the target total."""
    out: dict[str, Any] = {}
    for size_block in base[0]["result"]["sizes"]:
        n = size_block["cases"]
        per_side = {
            label: [next(b for b in r["result"]["sizes"] if b["cases"] == n) for r in runs]
            for label, runs in (("base", base), ("new", new))
        }
        steps = [s for s in size_block["steps"] if s in per_side["new"][0]["steps"]]
        rows: dict[str, Any] = {}
        for step in steps:
            row = {
                label: _median([b["steps"][step]["seconds"] for b in blocks])
                for label, blocks in per_side.items()
            }
            rows[step] = {**row, "ratio": _ratio(row["new"], row["base"])}
        total = {
            label: _median([_steps_total(b) for b in blocks]) for label, blocks in per_side.items()
        }
        rows["score + prune + refresh"] = {**total, "ratio": _ratio(total["new"], total["base"])}
        out[str(n)] = rows
    return out


def checks_make(summary: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    for size, rows in summary.get("queue", {}).items():
        row = rows.get(TARGET_SCENARIO)
        if row is not None:
            base, new = row["base"]["p95_ms"], row["new"]["p95_ms"]
            checks.append(
                {
                    "check": f"queue {int(size):,}: '{TARGET_SCENARIO}' p95 new <= "
                    f"{QUEUE_MAX_RATIO} x base and < {QUEUE_MAX_P95_MS:.0f} ms",
                    "base": base,
                    "new": new,
                    "ratio": row["p95_ratio"],
                    "pass": new <= QUEUE_MAX_RATIO * base and new < QUEUE_MAX_P95_MS,
                }
            )
        faults = sum(
            row[label][k]
            for row in rows.values()
            for label in ("base", "new")
            for k in ("duplicate_claims", "double_labels")
        )
        checks.append(
            {
                "check": f"queue {int(size):,}: no duplicate claims, no double labels",
                "base": None,
                "new": None,
                "ratio": None,
                "pass": faults == 0,
            }
        )
    for size, rows in summary.get("pipeline", {}).items():
        row = rows["score + prune + refresh"]
        checks.append(
            {
                "check": f"pipeline {int(size):,}: score + prune + refresh new <= "
                f"{PIPELINE_MAX_RATIO} x base",
                "base": row["base"],
                "new": row["new"],
                "ratio": row["ratio"],
                "pass": row["new"] <= PIPELINE_MAX_RATIO * row["base"],
            }
        )
    return checks


def _fmt_ratio(ratio: float | None) -> str:
    return "   -" if ratio is None else f"{ratio:5.2f}"


def print_tables(summary: dict[str, Any], checks: list[dict[str, Any]], sides: list[Side]) -> None:
    rounds = len(next(iter(sides[0].runs.values())))
    note = f"median of {rounds} rounds" if rounds > 1 else "1 round"
    print("\n" + "\n".join(side.describe() for side in sides))
    for size, rows in summary.get("queue", {}).items():
        print(f"\nQueue service time, {int(size):,} cases (submit + claim next, ms; {note})")
        print(
            f"{'scenario':30s} {'base p50 / p95 / p99':>24s} {'new p50 / p95 / p99':>24s}  p95 new/base"
        )
        for scenario, row in rows.items():
            cells = [
                " / ".join(f"{row[label][k]:.1f}" for k in ("p50_ms", "p95_ms", "p99_ms"))
                for label in ("base", "new")
            ]
            print(f"{scenario:30s} {cells[0]:>24s} {cells[1]:>24s}  {_fmt_ratio(row['p95_ratio'])}")
    for size, rows in summary.get("pipeline", {}).items():
        print(f"\nPipeline steps, {int(size):,} cases (seconds; {note})")
        print(f"{'step':24s} {'base':>9s} {'new':>9s}  new/base")
        for step, row in rows.items():
            print(f"{step:24s} {row['base']:9.2f} {row['new']:9.2f}  {_fmt_ratio(row['ratio'])}")
    print("\nChecks (the issue's limits are stated at 1,000,000 cases)")
    for check in checks:
        figures = ""
        if check["base"] is not None:
            figures = (
                f"  base {check['base']:.2f}, new {check['new']:.2f}, ratio {check['ratio']:.3f}"
            )
        print(f"  {'PASS' if check['pass'] else 'FAIL'}  {check['check']}{figures}")


def plot(summary: dict[str, Any], sides: list[Side]) -> Path:
    panels = [k for k in ("queue", "pipeline") if summary.get(k)]
    fig, axes = new_figure(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
    names = {s.label: f"{s.label} {s.ref if s.ref == WORKTREE else s.commit[:7]}" for s in sides}
    width = 0.38
    for ax, panel in zip(axes[0], panels, strict=True):
        size = max(summary[panel], key=int)  # the largest size measured
        rows = summary[panel][size]
        labels = list(rows)
        if panel == "queue":
            base = [rows[s]["base"]["p95_ms"] for s in labels]
            new = [rows[s]["new"]["p95_ms"] for s in labels]
            ratios = [rows[s]["p95_ratio"] for s in labels]
            ax.axhline(QUEUE_MAX_P95_MS, color="red", ls="--", lw=1, label="20 ms limit")
            ax.set_ylabel("p95 ms (submit + claim next)")
            ax.set_title(f"Queue p95, {int(size):,} cases")
        else:
            base = [rows[s]["base"] for s in labels]
            new = [rows[s]["new"] for s in labels]
            ratios = [rows[s]["ratio"] for s in labels]
            ax.set_ylabel("seconds")
            ax.set_title(f"Pipeline steps, {int(size):,} cases")
        ax.set_yscale("log")  # saturation p95s and the slow steps would dwarf the rest
        x = np.arange(len(labels))
        ax.bar(x - width / 2, base, width, label=names["base"], color="#9aa7b8")
        ax.bar(x + width / 2, new, width, label=names["new"], color="#3b6ea8")
        for xi, top, ratio in zip(x, np.maximum(base, new), ratios, strict=True):
            if ratio is not None:
                ax.annotate(f"{ratio:.2f}x", (xi, top), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(
            x,
            [s.replace(", ", "\n").replace("_", "\n", 1).replace(" + ", "\n+ ") for s in labels],
            fontsize=7,
        )
        ax.legend(fontsize=8)
    return save_figure(fig, "compare_commits")


# --- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=DEFAULT_BASE, help="git ref (default %(default)s)")
    parser.add_argument(
        "--new", default=WORKTREE, help="git ref, or WORKTREE: this working tree as it is"
    )
    parser.add_argument("--bench", choices=("queue", "pipeline", "both"), default="both")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--duration", type=float, default=60.0, help="queue: s per scenario")
    parser.add_argument("--rounds", type=int, default=1, help="base, new, base, new...")
    parser.add_argument(
        "--preflight",
        type=int,
        default=2_000,
        metavar="CASES",
        help="first run each benchmark once untimed at this size (0: no preflight)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help=f"before each run wait up to this long for the 1-minute load to fall to {NOISY_LOAD}",
    )
    parser.add_argument("--keep", action="store_true", help="keep the worktrees and scratch")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    benches = ["queue", "pipeline"] if args.bench == "both" else [args.bench]
    signal.signal(signal.SIGTERM, _interrupt)

    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    sides: list[Side] = []
    try:
        for label, ref in (("base", args.base), ("new", args.new)):
            sides.append(side_prepare(label, ref, tmp))
        imports = {side.label: side_check_imports(side) for side in sides}
        for side in sides:
            print(side.describe())
            for module, file in imports[side.label].items():
                print(f"       {module:16s} {file}")
        flags = {bench: common_flags(bench, sides) for bench in benches}
        commands = {b: bench_arguments(b, flags[b], args.sizes, args.duration) for b in benches}
        if args.preflight:  # a small untimed run of each: breakage shows in minutes, not hours
            for bench in benches:
                argv = bench_arguments(bench, flags[bench], [args.preflight], PREFLIGHT_DURATION)
                for side in sides:
                    run_once(side, bench, argv, 0, sides, 0.0)
        for round_no in range(1, args.rounds + 1):
            for bench in benches:
                for side in sides:
                    run = run_once(side, bench, commands[bench], round_no, sides, args.settle)
                    side.runs.setdefault(bench, []).append(run)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None)
        print(f"\nFAILED: {exc}\n{detail.decode() if isinstance(detail, bytes) else detail or ''}")
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: removing the worktrees and scratch databases", file=sys.stderr)
        return 130
    finally:
        for side in sides:
            if not args.keep:
                side_remove(side)
        if args.keep:
            print(f"\nkept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    base, new = sides
    summary: dict[str, Any] = {}
    if "queue" in benches:
        summary["queue"] = summarize_queue(base.runs["queue"], new.runs["queue"])
    if "pipeline" in benches:
        summary["pipeline"] = summarize_pipeline(base.runs["pipeline"], new.runs["pipeline"])
    checks = checks_make(summary)
    print_tables(summary, checks, sides)
    loads = [r["load_average_at_start"][0] for s in sides for rs in s.runs.values() for r in rs]
    busy = sum(load > NOISY_LOAD for load in loads)
    if busy:
        print(
            f"  NOTE: {busy} of {len(loads)} runs started with a 1-minute load above "
            f"{NOISY_LOAD} (max {max(loads):.2f}): other work shared the machine; re-run quiet"
        )
    total = round(time.perf_counter() - started, 1)
    path = write_result(
        "compare_commits",
        {
            "refs": {
                side.label: {
                    "ref": side.ref,
                    "commit": side.commit,
                    "uncommitted_paths": side.uncommitted,
                }
                for side in sides
            },
            "arguments": {
                "bench": args.bench,
                "sizes": args.sizes,
                "duration": args.duration,
                "rounds": args.rounds,
                "preflight_cases": args.preflight,
                "settle_max_s": args.settle,
                "commands": commands,
            },
            "limits": {
                "queue_scenario": TARGET_SCENARIO,
                "queue_p95_max_ratio": QUEUE_MAX_RATIO,
                "queue_p95_max_ms": QUEUE_MAX_P95_MS,
                "pipeline_steps": PIPELINE_TARGET_STEPS,
                "pipeline_max_ratio": PIPELINE_MAX_RATIO,
            },
            "summary": summary,
            "checks": checks,
            "all_pass": all(c["pass"] for c in checks),
            "runs_started_busy": busy,
            "total_seconds": total,
            "runs": {side.label: side.runs for side in sides},
        },
    )
    print(f"\ntotal {total:.0f} s\nwrote {path} and {plot(summary, sides)}")
    return 0 if all(c["pass"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
