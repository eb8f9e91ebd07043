"""One new record against 5,000 known ones: Splink 5's real-time path next to mpi's online path.

    python -m benchmarks.splink_realtime [--existing 5000] [--probes 50] [--threads 2]

Input: the committed synthetic sample (``data/synthetic/records.csv``, 10,000 records):
the first ``--existing`` rows are the known records, the next ``--probes`` rows arrive
one at a time (most are other sources' records of known persons). Each engine runs in
its own process, on the same rows, and answers every probe in turn:

* Splink (DuckDB, ``--threads`` threads): the tutorial model of
  ``benchmarks/splink_models.py:synthetic_recipe`` trained on the whole sample (not
  timed), term-frequency tables precomputed; per probe, the record is cleaned in SQL and
  registered, then ``linker.inference.predict_between(probe, known)`` (blocked) and
  ``linker.inference.score_pairs(probe, known)`` (all 5,000 pairs) are timed, each up to
  its pandas result.
* mpi: the committed model; per probe, ``EngineMatcher.score(probe, known)`` (all 5,000
  pairs, the kernel alone) and, with the known records bulk-loaded into a SQLite
  registry, ``Registry.search`` (blocking-key index, scoring, ranking; read only) and
  ``Registry.register`` (the same plus one write transaction).

Reported: median and p90 milliseconds per probe and the pairs each call scored.
Results: markdown on stdout, JSON in ``benchmarks/.work/splink_realtime.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.paths import PROJECT_ROOT, WORK_DIR
from benchmarks.reporting import machine_info, markdown_table, package_versions, write_json

SAMPLE = PROJECT_ROOT / "data" / "synthetic" / "records.csv"
RESULT_PATH = WORK_DIR / "splink_realtime.json"
TF_COLUMNS = ("given_names", "family_name", "birth_name", "street", "house_number", "postcode", "city")


def summary(seconds: list[float], pairs: list[int]) -> dict[str, Any]:
    ms = np.array(seconds, dtype=np.float64) * 1000
    return {
        "n": len(seconds),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "pairs_scored_median": statistics.median(pairs),
    }


def rows(existing: int, probes: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    return frame.iloc[:existing], frame.iloc[existing : existing + probes]


def run_splink(existing: int, probes: int, threads: int) -> dict[str, Any]:
    from splink import DuckDBAPI, Linker

    from benchmarks.splink_dedup import connect
    from benchmarks.splink_models import synthetic_preparation, synthetic_recipe, train

    known, arriving = rows(existing, probes)
    connection = connect(threads)
    select = ", ".join(synthetic_preparation(list(known.columns)))

    def prepared_table(name: str, frame: pd.DataFrame) -> Any:
        raw = frame.replace("", None)
        connection.register(f"{name}_raw", raw)
        connection.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT {select} FROM {name}_raw")
        connection.unregister(f"{name}_raw")
        return connection.table(name)

    everything = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    recipe = synthetic_recipe(list(known.columns), "dedupe_only", lean_output=True)
    db_api = DuckDBAPI(connection=connection)
    linker = Linker(db_api.register(prepared_table("sample", everything)), recipe.settings)
    started = time.perf_counter()
    train(linker, recipe)
    for column in TF_COLUMNS:
        linker.table_management.compute_tf_table(column)
    training_seconds = time.perf_counter() - started
    known_table = db_api.register(prepared_table("known", known))

    between_seconds, between_pairs, all_seconds, all_pairs, found = [], [], [], [], 0
    for index, row in enumerate(arriving.to_dict("records")):
        started = time.perf_counter()
        probe = db_api.register(prepared_table(f"probe_{index}", pd.DataFrame([row])))
        predictions = linker.inference.predict_between(probe, known_table, warning_mode="never")
        blocked = predictions.as_pandas_dataframe()
        between_seconds.append(time.perf_counter() - started)
        between_pairs.append(len(blocked))
        found += bool((blocked["match_probability"] >= recipe.threshold).any())

        started = time.perf_counter()
        scored = linker.inference.score_pairs(probe, known_table).as_pandas_dataframe()
        all_seconds.append(time.perf_counter() - started)
        all_pairs.append(len(scored))
    return {
        "engine": "splink",
        "training_seconds_not_timed_below": round(training_seconds, 1),
        "threads": threads,
        "predict_between": summary(between_seconds, between_pairs),
        "score_pairs_all": summary(all_seconds, all_pairs),
        "probes_with_a_match": found,
    }


def run_mpi(existing: int, probes: int) -> dict[str, Any]:
    from benchmarks.online_register import TimedMatcher
    from mpi.batch.io import read_inputs
    from mpi.batch.load_job import cluster_load_input, read_load_input
    from mpi.batch.progress import SilentProgress
    from mpi.domain.commands import RegisterRecord
    from mpi.domain.records import Demographics
    from mpi.rules.loader import default_rules_path
    from mpi.service.bootstrap import bootstrap
    from mpi.service.bulk import BulkRecord
    from mpi.service.engine_matcher import load_matcher
    from mpi.service.settings import Settings

    known, arriving = rows(existing, probes)
    with tempfile.TemporaryDirectory() as scratch:
        known_path, arriving_path = Path(scratch) / "known.csv", Path(scratch) / "arriving.csv"
        known.to_csv(known_path, index=False)
        arriving.to_csv(arriving_path, index=False)
        settings = Settings(database_url=f"sqlite:///{scratch}/mpi.db", _env_file=None)  # type: ignore[call-arg]
        matcher = load_matcher(settings)
        counted = TimedMatcher(matcher)
        services = bootstrap(settings, matcher=counted)
        try:
            silent = SilentProgress()
            loaded = read_load_input([known_path], {}, settings.default_domain, silent)
            clustering = cluster_load_input(loaded, default_rules_path(), silent)
            services.loader.load(
                [
                    BulkRecord(key, demographics, int(cluster))
                    for key, demographics, cluster in zip(
                        loaded.keys, loaded.demographics, clustering.clusters.tolist(), strict=True
                    )
                ]
            )
            new = read_load_input([arriving_path], {}, settings.default_domain, silent)
            table = read_inputs([known_path], {})
            everyone = [Demographics.from_mapping(r) for r in table.frame.astype(object).to_dict("records")]
            for demographics in everyone[:20]:  # warm the caches and the connection pool
                services.registry.search(demographics)

            kernel_seconds, kernel_pairs, search_seconds, search_pairs = [], [], [], []
            register_seconds, register_pairs, links = [], [], 0
            for demographics in new.demographics:
                started = time.perf_counter()
                scores = matcher.score(demographics, everyone)
                kernel_seconds.append(time.perf_counter() - started)
                kernel_pairs.append(len(scores))

                counted.reset()
                started = time.perf_counter()
                services.registry.search(demographics)
                search_seconds.append(time.perf_counter() - started)
                search_pairs.append(counted.candidates)
            for key, demographics in zip(new.keys, new.demographics, strict=True):
                counted.reset()
                started = time.perf_counter()
                result = services.registry.register(RegisterRecord(key, demographics, "benchmark"))
                register_seconds.append(time.perf_counter() - started)
                register_pairs.append(counted.candidates)
                links += result.outcome == "linked"
        finally:
            services.close()
    return {
        "engine": "mpi",
        "matcher_score_all": summary(kernel_seconds, kernel_pairs),
        "registry_search": summary(search_seconds, search_pairs),
        "registry_register": summary(register_seconds, register_pairs),
        "probes_linked": links,
    }


def in_own_process(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [
            sys.executable, "-m", "benchmarks.splink_realtime", "--engine", engine, "--json", out.name,
            "--existing", str(args.existing), "--probes", str(args.probes), "--threads", str(args.threads),
        ]  # fmt: skip
        done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return {"engine": engine, "status": "failed", "stderr_tail": done.stderr[-2000:]}
        result: dict[str, Any] = json.loads(Path(out.name).read_text())
        return {**result, "status": "ok"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--existing", type=int, default=5000)
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads for Splink")
    parser.add_argument("--engine", choices=("splink", "mpi"), help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.engine is not None:  # a child process measuring one engine
        result = (
            run_splink(args.existing, args.probes, args.threads)
            if args.engine == "splink"
            else run_mpi(args.existing, args.probes)
        )
        args.json.write_text(json.dumps(result))
        return 0

    results = {engine: in_own_process(engine, args) for engine in ("splink", "mpi")}
    write_json(
        RESULT_PATH,
        {
            "benchmark": "splink_realtime",
            "machine": machine_info(),
            "versions": package_versions(["mpi", "splink", "duckdb", "rapidfuzz", "numpy"]),
            "input": str(SAMPLE),
            "existing": args.existing,
            "probes": args.probes,
            "command": " ".join(["python -m benchmarks.splink_realtime", *(argv or sys.argv[1:])]),
            "results": results,
        },
    )
    table = []
    labels = {
        "predict_between": "Splink `predict_between` (blocked)",
        "score_pairs_all": "Splink `score_pairs` (all pairs)",
        "matcher_score_all": "mpi `EngineMatcher.score` (all pairs)",
        "registry_search": "mpi `Registry.search` (SQLite, blocked)",
        "registry_register": "mpi `Registry.register` (SQLite, blocked, one write)",
    }
    for result in results.values():
        if result["status"] != "ok":
            table.append([result["engine"], "failed", None, None, None])
            continue
        for key, label in labels.items():
            if key in result:
                timing = result[key]
                table.append([label, "ok", timing["p50_ms"], timing["p90_ms"], timing["pairs_scored_median"]])
    print(
        f"One record against {args.existing:,} known records, {args.probes} probes, one process per engine\n"
    )
    print(markdown_table(["path", "status", "p50 ms", "p90 ms", "pairs scored (median)"], table))
    print(f"\nJSON: {RESULT_PATH}")
    return 0 if all(r["status"] == "ok" for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
