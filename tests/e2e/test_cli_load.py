"""`mpi load` as a user runs it: the committed sample into a fresh registry, then the walk-through.

The bulk path into an empty registry must give the persons `mpi dedup` reports
for the same file with the same model (both apply the online path's matricule
rule), and the review tasks registering the rows one by one would raise; a used
registry takes the rows one by one through the online path; bad input is one
message naming file, row and column.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mpi.batch.evaluation import cluster_scores
from mpi.batch.load_job import cluster_load_input, read_load_input
from mpi.batch.progress import SilentProgress
from mpi.cli.load_command import batch_blocking_keys, batch_forms
from mpi.cli.main import app as main_app
from mpi.domain.commands import RegisterRecord
from mpi.domain.events import EventKind
from mpi.domain.identifiers import MatriculeStatus, check_matricule, classify_matricules
from mpi.domain.registry_state import RegistryState
from mpi.domain.reviews import ReviewKind
from mpi.rules.loader import default_rules_path
from mpi.service.audit import verify
from mpi.service.bootstrap import bootstrap, wire
from mpi.service.engine_matcher import load_matcher
from mpi.service.evidence import for_matching
from mpi.service.fakes import InMemoryStore, TickingClock
from mpi.service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "synthetic"
MODEL = ROOT / "matching_rules" / "default.params.json"
runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(main_app, list(args))
    return result.exit_code, result.output


def export(db: str, out: Path) -> pd.DataFrame:
    code, output = run("export", "--db", db, "--out", str(out), "--quiet")
    assert code == 0, output
    return pd.read_csv(out, dtype=str, keep_default_na=False)


def labels(keys: pd.Series, groups: pd.Series) -> np.ndarray:
    """Integer group labels aligned on ``keys`` (a Series of group ids indexed by the same keys)."""
    return pd.factorize(groups.reindex(keys).to_numpy())[0].astype(np.int64)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The committed sample bulk-loaded into a fresh SQLite registry, and its export."""
    folder = tmp_path_factory.mktemp("load")
    db = f"sqlite:///{folder / 'mpi.db'}"
    code, output = run("load", str(SAMPLE / "records.csv"), "--db", db, "--actor", "loader")
    assert code == 0, output
    return {"db": db, "output": output, "export": export(db, folder / "export.csv"), "folder": folder}


@pytest.mark.slow
def test_load_gives_the_persons_dedup_reports_and_is_accurate(
    loaded: dict[str, object], tmp_path: Path
) -> None:
    exported = loaded["export"]
    assert isinstance(exported, pd.DataFrame)
    records = pd.read_csv(SAMPLE / "records.csv", dtype=str, keep_default_na=False)
    assert len(exported) == len(records) and set(exported["link_type"]) == {"AUTO"}
    result = runner.invoke(
        main_app,
        ["dedup", str(SAMPLE / "records.csv"), "--model", str(MODEL), "--out", str(tmp_path), "--quiet"],
    )
    assert result.exit_code == 0, result.output
    dedup = pd.read_csv(tmp_path / "clusters.csv", dtype=str)

    key = records["source"] + "|" + records["local_id"]
    by_record = dict(zip(records["record_id"], key, strict=True))
    dedup_cluster = pd.Series(dedup["cluster_id"].to_numpy(), index=dedup["record_id"].map(by_record))
    loaded_person = pd.Series(
        exported["mpi_id"].to_numpy(), index=exported["source"] + "|" + exported["local_id"]
    )
    agreement = cluster_scores(labels(key, loaded_person), labels(key, dedup_cluster), None)
    assert agreement.f1 >= 0.999, agreement

    truth = pd.read_csv(SAMPLE / "truth.csv", dtype=str)
    truth_person = pd.Series(truth["person_id"].to_numpy(), index=truth["record_id"].map(by_record))
    accuracy = cluster_scores(labels(key, loaded_person), labels(key, truth_person), None)
    print(f"\nmpi load vs dedup: {agreement}\nmpi load vs truth: {accuracy}")
    # The floor of the batch job on the same sample (tests/e2e/test_synthetic_accuracy.py).
    assert accuracy.precision >= 0.99 and accuracy.f1 >= 0.98, accuracy


def _show(db: str, mpi_id: str) -> dict[str, object]:
    code, output = run("person", "show", mpi_id, "--db", db, "--json")
    assert code == 0, output
    view: dict[str, object] = json.loads(output)
    return view


@pytest.mark.slow
def test_walk_through_find_merge_unmerge_and_read_the_history(loaded: dict[str, object]) -> None:
    db = str(loaded["db"])
    assert "loaded 10,000 records" in str(loaded["output"])

    # Find a person: the load raised review tasks for the pairs it was unsure about.
    code, output = run("review", "list", "--db", db, "--json", "--limit", "1")
    assert code == 0, output
    task = json.loads(output)[0]
    first, second = task["mpi_id"], task["candidate_mpi_id"]
    code, output = run("person", "show", first, "--db", db)
    assert code == 0 and first in output and "records.loaded" in output, output
    before = _show(db, first)

    code, output = run(
        "person", "merge", first, second, "--db", db, "--actor", "alice", "--reason", "same patient"
    )
    assert code == 0 and "persons.merged by alice (same patient)" in output, output
    merged = _show(db, second)
    assert merged["person"]["status"] == "retired" and merged["current_mpi_id"] == first  # type: ignore[index]

    code, output = run("person", "unmerge", second, "--db", db, "--actor", "bob", "--reason", "twins")
    assert code == 0 and "persons.unmerged by bob (twins)" in output, output

    for mpi_id in (first, second):
        history = _show(db, mpi_id)["history"]
        assert [e["kind"] for e in history][-2:] == ["persons.merged", "persons.unmerged"]  # type: ignore[index]
        assert [e["actor"] for e in history][-2:] == ["alice", "bob"]  # type: ignore[index]
        assert history[0]["kind"] == "records.loaded"  # type: ignore[index]
    after = _show(db, first)
    assert after["records"] == before["records"] and after["person"]["golden"] == before["person"]["golden"]  # type: ignore[index]


def test_find_a_person_by_demographics_and_by_local_id_and_see_who_looked(loaded: dict[str, object]) -> None:
    db = str(loaded["db"])
    sample = pd.read_csv(SAMPLE / "records.csv", dtype=str, keep_default_na=False)
    row = sample[(sample["family_name"] != "") & (sample["birth_date"].str.len() == 10)].iloc[0]
    code, output = run("record", "show", f"{row['source']}|{row['local_id']}", "--db", db, "--json")
    assert code == 0, output
    owner = json.loads(output)["link"]["mpi_id"]

    # A receptionist's search: the family name typed with one letter wrong, and the birth date.
    typo = row["family_name"][:-1] + ("x" if row["family_name"][-1] != "x" else "y")
    code, output = run(
        "person", "search", "--family-name", typo, "--given-names", row["given_names"].split()[0],
        "--birth-date", row["birth_date"], "--db", db, "--actor", "desk-3", "--json",
    )  # fmt: skip
    assert code == 0, output
    hits = json.loads(output)
    assert hits[0]["mpi_id"] == owner and hits[0]["decision"] in ("link", "review")

    code, output = run("audit", "--db", db, "--person", owner, "--json")
    assert code == 0, output
    assert [(a["actor"], a["action"]) for a in json.loads(output)][:1] == [("desk-3", "persons.searched")]


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


WEBER = {
    "family_name": "Weber",
    "given_names": "Jean Paul",
    "birth_date": "1961-04-12",
    "sex": "M",
    "postcode": "1234",
    "city": "Luxembourg",
}


def test_a_used_registry_registers_each_row_online_in_the_default_domain(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'mpi.db'}"
    first = write_rows(
        tmp_path / "first.csv", [{"record_id": "A1", "source": "CHL", "local_id": "9", **WEBER}]
    )
    code, output = run("load", str(first), "--db", db, "--quiet")
    assert code == 0, output
    # No source or local_id columns: record_id is the local id in the --default-domain.
    second = write_rows(
        tmp_path / "second.csv",
        [
            {"record_id": "77", **{**WEBER, "given_names": "Jean-Paul", "city": "LUXEMBOURG"}},
            {"record_id": "78", **{**WEBER, "given_names": "Marie", "sex": "F", "birth_date": "1990-01-01"}},
        ],
    )
    code, output = run("load", str(second), "--db", db, "--default-domain", "LAB")
    assert code == 0 and "registered one by one" in output, output
    exported = export(db, tmp_path / "export.csv").set_index(["source", "local_id"])
    assert exported.loc[("LAB", "77"), "mpi_id"] == exported.loc[("CHL", "9"), "mpi_id"]
    assert exported.loc[("LAB", "78"), "mpi_id"] != exported.loc[("CHL", "9"), "mpi_id"]
    assert float(exported.loc[("LAB", "77"), "score"]) >= 0.95


def test_a_file_with_only_some_columns_loads_and_then_matches_online(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'mpi.db'}"
    # No birth date, sex or address: the bulk path stores forms without them.
    names = [{"record_id": str(n), "family_name": "Weber", "given_names": "Jean"} for n in range(3)]
    code, output = run("load", str(write_rows(tmp_path / "names.csv", names)), "--db", db)
    assert code == 0 and "bulk" in output, output
    more = [{"record_id": "9", "family_name": "Weber", "given_names": "Jean"}]
    code, output = run("load", str(write_rows(tmp_path / "more.csv", more)), "--db", db, "--quiet")
    assert code == 0, output
    assert len(export(db, tmp_path / "export.csv")) == 4


def test_bad_input_is_one_message_naming_file_row_and_column(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'mpi.db'}"
    repeated = write_rows(
        tmp_path / "repeated.csv",
        [
            {"record_id": "1", "source": "CHL", "local_id": "9", **WEBER},
            {"record_id": "2", "source": "CHL", "local_id": "9", **WEBER},
        ],
    )
    result = runner.invoke(main_app, ["load", str(repeated), "--db", db])
    assert result.exit_code == 2
    assert (
        "repeated.csv, row 2, column 'local_id'" in result.output and "CHL|9 appears twice" in result.output
    )
    assert "Traceback" not in result.output

    no_ids = write_rows(tmp_path / "no_ids.csv", [{"surname": "Weber"}])
    result = runner.invoke(main_app, ["load", str(no_ids), "--db", db])
    assert result.exit_code == 2 and "no_ids.csv" in result.output and "record_id" in result.output
    result = runner.invoke(main_app, ["load", str(tmp_path / "missing.csv"), "--db", db])
    assert result.exit_code == 2 and "file not found" in result.output
    code, output = run("export", "--db", db, "--out", str(tmp_path / "empty.csv"))
    assert code == 0 and "0 records written" in output  # nothing was loaded by the failed attempts


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"family_name": "W" * 201}, "row 2, column 'family_name': family_name is 201 characters long"),
        ({"city": "Lux\x00embourg"}, "row 2, column 'city': city contains a NUL character"),
        ({"local_id": "9" * 201}, "row 2, column 'local_id': local_id is 201 characters long"),
        ({"source": "S" * 101}, "row 2, column 'source': source is 101 characters long, more than the 100"),
    ],
)
def test_a_value_the_registry_cannot_store_is_refused_naming_file_row_and_column(
    tmp_path: Path, database_url: str, row: dict[str, str], message: str
) -> None:
    rows = [
        {"record_id": "1", "source": "CHL", "local_id": "1", **WEBER},
        {"record_id": "2", "source": "CHL", "local_id": "2", **WEBER, **row},
    ]
    path = write_rows(tmp_path / "values.csv", rows)
    code, output = run("load", str(path), "--db", database_url)
    assert code == 2 and "Traceback" not in output
    assert f"values.csv, {message}" in " ".join(output.split())
    code, output = run("export", "--db", database_url, "--out", str(tmp_path / "empty.csv"))
    assert code == 0 and "0 records written" in output


@pytest.mark.slow
def test_the_loaded_registry_is_its_replayed_log(loaded: dict[str, object]) -> None:
    services = bootstrap(Settings(database_url=str(loaded["db"]), _env_file=None))  # type: ignore[call-arg]
    try:
        verification = verify(services.store)
        events = services.store.run(lambda uow: uow.events(), write=False)
    finally:
        services.close()
    assert verification.ok, verification.violations[:5]
    persons = sum(1 for e in events if e.kind is EventKind.RECORDS_LOADED)
    assert persons == len(loaded["export"]["mpi_id"].unique())  # type: ignore[index]
    # (The walk-through above may have merged and unmerged in the same registry since.)
    assert {EventKind.RECORDS_LOADED, EventKind.REVIEWS_RAISED} <= {e.kind for e in events}


@pytest.mark.slow
def test_blocking_keys_and_forms_from_the_batch_columns_are_the_online_matchers() -> None:
    loaded = read_load_input([SAMPLE / "records.csv"], {}, "default", SilentProgress())
    rules = default_rules_path()
    clustering = cluster_load_input(loaded, rules, SilentProgress())
    keys_of, forms_of = batch_blocking_keys(clustering, rules), batch_forms(clustering, loaded)
    matcher = load_matcher(Settings(_env_file=None))  # type: ignore[call-arg]
    checked, _ = classify_matricules(np.array([d.national_id for d in loaded.demographics], dtype=object))
    positions = list(range(len(loaded.demographics)))
    online = matcher.blocking_keys([for_matching(loaded.demographics[p], checked[p]) for p in positions])
    assert keys_of(positions) == online
    assert keys_of(positions[5::7]) == online[5::7]
    views = [for_matching(loaded.demographics[p], checked[p]) for p in positions]
    assert forms_of(positions) == matcher.forms(views)
    assert forms_of(positions[5::7]) == matcher.forms(views[5::7])


def _row(
    n: int, family: str, given: str, birth: str, sex: str, matricule: str, **more: str
) -> dict[str, str]:
    source = ("CHL", "HRS", "LAB")[n % 3]
    return {
        "record_id": str(n),
        "source": source,
        "local_id": str(n),
        "family_name": family,
        "given_names": given,
        "birth_date": birth,
        "sex": sex,
        "national_id": matricule,
        "postcode": more.get("postcode", ""),
        "city": more.get("city", ""),
        "phone": more.get("phone", ""),
    }


HOME = {"postcode": "1234", "city": "Luxembourg", "phone": "+352621123456"}
# Records sharing a valid matricule (each pair or trio one number), as a registry office mix-up
# or a typing slip that still validates leaves them.
SHARED_MATRICULES = [
    # Neither sex nor birth date agree: a collision, whatever the names (the first pair scores
    # in the review band, the second below it).
    _row(1, "Weber", "Jean", "1974-09-11", "M", "1974091186700", **HOME),
    _row(2, "Weber", "Jean", "1975-03-04", "F", "1974091186700", **HOME),
    _row(3, "Kremer", "Lea", "1990-09-30", "F", "1990093012358"),
    _row(4, "Kremer", "Tom", "1988-01-01", "M", "1990093012358"),
    # Sex and birth date agree: one person, whatever the names (a name change, say).
    _row(5, "Schmit", "Anne", "1993-10-28", "F", "1993102814560", postcode="4321", city="Esch"),
    _row(6, "Muller", "Claire", "1993-10-28", "F", "1993102814560"),
    # Only the sex differs: the matcher decides (here, review).
    _row(7, "Hoffmann", "Marc", "1982-08-02", "M", "1982080285657", postcode="5555", city="Ettelbruck"),
    _row(8, "Hoffmann", "Marc", "1982-08-02", "F", "1982080285657", postcode="5555", city="Ettelbruck"),
    # Only the birth date differs, and little else agrees: the matcher decides (here, nothing).
    _row(9, "Reuter", "Paul", "2001-12-03", "M", "2001120308757"),
    _row(10, "Becker", "Sophie", "2001-05-05", "M", "2001120308757"),
    # One person of two records (one without a sex), and a third that conflicts with one of them.
    _row(11, "Wagner", "Luc", "1979-12-20", "M", "1979122003208"),
    _row(12, "Wagner", "Luc", "1979-12-20", "", "1979122003208"),
    _row(13, "Wagner", "Lucie", "1980-01-01", "F", "1979122003208"),
    # No matricule: the matcher alone.
    _row(14, "Klein", "Marie", "1966-05-15", "F", "", postcode="2222", city="Diekirch"),
    _row(15, "Klein", "Marie", "1966-05-15", "F", "", postcode="2222", city="Diekirch"),
]


def persons_and_tasks(state: RegistryState) -> tuple[list[list[str]], list[tuple[str, list[list[str]]]]]:
    """The persons as the keys of their records, and each task's kind and two persons."""
    keys: dict[str, list[str]] = {}
    for record_id, link in sorted(state.links.items()):
        keys.setdefault(link.mpi_id, []).append(str(state.records[record_id].key))
    persons = {mpi_id: sorted(members) for mpi_id, members in keys.items()}
    tasks = sorted(
        (task.kind.value, sorted([persons[task.mpi_id], persons[task.candidate_mpi_id]]))
        for task in state.reviews.values()
    )
    return sorted(persons.values()), tasks


def test_a_bulk_load_raises_the_review_tasks_of_registering_one_by_one(
    database_url: str, tmp_path: Path
) -> None:
    assert all(
        check_matricule(row["national_id"])[1] is MatriculeStatus.VALID
        for row in SHARED_MATRICULES
        if row["national_id"]
    )
    path = write_rows(tmp_path / "shared.csv", SHARED_MATRICULES)
    code, output = run("load", str(path), "--db", database_url)
    assert code == 0 and "bulk" in output, output
    services = bootstrap(Settings(database_url=database_url, _env_file=None))  # type: ignore[call-arg]
    try:
        loaded = services.store.run(lambda uow: uow.snapshot(), write=False)
        assert verify(services.store).ok
    finally:
        services.close()

    settings = Settings(database_url="sqlite:///unused.db", _env_file=None)  # type: ignore[call-arg]
    serial = wire(settings, InMemoryStore(), load_matcher(settings), TickingClock())
    rows = read_load_input([path], {}, "default", SilentProgress())
    for key, demographics in zip(rows.keys, rows.demographics, strict=True):
        serial.registry.register(RegisterRecord(key, demographics))
    expected = serial.store.run(lambda uow: uow.snapshot(), write=False)

    assert persons_and_tasks(loaded) == persons_and_tasks(expected)
    persons, tasks = persons_and_tasks(loaded)
    assert ["CHL|6", "LAB|5"] in persons and ["CHL|12", "LAB|11"] in persons
    collision = ReviewKind.POTENTIAL_COLLISION.value
    assert tasks == [
        (collision, [["CHL|12", "LAB|11"], ["HRS|13"]]),
        (collision, [["CHL|3"], ["HRS|4"]]),
        (collision, [["HRS|1"], ["LAB|2"]]),
        (ReviewKind.POTENTIAL_DUPLICATE.value, [["HRS|7"], ["LAB|8"]]),
    ]
