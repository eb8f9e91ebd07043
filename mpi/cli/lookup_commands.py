"""Finding and reading patient data at the terminal, and who has read it.

``mpi person search`` (search before create: ranked persons for demographics,
registering nothing), ``mpi record show`` (a source record by its local id,
with its person) and ``mpi audit`` (the access audit trail). Every command
that shows patient data records the access, under ``--actor`` or the login,
before it shows anything. Mounted on the apps of
:mod:`mpi.cli.registry_commands`; importing this module registers them.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

import typer

from mpi.cli.consoles import stdout as _stdout
from mpi.cli.errors import LARGEST_NUMBER, handles_errors
from mpi.cli.options import DbOpt
from mpi.cli.registry_commands import (
    ActorOpt,
    JsonOpt,
    RecordArg,
    _plain,
    _record_key,
    _services,
    _table,
    person_app,
    registry_app,
    viewer,
)
from mpi.domain.records import Demographics
from mpi.errors import InputError

record_app = typer.Typer(help="Read source records.", no_args_is_help=True)
registry_app.add_typer(record_app, name="record")

_SEXES = ("M", "F", "O", "U")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _criteria(**given: str | None) -> Demographics:
    """The search's demographics, checked: at least one, a real ISO date, a sex code."""
    cleaned = {name: value.strip() for name, value in given.items() if value is not None and value.strip()}
    if not cleaned:
        raise InputError("person search", "give at least one criterion (e.g. --family-name and --birth-date)")
    if "birth_date" in cleaned and not _is_iso_date(cleaned["birth_date"]):
        raise InputError(
            "person search", f"--birth-date {cleaned['birth_date']!r} is not a date (YYYY-MM-DD)"
        )
    if "sex" in cleaned:
        code = cleaned["sex"].upper()
        if code not in _SEXES:
            raise InputError("person search", f"--sex {cleaned['sex']!r} is not one of M, F, O, U")
        cleaned["sex"] = code
    return Demographics.from_mapping(dict(cleaned))


def _is_iso_date(text: str) -> bool:
    if not _ISO_DATE.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


@person_app.command("search")
@handles_errors
def person_search(
    family_name: Annotated[str | None, typer.Option(help="Family (last) name.", show_default=False)] = None,
    given_names: Annotated[str | None, typer.Option(help="Given names.", show_default=False)] = None,
    birth_name: Annotated[str | None, typer.Option(help="Birth (maiden) name.", show_default=False)] = None,
    birth_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD.", show_default=False)] = None,
    sex: Annotated[str | None, typer.Option(help="M, F, O or U.", show_default=False)] = None,
    matricule: Annotated[
        str | None, typer.Option(help="The 13-digit national matricule.", show_default=False)
    ] = None,
    street: Annotated[str | None, typer.Option(help="Street.", show_default=False)] = None,
    postcode: Annotated[str | None, typer.Option(help="Postcode.", show_default=False)] = None,
    city: Annotated[str | None, typer.Option(help="City.", show_default=False)] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="At most this many persons.")] = 10,
    db: DbOpt = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Persons who match the demographics given, best first; registers nothing (search before create).

    Each person comes with its match probability, decision and every comparison's weight.
    Example: mpi person search --family-name Schmit --birth-date 1980-05-17
    """
    criteria = _criteria(
        family_name=family_name,
        given_names=given_names,
        birth_name=birth_name,
        birth_date=birth_date,
        sex=sex,
        national_id=matricule,
        street=street,
        postcode=postcode,
        city=city,
    )
    with _services(db) as services:
        hits = services.registry.search(criteria, limit, viewer(actor))
    if as_json:
        _stdout.print_json(data=[_plain(hit) for hit in hits])
        return
    table = _table(
        f"{len(hits)} person(s)", "#", "mpi id*", "probability", "weight", "decision", "name", "birth date*"
    )
    for rank, hit in enumerate(hits, start=1):
        golden = hit.golden
        table.add_row(
            str(rank),
            hit.mpi_id,
            f"{hit.match_probability:.4f}",
            f"{hit.match_weight:+.2f}",
            hit.decision,
            " ".join(filter(None, [golden.given_names, golden.family_name])),
            golden.birth_date or "",
        )
    _stdout.print(table)
    if not hits:
        # Search reads the blocking-key index registration uses: a name alone forms no key.
        keyed = criteria.birth_date or criteria.national_id or criteria.postcode or criteria.city
        hint = (
            "no person found"
            if keyed
            else "no person found; a search needs a birth date or the matricule, or a name with a "
            "postcode or city"
        )
        _stdout.print(hint, highlight=False)
    for rank, hit in enumerate(hits, start=1):
        weights = ", ".join(f"{c.name}={c.level} ({c.weight:+.1f})" for c in hit.comparisons)
        _stdout.print(f"  #{rank} {hit.mpi_id}: {weights or 'no comparisons'}", highlight=False)


@record_app.command("show")
@handles_errors
def record_show(
    record: RecordArg, db: DbOpt = None, actor: ActorOpt = None, as_json: JsonOpt = False
) -> None:
    """A source record: its person, link, identifiers and every version.

    Example: mpi record show 'CHL|004211'
    """
    with _services(db) as services:
        key = _record_key(record, services.settings.default_domain)
        view = services.persons.record(key, viewer(actor))
    if as_json:
        _stdout.print_json(data=_plain(view))
        return
    link = view.link
    score = "" if link.score is None else f", score {link.score:.4f}"
    linked = f"{link.provenance}{score}, by {link.actor} at {link.linked_at:%Y-%m-%d %H:%M}"
    _stdout.print(
        f"[bold]{view.record.key}[/]  version {view.record.version}  matricule: {view.record.matricule}\n"
        f"person {link.mpi_id} ({linked})",
        highlight=False,
    )
    identifiers = _table("identifiers", "system", "value*", "status", "since*")
    for identifier in view.identifiers:
        identifiers.add_row(
            identifier.system, identifier.value, identifier.status, f"{identifier.assigned_at:%Y-%m-%d %H:%M}"
        )
    _stdout.print(identifiers)
    versions = _table("versions", "v", "recorded at*", "by", "name", "birth date*", "sex", "city")
    for version in view.versions:
        d = version.demographics
        versions.add_row(
            str(version.version),
            f"{version.recorded_at:%Y-%m-%d %H:%M:%S}",
            version.actor,
            " ".join(filter(None, [d.given_names, d.family_name])),
            d.birth_date or "",
            d.sex or "",
            d.city or "",
        )
    _stdout.print(versions)


@registry_app.command("audit")
@handles_errors
def audit(
    person: Annotated[
        str | None, typer.Option("--person", help="Accesses that showed this MPI id.", show_default=False)
    ] = None,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Accesses by this actor (login, HL7 sender).", show_default=False),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=LARGEST_NUMBER, help="At most this many accesses.")] = 50,
    before: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=LARGEST_NUMBER,
            help="Only accesses numbered below this (to page on).",
            show_default=False,
        ),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The access audit trail, newest first: who read whose data, how and what they asked.

    Example: mpi audit --person 7K3QX0B2M9TAD
    """
    with _services(db) as services:
        accesses = services.access_trail.read(mpi_id=person, actor=by, before=before, limit=limit)
    if as_json:
        _stdout.print_json(data=[_plain(access) for access in accesses])
        return
    # Lines rather than a table: the criteria and the persons are long, and a table squeezed into
    # a terminal's width drops whole columns.
    _stdout.print(f"{len(accesses)} access(es), newest first", highlight=False)
    for access in accesses:
        _stdout.print(
            f"#{access.access_id}  {access.at:%Y-%m-%d %H:%M:%S}  {access.actor} ({access.channel})  "
            f"{access.action}  results: {access.results}",
            highlight=False,
            markup=False,
        )
        _stdout.print(f"    persons: {', '.join(access.subjects) or '-'}", highlight=False, markup=False)
        if access.criteria:
            _stdout.print(f"    asked: {access.criteria}", highlight=False, markup=False)
