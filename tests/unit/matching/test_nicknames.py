"""The shipped nickname table and the canonical given-name lookup."""

from __future__ import annotations

import csv
import io
from importlib import resources

import numpy as np
import pytest

from mpi.matching.nicknames import canonical_given_names, load_nicknames
from mpi.matching.standardise import fold


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [
        # Luxembourgish
        ("jempi", "jean pierre"),
        ("jemp", "jean pierre"),
        ("mett", "mathias"),
        ("franz", "francois"),  # Fränz, folded
        ("jos", "joseph"),
        ("nico", "nicolas"),
        # French, German, Portuguese, Italian, Spanish, English
        ("manu", "emmanuel"),
        ("jeanpierre", "jean pierre"),
        ("hans", "johannes"),
        ("sepp", "josef"),
        ("ze", "jose"),
        ("chico", "francisco"),
        ("peppe", "giuseppe"),
        ("paco", "francisco"),
        ("bob", "robert"),
        ("rob", "robert"),
        ("bobby", "robert"),
        ("bill", "william"),
        ("will", "william"),
        ("kate", "katherine"),
        ("katie", "katherine"),
    ],
)
def test_known_short_forms_map_to_their_canonical_name(variant: str, canonical: str) -> None:
    assert load_nicknames()[variant] == canonical


def test_the_table_is_large_and_unambiguous() -> None:
    text = resources.files("mpi.matching.data").joinpath("nicknames.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    variants = [row["variant"] for row in rows]
    assert len(rows) >= 300
    assert len(set(variants)) == len(variants), "a variant listed twice would have two canonical forms"
    assert len(load_nicknames()) == len(rows)


def test_entries_are_folded_so_folded_names_find_them() -> None:
    for variant, canonical in load_nicknames().items():
        assert fold(variant) == variant
        assert fold(canonical) == canonical


def test_canonical_forms_are_final() -> None:
    table = load_nicknames()
    for variant, canonical in table.items():
        assert canonical != variant
        assert canonical not in table, f"{variant} -> {canonical} -> {table.get(canonical)}"


def test_ambiguous_short_forms_are_left_out() -> None:
    table = load_nicknames()
    for ambiguous in ("alex", "chris", "dani", "toni", "sam", "max"):
        assert ambiguous not in table


def test_load_nicknames_returns_a_copy() -> None:
    table = load_nicknames()
    table["jempi"] = "someone else"
    assert load_nicknames()["jempi"] == "jean pierre"


def test_canonical_given_names_maps_known_and_keeps_unknown_and_missing() -> None:
    values = np.array(["jempi", None, "marc", "ze", "jempi", "jean pierre"], dtype=object)
    result = canonical_given_names(values)
    assert result.dtype == object
    assert result.tolist() == ["jean pierre", None, "marc", "jose", "jean pierre", "jean pierre"]


def test_canonical_given_names_of_nothing() -> None:
    assert canonical_given_names(np.array([], dtype=object)).tolist() == []
    assert canonical_given_names(np.array([None, None], dtype=object)).tolist() == [None, None]
