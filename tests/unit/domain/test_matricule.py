"""The Luxembourg matricule: check digits, the legacy form, and what a typing error looks like."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from mpi.domain.identifiers import (
    MatriculeStatus,
    check_matricule,
    classify_matricules,
    complete_matricule,
    is_valid_matricule,
    legacy_sex,
    suggest_corrections,
)

# DOMAIN.md's public vectors that satisfy the regulation (Luhn and Verhoeff over the 11-digit payload).
VALID_VECTORS = (
    "1893120105732",
    "2015123101725",
    "1974091186700",
    "1982080285657",
    "1990093012358",
    "2001120308757",
    "1979122003208",
    "1966051507682",
)
# DOMAIN.md lists these two as valid, but their Verhoeff digit is wrong under the regulation's rule;
# the value is the number with its correct check digits.
MISLISTED_VECTORS = {"2014082601689": "2014082601685", "1993102814564": "1993102814560"}
# A pre-2014 number is its legacy 11-digit form plus the two check digits.
LEGACY_VECTORS = {
    "18931201057": "1893120105732",
    "19740911867": "1974091186700",
    "19820802856": "1982080285657",
    "20011203087": "2001120308757",
}


@pytest.mark.parametrize("number", VALID_VECTORS)
def test_public_valid_vectors_are_valid(number: str) -> None:
    assert check_matricule(number) == (number, MatriculeStatus.VALID)
    assert complete_matricule(number[:11]) == number


@pytest.mark.parametrize(("listed", "correct"), MISLISTED_VECTORS.items())
def test_vectors_failing_the_regulation_are_invalid_and_their_check_digits_are_computed(
    listed: str, correct: str
) -> None:
    assert check_matricule(listed) == (None, MatriculeStatus.INVALID)
    assert complete_matricule(listed[:11]) == correct
    assert check_matricule(correct) == (correct, MatriculeStatus.VALID)
    assert suggest_corrections(listed) == [correct]


@pytest.mark.parametrize(("number", "broken"), [("1893120105733", "Verhoeff"), ("1893120105702", "Luhn")])
def test_public_invalid_vectors_are_invalid(number: str, broken: str) -> None:
    assert check_matricule(number) == (None, MatriculeStatus.INVALID), broken
    assert not is_valid_matricule(number)


@pytest.mark.parametrize(("legacy", "upgraded"), LEGACY_VECTORS.items())
def test_legacy_eleven_digit_number_is_upgraded(legacy: str, upgraded: str) -> None:
    assert check_matricule(legacy) == (upgraded, MatriculeStatus.UPGRADED)
    assert is_valid_matricule(legacy)


def test_legacy_number_with_a_wrong_mod11_digit_is_invalid() -> None:
    assert check_matricule("18931201058") == (None, MatriculeStatus.INVALID)


def test_legacy_payload_without_a_possible_mod11_digit_is_always_invalid() -> None:
    # 1982080283's weighted sum leaves remainder 1, which would need check digit 10.
    numbers = np.array([f"1982080283{digit}" for digit in range(10)], dtype=object)
    _, status = classify_matricules(numbers)
    assert set(status.tolist()) == {MatriculeStatus.INVALID}


def test_legacy_number_tells_the_sex_by_the_parity_of_its_order_number() -> None:
    assert legacy_sex("18931201057") == "M"  # order number 05
    assert legacy_sex("19820802848") == "F"  # order number 84
    assert legacy_sex("1893120105732") is None


@pytest.mark.parametrize("payload", ["19800000123", "19800500123", "19800015123"])
def test_month_or_day_zero_is_legal(payload: str) -> None:
    number = complete_matricule(payload)
    assert check_matricule(number) == (number, MatriculeStatus.VALID)


@pytest.mark.parametrize("payload", ["19801300123", "19800532123"])
def test_impossible_month_or_day_is_invalid_even_with_correct_check_digits(payload: str) -> None:
    assert check_matricule(complete_matricule(payload))[1] == MatriculeStatus.INVALID


def test_a_column_is_classified_at_once_ignoring_group_separators() -> None:
    raw = np.array(
        [
            None,
            "",
            float("nan"),
            "1893 1201 057 32",
            "1893.1201.057-32",
            "18931201057",
            "1893120105733",
            "abc",
        ],
        dtype=object,
    )
    normalised, status = classify_matricules(raw)
    assert status.tolist() == [
        MatriculeStatus.MISSING,
        MatriculeStatus.MISSING,
        MatriculeStatus.MISSING,
        MatriculeStatus.VALID,
        MatriculeStatus.VALID,
        MatriculeStatus.UPGRADED,
        MatriculeStatus.INVALID,
        MatriculeStatus.INVALID,
    ]
    assert normalised.tolist() == [None, None, None, *["1893120105732"] * 3, None, None]


def test_complete_matricule_refuses_a_payload_that_is_not_eleven_digits() -> None:
    with pytest.raises(ValueError, match="11 digits"):
        complete_matricule("1893120105")
    with pytest.raises(ValueError, match="11 digits"):
        complete_matricule("1893120105a")


plausible_payloads = st.builds(
    lambda year, month, day, sequence: f"{year:04d}{month:02d}{day:02d}{sequence:03d}",
    st.integers(1880, 2030),
    st.integers(0, 12),
    st.integers(0, 31),
    st.integers(0, 999),
)


def _substitutions(number: str) -> list[str]:
    return [
        number[:i] + digit + number[i + 1 :]
        for i in range(len(number))
        for digit in "0123456789"
        if digit != number[i]
    ]


def _adjacent_transpositions(number: str) -> list[str]:
    return [
        number[:i] + number[i + 1] + number[i] + number[i + 2 :]
        for i in range(len(number) - 1)
        if number[i] != number[i + 1]
    ]


@settings(max_examples=200, deadline=None)
@given(plausible_payloads)
def test_every_single_digit_substitution_is_detected(payload: str) -> None:
    number = complete_matricule(payload)
    assert is_valid_matricule(number)
    variants = _substitutions(number)
    _, status = classify_matricules(np.array(variants, dtype=object))
    undetected = [v for v, s in zip(variants, status.tolist(), strict=True) if s != MatriculeStatus.INVALID]
    assert undetected == []


@settings(max_examples=200, deadline=None)
@given(plausible_payloads)
def test_every_adjacent_transposition_is_detected(payload: str) -> None:
    number = complete_matricule(payload)
    variants = _adjacent_transpositions(number)
    _, status = classify_matricules(np.array(variants, dtype=object))
    undetected = [v for v, s in zip(variants, status.tolist(), strict=True) if s != MatriculeStatus.INVALID]
    assert undetected == []


@settings(max_examples=100, deadline=None)
@given(plausible_payloads, st.integers(0, 12), st.sampled_from("0123456789"))
def test_suggest_corrections_finds_the_original_of_a_single_substitution(
    payload: str, position: int, digit: str
) -> None:
    number = complete_matricule(payload)
    typed = number[:position] + digit + number[position + 1 :]
    suggestions = suggest_corrections(typed)
    if typed == number:
        assert suggestions == []  # every neighbour of a valid number is invalid
    else:
        assert number in suggestions
        assert all(is_valid_matricule(s) and len(s) == 13 for s in suggestions)


@settings(max_examples=100, deadline=None)
@given(plausible_payloads, st.integers(0, 11))
def test_suggest_corrections_finds_the_original_of_an_adjacent_transposition(
    payload: str, position: int
) -> None:
    number = complete_matricule(payload)
    assume(number[position] != number[position + 1])
    typed = number[:position] + number[position + 1] + number[position] + number[position + 2 :]
    assert number in suggest_corrections(typed)


_MATRICULE_LIKE = st.one_of(
    st.text(alphabet="0123456789 .-", min_size=0, max_size=16),
    st.text(max_size=14),
    st.builds(complete_matricule, st.from_regex(r"\A[0-9]{11}\Z", fullmatch=True)),
    st.from_regex(r"\A[0-9]{11}\Z", fullmatch=True),
)


@settings(max_examples=400)
@given(st.lists(_MATRICULE_LIKE, min_size=1, max_size=20))
@example(["\x00", "1893120105732\x00"])
def test_one_value_is_judged_as_a_column_judges_it(values: list[str]) -> None:
    normalised, status = classify_matricules(np.array(values, dtype=object))
    one_by_one = [check_matricule(value) for value in values]
    assert [n for n, _ in one_by_one] == normalised.tolist()
    assert [int(s) for _, s in one_by_one] == status.tolist()
