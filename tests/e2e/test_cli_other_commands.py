"""`mpi train`, `mpi evaluate`, `mpi explain`, and the --help of every command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer
from test_cli_dedup import (  # the same synthetic persons as the dedup tests
    expected_dropped_comparisons,
    input_columns,
    population,
)
from typer.testing import CliRunner, Result

from mpi.cli.main import app
from mpi.rules.loader import load_rules

RULES = load_rules()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def mpi(*args: str | Path, code: int = 0) -> Result:
    result = runner.invoke(app, list(map(str, args)))
    assert result.exit_code == code, result.output
    if code:
        assert isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("people")
    frame = population(120, seed=8)
    frame.drop(columns="person_id").to_csv(folder / "records.csv", index=False)
    frame[["record_id", "person_id"]].to_csv(folder / "truth.csv", index=False)
    frame.to_csv(folder / "records_with_truth.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def trained(data: Path) -> Path:
    model = data / "model" / "trained.params.json"
    result = mpi("train", data / "records.csv", "--out", model)
    assert str(model) in result.stdout
    assert RULES.stamp in result.stdout
    return model


def read_json(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


# --- train --------------------------------------------------------------------------------------


def test_train_writes_parameters_stamped_with_the_rules(trained: Path, data: Path) -> None:
    params = read_json(trained)
    assert (params["rules_name"], params["rules_version"], params["method"]) == (
        RULES.model.name,
        RULES.model.version,
        "em",
    )
    assert params["trained_on_records"] == len(pd.read_csv(data / "records.csv"))
    # Only comparisons whose columns the input has are trained.
    dropped = expected_dropped_comparisons(input_columns(data / "records.csv"))
    assert set(params["comparisons"]) == {c.name for c in RULES.comparisons} - set(dropped)
    for level in params["comparisons"].values():
        assert len(level["labels"]) == len(level["m"]) == len(level["u"])
        assert sum(level["m"]) == pytest.approx(1.0, abs=1e-6)


def test_a_trained_model_scores_like_training_within_dedup(trained: Path, data: Path, tmp_path: Path) -> None:
    mpi("dedup", data / "records.csv", "--model", trained, "--out", tmp_path / "with_model", "-q")
    mpi("dedup", data / "records.csv", "--out", tmp_path / "training", "-q")
    with_model = pd.read_csv(tmp_path / "with_model" / "pairs.csv")
    training = pd.read_csv(tmp_path / "training" / "pairs.csv")
    pd.testing.assert_frame_equal(with_model, training)


def test_train_supervised_from_a_truth_column(data: Path, tmp_path: Path) -> None:
    model = tmp_path / "supervised.params.json"
    mpi("train", data / "records_with_truth.csv", "--truth-column", "person_id", "--out", model, "--quiet")
    params = read_json(model)
    assert params["method"] == "supervised"
    # Every duplicate in this data keeps the sex of its person.
    assert params["comparisons"]["sex"]["m"][0] == pytest.approx(1.0, abs=1e-4)


# --- evaluate -----------------------------------------------------------------------------------


def test_evaluate_counts_pairs_and_clusters_against_the_truth(tmp_path: Path) -> None:
    truth = tmp_path / "truth.csv"
    pd.DataFrame({"record_id": list("ABCDEF"), "person": ["p1", "p1", "p1", "p2", "p2", "p3"]}).to_csv(
        truth, index=False
    )
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame(
        {
            "record_id_l": ["A", "D", "A", "B"],
            "record_id_r": ["B", "E", "F", "C"],
            "match_probability": [0.99, 0.97, 0.96, 0.6],
            "match_weight": [6.6, 5.0, 4.6, 0.6],
            "decision": ["link", "link", "link", "review"],
        }
    ).to_csv(pairs, index=False)
    clusters = tmp_path / "clusters.csv"
    pd.DataFrame({"record_id": list("ABCDEF"), "cluster_id": list("AACDDA")}).to_csv(clusters, index=False)
    out = tmp_path / "evaluation"
    mpi("evaluate", "--truth", truth, "--pairs", pairs, "--clusters", clusters, "--out", out, "-q")
    report = read_json(out / "evaluation.json")
    assert report["true_pairs"] == 4  # AB, AC, BC, DE
    links = report["pairwise_links"]
    assert (links["true_positives"], links["predicted"], links["actual"]) == (2, 3, 4)
    assert links["precision"] == pytest.approx(2 / 3, abs=1e-6)
    assert links["recall"] == pytest.approx(0.5)
    by_threshold = {row["threshold"]: row for row in report["threshold_table"]}
    assert by_threshold[0.5]["precision"] == pytest.approx(0.75)  # the review pair B-C is right
    assert by_threshold[0.5]["recall"] == pytest.approx(0.75)
    assert by_threshold[0.99]["predicted"] == 1
    clustered = report["clusters"]  # clusters {A, B, F}, {C}, {D, E} imply pairs AB, AF, BF, DE
    assert (clustered["true_positives"], clustered["predicted"], clustered["actual"]) == (2, 4, 4)
    assert (out / "precision_recall.png").read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.parametrize("output_format", ["csv", "parquet"])
def test_evaluate_reads_what_dedup_wrote(
    data: Path, trained: Path, tmp_path: Path, output_format: str
) -> None:
    job = tmp_path / "job"
    mpi("dedup", data / "records.csv", "--model", trained, "--truth", data / "truth.csv", "--out", job, "-q",
        "--format", output_format)  # fmt: skip
    out = tmp_path / "evaluation"
    result = mpi(
        "evaluate",
        "--truth", data / "truth.csv",
        "--pairs", job / f"pairs.{output_format}",
        "--clusters", job / f"clusters.{output_format}",
        "--out", out,
    )  # fmt: skip
    report = read_json(out / "evaluation.json")
    accuracy = read_json(job / "summary.json")["accuracy"]
    assert report["pairwise_links"] == accuracy["pairwise_links"]
    assert report["clusters"] == accuracy["clusters"]
    png = out / "precision_recall.png"
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert png.stat().st_size > 2000  # a drawn curve, not an empty canvas
    assert "threshold" in result.stdout  # the threshold table is printed


def test_evaluate_needs_pairs_or_clusters(data: Path) -> None:
    result = mpi("evaluate", "--truth", data / "truth.csv", code=2)
    assert "--pairs" in result.stderr


def test_evaluate_refuses_a_pairs_file_without_record_ids(data: Path, tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("a,b\n1,2\n", encoding="utf-8")
    result = mpi("evaluate", "--truth", data / "truth.csv", "--pairs", pairs, code=2)
    assert str(pairs) in result.stderr
    assert "record_id_l" in result.stderr


# --- explain ------------------------------------------------------------------------------------


def duplicate_and_stranger(data: Path) -> tuple[str, str, str]:
    frame = pd.read_csv(data / "records_with_truth.csv", dtype=str)
    counts = frame["person_id"].value_counts()
    person = counts.index[counts >= 2][0]
    first, second = frame.loc[frame["person_id"] == person, "record_id"].iloc[:2]
    family = frame.loc[frame["record_id"] == first, "family_name"].iloc[0]
    stranger = frame.loc[(frame["person_id"] != person) & (frame["family_name"] != family), "record_id"].iloc[
        0
    ]
    return first, second, stranger


def explain_json(data: Path, trained: Path, left: str, right: str) -> dict[str, Any]:
    result = mpi(
        "explain", data / "records.csv", "--left", left, "--right", right, "--model", trained, "--json"
    )
    explained: dict[str, Any] = json.loads(result.stdout)
    return explained


def test_explain_lists_each_comparison_in_order_like_a_waterfall(data: Path, trained: Path) -> None:
    left, right, _ = duplicate_and_stranger(data)
    explained = explain_json(data, trained, left, right)
    params = read_json(trained)
    used = [c.name for c in RULES.comparisons if c.name in params["comparisons"]]
    assert [step["comparison"] for step in explained["steps"]] == used
    running = explained["prior_weight"]
    for step in explained["steps"]:
        running += step["weight"] + step["term_frequency_adjustment"]
        assert step["cumulative"] == pytest.approx(running, abs=1e-3)
        labels = params["comparisons"][step["comparison"]]["labels"]
        assert step["level"] in [*labels, "missing"]
    assert explained["match_weight"] == pytest.approx(running, abs=1e-3)
    assert (explained["left"], explained["right"]) == (left, right)


def test_explain_decides_like_dedup(data: Path, trained: Path) -> None:
    left, right, stranger = duplicate_and_stranger(data)
    same = explain_json(data, trained, left, right)
    assert same["decision"] == "link"
    assert same["match_probability"] >= RULES.thresholds.link
    different = explain_json(data, trained, left, stranger)
    assert different["decision"] == "no match"
    assert different["match_probability"] < RULES.thresholds.review


def test_explain_prints_a_table_by_default(data: Path, trained: Path) -> None:
    left, right, _ = duplicate_and_stranger(data)
    result = mpi("explain", data / "records.csv", "--left", left, "--right", right, "--model", trained)
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["comparison", "level"]
    assert lines[1].startswith("prior")
    assert any(line.startswith("birth_date") for line in lines)
    assert "decision: link" in lines[-1]


def test_explain_trains_on_the_input_when_no_model_is_given(data: Path) -> None:
    left, right, _ = duplicate_and_stranger(data)
    result = mpi("explain", data / "records.csv", "--left", left, "--right", right, "--json")
    assert json.loads(result.stdout)["decision"] == "link"


def test_explain_names_an_unknown_record_id(data: Path, trained: Path) -> None:
    result = mpi(
        "explain", data / "records.csv", "--left", "R0000", "--right", "NOPE", "--model", trained, code=2
    )
    assert "'NOPE'" in result.stderr
    assert "--right" in result.stderr


# --- help ---------------------------------------------------------------------------------------

COMMANDS = ("dedup", "train", "evaluate", "explain", "synth")


def test_top_level_help_lists_every_command() -> None:
    result = mpi("--help")
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help_explains_every_option_with_an_example(command: str) -> None:
    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout
    assert f"mpi {command}" in result.stdout
    for param in click_command.params:
        if param.param_type_name != "option":
            continue
        assert param.help, f"mpi {command} {param.opts[0]} has no help text"
        assert param.opts[0] in result.stdout


def test_a_line_longer_than_a_terminal_stays_whole_when_piped(tmp_path: Path) -> None:
    """Output read by a script or kept in a log is not broken where an 80-column terminal ends."""
    out = tmp_path / "synthetic-registrations-for-the-identity-vigilance-team"
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("mpi")), "synth", "--n", "20", "--seed", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "COLUMNS": "80"},
    )
    (line,) = [line for line in completed.stdout.splitlines() if line.startswith("wrote ")]
    assert line.startswith(f"wrote 20 records: {out / 'records.csv'}, ")
    assert line.endswith(str(out / "README.md")) and len(line) > 200


def test_a_command_runs_with_its_output_closed(tmp_path: Path) -> None:
    """A cron job or a service manager may start mpi with stdout or stderr closed."""
    mpi = Path(sys.executable).with_name("mpi")
    database = tmp_path / "mpi.db"
    for command in (f"'{mpi}' --help >&-", f"'{mpi}' db upgrade --db 'sqlite:///{database}' 2>&- >&-"):
        completed = subprocess.run(
            ["sh", "-c", command], capture_output=True, text=True, timeout=60, check=False
        )
        assert completed.returncode == 0, completed.stderr
    assert database.exists()
