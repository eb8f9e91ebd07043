"""Commands on the persistent MPI: persons, review tasks, the database, exports.

Mounted on the main app with ``app.add_typer(registry_app)``, which gives
``mpi person show|merge|unmerge|link|unlink|not-duplicate|validate``,
``mpi review list|resolve``, ``mpi db upgrade|reindex`` and ``mpi export``. Every
command takes ``--db URL`` (or ``MPI_DATABASE_URL``, or ``.env``) and turns
errors into one line on stderr and exit code 2.
"""

from __future__ import annotations

import csv
import getpass
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mpi.cli.consoles import stderr as _stderr
from mpi.cli.consoles import stdout as _stdout
from mpi.cli.errors import LARGEST_NUMBER, handles_errors
from mpi.cli.options import DbOpt
from mpi.domain.access import AccessChannel
from mpi.domain.commands import (
    LinkRecord,
    MarkNotDuplicate,
    MergePersons,
    ResolveReview,
    UnlinkRecord,
    UnmergePerson,
    ValidateIdentity,
)
from mpi.domain.events import Event
from mpi.domain.records import RecordKey
from mpi.domain.reviews import ReviewAction, ReviewStatus, ReviewTask
from mpi.errors import DatabaseUnavailable, InputError
from mpi.service.access import Viewer
from mpi.service.ports import LinkRow

P = ParamSpec("P")
R = TypeVar("R")

registry_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
person_app = typer.Typer(help="Search, show, merge, unmerge, link and unlink persons.", no_args_is_help=True)
review_app = typer.Typer(
    help="List and answer review tasks (potential duplicates and collisions).", no_args_is_help=True
)
db_app = typer.Typer(help="Manage the MPI database.", no_args_is_help=True)
registry_app.add_typer(person_app, name="person")
registry_app.add_typer(review_app, name="review")
registry_app.add_typer(db_app, name="db")


ActorOpt = Annotated[
    str | None,
    typer.Option(
        "--actor",
        envvar="MPI_ACTOR",
        help="Who is acting, for the history and the access audit trail. Default: your login.",
        show_default=False,
    ),
]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why, for the history.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
RecordArg = Annotated[
    str, typer.Argument(help="A source record: AUTHORITY|LOCAL_ID, or a local id in the default domain.")
]


@contextmanager
def _services(db: str | None) -> Iterator[Any]:
    """The services of an existing registry (these commands read or change one; `mpi load` and
    `mpi db upgrade` create one)."""
    from mpi.service.bootstrap import bootstrap
    from mpi.service.settings import load_settings

    settings = load_settings(database_url=db)
    if settings.sqlite_file is not None and not settings.sqlite_file.exists():
        # Opening it would create an empty registry, and every read would find nothing.
        raise DatabaseUnavailable(
            f"cannot use the database {settings.database_url}: no registry there; create one with "
            "`mpi load FILE --db URL` or `mpi db upgrade --db URL`, or name an existing one with --db "
            "or MPI_DATABASE_URL"
        )
    services = bootstrap(settings)
    try:
        yield services
    finally:
        services.close()


def viewer(actor: str | None) -> Viewer:
    """Who reads patient data at this terminal, for the access audit trail."""
    return Viewer(_actor(actor), AccessChannel.CLI)


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _record_key(text: str, default_domain: str) -> Any:
    from mpi.service.views import parse_record_key

    return parse_record_key(text, default_domain)


def _table(title: str, *headers: str) -> Table:
    """A table whose headers ending in ``*`` never wrap (ids, dates); the others give way."""
    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header.rstrip("*"), no_wrap=header.endswith("*"), overflow="fold")
    return table


def _print_event(event: Event) -> None:
    reason = f" ({event.reason})" if event.reason else ""
    _stdout.print(
        f"event {event.seq}: {event.kind} by {event.actor}{reason}: {', '.join(event.subjects)}",
        highlight=False,
    )


def _plain(value: Any) -> Any:
    """JSON-ready form of dataclasses with enums and datetimes."""
    return json.loads(json.dumps(asdict(value), default=str))


# -- person ---------------------------------------------------------------------------------
@person_app.command("show")
@handles_errors
def person_show(
    mpi_id: Annotated[str, typer.Argument(help="The MPI id.")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A person: golden record, linked records, pending review tasks and full history.

    Example: mpi person show 7K3QX0B2M9TAD --db sqlite:///mpi.db
    """
    with _services(db) as services:
        view = services.persons.show(mpi_id, viewer(actor))
    if as_json:
        _stdout.print_json(data=_plain(view))
        return
    person = view.person
    flags = ", ".join(sorted(person.flags)) or "none"
    _stdout.print(
        f"[bold]{person.mpi_id}[/]  {person.status}  trust: {person.trust}  flags: {flags}", highlight=False
    )
    if person.replaced_by:
        _stdout.print(
            f"replaced by {person.replaced_by}; current identity {view.current_mpi_id}", highlight=False
        )
    golden = Table("field", "golden value", title="golden record", title_justify="left")
    for field, value in person.golden.as_dict().items():
        if value is not None:
            golden.add_row(field, value)
    _stdout.print(golden)
    records = _table(
        "linked records", "record*", "v", "name", "birth date*", "link", "score", "by", "linked at*"
    )
    for linked in view.records:
        d = linked.record.demographics
        link = linked.link
        records.add_row(
            str(linked.record.key),
            str(linked.record.version),
            " ".join(filter(None, [d.given_names, d.family_name])),
            d.birth_date or "",
            link.provenance,
            "" if link.score is None else f"{link.score:.4f}",
            link.actor,
            f"{link.linked_at:%Y-%m-%d %H:%M}",
        )
    _stdout.print(records)
    if view.pending_reviews:
        _print_reviews(list(view.pending_reviews), {}, "pending review tasks")
    history = _table("history", "seq", "at*", "event*", "by", "reason")
    for event in view.history:
        history.add_row(
            str(event.seq),
            f"{event.occurred_at:%Y-%m-%d %H:%M:%S}",
            event.kind,
            event.actor,
            event.reason or "",
        )
    _stdout.print(history)


@person_app.command("merge")
@handles_errors
def person_merge(
    survivor: Annotated[str, typer.Argument(help="The person that stays.")],
    retired: Annotated[str, typer.Argument(help="The person merged into it and retired.")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    reason: ReasonOpt = None,
) -> None:
    """Merge RETIRED into SURVIVOR: its records move, it is retired with a replaced-by link.

    Example: mpi person merge 7K3QX0B2M9TAD 2B9D4KQ7XH1MA --reason "same passport"
    """
    with _services(db) as services:
        _print_event(services.lifecycle.merge(MergePersons(survivor, retired, _actor(actor), reason)))


@person_app.command("unmerge")
@handles_errors
def person_unmerge(
    mpi_id: Annotated[str, typer.Argument(help="The retired person to restore.")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    reason: ReasonOpt = None,
) -> None:
    """Undo the merge that retired MPI_ID: persons, links and golden records as before it.

    Example: mpi person unmerge 2B9D4KQ7XH1MA --reason "twins, not one person"
    """
    with _services(db) as services:
        _print_event(services.lifecycle.unmerge(UnmergePerson(mpi_id, _actor(actor), reason)))


@person_app.command("link")
@handles_errors
def person_link(
    record: RecordArg,
    mpi_id: Annotated[str, typer.Argument(help="The person to link the record to.")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    reason: ReasonOpt = None,
) -> None:
    """Link a record to a person by hand (a MANUAL link, never undone by automatic matching).

    Example: mpi person link 'CHL|004211' 7K3QX0B2M9TAD --reason "ID card seen"
    """
    with _services(db) as services:
        key = _record_key(record, services.settings.default_domain)
        _print_event(services.lifecycle.link(LinkRecord(key, mpi_id, _actor(actor), reason)))


@person_app.command("unlink")
@handles_errors
def person_unlink(
    record: RecordArg, db: DbOpt = None, actor: ActorOpt = None, reason: ReasonOpt = None
) -> None:
    """Detach a record from its person; it gets a new person, kept apart from the old one.

    Example: mpi person unlink 'CHL|004211' --reason "another patient's sample"
    """
    with _services(db) as services:
        key = _record_key(record, services.settings.default_domain)
        _print_event(services.lifecycle.unlink(UnlinkRecord(key, _actor(actor), reason)))


@person_app.command("not-duplicate")
@handles_errors
def person_not_duplicate(
    first: Annotated[str, typer.Argument(help="An MPI id.")],
    second: Annotated[str, typer.Argument(help="Another MPI id.")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    reason: ReasonOpt = None,
) -> None:
    """Record that two persons are different people: the pair is never proposed again.

    Example: mpi person not-duplicate 7K3QX0B2M9TAD 2B9D4KQ7XH1MA --reason twins
    """
    with _services(db) as services:
        _print_event(
            services.lifecycle.mark_not_duplicate(MarkNotDuplicate(first, second, _actor(actor), reason))
        )


@person_app.command("validate")
@handles_errors
def person_validate(
    mpi_id: Annotated[str, typer.Argument(help="The MPI id.")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    reason: ReasonOpt = None,
) -> None:
    """Record that the person's identity was checked against a high-trust identity document.

    Example: mpi person validate 7K3QX0B2M9TAD --reason "passport seen at admission"
    """
    with _services(db) as services:
        _print_event(services.lifecycle.validate_identity(ValidateIdentity(mpi_id, _actor(actor), reason)))


# -- review ---------------------------------------------------------------------------------
def _print_reviews(tasks: list[ReviewTask], keys: dict[int, RecordKey], title: str) -> None:
    table = _table(title, "task", "kind", "status", "person*", "candidate*", "probability", "weight")
    for task in tasks:
        table.add_row(
            str(task.task_id),
            task.kind,
            task.status,
            task.mpi_id,
            task.candidate_mpi_id,
            f"{task.match_probability:.4f}",
            f"{task.match_weight:+.2f}",
        )
    _stdout.print(table)
    for task in tasks:
        evidence = ", ".join(f"{c.name}={c.level} ({c.weight:+.1f})" for c in task.comparisons)
        about = str(keys.get(task.record_id, task.record_id))
        if task.candidate_record_id is not None:
            about = f"{about} vs {keys.get(task.candidate_record_id, task.candidate_record_id)}"
        _stdout.print(
            f"  task {task.task_id}, record {about}: {evidence or 'no comparisons'}", highlight=False
        )


@review_app.command("list")
@handles_errors
def review_list(
    status: Annotated[
        list[ReviewStatus] | None,
        typer.Option("--status", help="Repeatable. Default: open and deferred.", show_default=False),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=LARGEST_NUMBER, help="At most this many tasks.")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many tasks (oldest first).")] = 0,
    db: DbOpt = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Review tasks, oldest first.

    Example: mpi review list --limit 20 --db sqlite:///mpi.db
    """
    statuses = status or [ReviewStatus.OPEN, ReviewStatus.DEFERRED]
    with _services(db) as services:
        tasks = services.reviews.list(statuses, limit, offset, viewer(actor))
        keys = services.reviews.record_keys(tasks) if not as_json else {}
    if as_json:
        _stdout.print_json(data=[_plain(task) for task in tasks])
    else:
        _print_reviews(tasks, keys, f"{len(tasks)} review task(s)")


@review_app.command("resolve")
@handles_errors
def review_resolve(
    task_id: Annotated[int, typer.Argument(min=1, max=LARGEST_NUMBER, help="The task number.")],
    action: Annotated[ReviewAction, typer.Argument(help="How to answer it.")],
    survivor: Annotated[
        str | None, typer.Option(help="For merge: the person that stays (default: the older one).")
    ] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    reason: ReasonOpt = None,
) -> None:
    """Answer a review task: merge, not_a_duplicate or defer (confirm_link or unlink_record for a
    record that no longer fits its person).

    Example: mpi review resolve 12 not_a_duplicate --reason "twins: different first names"
    """
    with _services(db) as services:
        event = services.reviews.resolve(ResolveReview(task_id, action, _actor(actor), reason, survivor))
        _print_event(event)


# -- db and export --------------------------------------------------------------------------
@db_app.command("upgrade")
@handles_errors
def db_upgrade(db: DbOpt = None) -> None:
    """Create the schema, or bring it up to date with this version of mpi.

    Example: mpi db upgrade --db postgresql+psycopg://mpi@db.example/mpi
    """
    from mpi.service.bootstrap import upgrade_database
    from mpi.service.settings import load_settings

    before, after = upgrade_database(load_settings(database_url=db))
    if before == after:
        _stdout.print(f"schema already at revision {after}", highlight=False)
    else:
        _stdout.print(f"schema upgraded from {before or 'empty'} to revision {after}", highlight=False)


@contextmanager
def _record_progress(label: str, total: int, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A progress bar over the registry's records on stderr; yields the function that advances it."""
    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_stderr,
        disable=quiet,
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


@db_app.command("reindex")
@handles_errors
def db_reindex(
    db: DbOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Compute every record's blocking keys and stored standardised form again.

    Run it after upgrading a registry written by an older mpi, or after changing the
    matching rules or the standardiser's data: records without a current form are
    standardised at every match until then (correct, but slower).

    Example: mpi db reindex --db sqlite:///mpi.db
    """
    with (
        _services(db) as services,
        _record_progress("reindex", services.registry.count_records(), quiet) as advance,
    ):
        done = services.registry.reindex(progress=advance)
    if not quiet:
        _stdout.print(f"{done:,} records indexed", highlight=False)


EXPORT_COLUMNS = ("source", "local_id", "record_id", "mpi_id", "link_type", "score")


@registry_app.command("export")
@handles_errors
def export(
    out: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Write source, local_id, record_id, mpi_id, link_type, score for every record.

    Example: mpi export --db sqlite:///mpi.db --out registry.csv
    """
    if out.suffix.lower() != ".csv":
        raise InputError(str(out), "export writes CSV; name the file *.csv")
    if not out.parent.is_dir():
        raise InputError(str(out), f"no folder {out.parent} to write the export into")
    with _services(db) as services, out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(EXPORT_COLUMNS)
        with _record_progress("export", services.registry.count_records(), quiet) as advance:

            def write(batch: list[LinkRow]) -> None:
                writer.writerows(
                    (
                        r.source,
                        r.local_id,
                        r.record_id,
                        r.mpi_id,
                        r.link_type,
                        "" if r.score is None else r.score,
                    )
                    for r in batch
                )
                advance(len(batch))

            written = services.registry.export(write, viewer=viewer(actor))
    if not quiet:
        _stdout.print(f"{written:,} records written to {out}", highlight=False)
