"""The kernel's fast paths answer exactly like the simple ones.

Two speed-ups must never change a result: scoring chunks on several threads
(results come back in the order the chunks went in), and reading string
similarities of frequent values from a dense matrix instead of computing them
pair by pair.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mpi.domain.identifiers import complete_matricule
from mpi.matching import encoding
from mpi.matching.comparators import Comparator, build_comparator
from mpi.matching.encoding import JARO_WINKLER, EncodedRecords, Indices
from mpi.matching.engine import Engine
from mpi.matching.scoring import ScoredPairs, score_chunks
from mpi.matching.standardise import standardise
from mpi.rules.loader import default_parameters_path, load_parameters, load_rules

TODAY = dt.date(2025, 6, 1)
LINKAGE_RULES = Path(__file__).resolve().parents[3] / "matching_rules" / "linkage.toml"
FAMILY = (
    "Schmit", "Weber", "Muller", "Wagner", "Hoffmann", "Thill", "Ferreira dos Santos", "Da Silva", "Kieffer",
    "Reuter", "Schroeder", "Klein", "Majerus", "Goergen", "Weber Schmit", "Faber", "Becker", "Popescu",
)  # fmt: skip
GIVEN = (
    "Jean", "Marie", "Paul", "Anne", "Luc", "Sophie", "Marc", "Laura", "Jean-Pierre", "Maria Florentina",
    "Carlos", "Ana", "Nico", "Nicolas", "Fränz", "Francois", "Jos", "Joseph",
)  # fmt: skip
STREET = ("Rue de la Gare", "Route d'Arlon", "Grand-Rue", "Rue Principale", "Hauptstrooss", "Rue du Fort")
CITY = ("Luxembourg", "Esch-sur-Alzette", "Differdange", "Ettelbruck", "Wiltz")


def zipf_choice(rng: np.random.Generator, values: tuple[str, ...], n: int) -> np.ndarray:
    """Draw ``n`` values with falling frequencies, as names and places are distributed."""
    weights = 1.0 / np.arange(1, len(values) + 1)
    return rng.choice(np.array(values, dtype=object), n, p=weights / weights.sum())


def typo(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    """Drop one random character from a ``share`` of the values."""
    out = values.copy()
    for i in np.flatnonzero(rng.random(values.size) < share).tolist():
        word = str(out[i])
        cut = int(rng.integers(0, len(word)))
        out[i] = word[:cut] + word[cut + 1 :]
    return out


def raw_records(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    born = pd.to_datetime("1930-01-01") + pd.to_timedelta(rng.integers(0, 30_000, n), unit="D")
    payloads = [f"{d:%Y%m%d}{s:03d}" for d, s in zip(born, rng.integers(0, 1000, n).tolist(), strict=True)]
    frame = pd.DataFrame(
        {
            "record_id": [f"r{i}" for i in range(n)],
            "family_name": typo(rng, zipf_choice(rng, FAMILY, n), 0.2),
            "given_names": typo(rng, zipf_choice(rng, GIVEN, n), 0.2),
            "birth_date": born.strftime("%Y-%m-%d"),
            "sex": rng.choice(np.array(["M", "F"]), n),
            "national_id": [complete_matricule(p) if rng.random() < 0.6 else None for p in payloads],
            "street": typo(rng, zipf_choice(rng, STREET, n), 0.1),
            "house_number": rng.integers(1, 30, n).astype(str),
            "postcode": rng.choice(np.array(["1611", "1612", "4001", "9051"]), n),
            "city": typo(rng, zipf_choice(rng, CITY, n), 0.1),
        }
    )
    return frame.astype("string")


def encoded(frame: pd.DataFrame) -> EncodedRecords:
    """Freshly encoded records: a dense matrix, once built, is cached on the columns."""
    return EncodedRecords.from_frame(standardise(frame, today=TODAY).frame)


def random_pairs(n_records: int, n_pairs: int, seed: int) -> tuple[Indices, Indices]:
    rng = np.random.default_rng(seed)
    left = rng.integers(0, n_records, n_pairs).astype(np.int64)
    right = rng.integers(0, n_records, n_pairs).astype(np.int64)
    return left, right


# --- scoring on threads ---------------------------------------------------------------------------


def chunks_of(left: Indices, right: Indices, sizes: list[int]) -> list[tuple[int, Indices, Indices]]:
    """Consecutive chunks of the given sizes, tagged like blocking rules (a tag repeats)."""
    bounds = np.cumsum([0, *sizes])
    return [(k // 2, left[a:b], right[a:b]) for k, (a, b) in enumerate(itertools.pairwise(bounds))]


def scored_by(
    workers: int, frame: pd.DataFrame, chunks: list[tuple[int, Indices, Indices]]
) -> list[tuple[int, ScoredPairs]]:
    rules = load_rules()
    records = encoded(frame)
    scorer = Engine(rules).scorer(records, load_parameters(default_parameters_path(), rules))
    return list(score_chunks(scorer, iter(chunks), workers=workers))


def assert_same_scores(first: ScoredPairs, second: ScoredPairs) -> None:
    for field in ("left", "right", "levels", "match_weight", "match_probability", "linkable"):
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field), err_msg=field)


def test_scoring_on_two_threads_gives_the_results_of_one_in_the_same_order() -> None:
    frame = raw_records(400, seed=1)
    left, right = random_pairs(len(frame), 20_000, seed=2)
    # More chunks than the 2 * workers kept in flight, of uneven sizes so threads finish out of order.
    sizes = [6000, 50, 3000, 1, 4000, 200, 2500, 2249, 1000, 1000]
    chunks = chunks_of(left, right, sizes)
    sequential = scored_by(1, frame, chunks)
    threaded = scored_by(2, frame, chunks)
    assert [tag for tag, _ in threaded] == [tag for tag, _, _ in chunks]
    assert [tag for tag, _ in sequential] == [tag for tag, _, _ in chunks]
    for (_, one), (_, two), (_, chunk_left, _) in zip(sequential, threaded, chunks, strict=True):
        np.testing.assert_array_equal(one.left, chunk_left)
        assert_same_scores(one, two)
    # The sample is not trivial: every comparison agrees somewhere, and some pairs are capped.
    every_level = np.concatenate([s.levels for _, s in sequential])
    assert (every_level == 0).any(axis=0).all()
    linkable = np.concatenate([s.linkable for _, s in sequential])
    assert linkable.any() and not linkable.all()


def test_scoring_no_chunk_yields_nothing() -> None:
    assert scored_by(2, raw_records(20, seed=3), []) == []


# --- dense similarity matrix ----------------------------------------------------------------------


def comparators_of_both_profiles() -> list[Comparator]:
    """Every comparator of the MPI model and of the linkage profile, each configuration once."""
    configs = {c for path in (None, LINKAGE_RULES) for c in load_rules(path).comparisons}
    return [build_comparator(c) for c in sorted(configs, key=lambda c: (c.name, c.comparator))]


def all_levels(frame: pd.DataFrame, left: Indices, right: Indices) -> tuple[EncodedRecords, np.ndarray]:
    records = encoded(frame)
    usable = [c for c in comparators_of_both_profiles() if all(records.has(col) for col in c.required)]
    levels = [comparator.levels(records, left, right) for comparator in usable]
    return records, np.stack(levels, axis=1)


def test_dense_matrix_gives_the_levels_of_pairwise_similarity(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = raw_records(400, seed=4)
    left, right = random_pairs(len(frame), 600, seed=5)
    pairwise_records, pairwise = all_levels(frame, left, right)
    assert JARO_WINKLER.name not in pairwise_records.strings["family_name"]._dense  # too few pairs

    dense_top = 12
    monkeypatch.setattr(encoding, "DENSE_TOP", dense_top)
    monkeypatch.setattr(encoding, "DENSE_MIN_PAIRS", 0)
    dense_records, dense = all_levels(frame, left, right)

    names = dense_records.strings["family_name"]
    matrix = names._dense.get(JARO_WINKLER.name)
    assert matrix is not None and matrix.shape == (dense_top, dense_top)
    # Both kinds of pair occur: inside the matrix, and with a rarer value computed one by one.
    codes_l, codes_r = names.codes[left], names.codes[right]
    inside = (codes_l >= 0) & (codes_r >= 0) & (codes_l < dense_top) & (codes_r < dense_top)
    assert inside.any() and (~inside & (codes_l >= 0) & (codes_r >= 0)).any()
    np.testing.assert_array_equal(dense, pairwise)
    assert len(np.unique(pairwise)) >= 5  # the pairs reach several levels, not only "different"


def test_dense_and_pairwise_similarities_are_equal(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = raw_records(300, seed=6)
    left, right = random_pairs(len(frame), 500, seed=7)
    column = encoded(frame).strings["given_name"]
    both = (column.codes[left] >= 0) & (column.codes[right] >= 0)
    cl, cr = column.codes[left][both], column.codes[right][both]
    pairwise = column.similarity(JARO_WINKLER, cl, cr)
    monkeypatch.setattr(encoding, "DENSE_TOP", 8)
    monkeypatch.setattr(encoding, "DENSE_MIN_PAIRS", 0)
    dense_column = encoded(frame).strings["given_name"]
    np.testing.assert_array_equal(dense_column.codes, column.codes)  # the same frequency order
    np.testing.assert_allclose(dense_column.similarity(JARO_WINKLER, cl, cr), pairwise, atol=1e-6)


def test_vocabularies_put_the_most_frequent_values_first() -> None:
    frame = raw_records(400, seed=8)
    column = encoded(frame).strings["city"]
    assert (np.diff(column.counts) <= 0).all()
    assert column.vocab[0] == "luxembourg"  # the first and most frequent of the drawn cities
