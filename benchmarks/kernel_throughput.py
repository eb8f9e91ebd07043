"""Scoring-kernel throughput: candidate pairs scored per second, mpi against Splink 5 (DuckDB).

    python -m benchmarks.kernel_throughput [--rows 1000000] [--seed 7] [--generator auto]
        [--threads 2] [--repeat 3] [--sides mpi,splink] [--chunk-pairs 2000000]

On one synthetic file (``mpi synth``; the FEBRL-like generator if ``mpi synth`` is
missing), each engine, in its own process:

1. reads the file and trains its model without labels (timed, not part of the rate);
2. generates its candidate pairs with its own blocking rules (timed separately);
3. scores those same pre-generated pairs ``--repeat`` times; the median time gives
   **pairs scored per second**, the headline number.

Splink: ``compute_blocked_pairs_for_predict()`` then ``predict()`` on the cached
blocked pairs, DuckDB with ``--threads`` threads, no probability threshold (every
pair scored and materialised), lean output (ids and scores only).
mpi: ``mpi.matching.engine`` as its docstring prescribes: ``Engine.encode`` on the
standardised frame, ``Engine.train``, ``Engine.candidate_pairs``, then
``Engine.scorer(...)`` whose ``score(left, right)`` runs over the pre-generated pairs
through ``mpi.matching.scoring.score_chunks`` with ``--threads`` workers (as the batch
driver does) in slices of ``--chunk-pairs`` (2,000,000; a single call over every pair of
a million-row file needs the temporaries of all pairs at once and ran out of 24 GB).

The two engines block differently, so the pair counts differ; the rate is per pair.
Results: a markdown table on stdout, JSON in ``benchmarks/.work/kernel_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks.paths import PROJECT_ROOT, WORK_DIR
from benchmarks.reporting import machine_info, markdown_table, package_versions, ratio, write_json
from benchmarks.synthetic_data import ensure_dataset
from benchmarks.timing import log_tail, run_timed

SIDES = ("mpi", "splink")
RESULT_PATH = WORK_DIR / "kernel_throughput.json"


def measure_splink(records: Path, threads: int, repeat: int) -> dict[str, Any]:
    from splink import DuckDBAPI, Linker

    from benchmarks.splink_dedup import connect, load_inputs, prepare_inputs, scalar
    from benchmarks.splink_models import synthetic_recipe, train

    started = time.perf_counter()
    connection = connect(threads)
    (relation,) = prepare_inputs(connection, load_inputs(connection, [records]), "synthetic")
    load_seconds = time.perf_counter() - started

    recipe = synthetic_recipe(relation.columns, "dedupe_only", lean_output=True)
    linker = Linker(DuckDBAPI(connection=connection).register(relation), recipe.settings)
    training = train(linker, recipe)

    started = time.perf_counter()
    blocked = linker.inference.compute_blocked_pairs_for_predict()
    blocking_seconds = time.perf_counter() - started
    pairs = scalar(connection, f"SELECT count(*) FROM {blocked.physical_name}")

    scoring: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        predictions = linker.inference.predict(warning_mode="never")
        scoring.append(time.perf_counter() - started)
        predictions.drop_table_from_database_and_remove_from_cache()
    return {
        "rows": scalar(connection, f"SELECT count(*) FROM {relation.alias}"),
        "candidate_pairs": pairs,
        "load_seconds": load_seconds,
        "train_seconds": training["train_seconds"],
        "blocking_seconds": blocking_seconds,
        "scoring_seconds_all": scoring,
        "threads": threads,
        "notes": "DuckDB; predict() over cached blocked pairs, no threshold, lean output",
    }


def measure_mpi(records: Path, threads: int, repeat: int, chunk_pairs: int) -> dict[str, Any]:
    import numpy as np

    from mpi.batch.io import read_inputs
    from mpi.matching.engine import Engine
    from mpi.matching.scoring import score_chunks
    from mpi.matching.standardise import standardise
    from mpi.rules.loader import load_rules

    started = time.perf_counter()
    table = read_inputs([records], {})
    engine = Engine(load_rules())
    encoded = engine.encode(standardise(table.frame).frame, table.file_index)
    load_seconds = time.perf_counter() - started

    started = time.perf_counter()
    params, _ = engine.train(encoded)
    train_seconds = time.perf_counter() - started

    started = time.perf_counter()
    prepared = engine.prepare_blocking(encoded)
    chunks = list(engine.candidate_pairs(encoded, prepared, chunk_pairs=chunk_pairs))
    left = np.concatenate([chunk[1] for chunk in chunks]) if chunks else np.zeros(0, dtype=np.int64)
    right = np.concatenate([chunk[2] for chunk in chunks]) if chunks else np.zeros(0, dtype=np.int64)
    del chunks
    blocking_seconds = time.perf_counter() - started

    scorer = engine.scorer(encoded, params)
    scoring: list[float] = []
    for _ in range(repeat):
        # Slices of the engine's streaming size on ``threads`` workers, as the batch driver runs:
        # one call over every pair would need the per-comparison temporaries of all pairs at once.
        slices = (
            (begin, left[begin : begin + chunk_pairs], right[begin : begin + chunk_pairs])
            for begin in range(0, left.shape[0], chunk_pairs)
        )
        scored_count = 0
        started = time.perf_counter()
        for _, scored in score_chunks(scorer, slices, workers=threads):
            scored_count += scored.match_weight.shape[0]
        scoring.append(time.perf_counter() - started)
        if scored_count != left.shape[0]:
            raise RuntimeError(f"scored {scored_count} pairs of {left.shape[0]}")
    return {
        "rows": int(encoded.n),
        "candidate_pairs": int(left.shape[0]),
        "load_seconds": load_seconds,
        "train_seconds": train_seconds,
        "blocking_seconds": blocking_seconds,
        "scoring_seconds_all": scoring,
        "chunk_pairs": chunk_pairs,
        "threads": threads,
        "notes": f"mpi.matching.scoring.score_chunks, {threads} workers, slices of {chunk_pairs:,} pairs",
    }


def with_rates(result: dict[str, Any]) -> dict[str, Any]:
    """Add the median scoring time and the pairs-per-second rates."""
    median = statistics.median(result["scoring_seconds_all"])
    pairs = result["candidate_pairs"]
    return {
        **result,
        "scoring_seconds_median": median,
        "pairs_per_second_scoring": ratio(pairs, median),
        "pairs_per_second_blocking_and_scoring": ratio(pairs, result["blocking_seconds"] + median),
    }


def run_side(side: str, records: Path, threads: int, repeat: int, chunk_pairs: int) -> dict[str, Any]:
    """Measure one engine in a fresh process; return its JSON plus wall time and peak RSS."""
    out = WORK_DIR / "kernel" / f"{side}.json"
    out.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "benchmarks.kernel_throughput", "--side", side, "--records", str(records),
        "--threads", str(threads), "--repeat", str(repeat), "--side-json", str(out),
        "--chunk-pairs", str(chunk_pairs),
    ]  # fmt: skip
    run = run_timed(command, WORK_DIR / "logs" / f"kernel_{side}.log", cwd=PROJECT_ROOT)
    if not out.exists():
        return {"status": "failed", "reason": log_tail(run, 25), "process": run.as_dict()}
    result: dict[str, Any] = json.loads(out.read_text())
    result["process"] = run.as_dict()
    return result


def side_main(side: str, records: Path, threads: int, repeat: int, chunk_pairs: int, out: Path) -> None:
    """Child process: measure one side and write its JSON (a failure is recorded, not raised)."""
    try:
        if side == "mpi":
            measured = measure_mpi(records, threads, repeat, chunk_pairs)
        else:
            measured = measure_splink(records, threads, repeat)
        result = {"status": "ok", **with_rates(measured)}
    except ImportError as error:
        result = {"status": "not run", "reason": f"missing: {error}"}
    except Exception as error:
        result = {"status": "failed", "reason": f"{error!r}\n{traceback.format_exc()}"}
    write_json(out, result)


def summarise(results: dict[str, dict[str, Any]]) -> str:
    headers = [
        "engine", "rows", "candidate pairs", "train s", "blocking s", "scoring s (median)",
        "pairs/s scoring", "pairs/s blocking+scoring", "max RSS MB",
    ]  # fmt: skip
    rows: list[list[object]] = []
    for side, result in results.items():
        if result["status"] != "ok":
            rows.append([side, result["status"], *([None] * 7)])
            continue
        rows.append([
            side, result["rows"], result["candidate_pairs"], round(result["train_seconds"], 2),
            round(result["blocking_seconds"], 2), round(result["scoring_seconds_median"], 3),
            int(result["pairs_per_second_scoring"] or 0),
            int(result["pairs_per_second_blocking_and_scoring"] or 0),
            result["process"]["max_rss_mb"],
        ])  # fmt: skip
    text = markdown_table(headers, rows)
    mpi, splink = results.get("mpi", {}), results.get("splink", {})
    if mpi.get("status") == "ok" and splink.get("status") == "ok":
        speedup = ratio(mpi["pairs_per_second_scoring"], splink["pairs_per_second_scoring"])
        text += f"\n\nmpi / Splink scoring rate: {speedup:.2f}x" if speedup else ""
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--generator", choices=["auto", "mpi", "febrl-like"], default="auto")
    parser.add_argument(
        "--threads", type=int, default=2, help="DuckDB threads for Splink, scoring workers for mpi"
    )
    parser.add_argument("--repeat", type=int, default=3, help="scoring repetitions; the median is reported")
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument(
        "--chunk-pairs",
        type=int,
        default=2_000_000,
        help="mpi scores its candidate pairs in slices of this size",
    )
    parser.add_argument("--json", type=Path, default=RESULT_PATH)
    # Internal: run one side in this process (used by the parent for isolation).
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--records", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--side-json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    if args.side:
        if args.records is None or args.side_json is None:
            parser.error("--side needs --records and --side-json")
        side_main(args.side, args.records, args.threads, args.repeat, args.chunk_pairs, args.side_json)
        return

    # Taken before the run: the load and the code revision the measurement saw.
    machine = machine_info()
    dataset = ensure_dataset(args.rows, args.seed, args.generator)
    sides = [side for side in args.sides.split(",") if side]
    results = {
        side: run_side(side, dataset.records, args.threads, args.repeat, args.chunk_pairs) for side in sides
    }
    for side, result in results.items():
        if result["status"] != "ok":
            print(f"[{side}] {result['status']}: {result['reason']}", file=sys.stderr)
    table = summarise(results)
    print(table)
    write_json(
        args.json,
        {
            "benchmark": "kernel_throughput",
            "machine": machine,
            "versions": package_versions(["mpi", "splink", "duckdb", "numpy", "rapidfuzz"]),
            "dataset": {
                "records": str(dataset.records),
                "generator": dataset.generator,
                "rows": dataset.rows,
                "seed": dataset.seed,
                "command": dataset.command,
            },
            "threads": args.threads,
            "repeat": args.repeat,
            "results": results,
            "table": table,
        },
    )
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
