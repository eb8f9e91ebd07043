"""Accuracy floor on the committed synthetic Luxembourg sample (data/synthetic/).

The sample has the hard cases of DOMAIN.md: twins, parent and child with the
same name, spouses, married names, swaps, nicknames, mistyped matricules. The
floors are documented in benchmarks/RESULTS.md; precision is held higher than
recall because an overlay (two people merged) is the worse failure.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mpi.batch.local import JobOptions, run_dedup

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "synthetic"


@pytest.mark.slow
def test_default_model_on_the_committed_sample(tmp_path: Path) -> None:
    summary = run_dedup(
        JobOptions(inputs=[SAMPLE / "records.csv"], out=tmp_path, truth_path=SAMPLE / "truth.csv")
    )
    links = summary["accuracy"]["pairwise_links"]
    clusters = summary["accuracy"]["clusters"]
    assert links["precision"] >= 0.995, links
    assert links["f1"] >= 0.975, links
    assert clusters["precision"] >= 0.99, clusters
    assert clusters["f1"] >= 0.98, clusters
    assert summary["blocking"]["pair_completeness"] >= 0.99


@pytest.mark.slow
def test_twins_in_the_sample_are_never_linked(tmp_path: Path) -> None:
    run_dedup(JobOptions(inputs=[SAMPLE / "records.csv"], out=tmp_path))
    truth = pd.read_csv(SAMPLE / "truth.csv", dtype=str).set_index("record_id")["person_id"]
    twins = pd.read_csv(SAMPLE / "hard_negatives.csv", dtype=str)
    twins = twins[twins["relation"] == "twin"]
    assert len(twins) > 0
    twin_pairs = {frozenset(p) for p in twins[["person_id", "other_person_id"]].itertuples(index=False)}
    pairs = pd.read_csv(tmp_path / "pairs.csv", dtype=str)
    links = pairs[pairs["decision"] == "link"]
    persons = zip(truth[links["record_id_l"]], truth[links["record_id_r"]], strict=True)
    linked_twins = [p for p in persons if frozenset(p) in twin_pairs]
    # A twin link is an overlay; a handful of twins sharing a first given name may
    # still score like one person, so the floor is "almost never", measured.
    assert len(linked_twins) <= max(2, len(twin_pairs) // 200), linked_twins[:5]
