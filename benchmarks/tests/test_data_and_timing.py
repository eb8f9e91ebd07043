"""FEBRL preparation, the FEBRL-like generator and the GNU time parser behave as the benchmarks assume."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rapidfuzz.distance import OSA

from benchmarks.febrl import prepare_febrl, truth_from_record_ids
from benchmarks.febrl_like import generate, typo
from benchmarks.metrics import load_truth, true_pair_count
from benchmarks.timing import parse_elapsed, parse_gnu_time, run_timed

FEBRL3_HEAD = (
    "rec_id, given_name, surname, street_number, address_1, address_2, suburb, postcode, state, "
    "date_of_birth, soc_sec_id\n"
    "rec-1-org, mitchell, green, 7, wallaby place, delmar, cleveland, 0819, sa, 19560409, 1804974\n"
    "rec-1-dup-0, mitchel, green, 7, wallaby place, , cleveland, 0819, sa, 19560409, 1804974\n"
    "rec-2-org, harley, mccarthy, , pridham street, milton, marsden, 3165, nsw, 19080419, 6089216\n"
)


def fake_febrl_dir(tmp_path: Path) -> Path:
    header, original, duplicate, _ = FEBRL3_HEAD.split("\n", maxsplit=3)
    source = tmp_path / "febrl"
    source.mkdir()
    (source / "dataset3.csv").write_text(FEBRL3_HEAD)
    (source / "dataset4a.csv").write_text(f"{header}\n{original}\n")
    (source / "dataset4b.csv").write_text(f"{header}\n{duplicate}\n")
    return source


def test_prepared_copies_are_stripped_text_without_the_national_number(tmp_path: Path) -> None:
    tasks = prepare_febrl(tmp_path / "work", fake_febrl_dir(tmp_path))
    copy = pd.read_csv(tasks["febrl3"].inputs[0], dtype=str, keep_default_na=False)
    assert "soc_sec_id" not in copy.columns
    assert list(copy.columns)[:3] == ["rec_id", "given_name", "surname"]
    assert copy.loc[0, "postcode"] == "0819"  # leading zero kept
    assert copy.loc[1, "given_name"] == "mitchel"  # no leading blank
    assert copy.loc[2, "street_number"] == ""
    truth = load_truth(tasks["febrl3"].truth)
    assert true_pair_count(truth) == 1
    assert tasks["febrl4"].link_only
    assert true_pair_count(load_truth(tasks["febrl4"].truth), link_only=True) == 1


def test_truth_refuses_ids_not_in_febrl_form() -> None:
    assert truth_from_record_ids(pd.Series(["rec-12-dup-3"]))["entity_id"].tolist() == ["12"]
    with pytest.raises(ValueError, match="not in FEBRL form"):
        truth_from_record_ids(pd.Series(["rec-12", "rec-1-org"]))


def test_typo_makes_exactly_one_edit() -> None:
    rng = np.random.default_rng(3)
    words = np.array(["jonathan", "schmit", "ab", "x"] * 50)
    edited = typo(words, rng)
    distances = np.array([OSA.distance(a, b) for a, b in zip(words, edited, strict=True)])
    assert distances[words == "x"].max() == 0  # too short to edit
    assert set(distances[words != "x"]) <= {0, 1}  # a substitution may redraw the same letter
    assert (distances[words != "x"] == 1).mean() > 0.8


def test_febrl_like_generator_is_reproducible_and_consistent() -> None:
    pools = {
        "given_names": np.array(["anna", "paul", "marie"]),
        "family_name": np.array(["weber", "schmit", "muller"]),
        "street": np.array(["rue de la gare"]),
        "city": np.array(["esch"]),
        "postcode": np.array(["4001"]),
    }
    records, truth = generate(2000, seed=5, pools=pools)
    again, _ = generate(2000, seed=5, pools=pools)
    pd.testing.assert_frame_equal(records, again)
    assert records["record_id"].is_unique
    assert set(truth["record_id"]) == set(records["record_id"])
    duplicates = truth["person_id"].duplicated().sum()
    assert 400 <= duplicates <= 600  # a quarter of the rows
    dates = records["birth_date"][records["birth_date"] != ""]
    assert pd.to_datetime(dates, format="%Y-%m-%d", errors="coerce").notna().all()


def test_gnu_time_report_is_parsed() -> None:
    report = (
        "\tUser time (seconds): 12.50\n\tSystem time (seconds): 1.25\n"
        "\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02:03.5\n"
        "\tMaximum resident set size (kbytes): 2097152\n"
    )
    assert parse_gnu_time(report) == (3723.5, 2048.0, 13.75)
    assert parse_elapsed("0:07.25") == 7.25


def test_run_timed_measures_and_enforces_the_budget(tmp_path: Path) -> None:
    finished = run_timed([sys.executable, "-c", "print('hello')"], tmp_path / "ok.log")
    assert finished.succeeded
    assert "hello" in (tmp_path / "ok.log").read_text()
    stuck = run_timed(
        [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "slow.log", timeout_seconds=0.5
    )
    assert stuck.timed_out and not stuck.succeeded
    assert stuck.wall_seconds < 10
