"""Scoring (Fellegi-Sunter weights, term frequencies, probabilities) and clustering into persons."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpi.matching.clustering import cluster_size_distribution, connected_clusters
from mpi.matching.comparators import build_comparator
from mpi.matching.encoding import EncodedRecords
from mpi.matching.explain import explain_pair
from mpi.matching.scoring import (
    TF_ADJUSTMENT_BOUND,
    Scorer,
    probability_to_weight,
    weight_to_probability,
)
from mpi.matching.standardise import standardise
from mpi.rules.parameters import LevelParameters, TrainedParameters
from mpi.rules.schema import Comparison

TODAY = dt.date(2025, 6, 1)
SEX = Comparison(name="sex", comparator="exact", column="sex")
BIRTH_DATE = Comparison(name="birth_date", comparator="birth_date", column="birth_date")
SURNAME = Comparison(
    name="family_name",
    comparator="surname",
    column="family_name",
    thresholds=(0.92, 0.8),
    term_frequency=True,
)
PRIOR = 0.001


def parameters(surname_u_exact: float = 0.01) -> TrainedParameters:
    surname_u = (surname_u_exact, 0.01, 0.02, 0.02, 0.05, 1.0 - surname_u_exact - 0.1)
    return TrainedParameters(
        rules_name="test",
        rules_version="1",
        method="em",
        prior=PRIOR,
        trained_on_records=0,
        comparisons={
            "sex": LevelParameters(labels=("exact", "different"), m=(0.98, 0.02), u=(0.5, 0.5)),
            "birth_date": LevelParameters(
                labels=build_comparator(BIRTH_DATE).labels,
                m=(0.8, 0.05, 0.05, 0.04, 0.05, 0.01),
                u=(0.001, 0.001, 0.002, 0.001, 0.02, 0.975),
            ),
            "family_name": LevelParameters(
                labels=build_comparator(SURNAME).labels,
                m=(0.7, 0.05, 0.1, 0.05, 0.05, 0.05),
                u=surname_u,
            ),
        },
    )


def encode(rows: list[dict[str, str | None]]) -> EncodedRecords:
    raw = pd.DataFrame(rows).astype("string")
    raw.insert(0, "record_id", [f"r{i}" for i in range(len(rows))])
    return EncodedRecords.from_frame(standardise(raw, today=TODAY).frame)


def scorer_for(records: EncodedRecords, *comparisons: Comparison) -> Scorer:
    return Scorer([build_comparator(c) for c in comparisons], parameters(), records)


def test_level_weights_are_log2_of_m_over_u() -> None:
    scorer = scorer_for(encode([{"sex": "M"}]), SEX, BIRTH_DATE)
    for compiled in scorer.compiled:
        level = parameters().comparisons[compiled.comparator.name]
        expected = [math.log2(m / u) for m, u in zip(level.m, level.u, strict=True)]
        np.testing.assert_allclose(compiled.table[:-1], expected, rtol=1e-6)
    assert scorer.prior_weight == pytest.approx(math.log2(PRIOR / (1 - PRIOR)))


def test_pair_weight_is_prior_plus_the_weight_of_each_level() -> None:
    records = encode(
        [
            {"sex": "M", "birth_date": "1980-03-15"},
            {"sex": "F", "birth_date": "1980-03-15"},
            {"sex": "M", "birth_date": "1980-05-03"},
            {"sex": "M", "birth_date": "1980-03-05"},
        ]
    )
    scorer = scorer_for(records, SEX, BIRTH_DATE)
    scored = scorer.score(np.array([0, 1, 2]), np.array([1, 0, 3]))
    sex_w = dict(zip(("exact", "different"), parameters().comparisons["sex"].weights(), strict=True))
    date_labels = build_comparator(BIRTH_DATE).labels
    bd_w = dict(zip(date_labels, parameters().comparisons["birth_date"].weights(), strict=True))
    prior = math.log2(PRIOR / (1 - PRIOR))
    expected = [
        prior + sex_w["different"] + bd_w["exact"],
        prior + sex_w["different"] + bd_w["exact"],  # symmetric
        prior + sex_w["exact"] + bd_w["day_month_swapped"],
    ]
    np.testing.assert_allclose(scored.match_weight, expected, rtol=1e-5)
    np.testing.assert_allclose(scored.match_probability, 1 / (1 + 2.0 ** -np.array(expected)), rtol=1e-5)


def test_a_missing_value_adds_nothing() -> None:
    records = encode(
        [
            {"sex": "M", "birth_date": "1980-03-15"},
            {"sex": "M", "birth_date": None},
            {"sex": "M", "birth_date": "not a date"},
        ]
    )
    scorer = scorer_for(records, SEX, BIRTH_DATE)
    scored = scorer.score(np.array([0, 0]), np.array([1, 2]))
    assert scored.levels[:, 1].tolist() == [-1, -1]
    only_sex = scorer.prior_weight + parameters().comparisons["sex"].weights()[0]
    np.testing.assert_allclose(scored.match_weight, [only_sex, only_sex], rtol=1e-6)


def test_a_rare_exact_surname_scores_higher_than_a_common_one() -> None:
    names = ["Schmit"] * 10 + ["Zenner"] * 2 + ["Weber"] * 4
    records = encode([{"family_name": n, "sex": "M"} for n in names])
    scorer = scorer_for(records, SURNAME, SEX)
    scored = scorer.score(np.array([0, 10]), np.array([1, 11]))
    common, rare = scored.match_weight.tolist()
    assert scored.levels[:, 0].tolist() == [0, 0]
    assert rare > common
    # Re-weighted by log2(u_exact / frequency): the gap is log2 of the frequency ratio, 10/2.
    assert rare - common == pytest.approx(math.log2(5), rel=1e-4)
    adjustment = scorer.tf_adjustment(0, scored.levels[:, 0], np.array([0, 10]))
    assert adjustment is not None
    np.testing.assert_allclose(
        adjustment, [math.log2(0.01 / (10 / 16)), math.log2(0.01 / (2 / 16))], rtol=1e-4
    )


def test_term_frequency_touches_only_exact_agreement() -> None:
    records = encode([{"family_name": n} for n in ["Schmit", "Schmitt", "Schmit"]])
    scorer = scorer_for(records, SURNAME)
    levels = scorer.levels(np.array([0, 0]), np.array([1, 2]))
    adjustment = scorer.tf_adjustment(0, levels[:, 0], np.array([0, 0]))
    assert adjustment is not None
    assert levels[:, 0].tolist() == [2, 0]
    assert adjustment[0] == 0.0
    assert adjustment[1] != 0.0


def test_a_very_common_surname_cannot_veto_a_match_on_its_own() -> None:
    # log2(0.0001 / (50/51)) is about -13: the adjustment stops at its bound.
    records = encode([{"family_name": n} for n in ["Schmit"] * 50 + ["Weber"]])
    scorer = Scorer([build_comparator(SURNAME)], parameters(surname_u_exact=0.0001), records)
    levels = scorer.levels(np.array([0]), np.array([1]))
    adjustment = scorer.tf_adjustment(0, levels[:, 0], np.array([0]))
    assert adjustment is not None
    assert float(adjustment[0]) == pytest.approx(-TF_ADJUSTMENT_BOUND)


def test_explanation_steps_add_up_to_the_pair_weight() -> None:
    names = ["Schmit", "Schmit", "Weber"]
    records = encode([{"family_name": n, "sex": s} for n, s in zip(names, "MFM", strict=True)])
    scorer = scorer_for(records, SURNAME, SEX)
    explanation = explain_pair(scorer, 0, 1)
    assert [(s.comparison, s.level) for s in explanation.steps] == [
        ("family_name", "exact"),
        ("sex", "different"),
    ]
    total = explanation.prior_weight + sum(s.weight + s.term_frequency_adjustment for s in explanation.steps)
    assert explanation.match_weight == pytest.approx(total, rel=1e-6)
    assert explanation.steps[-1].cumulative == pytest.approx(explanation.match_weight, rel=1e-6)
    scored = scorer.score(np.array([0]), np.array([1]))
    assert explanation.match_weight == pytest.approx(float(scored.match_weight[0]), rel=1e-5)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-60, 60, allow_nan=False), min_size=2, max_size=50))
def test_probability_is_monotone_in_weight(weights: list[float]) -> None:
    ordered = np.sort(np.array(weights, dtype=np.float32))
    probability = weight_to_probability(ordered)
    assert np.all(np.diff(probability) >= 0)
    assert np.all((probability >= 0) & (probability <= 1))


def test_weight_and_probability_are_inverse() -> None:
    assert float(weight_to_probability(np.array([0.0], dtype=np.float32))[0]) == 0.5
    for p in (0.001, 0.2, 0.5, 0.95, 0.999):
        w = probability_to_weight(p)
        assert float(weight_to_probability(np.array([w], dtype=np.float32))[0]) == pytest.approx(p, rel=1e-5)


# --- clustering ---------------------------------------------------------------------------------


def test_connected_components_labelled_by_their_smallest_member() -> None:
    labels = connected_clusters(7, np.array([4, 1, 5]), np.array([3, 0, 4]))
    assert labels.tolist() == [0, 0, 2, 3, 3, 3, 6]


def test_records_without_links_are_their_own_cluster() -> None:
    labels = connected_clusters(3, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    assert labels.tolist() == [0, 1, 2]
    assert connected_clusters(0, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)).size == 0


def _reference_components(n: int, edges: list[tuple[int, int]]) -> list[int]:
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = root(a), root(b)
        parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for x in range(n):
        members.setdefault(root(x), []).append(x)
    smallest = {r: min(m) for r, m in members.items()}
    return [smallest[root(x)] for x in range(n)]


graphs = st.integers(1, 30).flatmap(
    lambda n: st.tuples(
        st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=40)
    )
)


@settings(max_examples=100, deadline=None)
@given(graphs)
def test_clusters_are_connected_components_whatever_the_edge_order_or_direction(
    case: tuple[int, list[tuple[int, int]]],
) -> None:
    n, edges = case
    expected = _reference_components(n, edges)
    assert connected_clusters(n, *_edge_arrays(edges)).tolist() == expected
    reversed_edges = [(b, a) for a, b in reversed(edges)]
    assert connected_clusters(n, *_edge_arrays(reversed_edges)).tolist() == expected


def _edge_arrays(edges: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    left = np.array([a for a, _ in edges], dtype=np.int64)
    right = np.array([b for _, b in edges], dtype=np.int64)
    return left, right


def test_cluster_size_distribution_counts_clusters_per_size() -> None:
    labels = connected_clusters(8, np.array([0, 1, 3]), np.array([1, 2, 4]))
    assert cluster_size_distribution(labels) == {"1": 3, "2": 1, "3": 1}
    assert cluster_size_distribution(np.zeros(0, dtype=np.int64)) == {}
