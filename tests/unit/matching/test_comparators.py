"""Each comparison level of the default model, on small hand-built records.

Records go through the real standardiser and encoder, so a level here is the
level a batch job or the online MPI would see for the same raw values.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rapidfuzz.distance import JaroWinkler

from mpi.domain.identifiers import complete_matricule
from mpi.matching import encoding
from mpi.matching.comparators import NULL_LEVEL, Comparator, build_comparator
from mpi.matching.encoding import EncodedRecords
from mpi.matching.standardise import standardise
from mpi.rules.loader import load_rules
from mpi.rules.schema import Comparison

TODAY = dt.date(2025, 6, 1)
LINKAGE_RULES = Path(__file__).resolve().parents[3] / "matching_rules" / "linkage.toml"
# The MPI default model and the linkage profile (separate address comparisons) together.
DEFAULT_COMPARATORS = {
    c.name: build_comparator(c)
    for rules in (load_rules(LINKAGE_RULES), load_rules())
    for c in rules.comparisons
}


def encode(rows: list[dict[str, Any]]) -> EncodedRecords:
    raw = pd.DataFrame(rows).astype("string")
    raw.insert(0, "record_id", [f"r{i}" for i in range(len(rows))])
    return EncodedRecords.from_frame(standardise(raw, today=TODAY).frame)


def label(comparator: Comparator | str, left: dict[str, Any], right: dict[str, Any]) -> str:
    """The level label the comparator gives to the pair (left, right); "missing" for the null level."""
    if isinstance(comparator, str):
        comparator = DEFAULT_COMPARATORS[comparator]
    records = encode([left, right])
    level = int(comparator.levels(records, np.array([0]), np.array([1]))[0])
    return "missing" if level == NULL_LEVEL else comparator.labels[level]


def jw(a: str, b: str) -> float:
    return float(JaroWinkler.normalized_similarity(a, b))


# --- surnames -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("Müller", "MULLER", "exact"),  # accents and case are folded first
        ("Ferreira dos Santos", "Santos", "token_subset"),  # Portuguese: known by the last surname
        ("Weber Schmit", "Schmit", "token_subset"),  # Luxembourgish double name without hyphen
        ("Schmit", "Schmitt", "jaro_winkler>=0.92"),
        ("Meyer", "Maier", "phonetic"),
        ("Francois", "Franz", "jaro_winkler>=0.8"),
        ("Weber", "Hoffmann", "different"),
    ],
)
def test_surname_levels(left: str, right: str, expected: str) -> None:
    assert label("family_name", {"family_name": left}, {"family_name": right}) == expected


def test_fuzzy_surname_examples_sit_where_the_levels_say() -> None:
    # Preconditions that make the parametrised cases above meaningful.
    assert jw("schmit", "schmitt") >= 0.92
    assert jw("meyer", "maier") < 0.8  # only the phonetic key can link them
    assert 0.8 <= jw("francois", "franz") < 0.92


def test_surname_missing_on_one_side_weighs_nothing() -> None:
    assert label("family_name", {"family_name": "Weber"}, {"family_name": None}) == "missing"


def test_married_name_matches_the_other_record_birth_name() -> None:
    married = {"family_name": "Weber", "birth_name": "Müller", "given_names": "Anne"}
    maiden = {"family_name": "Muller", "birth_name": None, "given_names": "Anne"}
    assert label("family_name", married, maiden) == "exact"
    assert label("family_name", maiden, married) == "exact"
    typo = {"family_name": "Mullter", "birth_name": None, "given_names": "Anne"}
    assert label("family_name", married, typo) == "jaro_winkler>=0.92"


def test_swapped_first_and_last_names_agree_on_both() -> None:
    straight = {"family_name": "Weber", "given_names": "Anna"}
    swapped = {"family_name": "Anna", "given_names": "Weber"}
    assert label("family_name", straight, swapped) == "exact"
    assert label("given_name", straight, swapped) == "exact"


STRAIGHT_TWO_GIVEN = {"family_name": "Popescu", "given_names": "Maria Florentina"}
# All given names typed into the family-name field, the family name into the given-name field.
SWAPPED_TWO_GIVEN = {"family_name": "Maria Florentina", "given_names": "Popescu"}


def test_swapped_names_with_several_given_names_agree_on_both() -> None:
    assert label("family_name", STRAIGHT_TWO_GIVEN, SWAPPED_TWO_GIVEN) == "exact"
    assert label("given_name", STRAIGHT_TWO_GIVEN, SWAPPED_TWO_GIVEN) == "exact"
    assert label("given_name", SWAPPED_TWO_GIVEN, STRAIGHT_TWO_GIVEN) == "exact"


def test_swapped_names_with_several_given_names_agree_whichever_record_comes_first() -> None:
    assert label("family_name", SWAPPED_TWO_GIVEN, STRAIGHT_TWO_GIVEN) == "exact"


def test_a_swap_is_recognised_from_the_first_of_several_given_names_only() -> None:
    # The swapped record kept only one of the two given names.
    assert (
        label("given_name", STRAIGHT_TWO_GIVEN, {"family_name": "Maria", "given_names": "Popescu"}) == "exact"
    )
    # A family-name field starting with another word is no swap of these names.
    other = {"family_name": "Florentina Maria", "given_names": "Ionescu"}
    assert label("family_name", STRAIGHT_TWO_GIVEN, other) == "different"
    assert label("given_name", STRAIGHT_TWO_GIVEN, other) != "exact"


def test_a_double_family_name_is_not_taken_for_a_swap() -> None:
    double = {"family_name": "Weber Schmit", "given_names": "Anna"}
    single = {"family_name": "Weber", "given_names": "Anna Maria"}
    assert label("family_name", double, single) == "token_subset"
    assert label("given_name", double, single) == "exact"


def test_swap_handling_does_not_make_unrelated_names_agree() -> None:
    left = {"family_name": "Weber", "given_names": "Anna"}
    right = {"family_name": "Thill", "given_names": "Marc"}
    assert label("family_name", left, right) == "different"
    assert label("given_name", left, right) == "different"


# --- given names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("Jean", "JEAN", "exact"),
        ("Jempi", "Jean-Pierre", "nickname"),
        ("Fränz", "François", "nickname"),
        ("Nico", "Nicolas", "nickname"),
        ("Christophe", "Christoph", "jaro_winkler>=0.92"),
        ("Philippe", "Filip", "phonetic"),
        ("Mathias", "Matthieu", "jaro_winkler>=0.8"),
        ("Jean Marie", "Marie", "shares_a_given_name"),
        ("Paul", "Sophie", "different"),
    ],
)
def test_given_name_levels(left: str, right: str, expected: str) -> None:
    assert label("given_name", {"given_names": left}, {"given_names": right}) == expected


def test_fuzzy_given_name_examples_sit_where_the_levels_say() -> None:
    assert jw("philippe", "filip") < 0.8
    assert 0.8 <= jw("mathias", "matthieu") < 0.92
    assert jw("jean", "marie") < 0.8  # the shared name is the second one


def test_the_first_given_name_is_compared_and_a_hyphenated_one_is_one_name() -> None:
    assert label("given_name", {"given_names": "Jean-Pierre Marc"}, {"given_names": "Jean-Pierre"}) == "exact"
    assert label("given_name", {"given_names": "Jean-Pierre"}, {"given_names": "Jean"}) != "exact"


def test_given_name_missing_on_one_side_weighs_nothing() -> None:
    assert label("given_name", {"given_names": None}, {"given_names": "Jean"}) == "missing"


# --- birth dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("1980-03-15", "1980-03-15", "exact"),
        ("1980-03-15", "15.03.1980", "exact"),  # day-first European spelling
        ("1980-03-05", "1980-05-03", "day_month_swapped"),
        ("1980-03-15", "1981-03-15", "year_off_by_one"),
        ("1980-03-15", "1979-03-15", "year_off_by_one"),
        ("1980-00-15", "1980-03-15", "partial_date_compatible"),
        ("1980-00-00", "1980-07-21", "partial_date_compatible"),
        ("1980-03-15", "1980-03-16", "one_part_differs"),
        ("1980-03-15", "1980-04-15", "one_part_differs"),
        ("1980-03-15", "1983-03-15", "one_part_differs"),
        ("1980-03-15", "1975-08-02", "different"),
        ("1980-03-15", None, "missing"),
        ("1980-02-30", "1980-02-28", "missing"),  # an impossible date is missing, not a disagreement
    ],
)
def test_birth_date_levels(left: str | None, right: str | None, expected: str) -> None:
    assert label("birth_date", {"birth_date": left}, {"birth_date": right}) == expected


def test_a_partial_date_with_another_year_is_different() -> None:
    assert label("birth_date", {"birth_date": "1980-00-00"}, {"birth_date": "1990-00-00"}) == "different"


# --- matricule ----------------------------------------------------------------------------------

MATRICULE = complete_matricule("19800315123")


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (MATRICULE, MATRICULE, "exact"),
        (MATRICULE, "1980 0315 123 " + MATRICULE[11:], "exact"),
        ("18931201057", "1893120105732", "exact"),  # a legacy number and its upgrade
        (MATRICULE, complete_matricule("19800315124"), "one_digit_apart"),
        (MATRICULE, complete_matricule("19800315213"), "one_digit_apart"),  # adjacent transposition
        (MATRICULE, complete_matricule("19750802456"), "different"),
        ("1893120105733", "1893120105732", "missing"),  # an invalid number is never matched on
        (MATRICULE, None, "missing"),
    ],
)
def test_matricule_levels(left: str | None, right: str | None, expected: str) -> None:
    assert label("matricule", {"national_id": left}, {"national_id": right}) == expected


# --- address and contact ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("1234", "L-1234", "exact"),
        ("1234", "1239", "same_area"),
        ("1234", "4321", "different"),
        ("1234", None, "missing"),
    ],
)
def test_postcode_levels(left: str | None, right: str | None, expected: str) -> None:
    assert label("postcode", {"postcode": left}, {"postcode": right}) == expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("Jean.Weber@post.lu", "jean.weber@post.lu", "exact"),
        ("jean.weber@post.lu", "jean.weber@pt.lu", "same_local_part"),
        ("jean.weber@post.lu", "anna.thill@post.lu", "different"),
        ("jean.weber@post.lu", "not an address", "missing"),
    ],
)
def test_email_levels(left: str, right: str, expected: str) -> None:
    assert label("email", {"email": left}, {"email": right}) == expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("+352 621 123 456", "621123456", "exact"),
        ("00352 621 123 456", "621 123 456", "exact"),
        ("621 123 456", "621 123 457", "different"),
    ],
)
def test_phone_levels(left: str, right: str, expected: str) -> None:
    assert label("phone", {"phone": left}, {"phone": right}) == expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [("M", "male", "exact"), ("F", "M", "different"), ("F", "U", "missing")],
)
def test_sex_levels(left: str, right: str, expected: str) -> None:
    assert label("sex", {"sex": left}, {"sex": right}) == expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("Esch-sur-Alzette", "ESCH SUR ALZETTE", "exact"),
        ("Luxembourg", "Luxemburg", "jaro_winkler>=0.9"),
        ("Luxembourg", "Wiltz", "different"),
    ],
)
def test_city_levels(left: str, right: str, expected: str) -> None:
    assert label("city", {"city": left}, {"city": right}) == expected


def _mutated_names(rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
    """Pairs of lowercase words, the right one a copy with zero to four random substitutions."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(5, 12, n)
    left, right = [], []
    for length in lengths.tolist():
        word = rng.choice(letters, length)
        copy = word.copy()
        edits = rng.integers(0, 5)
        copy[rng.integers(0, length, edits)] = rng.choice(letters, edits)
        left.append("".join(word))
        right.append("".join(copy))
    return left, right


@pytest.mark.parametrize("dense_top", [0, 150], ids=["pairwise", "dense matrix and pairwise"])
def test_string_levels_follow_the_thresholds_of_the_rules(
    dense_top: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a dense matrix over the 150 most frequent values, pairs inside it are read
    # from the matrix and the others computed one by one: both must agree with rapidfuzz.
    n_pairs = 400
    if dense_top:
        monkeypatch.setattr(encoding, "DENSE_TOP", dense_top)
        monkeypatch.setattr(encoding, "DENSE_MIN_PAIRS", 0)
    comparator = build_comparator(
        Comparison(name="street", comparator="string", column="street", thresholds=(0.95, 0.85, 0.7))
    )
    assert comparator.labels == (
        "exact",
        "jaro_winkler>=0.95",
        "jaro_winkler>=0.85",
        "jaro_winkler>=0.7",
        "different",
    )
    left, right = _mutated_names(np.random.default_rng(7), n_pairs)
    records = encode([{"street": v} for v in left + right])
    levels = comparator.levels(records, np.arange(n_pairs), np.arange(n_pairs, 2 * n_pairs))
    similarity = np.array([jw(a, b) for a, b in zip(left, right, strict=True)])
    expected = np.select(
        [np.array(left) == np.array(right), similarity >= 0.95, similarity >= 0.85, similarity >= 0.7],
        [0, 1, 2, 3],
        default=4,
    )
    assert len(set(expected.tolist())) == 5  # the sample reaches every level
    np.testing.assert_array_equal(levels, expected)


def test_levels_are_computed_for_many_pairs_at_once() -> None:
    records = encode(
        [
            {"family_name": "Schmit"},
            {"family_name": "Schmitt"},
            {"family_name": "Weber"},
            {"family_name": None},
        ]
    )
    comparator = DEFAULT_COMPARATORS["family_name"]
    levels = comparator.levels(records, np.array([0, 0, 2, 3, 1]), np.array([1, 2, 2, 0, 0]))
    assert [comparator.labels[x] if x >= 0 else "missing" for x in levels.tolist()] == [
        "jaro_winkler>=0.92",
        "different",
        "exact",
        "missing",
        "jaro_winkler>=0.92",
    ]
