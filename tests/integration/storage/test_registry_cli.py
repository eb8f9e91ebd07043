"""The registry commands as a user runs them, on a SQLite file."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mpi.cli.registry_commands import registry_app
from mpi.domain.commands import RegisterRecord
from mpi.domain.records import Demographics, RecordKey
from mpi.service.bootstrap import bootstrap
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.settings import Settings

JEAN = Demographics(family_name="Weber", given_names="Jean", birth_date="1980-01-02", sex="M")
runner = CliRunner()


@pytest.fixture
def seeded(sqlite_url: str) -> dict[str, str]:
    """Jean (two records), his near-duplicate Webber (a review task) and Anne."""
    services = bootstrap(Settings(database_url=sqlite_url, _env_file=None), FakeMatcher())  # type: ignore[call-arg]
    try:
        register = services.registry.register
        jean = register(RegisterRecord(RecordKey("HOSP", "1"), JEAN)).mpi_id
        register(RegisterRecord(RecordKey("LAB", "1"), JEAN))
        webber = register(RegisterRecord(RecordKey("HOSP", "2"), replace(JEAN, family_name="Webber"))).mpi_id
        anne = register(
            RegisterRecord(
                RecordKey("default", "7"),
                Demographics(family_name="Schmit", given_names="Anne", birth_date="1990-05-06", sex="F"),
            )
        ).mpi_id
    finally:
        services.close()
    return {"db": sqlite_url, "jean": jean, "webber": webber, "anne": anne}


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(registry_app, list(args))
    return result.exit_code, result.output


def test_merge_unmerge_and_see_each_step_in_the_history(seeded: dict[str, str]) -> None:
    db, jean, anne = seeded["db"], seeded["jean"], seeded["anne"]
    code, output = run("person", "show", jean, "--db", db)
    assert code == 0 and "Weber" in output and "HOSP|1" in output and "LAB|1" in output

    code, output = run(
        "person", "merge", jean, anne, "--db", db, "--actor", "alice", "--reason", "same patient"
    )
    assert code == 0 and "persons.merged by alice (same patient)" in output
    code, output = run("person", "show", anne, "--db", db)
    assert f"replaced by {jean}" in output

    code, output = run("person", "unmerge", anne, "--db", db, "--actor", "bob")
    assert code == 0 and "persons.unmerged by bob" in output
    code, output = run("person", "show", anne, "--db", db, "--json")
    view = json.loads(output)
    assert code == 0 and view["person"]["status"] == "active"
    assert [r["record"]["key"]["local_id"] for r in view["records"]] == ["7"]
    assert [e["kind"] for e in view["history"]] == ["record.registered", "persons.merged", "persons.unmerged"]
    assert [e["actor"] for e in view["history"]][1:] == ["alice", "bob"]


def test_link_unlink_by_record_key_in_the_default_domain(seeded: dict[str, str]) -> None:
    db, jean = seeded["db"], seeded["jean"]
    code, output = run("person", "link", "7", jean, "--db", db, "--actor", "alice")
    assert code == 0 and "record.linked" in output
    code, output = run("person", "unlink", "default|7", "--db", db, "--actor", "alice")
    assert code == 0 and "record.unlinked" in output


def test_review_list_and_resolve(seeded: dict[str, str]) -> None:
    db = seeded["db"]
    code, output = run("review", "list", "--db", db)
    assert code == 0 and "1 review task(s)" in output
    # The records by the keys a reviewer looks them up with (`mpi record show`), not row numbers.
    assert "record HOSP|2 vs HOSP|1" in output or "record HOSP|2 vs LAB|1" in output
    code, output = run("review", "list", "--db", db, "--json")
    (task,) = json.loads(output)
    assert (
        task["kind"] == "potential_duplicate"
        and {"name": "family_name", "level": "else", "weight": -3.0} in (task["comparisons"])
    )

    code, output = run("review", "resolve", "1", "not_a_duplicate", "--db", db, "--actor", "alice")
    assert code == 0 and "review.resolved" in output
    code, output = run("review", "resolve", "1", "merge", "--db", db)
    assert code == 2 and "already resolved" in output
    code, output = run("review", "list", "--db", db, "--status", "resolved", "--json")
    assert code == 0 and '"resolution": "not_a_duplicate"' in output


def test_export_writes_every_record_with_its_person(seeded: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "links.csv"
    code, _ = run("export", "--db", seeded["db"], "--out", str(out), "--quiet")
    assert code == 0
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["source", "local_id", "record_id", "mpi_id", "link_type", "score"]
    by_key = {(r["source"], r["local_id"]): r for r in rows}
    assert len(rows) == 4
    assert by_key["HOSP", "1"]["mpi_id"] == by_key["LAB", "1"]["mpi_id"] == seeded["jean"]
    assert by_key["HOSP", "1"]["score"] == "" and float(by_key["LAB", "1"]["score"]) > 0.5


def test_errors_are_one_line_and_exit_code_two(seeded: dict[str, str], tmp_path: Path) -> None:
    db, jean = seeded["db"], seeded["jean"]
    code, output = run("person", "merge", jean, jean, "--db", db)
    assert code == 2 and "into itself" in output and "Traceback" not in output
    code, output = run("person", "show", "NOTANID", "--db", db)
    assert code == 2 and "not a valid MPI id" in output
    code, output = run("person", "unlink", "HOSP|404", "--db", db)
    assert code == 2 and "no source record" in output
    code, output = run("person", "show", jean, "--db", "mysql://nope")
    assert code == 2 and "database_url" in output


def test_db_upgrade_creates_then_reports_the_schema(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'new.db'}"
    code, output = run("db", "upgrade", "--db", db)
    assert code == 0 and "upgraded from empty" in output
    code, output = run("db", "upgrade", "--db", db)
    assert code == 0 and "already at revision" in output


def test_db_reindex_indexes_every_record_again(seeded: dict[str, str]) -> None:
    code, output = run("db", "reindex", "--db", seeded["db"])
    assert code == 0 and "4 records indexed" in output
    # The registry's persons are untouched: Jean still has both records.
    code, output = run("person", "show", seeded["jean"], "--db", seeded["db"])
    assert code == 0 and "HOSP" in output and "LAB" in output
