"""The Splink side cleans synthetic input fairly and writes mpi's output layout."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("splink")

from benchmarks.metrics import cluster_pair_scores, load_truth, pair_scores, read_clusters, read_pairs
from benchmarks.splink_dedup import connect, load_inputs, prepare_inputs, run
from benchmarks.splink_models import synthetic_recipe


def test_synthetic_cleaning_folds_case_accents_and_local_formats(tmp_path: Path) -> None:
    source = tmp_path / "records.csv"
    source.write_text(
        "record_id,family_name,given_names,birth_date,postcode,phone,national_id,sex,city\n"
        "1,DA SILVA,Jean-Pierre,1980-01-02,L-1234,+352 621 123 456,1980 0102 12345,U,Esch-sur-Alzette\n"
        "2,Müller,Zoé,1980-01-02,1234,00352621123456,,F,\n"
    )
    connection = connect(1)
    (prepared,) = prepare_inputs(connection, load_inputs(connection, [source]), "synthetic")
    rows = prepared.df().set_index("record_id")
    assert rows.loc["1", "family_name"] == "da silva"
    assert rows.loc["1", "given_names"] == "jean pierre"
    assert rows.loc["2", "family_name"] == "muller"
    assert rows.loc["2", "given_names"] == "zoe"
    assert rows.loc["1", "postcode"] == rows.loc["2", "postcode"] == "1234"
    assert rows.loc["1", "phone"] == rows.loc["2", "phone"] == "621123456"
    assert rows.loc["1", "national_id"] == "1980010212345"
    assert pd.isna(rows.loc["1", "sex"])  # "U" carries no information
    assert rows.loc["1", "city"] == "esch sur alzette"
    assert pd.isna(rows.loc["2", "city"])


def test_synthetic_recipe_needs_the_core_columns() -> None:
    with pytest.raises(ValueError, match="birth_date"):
        synthetic_recipe(["record_id", "given_names", "family_name"])
    recipe = synthetic_recipe(["record_id", "given_names", "family_name", "birth_date", "national_id"])
    compared = [
        c["output_column_name"] for c in recipe.settings.create_settings_dict("duckdb")["comparisons"]
    ]
    assert compared == ["given_names", "family_name", "birth_date", "national_id"]


@pytest.mark.slow
def test_splink_run_writes_pairs_and_clusters_that_score_well_on_febrl3(tmp_path: Path) -> None:
    from benchmarks.febrl import prepare_febrl

    tasks = prepare_febrl(tmp_path / "febrl")
    summary = run(
        list(tasks["febrl3"].inputs),
        tmp_path / "out",
        recipe_name="febrl",
        link_only=False,
        threads=2,
        threshold=0.5,
        pairs_floor=None,
        seed=42,
    )
    assert summary["records"] == 5000
    truth = load_truth(tasks["febrl3"].truth)
    clusters = read_clusters(tmp_path / "out" / "clusters.csv")
    assert len(clusters) == 5000
    # Splink's tutorial model without soc_sec_id is strong on FEBRL3; a broken run is not.
    assert pair_scores(read_pairs(tmp_path / "out" / "pairs.csv"), truth).f1 > 0.95
    assert cluster_pair_scores(clusters, truth).f1 > 0.95
