"""Standardisation of batch-schema records: each rule, the counts of unusable cells, idempotence."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpi.domain.identifiers import MatriculeStatus
from mpi.matching.standardise import StandardisedFrame, fold, remove_particles, standardise

TODAY = dt.date(2025, 6, 15)


def run(**columns: Sequence[str | None]) -> StandardisedFrame:
    return standardise(
        pd.DataFrame(
            {name: pd.Series(np.array(v, dtype=object), dtype=object) for name, v in columns.items()}
        ),
        today=TODAY,
    )


def column(name: str, values: Sequence[str | None], output: str | None = None) -> list[object]:
    return run(**{name: values}).frame[output or name].tolist()


# --- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "family_name", "family_last"),
    [
        ("Ferreira dos Santos", "ferreira santos", "santos"),
        ("da Conceição Ferreira dos Santos", "conceicao ferreira santos", "santos"),
        ("Costa e Silva", "costa silva", "silva"),
        ("WEBER-SCHMIT", "weber schmit", "schmit"),
        ("Weber Schmit", "weber schmit", "schmit"),
        ("Müller", "muller", "muller"),
        ("Lefèvre", "lefevre", "lefevre"),
        ("von Weber", "weber", "weber"),
        ("Le Goff", "legoff", "legoff"),
        ("de La Fontaine", "lafontaine", "lafontaine"),
        ("Van den Bossche", "vandenbossche", "vandenbossche"),
        ("O'Brien", "obrien", "obrien"),
        ("  Weber   Schmit ", "weber schmit", "schmit"),
        ("Weber–Schmit", "weber schmit", "schmit"),  # an en dash typed by a word processor
        ("Straße", "strasse", "strasse"),
    ],
)
def test_family_names_are_folded_and_particles_handled(raw: str, family_name: str, family_last: str) -> None:
    frame = run(family_name=[raw]).frame
    assert frame["family_name"].tolist() == [family_name]
    assert frame["family_last"].tolist() == [family_last]


def test_a_surname_that_is_a_particle_is_kept() -> None:
    assert column("family_name", ["De", "Le", "Da Silva", "Santos Da"]) == ["de", "le", "silva", "santos da"]


def test_portuguese_short_and_long_forms_share_the_last_surname() -> None:
    frame = run(family_name=["Maria da Conceição Ferreira dos Santos", "Santos"]).frame
    assert frame["family_last"].tolist() == ["santos", "santos"]


def test_particle_removal_is_a_fixed_point() -> None:
    assert remove_particles("la s goff") == remove_particles(remove_particles("la s goff"))


def test_birth_name_gets_the_family_name_treatment() -> None:
    frame = run(birth_name=["Ferreira dos Santos", None]).frame
    assert frame["birth_name"].tolist() == ["ferreira santos", None]
    assert frame["birth_name_dm"].tolist() == ["FRR SNTS", None]


@pytest.mark.parametrize(
    ("raw", "first", "all_names"),
    [
        ("Jean-Pierre Marc", "jean pierre", "jean pierre marc"),
        ("Jean - Pierre", "jean pierre", "jean pierre"),
        ("Anne-Marie", "anne marie", "anne marie"),
        ("Hélène Françoise", "helene", "helene francoise"),
        ("João", "joao", "joao"),
        ("Jürgen", "jurgen", "jurgen"),
        ("MARIA DA CONCEIÇÃO", "maria", "maria da conceicao"),
    ],
)
def test_given_names(raw: str, first: str, all_names: str) -> None:
    frame = run(given_names=[raw]).frame
    assert frame["given_name"].tolist() == [first]
    assert frame["given_names"].tolist() == [all_names]


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("Jempi", "jean pierre"),
        ("Jemp", "jean pierre"),
        ("Jean-Pierre", "jean pierre"),
        ("Mett", "mathias"),
        ("Fränz", "francois"),
        ("Jos", "joseph"),
        ("Nico", "nicolas"),
        ("Zé", "jose"),
        ("Hans Peter", "johannes"),
        ("Marc", "marc"),
    ],
)
def test_given_canonical_uses_the_nickname_table(raw: str, canonical: str) -> None:
    assert column("given_names", [raw], "given_canonical") == [canonical]


def test_phonetic_keys_of_names() -> None:
    frame = run(
        family_name=["Schmidt", "Schmitt", "Schmitz", "Müller-Lüdenscheidt"],
        given_names=["Jean-Pierre", "Jean", "Jeanne", "Hans"],
    ).frame
    assert frame["family_dm"].tolist() == ["XMT", "XMT", "XMTS", "MLR LTNXT"]
    assert frame["family_kp"].tolist() == ["862", "862", "868", "657 52682"]
    assert frame["given_dm"].tolist() == ["JN PR", "JN", "JN", "HNS"]
    assert frame["given_kp"].tolist() == ["06 17", "06", "06", "068"]


def test_names_without_letters_become_missing_and_are_counted() -> None:
    result = run(family_name=["!!!", "123", "Weber", "", "   ", None])
    assert result.frame["family_name"].tolist() == [None, None, "weber", None, None, None]
    assert result.frame["family_dm"].tolist() == [None, None, "APR", None, None, None]
    assert result.invalid_counts["family_name"] == 2


def test_fold_keeps_digits_only_when_asked() -> None:
    assert fold("Route d'Arlon 12") == "route darlon"
    assert fold("Route d'Arlon 12", keep_digits=True) == "route darlon 12"


# --- birth dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "iso", "parts"),
    [
        ("1980-07-14", "1980-07-14", (1980, 7, 14)),
        ("1980-7-4", "1980-07-04", (1980, 7, 4)),
        ("19800714", "1980-07-14", (1980, 7, 14)),
        ("14.07.1980", "1980-07-14", (1980, 7, 14)),
        ("14/07/1980", "1980-07-14", (1980, 7, 14)),
        ("4.7.1980", "1980-07-04", (1980, 7, 4)),
        ("1980-07-14T00:00:00", "1980-07-14", (1980, 7, 14)),
        ("1980-00-00", "1980-00-00", (1980, 0, 0)),
        ("1980-07-00", "1980-07-00", (1980, 7, 0)),
        ("19800000", "1980-00-00", (1980, 0, 0)),
        ("00.00.1980", "1980-00-00", (1980, 0, 0)),
        ("2000-02-29", "2000-02-29", (2000, 2, 29)),
        ("1880-01-01", "1880-01-01", (1880, 1, 1)),
        (" 1980-07-14 ", "1980-07-14", (1980, 7, 14)),
    ],
)
def test_accepted_birth_dates(raw: str, iso: str, parts: tuple[int, int, int]) -> None:
    result = run(birth_date=[raw])
    frame = result.frame
    assert frame["birth_date"].tolist() == [iso]
    assert (frame["birth_year"][0], frame["birth_month"][0], frame["birth_day"][0]) == parts
    assert result.invalid_counts["birth_date"] == 0


@pytest.mark.parametrize(
    "raw",
    [
        "1980-13-01",  # month 13
        "1980-02-31",  # 31 February
        "1900-02-29",  # 1900 was not a leap year
        "1980-04-31",
        "1879-12-31",  # before any living person's birth
        "2025-06-16",  # tomorrow
        "2026-00-00",
        "07/14/1980",  # a US date: there is no month 14
        "14 July 1980",
        "1980",
        "yesterday",
    ],
)
def test_impossible_birth_dates_are_missing_and_counted(raw: str) -> None:
    result = run(birth_date=[raw, "1980-01-01"])
    frame = result.frame
    assert frame["birth_date"].tolist() == [None, "1980-01-01"]
    assert frame["birth_year"].tolist() == [-1, 1980]
    assert frame["birth_month"].tolist() == [-1, 1]
    assert frame["birth_day"].tolist() == [-1, 1]
    assert result.invalid_counts["birth_date"] == 1


def test_birth_date_parts_have_compact_dtypes_and_missing_markers() -> None:
    frame = run(birth_date=["2025-00-00", None, ""]).frame
    assert frame["birth_year"].dtype == np.int16
    assert frame["birth_month"].dtype == np.int8
    assert frame["birth_day"].dtype == np.int8
    assert frame["birth_year"].tolist() == [2025, -1, -1]
    assert frame["birth_month"].tolist() == [0, -1, -1]


# --- sex and national id ------------------------------------------------------------------------


def test_sex_codes() -> None:
    raw = [
        "M",
        "f",
        "male",
        "Female",
        "homme",
        "Femme",
        "1",
        "2",
        "O",
        "x",
        "U",
        "unknown",
        "0",
        "",
        None,
        "zz",
    ]
    result = run(sex=raw)
    expected = ["M", "F", "M", "F", "M", "F", "M", "F", "O", "O", None, None, None, None, None, None]
    assert result.frame["sex"].tolist() == expected
    assert result.invalid_counts["sex"] == 1  # only "zz": U, unknown and 0 say "unknown" on purpose


def test_national_ids() -> None:
    raw = ["1893120105732", "1893 1201 057 32", "1893120105733", "1234567", "", None, "18931201057"]
    result = run(national_id=raw)
    frame = result.frame
    assert frame["national_id"].tolist() == [
        "1893120105732",
        "1893120105732",
        None,
        None,
        None,
        None,
        frame["national_id"][6],
    ]
    status = frame["national_id_status"].tolist()
    assert status[:6] == [
        MatriculeStatus.VALID,
        MatriculeStatus.VALID,
        MatriculeStatus.INVALID,
        MatriculeStatus.INVALID,  # a 7-digit FEBRL soc_sec_id is not a matricule
        MatriculeStatus.MISSING,
        MatriculeStatus.MISSING,
    ]
    assert frame["national_id_status"].dtype == np.int8
    assert result.invalid_counts["national_id"] == status.count(MatriculeStatus.INVALID)


# --- addresses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "street"),
    [
        ("12, r. de la Gare", "12 rue de la gare"),
        ("Rue de la Gare", "rue de la gare"),
        ("av. de la Liberté", "avenue de la liberte"),
        ("Bd Royal", "boulevard royal"),
        ("rte d'Arlon", "route darlon"),
        ("Hauptstraße", "hauptstrasse"),
        ("Hauptstr.", "hauptstrasse"),
        ("Trierer Str.", "trierer strasse"),
        ("Main St", "main street"),
        ("Rue St-Ulric", "rue saint ulric"),
        ("Abbey Rd", "abbey road"),
        ("pl. d'Armes", "place darmes"),
        ("Victoria Pde", "victoria parade"),
        ("Rue du Dr Klein", "rue du dr klein"),
        ("Mulberry Dr", "mulberry drive"),
    ],
)
def test_streets(raw: str, street: str) -> None:
    assert column("street", [raw]) == [street]


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("12 A", "12a"),
        ("12a", "12a"),
        ("12-14", "12-14"),
        ("12 / 14", "12-14"),
        ("N° 3", "3"),
        ("12-A", "12a"),
    ],
)
def test_house_numbers(raw: str, number: str) -> None:
    assert column("house_number", [raw]) == [number]


@pytest.mark.parametrize(
    ("raw", "postcode"),
    [
        ("L-1234", "1234"),
        ("l 1234", "1234"),
        ("L1234", "1234"),
        ("1234", "1234"),
        ("F-57000", "57000"),
        ("D-66111", "66111"),
        ("B-6700", "6700"),
        ("SW1A 1AA", "sw1a1aa"),
        ("1000-001", "1000001"),
    ],
)
def test_postcodes(raw: str, postcode: str) -> None:
    assert column("postcode", [raw]) == [postcode]


def test_cities_and_countries() -> None:
    assert column("city", ["Esch-sur-Alzette", "LUXEMBOURG", "Lëtzebuerg"]) == [
        "esch sur alzette",
        "luxembourg",
        "letzebuerg",
    ]
    result = run(country=["lu", " FR ", "Luxembourg", "Deutschland", "UK", "Narnia", "L", None])
    assert result.frame["country"].tolist() == ["LU", "FR", "LU", "DE", "GB", None, None, None]
    assert result.invalid_counts["country"] == 2


# --- contact ------------------------------------------------------------------------------------


def test_luxembourg_phone_forms_meet() -> None:
    raw = ["+352 621 123 456", "00352621123456", "621123456", "621 12 34 56", "(+352) 621-123-456"]
    assert column("phone", raw) == ["352621123456"] * len(raw)


def test_phones_of_other_countries_and_unusable_phones() -> None:
    result = run(
        phone=["+33 (0)6 12 34 56 78", "0033 612345678", "44 55 66", "abc", "12", "+1234567890123456"]
    )
    assert result.frame["phone"].tolist() == ["33612345678", "33612345678", "352445566", None, None, None]
    assert result.invalid_counts["phone"] == 3


def test_default_calling_code_is_configurable() -> None:
    frame = pd.DataFrame({"phone": ["06 12 34 56 78", "+352 621 123 456"]})
    result = standardise(frame, default_calling_code="33", today=TODAY)
    assert result.frame["phone"].tolist() == ["33612345678", "352621123456"]


def test_emails() -> None:
    raw = [
        " Jean.Weber@Example.LU ",
        "mailto:a@b.lu",
        "no-at-sign.lu",
        "a@b",
        "a@@b.lu",
        "a..b@c.lu",
        "",
        None,
    ]
    result = run(email=raw)
    assert result.frame["email"].tolist() == [
        "jean.weber@example.lu",
        "a@b.lu",
        None,
        None,
        None,
        None,
        None,
        None,
    ]
    assert result.invalid_counts["email"] == 4


# --- the frame ----------------------------------------------------------------------------------


def test_rows_index_and_dtypes_are_kept() -> None:
    raw = pd.DataFrame(
        {"record_id": ["r1", "r2", "r3"], "family_name": ["Weber", None, "Schmit"], "sex": ["M", "F", None]},
        index=[10, 20, 30],
    )
    frame = standardise(raw, today=TODAY).frame
    assert frame.index.tolist() == [10, 20, 30]
    assert frame["record_id"].tolist() == ["r1", "r2", "r3"]
    assert frame["family_name"].tolist() == ["weber", None, "schmit"]
    for name in ("record_id", "family_name", "family_dm", "sex"):
        assert frame[name].dtype == object


def test_only_columns_from_present_inputs_appear() -> None:
    frame = run(family_name=["Weber"]).frame
    assert set(frame.columns) == {"family_name", "family_last", "family_dm", "family_kp"}
    assert set(run(given_names=["Jean"]).frame.columns) == {
        "given_name",
        "given_names",
        "given_canonical",
        "given_dm",
        "given_kp",
    }


def test_columns_outside_the_schema_are_ignored() -> None:
    frame = standardise(pd.DataFrame({"surname": ["Weber"], "family_name": ["Weber"]}), today=TODAY).frame
    assert "surname" not in frame.columns


def test_empty_frame() -> None:
    empty = pd.DataFrame(
        {name: pd.Series([], dtype=object) for name in ("family_name", "birth_date", "phone")}
    )
    result = standardise(empty, today=TODAY)
    assert len(result.frame) == 0
    assert "family_dm" in result.frame.columns
    assert result.invalid_counts == {"family_name": 0, "birth_date": 0, "phone": 0}
    assert len(standardise(pd.DataFrame(), today=TODAY).frame.columns) == 0


def test_pandas_missing_markers_and_string_dtype() -> None:
    raw = pd.DataFrame({"family_name": pd.Series(["Weber", None, "  "], dtype="str")})
    raw.loc[3, "family_name"] = np.nan
    mixed = pd.DataFrame({"family_name": pd.Series(["Weber", pd.NA, float("nan"), None], dtype=object)})
    for frame in (raw, mixed):
        result = standardise(frame, today=TODAY)
        assert result.frame["family_name"].tolist() == ["weber", None, None, None]
        assert result.invalid_counts["family_name"] == 0


def test_cells_a_reader_parsed_as_numbers_or_dates_are_read_as_text() -> None:
    raw = pd.DataFrame(
        {
            "postcode": [1234.0, np.nan, 4321.0],
            "phone": [621123456, 352621123456, 445566],
            "birth_date": pd.to_datetime(["1980-07-14", None, "2001-01-02"]),
        }
    )
    frame = standardise(raw, today=TODAY).frame
    assert frame["postcode"].tolist() == ["1234", None, "4321"]
    assert frame["phone"].tolist() == ["352621123456", "352621123456", "352445566"]
    assert frame["birth_date"].tolist() == ["1980-07-14", None, "2001-01-02"]


def test_row_order_follows_the_input_with_many_repeats() -> None:
    rng = np.random.default_rng(7)
    names = np.array(["Weber", "Schmit", "Müller", None, "Ferreira dos Santos"], dtype=object)
    raw = names[rng.integers(0, len(names), 500)]
    frame = run(family_name=list(raw)).frame
    expected = {"Weber": "weber", "Schmit": "schmit", "Müller": "muller", None: None}
    expected["Ferreira dos Santos"] = "ferreira santos"
    assert frame["family_name"].tolist() == [expected[v] for v in raw]


# --- idempotence --------------------------------------------------------------------------------

_TEXT_COLUMNS = (
    "family_name",
    "birth_name",
    "given_names",
    "street",
    "house_number",
    "postcode",
    "city",
    "country",
    "email",
    "sex",
    "birth_date",
    "national_id",
)
_NAME_PIECES = st.sampled_from(
    [
        "da",
        "dos",
        "de",
        "e",
        "la",
        "le",
        "van",
        "der",
        "von",
        "-",
        "'",
        " ",
        "Müller",
        "Jean",
        "Ç",
        "ß",
        "st",
        "r",
        "av",
        "str",
        "12",
        "n°",
        "/",
        ".",
        "@",
        "L-",
        "ü",
        "É",
        "1980",
        "-00",
        "x@y.lu",
    ]
)
_CELLS = st.one_of(
    st.none(),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=24),
    st.lists(_NAME_PIECES, max_size=6).map("".join),
    st.lists(_NAME_PIECES, max_size=6).map(" ".join),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_CELLS, min_size=1, max_size=12))
def test_standardising_standardised_text_changes_nothing(cells: list[str | None]) -> None:
    raw = pd.DataFrame({name: pd.Series(cells, dtype=object) for name in _TEXT_COLUMNS})
    once = standardise(raw, today=TODAY).frame
    twice = standardise(once[list(_TEXT_COLUMNS)], today=TODAY).frame
    for name in _TEXT_COLUMNS:
        assert twice[name].tolist() == once[name].tolist(), name
    assert twice["family_last"].tolist() == once["family_last"].tolist()
    # A first given name, fed back as given names, stays itself.
    again = standardise(pd.DataFrame({"given_names": once["given_name"]}), today=TODAY).frame
    assert again["given_names"].tolist() == once["given_name"].tolist()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="0123456789 +-()./", max_size=18), min_size=1, max_size=10))
def test_standardising_standardised_luxembourg_phones_changes_nothing(cells: list[str]) -> None:
    once = column("phone", list(cells))
    luxembourg = [p for p in once if isinstance(p, str) and p.startswith("352")]
    assert column("phone", list(luxembourg)) == luxembourg
