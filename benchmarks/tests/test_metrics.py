"""The benchmark metrics agree with hand counts and with brute-force pair enumeration."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.metrics import (
    Scores,
    bcubed_scores,
    canonical_pairs,
    cluster_pair_scores,
    normalise_truth,
    pair_scores,
    true_pair_count,
)


def truth_of(entities: dict[str, str], sources: dict[str, str] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({"record_id": list(entities), "entity_id": list(entities.values())})
    if sources is not None:
        frame["source"] = frame["record_id"].map(sources)
    return frame


def pairs_of(*pairs: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["record_id_l", "record_id_r"])


def clusters_of(assignment: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"record_id": list(assignment), "cluster_id": list(assignment.values())})


DEDUP_TRUTH = truth_of({"a1": "A", "a2": "A", "a3": "A", "b1": "B", "b2": "B", "c1": "C"})


def test_dedup_pairs_count_each_unordered_pair_once() -> None:
    predicted = pairs_of(("a1", "a2"), ("a2", "a1"), ("a2", "a3"), ("a1", "b1"), ("c1", "c1"))
    scores = pair_scores(predicted, DEDUP_TRUTH)
    # a1-a2 (twice, once reversed) and a2-a3 are right, a1-b1 is wrong, c1-c1 is not a pair.
    assert (scores.true_positives, scores.predicted, scores.actual) == (2, 3, 4)
    assert scores.precision == pytest.approx(2 / 3)
    assert scores.recall == pytest.approx(2 / 4)
    assert scores.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_link_only_truth_counts_only_pairs_across_sources() -> None:
    truth = truth_of(
        {"x1": "X", "x2": "X", "y1": "X", "z1": "Z"},
        sources={"x1": "a", "x2": "a", "y1": "b", "z1": "b"},
    )
    assert true_pair_count(truth, link_only=False) == 3
    assert true_pair_count(truth, link_only=True) == 2
    # x1-x2 is the same person but inside one source, so not a link-only true pair.
    scores = pair_scores(pairs_of(("x1", "y1"), ("x1", "x2"), ("x2", "z1")), truth, link_only=True)
    assert (scores.true_positives, scores.predicted, scores.actual) == (1, 3, 2)


def test_pairs_naming_unknown_records_are_refused() -> None:
    with pytest.raises(ValueError, match="absent from the truth"):
        pair_scores(pairs_of(("a1", "zz")), DEDUP_TRUTH)


def test_empty_prediction_has_full_precision_and_no_recall() -> None:
    scores = pair_scores(pairs_of(), DEDUP_TRUTH)
    assert (scores.precision, scores.recall, scores.f1) == (1.0, 0.0, 0.0)


def test_cluster_pairs_and_bcubed_on_a_hand_worked_example() -> None:
    # Clusters {a1,a2,b1} {a3} {b2,c1}; entities A={a1,a2,a3}, B={b1,b2}, C={c1}.
    clusters = clusters_of({"a1": "k", "a2": "k", "b1": "k", "a3": "m", "b2": "n", "c1": "n"})
    pairwise = cluster_pair_scores(clusters, DEDUP_TRUTH)
    assert (pairwise.true_positives, pairwise.predicted, pairwise.actual) == (1, 4, 4)
    bcubed = bcubed_scores(clusters, DEDUP_TRUTH)
    # Per-record precision: a1,a2: 2/3; b1: 1/3; a3: 1; b2,c1: 1/2.
    assert bcubed.precision == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 + 1 / 2 + 1 / 2) / 6)
    # Per-record recall: a1,a2: 2/3; a3: 1/3; b1,b2: 1/2; c1: 1.
    assert bcubed.recall == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 / 2 + 1 / 2 + 1) / 6)


def test_records_missing_from_clusters_are_singletons() -> None:
    perfect_but_partial = clusters_of({"a1": "1", "a2": "1", "a3": "1", "b1": "2", "b2": "2"})
    assert cluster_pair_scores(perfect_but_partial, DEDUP_TRUTH).f1 == 1.0
    assert bcubed_scores(perfect_but_partial, DEDUP_TRUTH).f1 == 1.0
    all_singletons = clusters_of({})
    assert cluster_pair_scores(all_singletons, DEDUP_TRUTH).recall == 0.0
    assert bcubed_scores(all_singletons, DEDUP_TRUTH).precision == 1.0


def test_clusters_with_unknown_or_repeated_records_are_refused() -> None:
    with pytest.raises(ValueError, match="absent from the truth"):
        cluster_pair_scores(clusters_of({"a1": "1", "zz": "1"}), DEDUP_TRUTH)
    doubled = pd.DataFrame({"record_id": ["a1", "a1"], "cluster_id": ["1", "2"]})
    with pytest.raises(ValueError, match="two clusters"):
        bcubed_scores(doubled, DEDUP_TRUTH)


def test_truth_accepts_the_person_id_column_of_mpi_synth() -> None:
    truth = normalise_truth(pd.DataFrame({"record_id": ["1", "2"], "person_id": ["p", "p"]}))
    assert list(truth.columns) == ["record_id", "entity_id"]
    assert true_pair_count(truth) == 1


def test_canonical_pairs_are_unordered_and_unique() -> None:
    left = np.array([3, 1, 1, 2], dtype=np.int64)
    right = np.array([1, 3, 1, 0], dtype=np.int64)
    assert canonical_pairs(left, right).tolist() == [[0, 2], [1, 3]]


def brute_force_cluster_pair_scores(clusters: dict[str, str], entities: dict[str, str]) -> Scores:
    cluster_of = {record: clusters.get(record, f"single-{record}") for record in entities}
    predicted = {p for p in combinations(sorted(entities), 2) if cluster_of[p[0]] == cluster_of[p[1]]}
    actual = {p for p in combinations(sorted(entities), 2) if entities[p[0]] == entities[p[1]]}
    return Scores.from_counts(len(predicted & actual), len(predicted), len(actual))


labelled_records = st.dictionaries(
    keys=st.text(alphabet="abcdefgh", min_size=1, max_size=3),
    values=st.tuples(st.sampled_from("PQRS"), st.sampled_from("klmn")),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(labelled_records)
def test_cluster_pair_scores_match_brute_force_enumeration(records: dict[str, tuple[str, str]]) -> None:
    entities = {record: entity for record, (entity, _) in records.items()}
    clusters = {record: cluster for record, (_, cluster) in records.items()}
    fast = cluster_pair_scores(clusters_of(clusters), truth_of(entities))
    slow = brute_force_cluster_pair_scores(clusters, entities)
    assert (fast.true_positives, fast.predicted, fast.actual) == (
        slow.true_positives,
        slow.predicted,
        slow.actual,
    )


@settings(max_examples=150, deadline=None)
@given(labelled_records)
def test_pair_scores_of_cluster_pairs_equal_cluster_pair_scores(records: dict[str, tuple[str, str]]) -> None:
    entities = {record: entity for record, (entity, _) in records.items()}
    clusters = {record: cluster for record, (_, cluster) in records.items()}
    implied = [p for p in combinations(sorted(records), 2) if clusters[p[0]] == clusters[p[1]]]
    from_pairs = pair_scores(pairs_of(*implied), truth_of(entities))
    from_clusters = cluster_pair_scores(clusters_of(clusters), truth_of(entities))
    assert from_pairs == from_clusters
