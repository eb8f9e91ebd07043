"""Accuracy and wall time of mpi and Splink 5 on FEBRL3 (dedup) and FEBRL4 (link-only).

    python -m benchmarks.accuracy_febrl [--engines mpi,splink] [--repeat 3] [--threads 2]
        [--mpi-rules matching_rules/linkage.toml|default]

Both engines run as subprocesses on the same clean copies of the FEBRL files, with
``soc_sec_id`` withheld (see ``benchmarks/febrl.py``), and each trains its own model
without labels. For each engine and task the script reports:

* pairwise precision / recall / F1 of the pairs the engine decided to **link**
  (mpi: decision ``link``, review pairs excluded; Splink: match probability >= 0.5);
  mpi runs with ``--rules matching_rules/linkage.toml``, its profile for research-style
  linkage (``--mpi-rules default`` runs the MPI model instead);
* pairwise F1 of the pairs implied by its clusters, and B-cubed F1;
* median wall time over ``--repeat`` runs (interpreter start-up, training, scoring,
  clustering and writing included) and peak RSS, from ``/usr/bin/time -v``;
* ratios: Splink wall time / mpi wall time (above 1 means mpi is faster) and the F1 gap.

A markdown table goes to stdout and everything to ``benchmarks/.work/accuracy_febrl.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from benchmarks.febrl import MPI_COLUMN_MAP, FebrlTask, prepare_febrl
from benchmarks.metrics import (
    bcubed_scores,
    cluster_pair_scores,
    load_truth,
    pair_scores,
    read_clusters,
    read_pairs,
)
from benchmarks.paths import PROJECT_ROOT, WORK_DIR, mpi_executable
from benchmarks.reporting import machine_info, markdown_table, package_versions, ratio, write_json
from benchmarks.timing import TimedRun, log_tail, run_timed

ENGINES = ("mpi", "splink")
SWEEP_THRESHOLDS = (0.2, 0.5, 0.8, 0.9, 0.99)
RESULT_PATH = WORK_DIR / "accuracy_febrl.json"
# FEBRL is research-style linkage without households: mpi's profile for it (see its header).
LINKAGE_RULES = PROJECT_ROOT / "matching_rules" / "linkage.toml"


def mpi_command(task: FebrlTask, out: Path, rules: Path | None) -> list[str]:
    mapping = [arg for source, target in MPI_COLUMN_MAP.items() for arg in ("--map", f"{source}={target}")]
    link_only = ["--link-only"] if task.link_only else []
    rules_option = ["--rules", str(rules)] if rules is not None else []
    return [
        str(mpi_executable()),
        "dedup",
        *map(str, task.inputs),
        "--out",
        str(out),
        *link_only,
        *rules_option,
        *mapping,
        "--quiet",
    ]


def splink_command(task: FebrlTask, out: Path, threads: int) -> list[str]:
    link_only = ["--link-only"] if task.link_only else []
    return [
        sys.executable,
        "-m",
        "benchmarks.splink_dedup",
        *map(str, task.inputs),
        "--out",
        str(out),
        "--recipe",
        "febrl",
        *link_only,
        "--threads",
        str(threads),
        # Keep sub-threshold pairs so the threshold sweep needs no second run.
        "--pairs-floor",
        str(min(SWEEP_THRESHOLDS)),
    ]


def engine_unavailable(engine: str) -> str | None:
    """Why an engine cannot run here, or None when it can."""
    if engine == "mpi" and not mpi_executable().exists():
        return f"{mpi_executable()} not found: install the project (.venv/bin/pip install -e .)"
    if engine == "splink":
        try:
            import splink  # noqa: F401 - only probing that it is installed
        except ImportError:
            return "splink is not installed: .venv/bin/pip install splink==5.0.0"
    return None


def score_output(out: Path, task: FebrlTask) -> dict[str, Any]:
    """Pair, cluster and B-cubed scores of one engine's output folder, plus a threshold sweep."""
    truth = load_truth(task.truth)
    all_pairs = read_pairs(out / "pairs.csv", decisions=None)
    link_pairs = all_pairs[all_pairs["decision"] == "link"]
    clusters = read_clusters(out / "clusters.csv")
    sweep = {
        str(threshold): pair_scores(
            all_pairs[all_pairs["match_probability"].astype(float) >= threshold], truth, task.link_only
        ).f1
        for threshold in SWEEP_THRESHOLDS
    }
    return {
        "pairs": pair_scores(link_pairs, truth, task.link_only).as_dict(),
        "cluster_pairs": cluster_pair_scores(clusters, truth).as_dict(),
        "bcubed": bcubed_scores(clusters, truth).as_dict(),
        # Only over the pairs the engine wrote: pairs below its own output floor are absent.
        "pair_f1_by_probability_threshold": sweep,
    }


def run_engine(
    engine: str, task: FebrlTask, repeat: int, threads: int, mpi_rules: Path | None
) -> dict[str, Any]:
    reason = engine_unavailable(engine)
    if reason:
        return {"status": "not run", "reason": reason}
    runs: list[TimedRun] = []
    for attempt in range(repeat):
        out = WORK_DIR / "runs" / f"{engine}_{task.name}"
        command = mpi_command(task, out, mpi_rules) if engine == "mpi" else splink_command(task, out, threads)
        run = run_timed(command, WORK_DIR / "logs" / f"{engine}_{task.name}_{attempt}.log", cwd=PROJECT_ROOT)
        runs.append(run)
        if not run.succeeded:
            return {
                "status": "failed",
                "reason": f"exit code {run.returncode}; log {run.log_path}:\n{log_tail(run)}",
                "runs": [r.as_dict() for r in runs],
            }
    walls = [run.wall_seconds for run in runs]
    rss = [run.max_rss_mb for run in runs if run.max_rss_mb is not None]
    cpu = [run.cpu_seconds for run in runs if run.cpu_seconds is not None]
    return {
        "status": "ok",
        "output": str(out),
        "wall_seconds_median": statistics.median(walls),
        "wall_seconds_all": walls,
        # User+system CPU time is far less disturbed than wall time by other work on the machine.
        "cpu_seconds_median": statistics.median(cpu) if cpu else None,
        "max_rss_mb": max(rss) if rss else None,
        "scores": score_output(out, task),
        "runs": [r.as_dict() for r in runs],
    }


def summarise(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    headers = [
        "task",
        "engine",
        "pair P",
        "pair R",
        "pair F1",
        "cluster pair F1",
        "B3 F1",
        "wall s",
        "CPU s",
        "max RSS MB",
    ]
    rows: list[list[object]] = []
    ratio_rows: list[list[object]] = []
    for task_name, by_engine in results.items():
        for engine, result in by_engine.items():
            if result["status"] != "ok":
                rows.append([task_name, engine, result["status"], *([None] * (len(headers) - 3))])
                continue
            scores = result["scores"]
            rows.append(
                [
                    task_name,
                    engine,
                    scores["pairs"]["precision"],
                    scores["pairs"]["recall"],
                    scores["pairs"]["f1"],
                    scores["cluster_pairs"]["f1"],
                    scores["bcubed"]["f1"],
                    result["wall_seconds_median"],
                    result["cpu_seconds_median"],
                    result["max_rss_mb"],
                ]
            )
        mpi, splink = by_engine.get("mpi", {}), by_engine.get("splink", {})
        if mpi.get("status") == "ok" and splink.get("status") == "ok":
            ratio_rows.append(
                [
                    task_name,
                    ratio(splink["wall_seconds_median"], mpi["wall_seconds_median"]),
                    ratio(splink["cpu_seconds_median"], mpi["cpu_seconds_median"]),
                    ratio(splink["max_rss_mb"], mpi["max_rss_mb"]),
                    mpi["scores"]["pairs"]["f1"] - splink["scores"]["pairs"]["f1"],
                    mpi["scores"]["cluster_pairs"]["f1"] - splink["scores"]["cluster_pairs"]["f1"],
                ]
            )
    text = markdown_table(headers, rows)
    if ratio_rows:
        text += "\n\n" + markdown_table(
            [
                "task",
                "Splink/mpi wall",
                "Splink/mpi CPU",
                "Splink/mpi RSS",
                "pair F1 mpi-Splink",
                "cluster F1 mpi-Splink",
            ],
            ratio_rows,
        )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of mpi,splink")
    parser.add_argument("--tasks", default="febrl3,febrl4", help="comma-separated subset of febrl3,febrl4")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per engine and task; wall time is the median"
    )
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads for Splink")
    parser.add_argument(
        "--mpi-rules",
        default=str(LINKAGE_RULES.relative_to(PROJECT_ROOT)),
        help="rules file for mpi dedup, or 'default' for the MPI model (default: the linkage profile)",
    )
    parser.add_argument("--json", type=Path, default=RESULT_PATH)
    args = parser.parse_args()
    # Taken before the run: the load and the code revision the measurement saw.
    machine = machine_info()
    mpi_rules = None if args.mpi_rules == "default" else PROJECT_ROOT / args.mpi_rules
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    engines = [engine for engine in args.engines.split(",") if engine]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engines: {', '.join(sorted(unknown))}")
    tasks = prepare_febrl()
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for task_name in args.tasks.split(","):
        task = tasks[task_name]
        results[task_name] = {
            engine: run_engine(engine, task, args.repeat, args.threads, mpi_rules) for engine in engines
        }
        for engine, result in results[task_name].items():
            if result["status"] != "ok":
                print(f"[{task_name}/{engine}] {result['status']}: {result['reason']}", file=sys.stderr)

    table = summarise(results)
    print(table)
    write_json(
        args.json,
        {
            "benchmark": "accuracy_febrl",
            "machine": machine,
            "versions": package_versions(["mpi", "splink", "duckdb", "pandas", "numpy"]),
            "threads": args.threads,
            "repeat": args.repeat,
            "mpi_rules": str(mpi_rules) if mpi_rules else "default (MPI model)",
            "results": results,
            "table": table,
        },
    )
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
