"""Finding a person, reading a record and reading the access trail, as a user runs them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mpi.cli.lookup_commands  # noqa: F401  (registers the commands on the registry app)
from mpi.cli.registry_commands import registry_app
from mpi.domain.commands import RegisterRecord
from mpi.domain.records import Demographics, RecordKey
from mpi.service.bootstrap import bootstrap
from mpi.service.settings import Settings

JEAN = Demographics(family_name="Weber", given_names="Jean", birth_date="1980-01-02", sex="M", city="Esch")
runner = CliRunner()


@pytest.fixture
def seeded(sqlite_url: str) -> dict[str, str]:
    # The commands match with the production model: the registry is written with it too.
    services = bootstrap(Settings(database_url=sqlite_url, _env_file=None))  # type: ignore[call-arg]
    try:
        register = services.registry.register
        jean = register(RegisterRecord(RecordKey("HOSP", "1"), JEAN)).mpi_id
        register(RegisterRecord(RecordKey("LAB", "1"), replace(JEAN, city="Esch-sur-Alzette")))
        marie = register(
            RegisterRecord(
                RecordKey("HOSP", "2"), replace(JEAN, given_names="Marie", sex="F", family_name="Muller")
            )
        ).mpi_id
    finally:
        services.close()
    return {"db": sqlite_url, "jean": jean, "marie": marie}


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(registry_app, list(args), terminal_width=200)
    return result.exit_code, result.output


def test_search_ranks_persons_registers_nothing_and_is_audited(seeded: dict[str, str]) -> None:
    db, jean, marie = seeded["db"], seeded["jean"], seeded["marie"]
    code, output = run(
        "person", "search", "--family-name", "Weber", "--given-names", "Jean", "--birth-date", "1980-01-02",
        "--db", db, "--actor", "alice", "--json",
    )  # fmt: skip
    hits = json.loads(output)
    assert code == 0 and hits[0]["mpi_id"] == jean
    assert hits[0]["decision"] == "link" and {c["name"] for c in hits[0]["comparisons"]} >= {"family_name"}
    assert marie in [h["mpi_id"] for h in hits[1:]]  # same birth date: found, ranked below

    code, output = run("person", "search", "--birth-date", "1980-01-02", "--db", db)
    assert code == 0 and "2 person(s)" in output and jean in output and "Weber" in output

    code, output = run("audit", "--db", db, "--by", "alice", "--json")
    (entry,) = json.loads(output)
    assert code == 0 and entry["action"] == "persons.searched" and entry["channel"] == "cli"
    assert set(entry["subjects"]) == {jean, marie}
    assert entry["criteria"] == "family_name=Weber; given_names=Jean; birth_date=1980-01-02"


def test_search_refuses_what_it_cannot_use(seeded: dict[str, str]) -> None:
    db = seeded["db"]
    for args, message in (
        ((), "give at least one criterion"),
        (("--birth-date", "02/01/1980"), "is not a date (YYYY-MM-DD)"),
        (("--birth-date", "1980-02-30"), "is not a date (YYYY-MM-DD)"),
        (("--birth-date", "19800102"), "is not a date (YYYY-MM-DD)"),
        (("--birth-date", "1980-01-02", "--sex", "Z"), "is not one of M, F, O, U"),
    ):
        code, output = run("person", "search", *args, "--db", db)
        assert code == 2 and message in output and "Traceback" not in output
    code, output = run("person", "search", "--family-name", "Weber", "--db", db)
    assert code == 0 and "no person found; a search needs a birth date" in output
    code, output = run("person", "search", "--family-name", "Zzyzx", "--birth-date", "1901-01-01", "--db", db)
    assert code == 0 and "no person found" in output and "a search needs" not in output


def test_record_show_gives_the_person_and_versions_and_the_trail_says_who_looked(
    seeded: dict[str, str],
) -> None:
    db, jean = seeded["db"], seeded["jean"]
    code, output = run("record", "show", "LAB|1", "--db", db, "--actor", "bob", "--json")
    view = json.loads(output)
    assert code == 0 and view["link"]["mpi_id"] == jean
    assert [v["demographics"]["city"] for v in view["versions"]] == ["Esch-sur-Alzette"]
    code, output = run("record", "show", "LAB|1", "--db", db, "--actor", "bob")
    assert code == 0 and f"person {jean}" in output
    code, output = run("person", "show", jean, "--db", db, "--actor", "carol")
    assert code == 0
    code, output = run("record", "show", "LAB|404", "--db", db, "--actor", "bob")
    assert code == 2 and "no source record '404'" in output

    code, output = run("audit", "--db", db, "--person", jean.lower())
    assert code == 0 and "3 access(es)" in output
    code, output = run("audit", "--db", db, "--person", jean, "--json")
    entries = json.loads(output)  # newest first; the failed read showed nothing, so is not there
    assert [(e["actor"], e["action"], e["criteria"]) for e in entries] == [
        ("carol", "person.viewed", None),
        ("bob", "record.viewed", "record LAB|1"),
        ("bob", "record.viewed", "record LAB|1"),
    ]
    code, output = run(
        "audit", "--db", db, "--person", jean, "--before", str(entries[0]["access_id"]), "--json"
    )
    assert [e["access_id"] for e in json.loads(output)] == [e["access_id"] for e in entries[1:]]
    code, output = run("audit", "--db", db, "--person", jean[:-1] + ("0" if jean[-1] != "0" else "1"))
    assert code == 2 and "is not a valid MPI id" in output
    code, output = run("audit", "--db", db, "--by", "nobody")
    assert code == 0 and "0 access(es)" in output


def test_numbers_paths_and_files_the_commands_cannot_use_are_refused_in_one_line(
    seeded: dict[str, str], tmp_path: Path
) -> None:
    """Exit code 2 and a message, never the driver's traceback."""
    db = seeded["db"]
    too_large = "99999999999999999999"
    for args in (
        ("review", "resolve", too_large, "merge", "--db", db),
        ("audit", "--before", too_large, "--db", db),
        ("audit", "--limit", too_large, "--db", db),
        ("review", "list", "--limit", too_large, "--db", db),
    ):
        code, output = run(*args)
        assert (code, "less than or equal to" in output) == (2, True), args

    code, output = run("export", "--out", str(tmp_path / "missing" / "x.csv"), "--db", db)
    assert code == 2 and "no folder" in output and "missing" in output

    not_a_database = tmp_path / "notes.db"
    not_a_database.write_text("these are notes, not a database\n" * 100, encoding="utf-8")
    code, output = run("person", "show", seeded["jean"], "--db", f"sqlite:///{not_a_database}")
    assert code == 2 and "file is not a database" in output
    assert not_a_database.read_text(encoding="utf-8").startswith("these are notes")
