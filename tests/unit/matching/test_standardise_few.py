"""The online path's cell-by-cell standardiser gives exactly what the batch standardiser gives.

The online MPI and ``mpi dedup`` must see the same standardised values, or a
record would block and score differently depending on how it arrived.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpi.matching.standardise import SCHEMA_COLUMNS, standardise, standardise_few

TODAY = dt.date(2025, 6, 15)

# Realistic cells of each column, in the many spellings sources send, plus free text below.
# fmt: off
REALISTIC: dict[str, Sequence[str]] = {
    "record_id": ("R1", " R2 ", "17"),
    "source": ("CHL", "RNPP", " lab "),
    "local_id": ("A-1", "00042", "x y"),
    "family_name": (
        "Ferreira dos Santos", "WEBER-SCHMIT", "Müller", "von Weber", "Le Goff", "O'Brien", "van der Berg",
        "da Conceição", "d'Almeida", "de La Fontaine", "Schmit", "Łukasz", "Ø", "-", "e",
    ),
    "birth_name": ("Schmit", "dos Santos", "Mueller", "Lefèvre"),
    "given_names": (
        "Jean-Pierre", "Jean - Pierre Marie", "Maria da Conceição", "Fränz", "Jempi", "Nico", "Anne Marie",
        "José", "J.", "Jean\u2013Luc",
    ),
    "birth_date": (
        "1980-01-02", "1980-1-2", "19800102", "02.01.1980", "2/1/1980", "1980-00-00", "1980-02-30",
        "2031-01-01", "1870-05-05", "1980-13-01", "1980-01-02T10:00:00", "yesterday", "2025-06-15",
        "2025-06-16", "2000-02-29", "1900-02-29",
    ),
    "sex": ("M", "f", "Femme", "homme", "U", "0", "9", "x", "?", "weiblich"),
    "national_id": (
        "1893120105732", "1893 1201 057 32", "18931201057", "1893120105733", "1893120105702",
        "12345", "1990093012358", "1990-09-30-123-58", "abc",
    ),
    "street": ("Rue de la Gare", "12 r. de la Gare", "Hauptstr.", "Rue St Ulric", "Main St", "Bd Royal"),
    "house_number": ("12 A", "N° 3", "12/14", "12-14", "-", "nr5", "3bis"),
    "postcode": ("L-1234", "1234", "F-57000", "D 66111", "B-1000", "57 000"),
    "city": ("Luxembourg", "Esch-sur-Alzette", "LUXEMBOURG ", "Saint-Étienne"),
    "country": ("LU", "Luxembourg", "france", "Deutschland", "xx", "Portugal", "Z"),
    "phone": (
        "+352 621 123 456", "621123456", "00352 44 55 66", "+33 (0)6 12 34 56 78", "0612345678",
        "352621123456", "12", "+1 555 0100", "44 55 66",
    ),
    "email": ("Jean.Weber@example.lu", "mailto:a@b.co", "not-an-email", "x@y", " A@EXAMPLE.ORG "),
}
# fmt: on
FREE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), max_codepoint=0x2FFF), min_size=0, max_size=14
)


def cell(column: str) -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), st.sampled_from(REALISTIC[column]), FREE_TEXT)


@st.composite
def tables(draw: st.DrawFn) -> dict[str, list[str | None]]:
    chosen = draw(st.lists(st.sampled_from(SCHEMA_COLUMNS), min_size=1, unique=True))
    rows = draw(st.integers(min_value=0, max_value=12))
    return {column: draw(st.lists(cell(column), min_size=rows, max_size=rows)) for column in chosen}


def batch_columns(columns: dict[str, list[str | None]]) -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in columns.items()})
    return standardise(frame.astype(pd.StringDtype()), today=TODAY).frame


def assert_same(columns: dict[str, list[str | None]]) -> None:
    expected = batch_columns(columns)
    got = standardise_few(columns, today=TODAY)
    assert list(got) == list(expected.columns)
    for name, values in got.items():
        want = expected[name].to_numpy()
        assert values.dtype == want.dtype, name
        assert values.tolist() == want.tolist(), name


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_few_records_standardise_exactly_like_a_batch(columns: dict[str, list[str | None]]) -> None:
    assert_same(columns)


def test_every_realistic_spelling_standardises_like_a_batch_also_when_cached() -> None:
    width = max(len(values) for values in REALISTIC.values())
    columns: dict[str, list[str | None]] = {
        name: [values[i % len(values)] for i in range(width)] + [None, "", "  "]
        for name, values in REALISTIC.items()
    }
    assert_same(columns)
    assert_same(columns)  # now every cell comes from the cache


def test_the_day_bounds_birth_dates_even_for_cached_cells() -> None:
    dates = {"birth_date": ["2025-06-16"]}
    assert standardise_few(dates, today=TODAY)["birth_date"].tolist() == [None]
    later = standardise_few(dates, today=TODAY + dt.timedelta(days=1))
    assert later["birth_date"].tolist() == ["2025-06-16"]
    assert later["birth_year"].dtype == np.int16 and later["birth_year"].tolist() == [2025]


def test_no_rows_give_empty_columns_of_the_batch_dtypes() -> None:
    assert_same({name: [] for name in SCHEMA_COLUMNS})
