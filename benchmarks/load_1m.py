"""``mpi load`` of one million synthetic records into an empty registry, on SQLite and PostgreSQL.

    python -m benchmarks.load_1m [--rows 1000000] [--seed 7] [--backends sqlite,postgres]
        [--postgres-url URL] [--budget 1800]

The rows come from ``mpi synth --n ROWS --seed SEED`` (generated once, then reused).
Each backend gets a fresh database (a SQLite file under ``benchmarks/.work/registry/``,
or a schema of its own on the PostgreSQL server, dropped afterwards), and
``mpi load records.csv --db URL --quiet`` runs in its own process under
``/usr/bin/time -v``: the bulk path (clustering by the batch engine with the committed
parameters, then bulk writes). Reported: wall seconds, CPU seconds, peak RSS, the
records, persons and review tasks in the registry, and the registry's cluster pairwise
F1 against the truth. A load over ``--budget`` seconds is killed and reported as such
(a load is one transaction: a stopped one leaves the registry empty).
Results: markdown on stdout, JSON in ``benchmarks/.work/load_1m.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from benchmarks.metrics import bcubed_scores, cluster_pair_scores, load_truth
from benchmarks.paths import PROJECT_ROOT, WORK_DIR, mpi_executable
from benchmarks.reporting import machine_info, markdown_table, package_versions, write_json
from benchmarks.synthetic_data import ensure_dataset
from benchmarks.timing import log_tail, run_timed

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
RESULT_PATH = WORK_DIR / "load_1m.json"
BACKENDS = ("sqlite", "postgres")


def load_command() -> list[str]:
    """``mpi load``; until the command is mounted on ``mpi``, its Typer app run directly."""
    mounted = subprocess.run(
        [str(mpi_executable()), "load", "--help"], capture_output=True, check=False, cwd=PROJECT_ROOT
    )
    if mpi_executable().exists() and mounted.returncode == 0:
        return [str(mpi_executable()), "load"]
    return [sys.executable, "-c", "from mpi.cli.load_command import load_app; load_app(prog_name='mpi load')"]


@contextmanager
def fresh_database(backend: str, name: str, postgres_url: str) -> Iterator[str]:
    """The URL of an empty database: a new SQLite file, or a new schema dropped at the end."""
    if backend == "sqlite":
        path = WORK_DIR / "registry" / f"{name}.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in (path, path.with_suffix(".db-wal"), path.with_suffix(".db-shm")):
            stale.unlink(missing_ok=True)
        yield f"sqlite:///{path}"
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(postgres_url, connect_args={"connect_timeout": 5})
    schema = f"mpi_bench_{name}_{uuid.uuid4().hex[:8]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def postgres_reachable(url: str) -> str | None:
    """``None`` when the server answers, else why not."""
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(url, connect_args={"connect_timeout": 5})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any driver or network error means unreachable
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


def registry_counts(url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in ("source_record", "person", "review_task", "blocking_key", "event")
            }
    finally:
        engine.dispose()


def registry_clusters(url: str, records: Path) -> pd.DataFrame:
    """``record_id, cluster_id`` (the MPI id) of every input row, read back from the registry."""
    from mpi.service.bootstrap import bootstrap
    from mpi.service.ports import LinkRow
    from mpi.service.settings import Settings

    rows: list[tuple[str, str, str]] = []

    def keep(batch: list[LinkRow]) -> None:
        rows.extend((r.source, r.local_id, r.mpi_id) for r in batch)

    services = bootstrap(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
    try:
        services.registry.export(keep)
    finally:
        services.close()
    exported = pd.DataFrame(rows, columns=["source", "local_id", "cluster_id"])
    keys = pd.read_csv(records, dtype=str, keep_default_na=False, usecols=["record_id", "source", "local_id"])
    return keys.merge(exported, on=["source", "local_id"], how="inner")[["record_id", "cluster_id"]]


def run_load(backend: str, records: Path, truth: Path, name: str, args: argparse.Namespace) -> dict[str, Any]:
    with fresh_database(backend, name, args.postgres_url) as url:
        command = [*load_command(), str(records), "--db", url, "--quiet"]
        run = run_timed(
            command, WORK_DIR / "logs" / f"load_{backend}_{name}.log", timeout_seconds=args.budget
        )
        result: dict[str, Any] = {"process": run.as_dict(), "wall_seconds": run.wall_seconds}
        if run.timed_out:
            # A load commits once, at the end: a stopped one should have left nothing.
            return {**result, "status": "over budget", "counts_when_stopped": registry_counts(url)}
        if not run.succeeded:
            return {**result, "status": "failed", "log_tail": log_tail(run)}
        result["status"] = "ok"
        result["counts"] = registry_counts(url)
        clusters = registry_clusters(url, records)
        truth_frame = load_truth(truth)
        result["scores"] = {
            "cluster_pairs": cluster_pair_scores(clusters, truth_frame).as_dict(),
            "bcubed": bcubed_scores(clusters, truth_frame).as_dict(),
        }
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--budget", type=float, default=1800.0, help="seconds per load before it is killed")
    args = parser.parse_args(argv)

    dataset = ensure_dataset(args.rows, args.seed, "mpi")
    results: dict[str, Any] = {}
    for backend in args.backends.split(","):
        if backend == "postgres" and (why := postgres_reachable(args.postgres_url)) is not None:
            results[backend] = {"status": "not run", "reason": why}
            continue
        print(f"loading {args.rows:,} rows into {backend} ...", file=sys.stderr)
        results[backend] = run_load(backend, dataset.records, dataset.truth, f"load_{args.rows}", args)

    payload = {
        "benchmark": "load_1m",
        "machine": machine_info(),
        "versions": package_versions(["mpi", "sqlalchemy", "psycopg", "pandas", "numpy"]),
        "dataset": {"records": str(dataset.records), "rows": dataset.rows, "seed": dataset.seed},
        "command": " ".join(["python -m benchmarks.load_1m", *(argv or sys.argv[1:])]),
        "budget_seconds": args.budget,
        "results": results,
    }
    write_json(RESULT_PATH, payload)
    rows = []
    for backend, result in results.items():
        counts = result.get("counts", result.get("counts_when_stopped", {}))
        scores = result.get("scores", {}).get("cluster_pairs", {})
        process = result.get("process", {})
        rows.append(
            [
                backend,
                result["status"],
                result.get("wall_seconds"),
                process.get("cpu_seconds"),
                process.get("max_rss_mb"),
                counts.get("source_record"),
                counts.get("person"),
                counts.get("review_task"),
                scores.get("precision"),
                scores.get("recall"),
                scores.get("f1"),
            ]
        )
    print(f"`mpi load` of {args.rows:,} synthetic records (seed {args.seed}) into an empty registry\n")
    print(
        markdown_table(
            [
                "backend", "status", "wall s", "CPU s", "peak RSS MB", "records in registry", "persons",
                "review tasks", "cluster precision", "cluster recall", "cluster F1",
            ],
            rows,
        )
    )  # fmt: skip
    print(f"\nJSON: {RESULT_PATH}")
    return 0 if all(r["status"] in ("ok", "not run") for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
