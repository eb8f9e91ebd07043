"""Bad input: one clear line naming the file (row, column), exit code 2, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mpi.cli.main import app
from mpi.domain.identifiers import complete_matricule
from mpi.rules.loader import default_rules_path, load_rules, save_parameters
from mpi.rules.parameters import LevelParameters, TrainedParameters

runner = CliRunner()
GOOD_CSV = "record_id,family_name,given_names\n1,Weber,Anna\n2,Weber,Anne\n3,Thill,Marc\n"


def failure(*args: str | Path) -> str:
    """Run ``mpi`` expecting a refusal; return its one-line message."""
    result = runner.invoke(app, [*map(str, args), "--quiet"])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # refused on purpose, not crashed
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert result.stdout == ""
    return lines[0]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write(tmp_path / "good.csv", GOOD_CSV)


def test_missing_record_id_column(tmp_path: Path) -> None:
    path = write(tmp_path / "patients.csv", "id,family_name\n1,Weber\n")
    message = failure("dedup", path, "--out", tmp_path / "out")
    assert str(path) in message
    assert "record_id" in message
    assert "--map" in message  # tells how to fix it


def test_empty_record_id_cell_names_row_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "patients.csv", "record_id,family_name\n1,Weber\n,Thill\n")
    message = failure("dedup", path, "--out", tmp_path / "out")
    assert str(path) in message
    assert "row 2" in message
    assert "record_id" in message


def test_duplicate_record_id_within_a_file(tmp_path: Path) -> None:
    path = write(tmp_path / "patients.csv", "record_id,family_name\nA1,Weber\nA2,Thill\nA1,Klein\n")
    message = failure("dedup", path, "--out", tmp_path / "out")
    assert str(path) in message
    assert "'A1'" in message
    assert "row 3" in message
    assert "row 1" in message  # where it was first seen


def test_duplicate_record_id_across_two_files_names_both(tmp_path: Path) -> None:
    first = write(tmp_path / "hospital.csv", "record_id,family_name\nA1,Weber\nA2,Thill\n")
    second = write(tmp_path / "lab.csv", "record_id,family_name\nB1,Weber\nA2,Thill\n")
    message = failure("dedup", first, second, "--link-only", "--out", tmp_path / "out")
    assert str(first) in message
    assert str(second) in message
    assert "'A2'" in message


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.csv", "")
    message = failure("dedup", path, "--out", tmp_path / "out")
    assert str(path) in message
    assert "empty" in message


def test_header_only_file(tmp_path: Path) -> None:
    path = write(tmp_path / "header.csv", "record_id,family_name\n")
    message = failure("dedup", path, "--out", tmp_path / "out")
    assert str(path) in message
    assert "no data rows" in message


def test_directory_instead_of_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    message = failure("dedup", folder, "--out", tmp_path / "out")
    assert str(folder) in message
    assert "directory" in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.csv"
    message = failure("dedup", path, "--out", tmp_path / "out")
    assert str(path) in message
    assert "not found" in message


@pytest.mark.parametrize("name", ["export[old].csv", "export[/old].csv"])
def test_a_file_name_with_brackets_is_printed_as_is(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    message = failure("dedup", path, "--out", tmp_path / "out")
    assert str(path) in message


def test_non_utf8_file_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("record_id,family_name\n1,Weber\n2,Thill\n3,Müller\n4,Klein\n".encode("latin-1"))
    message = failure("dedup", path, "--out", tmp_path / "out")
    assert str(path) in message
    assert "row 3" in message
    assert "UTF-8" in message


def test_non_utf8_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("record_id,prénom\n1,Anna\n".encode("latin-1"))
    message = failure("dedup", path, "--out", tmp_path / "out")
    assert str(path) in message
    assert "UTF-8" in message


def test_unreadable_parquet_file(tmp_path: Path) -> None:
    path = write(tmp_path / "records.parquet", GOOD_CSV)
    message = failure("dedup", path, "--out", tmp_path / "out")
    assert str(path) in message
    assert "Parquet" in message


def test_malformed_rules_toml(good: Path, tmp_path: Path) -> None:
    rules = write(tmp_path / "rules.toml", "[model\nname = 'x'\n")
    message = failure("dedup", good, "--rules", rules, "--out", tmp_path / "out")
    assert str(rules) in message
    assert "TOML" in message


def test_rules_with_an_unknown_column(good: Path, tmp_path: Path) -> None:
    text = default_rules_path().read_text(encoding="utf-8")
    assert 'column = "sex"' in text
    rules = write(tmp_path / "rules.toml", text.replace('column = "sex"', 'column = "gender"'))
    message = failure("dedup", good, "--rules", rules, "--out", tmp_path / "out")
    assert str(rules) in message
    assert "gender" in message
    assert "comparison." in message  # the key, with the comparison's position


SEX_CAP = '{ comparison = "sex", level = "different" }'


@pytest.mark.parametrize(
    ("cap", "key", "named"),
    [
        ('{ comparison = "gender", level = "different" }', "thresholds.never_link.0.comparison", "'gender'"),
        ('{ comparison = "sex", level = "opposite" }', "thresholds.never_link.0.level", "'opposite'"),
    ],
    ids=["unknown comparison", "unknown level"],
)
def test_rules_with_a_broken_never_link_cap(
    good: Path, tmp_path: Path, cap: str, key: str, named: str
) -> None:
    text = default_rules_path().read_text(encoding="utf-8")
    assert SEX_CAP in text
    rules = write(tmp_path / "rules.toml", text.replace(SEX_CAP, cap))
    message = failure("dedup", good, "--rules", rules, "--out", tmp_path / "out")
    assert key in message
    assert named in message
    assert not (tmp_path / "out").exists()  # refused before any work


def test_malformed_model_json(good: Path, tmp_path: Path) -> None:
    model = write(tmp_path / "model.params.json", '{"rules_name": "luxembourg-default",')
    message = failure("dedup", good, "--model", model, "--out", tmp_path / "out")
    assert str(model) in message
    assert "JSON" in message


def test_model_for_other_rules_version(good: Path, tmp_path: Path) -> None:
    rules = load_rules()
    model = tmp_path / "old.params.json"
    save_parameters(
        TrainedParameters(
            rules_name=rules.model.name,
            rules_version="1999.1.0",
            method="em",
            prior=0.001,
            trained_on_records=3,
            comparisons={"sex": LevelParameters(labels=("exact", "different"), m=(0.98, 0.02), u=(0.5, 0.5))},
        ),
        model,
    )
    message = failure("dedup", good, "--model", model, "--out", tmp_path / "out")
    assert str(model) in message
    assert "1999.1.0" in message
    assert rules.model.version in message


def test_bad_map_syntax(good: Path, tmp_path: Path) -> None:
    message = failure("dedup", good, "--map", "surname", "--out", tmp_path / "out")
    assert "--map" in message
    assert "'surname'" in message
    assert "SRC=DST" in message


def test_map_to_an_unknown_column(good: Path, tmp_path: Path) -> None:
    message = failure("dedup", good, "--map", "surname=last_name", "--out", tmp_path / "out")
    assert "'last_name'" in message
    assert "batch-schema column" in message


def test_mapping_file_to_an_unknown_column_names_the_file(good: Path, tmp_path: Path) -> None:
    mapping = write(tmp_path / "mapping.txt", "surname=last_name\n")
    message = failure("dedup", good, "--mapping", mapping, "--out", tmp_path / "out")
    assert str(mapping) in message
    assert "'last_name'" in message


def test_mapping_file_line_without_equals_sign(good: Path, tmp_path: Path) -> None:
    mapping = write(tmp_path / "mapping.txt", "surname=family_name\ngiven_name given_names\n")
    message = failure("dedup", good, "--mapping", mapping, "--out", tmp_path / "out")
    assert str(mapping) in message
    assert "line 2" in message


def test_link_only_with_one_file(good: Path, tmp_path: Path) -> None:
    message = failure("dedup", good, "--link-only", "--out", tmp_path / "out")
    assert str(good) in message
    assert "--link-only" in message


def test_truth_column_absent_from_the_input(good: Path, tmp_path: Path) -> None:
    message = failure("dedup", good, "--truth-column", "person_id", "--out", tmp_path / "out")
    assert str(good) in message
    assert "person_id" in message


def test_recoverable_cells_are_counted_not_refused(tmp_path: Path) -> None:
    rows = ["record_id,family_name,given_names,birth_date,national_id"]
    for i in range(12):
        payload = f"1980031{i % 10}{i:03d}"
        rows.append(f"R{i},Weber,Anna,1980-03-1{i % 10},{complete_matricule(payload)}")
    rows.append("X1,Thill,Marc,1980-02-30,1893120105733")  # impossible date, wrong Verhoeff digit
    rows.append("X2,Klein,Luc,1975-05-05,12345")  # a number too short to be a matricule
    path = write(tmp_path / "patients.csv", "\n".join(rows) + "\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["dedup", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["invalid_values"] == {"birth_date": 1, "national_id": 2}
    lines = result.stdout.splitlines()
    mentions = [line for line in lines if "national_id:" in line or "birth_date:" in line]
    assert len(mentions) == 1, result.stdout
    assert "national_id: 2" in mentions[0]
    assert "birth_date: 1" in mentions[0]


def dedup_through_the_console_script(path: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """``mpi dedup`` as a shell or a scheduler runs it: its output piped, 80 columns assumed."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("mpi")), "dedup", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "80"},
    )


def test_console_script_exits_2_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path / "patients.csv", "id,family_name\n1,Weber\n")
    completed = dedup_through_the_console_script(path, tmp_path / "out")
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr + completed.stdout
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert str(path) in errors[0]
    assert "record_id" in errors[0]


def test_a_refusal_longer_than_a_terminal_is_one_line_alone_when_piped(tmp_path: Path) -> None:
    folder = tmp_path / "exports-from-the-hospital-information-system" / "patients-of-december"
    folder.mkdir(parents=True)
    path = write(folder / "registrations-with-a-rather-long-file-name.csv", "id,family_name\n1,Weber\n")
    completed = dedup_through_the_console_script(path, tmp_path / "out")
    assert completed.returncode == 2
    # A script or a log gets the error whole, not broken where an 80-column terminal would end,
    # and alone: the bar of the step it stopped is not left behind as if that step had finished.
    (line,) = completed.stderr.splitlines()
    assert line.startswith(f"error: {path}") and "record_id" in line and len(line) > 120


@pytest.mark.parametrize(
    ("url", "shown", "why"),
    [
        (
            "postgresql+psycopg://mpi:secret@127.0.0.1:1/registry",
            "postgresql+psycopg://mpi:***@127.0.0.1:1/registry",
            "refused",
        ),
        (
            "sqlite:///{tmp}/no/such/folder/mpi.db",
            "sqlite:///{tmp}/no/such/folder/mpi.db",
            "no registry there",
        ),
    ],
    ids=["server not listening", "no such folder"],
)
def test_a_database_that_cannot_be_used_is_one_message_without_the_password(
    tmp_path: Path, url: str, shown: str, why: str
) -> None:
    url, shown = url.format(tmp=tmp_path), shown.format(tmp=tmp_path)
    commands = (["export", "--db", url, "--out", str(tmp_path / "x.csv")], ["review", "list", "--db", url])
    for command in commands:
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert f"error: cannot use the database {shown}: " in result.output and why in result.output
        assert "secret" not in result.output and "Traceback" not in result.output


def test_reading_a_registry_that_is_not_there_does_not_create_an_empty_one(tmp_path: Path) -> None:
    """A mistyped --db (or a command run in the wrong folder) would otherwise answer every read
    with "nothing found" from a registry it just created."""
    missing = tmp_path / "mpi.db"
    for command in (["audit"], ["review", "list"], ["person", "search", "--birth-date", "1980-01-02"]):
        result = runner.invoke(app, [*command, "--db", f"sqlite:///{missing}"])
        assert result.exit_code == 2 and "no registry there" in result.output, result.output
    assert not missing.exists()
