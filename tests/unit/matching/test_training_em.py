"""Training: EM recovers the parameters data were generated with; guards warn when training is doubtful."""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from mpi.matching.comparators import build_comparator
from mpi.matching.encoding import EncodedRecords
from mpi.matching.engine import Engine
from mpi.matching.standardise import standardise
from mpi.matching.training import (
    Patterns,
    expectation_maximisation,
    train_supervised,
    train_unsupervised,
)
from mpi.rules.columns import SOURCE_COLUMN
from mpi.rules.loader import load_rules
from mpi.rules.schema import Rules

TODAY = dt.date(2025, 6, 1)
FAMILY = (
    "Schmit",
    "Weber",
    "Wagner",
    "Hoffmann",
    "Thill",
    "Kieffer",
    "Reuter",
    "Majerus",
    "Goergen",
    "Faber",
)
GIVEN = ("Jean", "Marie", "Paul", "Anne", "Luc", "Sophie", "Marc", "Laura", "Tom", "Lisa", "Carlos", "Ana")

# Known parameters of three comparisons with 3, 4 and 2 levels (level 0 = strongest agreement).
TRUE_M = (np.array([0.8, 0.15, 0.05]), np.array([0.6, 0.2, 0.15, 0.05]), np.array([0.9, 0.1]))
TRUE_U = (np.array([0.02, 0.08, 0.9]), np.array([0.01, 0.04, 0.15, 0.8]), np.array([0.3, 0.7]))
MATCH_SHARE = 0.15


def fast_rules(**training: object) -> Rules:
    """The default rules with a small u sample, so a unit test trains in well under a second."""
    rules = load_rules()
    update = {"u_sample_pairs": 20_000, **training}
    return rules.model_copy(update={"training": rules.training.model_copy(update=update)})


def simulate_levels(n_pairs: int, seed: int, missing_share: float = 0.0) -> npt.NDArray[np.int8]:
    """Level matrix of ``n_pairs`` pairs drawn from TRUE_M (matches) and TRUE_U (non-matches)."""
    rng = np.random.default_rng(seed)
    is_match = rng.random(n_pairs) < MATCH_SHARE
    columns = []
    for m, u in zip(TRUE_M, TRUE_U, strict=True):
        draw = rng.random(n_pairs)
        from_m = np.searchsorted(np.cumsum(m), draw, side="right")
        from_u = np.searchsorted(np.cumsum(u), draw, side="right")
        level = np.where(is_match, from_m, from_u).astype(np.int8)
        level[rng.random(n_pairs) < missing_share] = -1
        columns.append(level)
    return np.stack(columns, axis=1)


def starting_m() -> list[npt.NDArray[np.float64]]:
    # Agreement more likely than disagreement, but far from the truth.
    return [np.array([0.5, 0.3, 0.2]), np.array([0.4, 0.3, 0.2, 0.1]), np.array([0.6, 0.4])]


@pytest.mark.parametrize("missing_share", [0.0, 0.2])
def test_em_recovers_known_m_with_u_fixed(missing_share: float) -> None:
    patterns = Patterns.of(simulate_levels(300_000, seed=11, missing_share=missing_share))
    result = expectation_maximisation(
        patterns, starting_m(), list(TRUE_U), [True, True, True], max_iterations=200, tolerance=1e-7
    )
    assert result.converged
    for estimated, true in zip(result.m, TRUE_M, strict=True):
        np.testing.assert_allclose(estimated, true, atol=0.02)
    assert result.proportion == pytest.approx(MATCH_SHARE, abs=0.01)


def test_em_leaves_inactive_comparisons_untouched() -> None:
    patterns = Patterns.of(simulate_levels(50_000, seed=5))
    start = starting_m()
    result = expectation_maximisation(patterns, start, list(TRUE_U), [True, False, True], max_iterations=100)
    np.testing.assert_array_equal(result.m[1], start[1])
    np.testing.assert_allclose(result.m[0], TRUE_M[0], atol=0.03)


def test_em_stopped_early_reports_non_convergence() -> None:
    patterns = Patterns.of(simulate_levels(50_000, seed=5))
    result = expectation_maximisation(patterns, starting_m(), list(TRUE_U), [True] * 3, max_iterations=1)
    assert (result.iterations, result.converged) == (1, False)


def test_patterns_collapse_pairs_into_distinct_rows_with_counts() -> None:
    levels = np.array([[0, 1], [2, -1], [0, 1], [0, 1], [2, -1], [1, 0]], dtype=np.int8)
    patterns = Patterns.of(levels)
    as_dict = {
        tuple(row): count for row, count in zip(patterns.levels.tolist(), patterns.counts, strict=True)
    }
    assert as_dict == {(0, 1): 3.0, (2, -1): 2.0, (1, 0): 1.0}


# --- training on records --------------------------------------------------------------------------


def people(n_people: int, seed: int, *, surname_typo_share: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    """Raw batch-schema records: each person twice, the copy's surname typed wrong at the given share."""
    rng = np.random.default_rng(seed)
    family = rng.choice(FAMILY, n_people)
    given = rng.choice(GIVEN, n_people)
    dates = pd.to_datetime("1930-01-01") + pd.to_timedelta(rng.integers(0, 30_000, n_people), unit="D")
    born = dates.strftime("%Y-%m-%d").to_numpy()
    postcode = rng.integers(1000, 9999, n_people).astype(str)
    sex = rng.choice(np.array(["M", "F"]), n_people)
    typo = rng.random(n_people) < surname_typo_share
    copy_family = np.where(typo, np.char.add(family.astype(str), "x"), family)
    frame = pd.DataFrame(
        {
            "family_name": np.r_[family, copy_family],
            "given_names": np.r_[given, given],
            "birth_date": np.r_[born, born],
            "sex": np.r_[sex, sex],
            "postcode": np.r_[postcode, postcode],
        }
    ).astype("string")
    frame.insert(0, "record_id", [f"r{i}" for i in range(2 * n_people)])
    truth = np.r_[np.arange(n_people), np.arange(n_people)].astype(np.int64)
    return frame, truth


def comparisons_supported_by(frame: pd.DataFrame, rules: Rules) -> set[str]:
    """Names of the comparisons whose required standardised columns come from columns of ``frame``."""
    return {
        c.name
        for c in map(build_comparator, rules.comparisons)
        if not c.usable_with(lambda column: SOURCE_COLUMN[column] in frame.columns)
    }


def encode(frame: pd.DataFrame) -> EncodedRecords:
    return EncodedRecords.from_frame(standardise(frame, today=TODAY).frame)


def test_unsupervised_training_stamps_the_rules_and_separates_matches() -> None:
    frame, _ = people(300, seed=1)
    rules = fast_rules()
    engine = Engine(rules)
    records = encode(frame)
    params, report = engine.train(records)
    assert (params.rules_name, params.rules_version, params.method) == (
        rules.model.name,
        rules.model.version,
        "em",
    )
    assert params.trained_on_records == 600
    # Every comparison whose input columns the file has is trained, and only those.
    assert set(params.comparisons) == comparisons_supported_by(frame, rules)
    assert "address" in params.comparisons  # postcode alone feeds the address comparison
    birth_date = params.comparisons["birth_date"]
    assert birth_date.weights()[0] > 5  # agreeing on a birth date is strong evidence
    assert birth_date.weights()[-1] < 0
    assert report.em_passes and all("pairs" in p or "skipped" in p for p in report.em_passes)


def test_non_convergence_is_warned_about() -> None:
    frame, _ = people(300, seed=1)
    records = encode(frame)
    engine = Engine(fast_rules(em_max_iterations=1))
    comparators, _ = engine.usable_comparators(records)
    params, report = train_unsupervised(comparators, records, engine.rules, link_only=False)
    warnings = [w for w in params.warnings if "did not converge in 1 iterations" in w]
    assert warnings, params.warnings
    assert any(p.get("converged") is False for p in report.em_passes)


def test_supervised_m_is_the_share_of_each_level_among_true_pairs() -> None:
    frame, truth = people(400, seed=2, surname_typo_share=0.25)
    records = encode(frame)
    engine = Engine(fast_rules())
    comparators, _ = engine.usable_comparators(records)
    params, _ = train_supervised(comparators, records, engine.rules, truth, link_only=False)
    assert params.method == "supervised"
    family = params.comparisons["family_name"]
    typos = 1.0 - family.m[0]
    assert typos == pytest.approx(0.25, abs=0.06)  # the drawn share of typed-wrong copies
    # The copies repeat every other value, so each true pair sits in the level of full agreement.
    for name in ("given_name", "birth_date", "sex"):
        assert params.comparisons[name].m[0] == pytest.approx(1.0, abs=1e-4)
    address = params.comparisons["address"]  # a postcode alone shows the locality, not the address
    assert address.m[address.labels.index("same_locality")] == pytest.approx(1.0, abs=1e-4)
    assert params.prior == pytest.approx(400 / (800 * 799 / 2))


def test_supervised_m_matches_counted_level_shares_exactly() -> None:
    frame, truth = people(200, seed=3, surname_typo_share=0.3)
    records = encode(frame)
    engine = Engine(fast_rules())
    comparators, _ = engine.usable_comparators(records)
    family = next(c for c in comparators if c.name == "family_name")
    true_levels = family.levels(records, np.arange(200), np.arange(200, 400))
    expected = np.bincount(true_levels, minlength=len(family.labels)) / 200
    params, _ = train_supervised(comparators, records, engine.rules, truth, link_only=False)
    np.testing.assert_allclose(params.comparisons["family_name"].m, expected, atol=1e-4)


def test_exact_level_with_lower_m_than_a_fuzzier_one_is_warned_about() -> None:
    # Most copies carry a typo, so among true matches "exact" is rarer than a fuzzy level.
    frame, truth = people(200, seed=4, surname_typo_share=0.8)
    records = encode(frame)
    params, _ = Engine(fast_rules()).train(records, truth=truth)
    assert any(w.startswith("family_name: m of level 'exact'") for w in params.warnings), params.warnings


def test_a_very_low_prior_is_warned_about() -> None:
    frame, truth = people(1000, seed=5)
    truth = np.arange(truth.size, dtype=np.int64)
    truth[1000] = 0  # one true pair among about two million
    params, _ = Engine(fast_rules()).train(encode(frame), truth=truth)
    assert params.prior < 1e-6
    assert any("prior probability of a match is very low" in w for w in params.warnings), params.warnings


def test_no_deterministic_pair_is_warned_about() -> None:
    frame, _ = people(200, seed=6)
    frame = frame.drop(columns=["postcode"])  # the deterministic rules need postcode or matricule
    params, report = Engine(fast_rules()).train(encode(frame))
    assert report.deterministic_pairs == 0
    assert any("no pair satisfies a deterministic rule" in w for w in params.warnings)


def test_training_is_reproducible_with_the_same_seed() -> None:
    frame, _ = people(200, seed=7)
    records = encode(frame)
    first, _ = Engine(fast_rules()).train(records)
    second, _ = Engine(fast_rules()).train(records)
    assert first == second
