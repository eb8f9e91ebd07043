"""Online register and search latency with a large registry loaded, on SQLite and PostgreSQL.

    python -m benchmarks.online_register [--rows 1000000] [--seed 7] [--probes 1000]
        [--backends sqlite,postgres] [--postgres-url URL] [--load-budget 1800]

The rows come from ``mpi synth --n ROWS --seed SEED`` (generated once, then reused).
The last ``--probes`` rows are held out; the others are loaded into a fresh database
with ``mpi load --quiet`` (the bulk path, timed in its own process). Then, in this
process, through the service exactly as an HL7 or FHIR adapter calls it:

* each held-out row is registered with ``Registry.register`` (one transaction each,
  standardise, candidates from the blocking-key index, score, link or create, review
  tasks, event), timed one by one; they are a random mix of persons already loaded
  (other sources' records of them) and new persons, as a live feed is;
* then each held-out record's demographics are searched with ``Registry.search``.

After the load, the load's writes are settled on both databases (``settle``): on PostgreSQL
the tables are vacuumed and analysed (``VACUUM (ANALYZE)``), as autovacuum would within a
minute, and a ``CHECKPOINT`` writes the load out; on SQLite the log is checkpointed into the
file; then the operating system writes out its dirty pages (``sync``). Before timing,
30 searches warm the process (model loaded, connections open). Reported: p50 / p90 / p99 /
max latency in milliseconds, the process CPU time of each call (on a busy machine wall time
exceeds it: the difference is waiting for a core or for the database), the matcher's share
(blocking keys and scoring) and the candidates scored per registration. Targets of issue 3:
register p50 <= 5 ms and p99 <= 25 ms, search p50 <= 10 ms with 1,000,000 records.
Results: markdown on stdout, JSON in ``benchmarks/.work/online_register.json``.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.load_1m import DEFAULT_POSTGRES_URL, fresh_database, load_command, postgres_reachable
from benchmarks.paths import WORK_DIR
from benchmarks.reporting import latency, machine_info, markdown_table, package_versions, write_json
from benchmarks.synthetic_data import ensure_dataset
from benchmarks.timing import log_tail, run_timed
from mpi.domain.records import Demographics
from mpi.domain.scores import PairScore
from mpi.service.ports import Matcher

RESULT_PATH = WORK_DIR / "online_register.json"
WARM_UP = 30
TARGETS = {"register_p50_ms": 5.0, "register_p99_ms": 25.0, "search_p50_ms": 10.0}


class TimedMatcher:
    """The production matcher, with the time spent in it and the candidates it scored counted."""

    def __init__(self, inner: Matcher) -> None:
        self.inner = inner
        self.model_version = inner.model_version
        self.seconds = 0.0
        self.candidates = 0
        self.from_forms = 0

    def blocking_keys(self, records: Sequence[Demographics]) -> list[list[str]]:
        started = time.perf_counter()
        try:
            return self.inner.blocking_keys(records)
        finally:
            self.seconds += time.perf_counter() - started

    def forms(self, records: Sequence[Demographics]) -> list[str | None]:
        started = time.perf_counter()
        try:
            return self.inner.forms(records)
        finally:
            self.seconds += time.perf_counter() - started

    def keys_and_forms(self, records: Sequence[Demographics]) -> tuple[list[list[str]], list[str | None]]:
        started = time.perf_counter()
        try:
            return self.inner.keys_and_forms(records)
        finally:
            self.seconds += time.perf_counter() - started

    def form_is_current(self, form: str) -> bool:
        return self.inner.form_is_current(form)

    def score(self, probe: Demographics | str, candidates: Sequence[Demographics | str]) -> list[PairScore]:
        started = time.perf_counter()
        try:
            return self.inner.score(probe, candidates)
        finally:
            self.seconds += time.perf_counter() - started
            self.candidates += len(candidates)
            self.from_forms += sum(isinstance(c, str) for c in candidates)

    def reset(self) -> None:
        self.seconds, self.candidates, self.from_forms = 0.0, 0, 0


def split(records: Path, probes: int) -> tuple[Path, Path]:
    """The rows to load and the held-out rows to register online (written once per dataset)."""
    folder = WORK_DIR / "online_register" / records.parent.name
    head, tail = folder / "loaded.csv", folder / "held_out.csv"
    if not (head.exists() and tail.exists()) or len(pd.read_csv(tail, dtype=str)) != probes:
        folder.mkdir(parents=True, exist_ok=True)
        frame = pd.read_csv(records, dtype=str, keep_default_na=False)
        frame.iloc[:-probes].to_csv(head, index=False)
        frame.iloc[-probes:].to_csv(tail, index=False)
    return head, tail


def measure(url: str, loaded: Path, held_out: Path) -> dict[str, Any]:
    from mpi.batch.load_job import read_load_input
    from mpi.batch.progress import SilentProgress
    from mpi.domain.commands import RegisterRecord
    from mpi.service.bootstrap import bootstrap
    from mpi.service.engine_matcher import load_matcher
    from mpi.service.settings import Settings

    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    matcher = TimedMatcher(load_matcher(settings))
    services = bootstrap(settings, matcher=matcher)
    try:
        probes = read_load_input([held_out], {}, settings.default_domain, SilentProgress())
        warm = pd.read_csv(loaded, dtype=str, keep_default_na=False, nrows=WARM_UP)
        for row in warm.to_dict("records"):
            services.registry.search(Demographics.from_mapping(row))
        # As `mpi serve` does once started: start-up objects leave garbage collection.
        gc.collect()
        gc.freeze()

        register_seconds, register_cpu, matcher_seconds, candidates, outcomes = [], [], [], [], []
        from_forms = 0
        for key, demographics in zip(probes.keys, probes.demographics, strict=True):
            matcher.reset()
            started, cpu = time.perf_counter(), time.process_time()
            result = services.registry.register(RegisterRecord(key, demographics, "benchmark"))
            register_seconds.append(time.perf_counter() - started)
            register_cpu.append(time.process_time() - cpu)
            matcher_seconds.append(matcher.seconds)
            candidates.append(matcher.candidates)
            from_forms += matcher.from_forms
            outcomes.append(result.outcome)

        search_seconds, search_cpu, hits = [], [], []
        for demographics in probes.demographics:
            started, cpu = time.perf_counter(), time.process_time()
            found = services.registry.search(demographics)
            search_seconds.append(time.perf_counter() - started)
            search_cpu.append(time.process_time() - cpu)
            hits.append(len(found))
        records_after = services.registry.count_records()
    finally:
        services.close()
    return {
        "records_before": records_after - outcomes.count("created") - outcomes.count("linked"),
        "records_after": records_after,
        "register": latency(register_seconds),
        "register_cpu": latency(register_cpu),
        "register_matcher": latency(matcher_seconds),
        "register_candidates_median": statistics.median(candidates),
        # Candidates scored from their stored standardised forms rather than standardised again.
        "register_candidates_from_forms": round(from_forms / max(sum(candidates), 1), 4),
        "outcomes": {o: outcomes.count(o) for o in sorted(set(outcomes))},
        "search": latency(search_seconds),
        "search_cpu": latency(search_cpu),
        "search_hits_median": statistics.median(hits),
    }


def run_splink_realtime() -> dict[str, Any]:
    """Splink's ``predict_between`` next to mpi's online path, in its own process, in this run."""
    command = [sys.executable, "-m", "benchmarks.splink_realtime"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    table = "\n".join(line for line in done.stdout.splitlines() if line.startswith("|"))
    return {"command": " ".join(command[1:]), "returncode": done.returncode, "table": table}


def settle(url: str) -> None:
    """Let the bulk load's writes reach the disk before timing, on either database.

    PostgreSQL: vacuum and analyse, as autovacuum does within a minute or so of a large load,
    then checkpoint. Measured straight after the load, stale statistics make the candidate
    query scan whole tables (89 ms instead of 0.2 ms at 20,000 records), and the first reads of
    each page write its hint bits; a vacuum also lets index-only scans skip the heap. The
    checkpoint writes the load's and the vacuum's pages out now, rather than during the
    measurement (a one-off cost of the bulk load, not of online registration).

    SQLite: the equivalent of the checkpoint. The log is copied into the database file and the
    operating system writes out the file's dirty pages (a gigabyte or more after a 1M load);
    otherwise the first registrations' commits queue behind that writeback (seen: 40-80 ms of
    CPU and up to 350 ms of wall time for a few registrations, all in the writeback).
    """
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                connection.execute(text("VACUUM (ANALYZE)"))
                connection.execute(text("CHECKPOINT"))
    finally:
        engine.dispose()
    os.sync()


def run_backend(backend: str, loaded: Path, held_out: Path, args: argparse.Namespace) -> dict[str, Any]:
    with fresh_database(backend, f"online_{args.rows}", args.postgres_url) as url:
        command = [*load_command(), str(loaded), "--db", url, "--quiet"]
        run = run_timed(
            command, WORK_DIR / "logs" / f"online_load_{backend}.log", timeout_seconds=args.load_budget
        )
        result: dict[str, Any] = {"load": run.as_dict()}
        if run.timed_out:
            return {**result, "status": "load over budget"}
        if not run.succeeded:
            return {**result, "status": "load failed", "log_tail": log_tail(run)}
        settle(url)
        result["settled_after_load"] = True
        print(f"{backend}: loaded in {run.wall_seconds:.0f} s; measuring ...", file=sys.stderr)
        return {**result, "status": "ok", **measure(url, loaded, held_out)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--probes", type=int, default=1000, help="held-out rows registered and searched online"
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--load-budget", type=float, default=1800.0, help="seconds for the bulk load")
    parser.add_argument(
        "--no-splink",
        action="store_true",
        help="skip Splink's real-time path (benchmarks.splink_realtime), otherwise timed in the same run",
    )
    args = parser.parse_args(argv)

    dataset = ensure_dataset(args.rows, args.seed, "mpi")
    loaded, held_out = split(dataset.records, args.probes)
    results: dict[str, Any] = {}
    for backend in args.backends.split(","):
        if backend == "postgres" and (why := postgres_reachable(args.postgres_url)) is not None:
            results[backend] = {"status": "not run", "reason": why}
            continue
        print(f"{backend}: loading {args.rows - args.probes:,} rows ...", file=sys.stderr)
        results[backend] = run_backend(backend, loaded, held_out, args)

    splink = None if args.no_splink else run_splink_realtime()
    write_json(
        RESULT_PATH,
        {
            "benchmark": "online_register",
            "splink_realtime": splink,
            "machine": machine_info(),
            "versions": package_versions(["mpi", "sqlalchemy", "psycopg", "numpy", "rapidfuzz"]),
            "dataset": {"records": str(dataset.records), "rows": dataset.rows, "seed": dataset.seed},
            "command": " ".join(["python -m benchmarks.online_register", *(argv or sys.argv[1:])]),
            "targets": TARGETS,
            "results": results,
        },
    )
    rows = []
    for backend, result in results.items():
        if result["status"] != "ok":
            rows.append([backend, result["status"], *([None] * 10)])
            continue
        register, search, share = result["register"], result["search"], result["register_matcher"]
        outcomes = ", ".join(f"{k} {v}" for k, v in result["outcomes"].items())
        rows.append(
            [
                backend, "ok", f"{result['records_before']:,}", result["load"]["wall_seconds"],
                register["p50_ms"], register["p99_ms"], result["register_cpu"]["p50_ms"], share["p50_ms"],
                result["register_candidates_median"],
                search["p50_ms"], search["p99_ms"], outcomes,
            ]
        )  # fmt: skip
    print(f"Online latency, {args.probes} held-out records registered then searched one by one\n")
    print(
        markdown_table(
            [
                "backend", "status", "records loaded", "bulk load s", "register p50 ms", "register p99 ms",
                "register CPU p50 ms", "matcher p50 ms", "candidates (median)", "search p50 ms",
                "search p99 ms", "outcomes",
            ],
            rows,
        )
    )  # fmt: skip
    print(f"\nTargets: {TARGETS}. JSON: {RESULT_PATH}")
    if splink is not None:
        print("\nIn the same run, one record against 5,000 (benchmarks.splink_realtime):\n")
        print(splink["table"])
    return 0 if all(r["status"] in ("ok", "not run") for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
