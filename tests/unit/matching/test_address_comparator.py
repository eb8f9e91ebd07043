"""The MPI model's single address comparison: one level for the whole address.

Records go through the real standardiser and encoder, so "R. de la Gare" and
"Rue de la Gare", or "L-1611" and "1611", are the same values here as in a job.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mpi.matching.comparators import NULL_LEVEL, Comparator, build_comparator
from mpi.matching.encoding import EncodedRecords
from mpi.matching.engine import Engine
from mpi.matching.standardise import standardise
from mpi.rules.loader import load_rules

TODAY = dt.date(2025, 6, 1)
RULES = load_rules()
ADDRESS: Comparator = next(build_comparator(c) for c in RULES.comparisons if c.comparator == "address")
HOME = {"street": "Rue de la Gare", "house_number": "12", "postcode": "1611", "city": "Luxembourg"}


def encode(rows: list[dict[str, Any]]) -> EncodedRecords:
    raw = pd.DataFrame(rows).astype("string")
    raw.insert(0, "record_id", [f"r{i}" for i in range(len(rows))])
    return EncodedRecords.from_frame(standardise(raw, today=TODAY).frame)


def address_level(left: dict[str, Any], right: dict[str, Any]) -> str:
    records = encode([left, right])
    level = int(ADDRESS.levels(records, np.array([0]), np.array([1]))[0])
    return "missing" if level == NULL_LEVEL else ADDRESS.labels[level]


def home(**changes: str | None) -> dict[str, str | None]:
    return {**HOME, **changes}


def test_levels_run_from_the_same_address_to_a_different_one() -> None:
    assert ADDRESS.labels == ("same_address", "one_part_differs", "same_street", "same_locality", "different")


def test_a_household_spelling_its_address_differently_has_the_same_address() -> None:
    spelled = {"street": "r. de la gare", "house_number": "12", "postcode": "L-1611", "city": "LUXEMBOURG"}
    assert address_level(HOME, spelled) == "same_address"
    assert address_level(HOME, home(street="Rue de la Garre")) == "same_address"  # a street typo


@pytest.mark.parametrize(
    "changes",
    [
        {"house_number": "14"},  # moved next door
        {"postcode": "1612"},  # a postcode typo
        {"street": "Avenue de la Liberté"},  # a street name replaced
    ],
    ids=["house number", "postcode", "street"],
)
def test_one_part_differing_of_a_full_address(changes: dict[str, str]) -> None:
    assert address_level(HOME, home(**changes)) == "one_part_differs"


def test_same_street_in_the_same_town_at_another_house() -> None:
    # House number and postcode differ (long streets span several postcodes).
    assert address_level(HOME, home(house_number="40", postcode="1612")) == "same_street"


def test_same_postcode_only_is_the_same_locality() -> None:
    elsewhere_in_town = home(street="Avenue de la Liberté", house_number="3", city=None)
    assert address_level(HOME, elsewhere_in_town) == "same_locality"
    assert address_level({"postcode": "1611"}, {"postcode": "L-1611"}) == "same_locality"


def test_same_town_at_another_street_and_house_is_the_same_locality() -> None:
    assert address_level(HOME, home(street="Avenue de la Liberté", house_number="3")) == "same_locality"


def test_another_town_is_different() -> None:
    ettelbruck = {"street": "Grand-Rue", "house_number": "5", "postcode": "9051", "city": "Ettelbruck"}
    assert address_level(HOME, ettelbruck) == "different"
    assert address_level({"postcode": "1611"}, {"postcode": "9051"}) == "different"


def test_no_part_known_on_both_sides_weighs_nothing() -> None:
    street_only = {"street": "Rue de la Gare", "house_number": "12", "postcode": None, "city": None}
    town_only = {"street": None, "house_number": None, "postcode": "1611", "city": "Luxembourg"}
    assert address_level(street_only, town_only) == "missing"
    assert address_level(HOME, dict.fromkeys(HOME)) == "missing"


def test_absent_address_columns_give_missing_levels_not_errors() -> None:
    records = encode([{"family_name": "Weber"}, {"family_name": "Weber"}, {"family_name": "Thill"}])
    levels = ADDRESS.levels(records, np.array([0, 0]), np.array([1, 2]))
    assert levels.tolist() == [NULL_LEVEL, NULL_LEVEL]


def test_present_parts_are_compared_when_other_columns_are_absent() -> None:
    rows = [
        {"postcode": "1611", "city": "Luxembourg"},
        {"postcode": "1611", "city": "Luxembourg"},
        {"postcode": "1611", "city": "Esch-sur-Alzette"},
        {"postcode": "4001", "city": "Esch-sur-Alzette"},
    ]
    records = encode(rows)
    assert "street" not in records.strings and "house_number" not in records.strings
    levels = ADDRESS.levels(records, np.array([0, 0, 0]), np.array([1, 2, 3]))
    assert [ADDRESS.labels[level] for level in levels.tolist()] == [
        "same_address",  # every part known on both sides agrees
        "same_locality",  # only two parts known: one differing is not "one part of an address"
        "different",
    ]


def test_levels_do_not_depend_on_the_order_of_the_pair() -> None:
    rows = [
        HOME,
        home(house_number="14"),
        home(house_number="40", postcode="1612"),
        home(street="Avenue de la Liberté", house_number="3", city=None),
        {"street": "Grand-Rue", "house_number": "5", "postcode": "9051", "city": "Ettelbruck"},
        {"street": None, "house_number": None, "postcode": "1611", "city": None},
    ]
    records = encode(rows)
    left, right = np.triu_indices(len(rows), k=1)
    np.testing.assert_array_equal(ADDRESS.levels(records, left, right), ADDRESS.levels(records, right, left))


def test_a_file_without_any_address_column_drops_the_address_comparison() -> None:
    records = encode([{"family_name": "Weber", "birth_date": "1980-03-15"}] * 2)
    _, dropped = Engine(RULES).usable_comparators(records)
    assert ADDRESS.name in {d.name for d in dropped}


def test_a_file_without_postcodes_still_compares_the_rest_of_the_address() -> None:
    rows = [{"street": "Rue de la Gare", "house_number": "12", "city": "Luxembourg"}] * 2
    used, _ = Engine(RULES).usable_comparators(encode(rows))
    assert ADDRESS.name in {c.name for c in used}
