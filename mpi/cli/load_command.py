"""``mpi load``: register a batch file of source records in the persistent MPI.

Mounted on the main app with ``app.add_typer(load_app)``. Into an empty
registry the rows are clustered by the batch engine (``mpi dedup --model`` with
the trained parameters beside the rules, the model online matching uses, and
the online path's matricule rule) and written in bulk, one person per cluster,
review-band pairs and matricule collisions between clusters becoming review
tasks. Into a registry that already holds records, each row is
registered through the online path, in order, as if sent one by one.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from rich.markup import escape

from mpi.batch.progress import Progress
from mpi.cli.consoles import stderr as _stderr
from mpi.cli.consoles import stdout as _stdout
from mpi.cli.errors import handles_errors
from mpi.cli.options import DbOpt

if TYPE_CHECKING:
    from mpi.batch.load_job import Clustering, LoadInput
    from mpi.service.bootstrap import Services
    from mpi.service.bulk import FormsOf, KeysOf
    from mpi.service.settings import Settings

load_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@dataclass(frozen=True)
class LoadReport:
    mode: str  # "bulk" into an empty registry, "online" into a used one
    records: int
    persons_created: int
    records_linked: int
    review_tasks: int
    seconds: float
    details: dict[str, Any]


def _progress(quiet: bool) -> AbstractContextManager[Progress]:
    from mpi.cli.progress import progress_bars

    return progress_bars(_stderr, quiet)


def batch_blocking_keys(clustering: Clustering, rules_path: Path) -> KeysOf:
    """The registry's blocking keys of rows of the load, from the columns the batch engine
    standardised: the keys the online matcher would compute from the rows themselves."""
    from mpi.rules.loader import load_rules
    from mpi.service.engine_matcher import blocking_keys_of

    rules = load_rules(rules_path)
    columns = clustering.index_columns

    def keys_of(positions: Sequence[int]) -> list[list[str]]:
        rows = np.asarray(positions, dtype=np.int64)
        return blocking_keys_of(rules, {name: values[rows] for name, values in columns.items()}, rows.size)

    return keys_of


def batch_forms(clustering: Clustering, loaded: LoadInput) -> FormsOf:
    """The registry's stored forms of rows of the load, from the columns the batch engine
    standardised: the forms the online matcher would compute from the rows themselves."""
    from mpi.matching.stored_form import FORM_COLUMNS, form_stamp, refused_birth_dates, to_forms

    columns, stamp = clustering.index_columns, form_stamp()
    given = [d.birth_date for d in loaded.demographics]
    # A file without a birth-date column gives none to refuse.
    dates = columns.get("birth_date")
    withheld = refused_birth_dates(given, dates) if dates is not None else [False] * len(given)

    def forms_of(positions: Sequence[int]) -> list[str | None]:
        rows = np.asarray(positions, dtype=np.int64)
        standardised = {c: columns[c][rows] for c in FORM_COLUMNS if c in columns}
        return to_forms(standardised, rows.size, stamp, [withheld[p] for p in positions])

    return forms_of


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """The cyclic garbage collector off: a load keeps millions of objects alive, each full
    collection walks them all (a fifth of a 100,000-record load's time), and it makes next
    to no reference cycles, which the next collection after it frees."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def run_load(
    inputs: list[Path],
    settings: Settings,
    mapping: dict[str, str],
    progress: Progress,
    actor: str,
) -> LoadReport:
    """Load ``inputs`` into the registry of ``settings``; see the module docstring."""
    from mpi.batch.load_job import read_load_input
    from mpi.service.bootstrap import bootstrap

    started = time.perf_counter()
    services = bootstrap(settings)
    try:
        if services.registry.count_records() == 0:
            with _without_cycle_collection():
                loaded = read_load_input(inputs, mapping, settings.default_domain, progress)
                return _bulk_load(services, settings, loaded, progress, actor, started)
        loaded = read_load_input(inputs, mapping, settings.default_domain, progress)
        return _online_load(services, loaded, progress, actor, started)
    finally:
        services.close()


def _bulk_load(
    services: Services, settings: Settings, loaded: LoadInput, progress: Progress, actor: str, started: float
) -> LoadReport:
    from mpi.batch.load_job import cluster_load_input
    from mpi.rules.loader import default_rules_path
    from mpi.service.bulk import BulkRecord, BulkReview

    rows = len(loaded.keys)
    rules_path = settings.rules or default_rules_path()
    clustering = cluster_load_input(loaded, rules_path, progress)
    bulk = [
        BulkRecord(key, demographics, int(cluster), score)
        for key, demographics, cluster, score in zip(
            loaded.keys,
            loaded.demographics,
            clustering.clusters.tolist(),
            clustering.link_scores,
            strict=True,
        )
    ]
    reviews = [BulkReview(r.record, r.candidate, r.score, r.kind) for r in clustering.reviews]
    keys_of = batch_blocking_keys(clustering, rules_path)
    progress.start("writing the registry", total=rows)
    summary = services.loader.load(
        bulk,
        reviews,
        actor=actor,
        progress=progress.advance,
        blocking_keys=keys_of,
        forms=batch_forms(clustering, loaded),
    )
    progress.finish()
    return LoadReport(
        "bulk",
        summary.records,
        summary.persons,
        summary.records - summary.persons,
        summary.review_tasks,
        round(time.perf_counter() - started, 3),
        {
            "model": clustering.model,
            "candidate_pairs": clustering.candidate_pairs,
            "links": clustering.links,
            "invalid_values": clustering.invalid_counts,
            "timings_seconds": clustering.timings,
        },
    )


def _online_load(
    services: Services, loaded: LoadInput, progress: Progress, actor: str, started: float
) -> LoadReport:
    from mpi.domain.commands import RegisterRecord

    commands = [
        RegisterRecord(key, demographics, actor)
        for key, demographics in zip(loaded.keys, loaded.demographics, strict=True)
    ]
    progress.start("registering", total=len(commands))
    results = services.registry.register_many(commands, progress=progress.advance)
    progress.finish()
    outcomes = [r.outcome for r in results]
    return LoadReport(
        "online",
        len(results),
        outcomes.count("created"),
        outcomes.count("linked"),
        len({task for r in results for task in r.review_task_ids}),
        round(time.perf_counter() - started, 3),
        {"updated": outcomes.count("updated"), "unchanged": outcomes.count("unchanged")},
    )


def _print_report(report: LoadReport, database: str) -> None:
    lines = [
        f"[bold]loaded {report.records:,} records[/] into {escape(database)} "
        f"({'bulk: clustered by the batch engine' if report.mode == 'bulk' else 'registered one by one'})",
        f"  persons created: {report.persons_created:,}   records linked to another record's person: "
        f"{report.records_linked:,}   review tasks: {report.review_tasks:,}",
    ]
    if report.mode == "bulk":
        lines.append(
            f"  model {escape(report.details['model'])}; candidate pairs scored: "
            f"{report.details['candidate_pairs']:,}"
        )
        invalid = report.details["invalid_values"]
        if invalid:
            lines.append(
                "  [yellow]unusable values treated as missing:[/] "
                + ", ".join(f"{escape(column)}: {count}" for column, count in invalid.items())
            )
    else:
        details = report.details
        if details["updated"] or details["unchanged"]:
            lines.append(
                f"  already known: {details['updated']:,} updated, {details['unchanged']:,} unchanged"
            )
    lines.append(f"  {report.seconds:.1f} s")
    _stdout.print("\n".join(lines), highlight=False)


@load_app.command(
    "load",
    epilog="Example: mpi load data/synthetic/records.csv --db sqlite:///mpi.db\n\n"
    "A file without source/local_id: mpi load patients.csv --db sqlite:///mpi.db --default-domain CHL",
)
@handles_errors
def load(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="CSV or Parquet files in the batch schema (record_id required).", show_default=False
        ),
    ],
    db: DbOpt = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="Rename an input column to a batch-schema column, e.g. [cyan]--map surname=family_name[/]. "
            "Repeatable.",
            show_default=False,
        ),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--mapping",
            help='A mapping file: SRC=DST lines, or a TOML table [columns] of SRC = "DST".',
            show_default=False,
        ),
    ] = None,
    default_domain: Annotated[
        str | None,
        typer.Option(
            "--default-domain",
            help="Assigning authority of rows without a source; their record_id is the local id when "
            "local_id is missing. Default: MPI_DEFAULT_DOMAIN, .env, then 'default'.",
            show_default=False,
        ),
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option(
            help="Rules file (TOML) with trained parameters beside it. Default: MPI_RULES, then the "
            "committed Luxembourg model.",
            show_default=False,
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor", envvar="MPI_ACTOR", help="Who is loading, for the history.", show_default=False
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars or summary, for scripts.")
    ] = False,
) -> None:
    """Register the source records of batch files in the MPI.

    An empty registry is filled in bulk from the batch engine's clusters; otherwise every row
    is registered online, in order. A row already in the registry gets a new version.
    """
    from mpi.batch.io import parse_mapping
    from mpi.domain.commands import SYSTEM_ACTOR
    from mpi.service.settings import load_settings

    settings = load_settings(database_url=db, default_domain=default_domain, rules=rules)
    columns = parse_mapping(map_ or [], mapping)
    with _progress(quiet) as progress:
        report = run_load(inputs, settings, columns, progress, actor or SYSTEM_ACTOR)
    if not quiet:
        _print_report(report, settings.database_url)
