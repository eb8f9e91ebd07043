"""Full deduplication of one million synthetic rows: mpi against Splink 5 (DuckDB).

    python -m benchmarks.dedup_1m [--rows 1000000] [--seed 7] [--generator auto]
        [--splink-budget 1800] [--mpi-budget 3600] [--threads 2] [--engines mpi,splink]

The rows are generated once (``mpi synth --n 1000000 --seed 7``, or the FEBRL-like
generator when ``mpi synth`` is missing) and reused by later runs. Then, each in its
own process under ``/usr/bin/time -v``:

* ``mpi dedup records.csv --out DIR --quiet`` (training included);
* ``python -m benchmarks.splink_dedup records.csv --recipe synthetic``: Splink's full
  dedupe, i.e. prior, u sampling and EM training, ``predict()``, and connected-component
  clustering at probability 0.5, with DuckDB on ``--threads`` threads.

Reported per engine: wall seconds, CPU seconds (user+system), peak RSS, and against
the truth pairwise F1 of the link decisions, cluster pairwise F1 and B-cubed F1; then
Splink/mpi ratios. An engine that exceeds its time budget is killed and reported as
over budget.
Results: markdown on stdout, JSON in ``benchmarks/.work/dedup_1m.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

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
from benchmarks.synthetic_data import SyntheticDataset, ensure_dataset
from benchmarks.timing import log_tail, run_timed

ENGINES = ("mpi", "splink")
RESULT_PATH = WORK_DIR / "dedup_1m.json"


def engine_command(engine: str, records: Path, out: Path, threads: int) -> list[str]:
    if engine == "mpi":
        return [str(mpi_executable()), "dedup", str(records), "--out", str(out), "--quiet"]
    return [
        sys.executable, "-m", "benchmarks.splink_dedup", str(records), "--out", str(out),
        "--recipe", "synthetic", "--threads", str(threads),
    ]  # fmt: skip


def run_engine(engine: str, dataset: SyntheticDataset, budget: float, threads: int) -> dict[str, Any]:
    if engine == "mpi" and not mpi_executable().exists():
        return {"status": "not run", "reason": f"{mpi_executable()} not found"}
    out = WORK_DIR / "runs" / f"{engine}_dedup_{dataset.generator}_{dataset.rows}"
    for stale in ("pairs.csv", "clusters.csv", "summary.json"):
        (out / stale).unlink(missing_ok=True)
    command = engine_command(engine, dataset.records, out, threads)
    print(f"[{engine}] {' '.join(command)} (budget {budget:.0f} s)", file=sys.stderr)
    run = run_timed(
        command,
        WORK_DIR / "logs" / f"dedup_{engine}_{dataset.rows}.log",
        timeout_seconds=budget,
        cwd=PROJECT_ROOT,
    )
    result: dict[str, Any] = {"process": run.as_dict(), "budget_seconds": budget, "output": str(out)}
    if run.timed_out:
        return {**result, "status": "over budget", "reason": f"killed after {budget:.0f} s"}
    if not run.succeeded:
        return {**result, "status": "failed", "reason": log_tail(run, 25)}
    truth = load_truth(dataset.truth)
    clusters = read_clusters(out / "clusters.csv")
    summary_path = out / "summary.json"
    return {
        **result,
        "status": "ok",
        "wall_seconds": run.wall_seconds,
        "cpu_seconds": run.cpu_seconds,
        "max_rss_mb": run.max_rss_mb,
        "scores": {
            "pairs": pair_scores(read_pairs(out / "pairs.csv"), truth).as_dict(),
            "cluster_pairs": cluster_pair_scores(clusters, truth).as_dict(),
            "bcubed": bcubed_scores(clusters, truth).as_dict(),
        },
        "engine_summary": json.loads(summary_path.read_text()) if summary_path.exists() else None,
    }


def summarise(results: dict[str, dict[str, Any]]) -> str:
    headers = [
        "engine",
        "status",
        "wall s",
        "CPU s",
        "max RSS MB",
        "pair P",
        "pair R",
        "pair F1",
        "cluster pair F1",
        "B3 F1",
    ]
    rows: list[list[object]] = []
    for engine, result in results.items():
        if result["status"] != "ok":
            wall = result.get("process", {}).get("wall_seconds")
            rows.append([engine, result["status"], wall, *([None] * (len(headers) - 3))])
            continue
        scores = result["scores"]
        rows.append([
            engine, "ok", result["wall_seconds"], result["cpu_seconds"], result["max_rss_mb"],
            scores["pairs"]["precision"], scores["pairs"]["recall"], scores["pairs"]["f1"],
            scores["cluster_pairs"]["f1"], scores["bcubed"]["f1"],
        ])  # fmt: skip
    text = markdown_table(headers, rows)
    mpi, splink = results.get("mpi", {}), results.get("splink", {})
    if mpi.get("status") == "ok" and splink.get("status") == "ok":
        text += "\n\n" + markdown_table(
            ["Splink/mpi wall", "Splink/mpi CPU", "Splink/mpi RSS", "cluster F1 mpi-Splink"],
            [[
                ratio(splink["wall_seconds"], mpi["wall_seconds"]),
                ratio(splink["cpu_seconds"], mpi["cpu_seconds"]),
                ratio(splink["max_rss_mb"], mpi["max_rss_mb"]),
                mpi["scores"]["cluster_pairs"]["f1"] - splink["scores"]["cluster_pairs"]["f1"],
            ]],
        )  # fmt: skip
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--generator", choices=["auto", "mpi", "febrl-like"], default="auto")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads for Splink")
    parser.add_argument("--splink-budget", type=float, default=1800.0, help="seconds before Splink is killed")
    parser.add_argument("--mpi-budget", type=float, default=3600.0, help="seconds before mpi is killed")
    parser.add_argument("--json", type=Path, default=RESULT_PATH)
    args = parser.parse_args()
    # Taken before the run: the load and the code revision the measurement saw.
    machine = machine_info()

    dataset = ensure_dataset(args.rows, args.seed, args.generator)
    budgets = {"mpi": args.mpi_budget, "splink": args.splink_budget}
    results: dict[str, dict[str, Any]] = {}
    for engine in [e for e in args.engines.split(",") if e]:
        if engine not in ENGINES:
            parser.error(f"unknown engine {engine!r}")
        results[engine] = run_engine(engine, dataset, budgets[engine], args.threads)
        if results[engine]["status"] != "ok":
            print(f"[{engine}] {results[engine]['status']}: {results[engine]['reason']}", file=sys.stderr)
    table = summarise(results)
    print(table)
    write_json(
        args.json,
        {
            "benchmark": "dedup_1m",
            "machine": machine,
            "versions": package_versions(["mpi", "splink", "duckdb", "pandas", "numpy"]),
            "dataset": {
                "records": str(dataset.records),
                "truth": str(dataset.truth),
                "generator": dataset.generator,
                "rows": dataset.rows,
                "seed": dataset.seed,
                "command": dataset.command,
            },
            "threads": args.threads,
            "results": results,
            "table": table,
        },
    )
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
