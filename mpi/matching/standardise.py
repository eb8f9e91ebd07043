"""Vectorised standardisation of batch-schema records into the columns the matcher compares.

:func:`standardise` turns raw cells (any mix of case, accents, punctuation,
date formats and phone styles) into one canonical spelling per value, plus
phonetic keys and split birth-date parts. Unusable cells never raise: they
become missing and are counted per input column in
:attr:`StandardisedFrame.invalid_counts`.

Every column is factorised first and each rule runs once per *distinct* value,
then the result is broadcast back through the codes, so the cost follows the
vocabulary (a few hundred thousand names) rather than the row count.

The text rules are idempotent: standardising a standardised column again
returns it unchanged, so stored golden records and fresh input meet on equal
terms. The one exception is a phone number of another country: its digits-only
form no longer says it is international, so a second pass would prefix the
default calling code again.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt
import pandas as pd

from mpi.domain.identifiers import MatriculeStatus, check_matricule, classify_matricules
from mpi.domain.records import BATCH_COLUMNS
from mpi.matching.nicknames import canonical_given_names, load_nicknames
from mpi.matching.phonetics import cologne, double_metaphone, to_ascii

_DATA_PACKAGE = "mpi.matching.data"
_EARLIEST_BIRTH_YEAR = 1880
_MIN_NATIONAL_DIGITS = 6  # an old Luxembourg landline ("44 55 66"); there are no area codes
_MIN_INTERNATIONAL_DIGITS = 8
_MAX_INTERNATIONAL_DIGITS = 15  # E.164


@dataclass(frozen=True)
class StandardisedFrame:
    """Standardised columns (same rows and index as the input) and per-column counts of unusable cells."""

    frame: pd.DataFrame
    invalid_counts: dict[str, int]


def _as_text(value: object) -> str:
    """A non-string cell as text: readers turn numeric-looking columns with gaps into floats."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


@dataclass(frozen=True)
class _Column:
    """A column as codes into its distinct values, so every rule runs once per value."""

    codes: npt.NDArray[np.intp]  # -1 where missing
    values: list[str]

    @classmethod
    def factorise(cls, series: pd.Series) -> _Column:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        values = np.asarray(uniques, dtype=object).tolist()
        stripped = [v.strip() if type(v) is str else _as_text(v) for v in values]
        column = cls(np.asarray(codes, dtype=np.intp), stripped)
        # str.strip returns the very same object when there is nothing to strip, so this
        # equality is cheap; re-factorising is needed only when padding merged or emptied values.
        if stripped == values and "" not in stripped:
            return column
        return column.map(lambda cleaned: cleaned)

    def map(self, rule: Callable[[list[str]], Sequence[str | None]]) -> _Column:
        """Apply ``rule`` to the distinct values; ``None`` or ``""`` results become missing."""
        if not self.values:
            return self
        results = np.empty(len(self.values), dtype=object)
        results[:] = [value or None for value in rule(self.values)]
        codes, uniques = pd.factorize(results, use_na_sentinel=True)
        remap = np.append(codes, -1).astype(np.intp)  # a missing code (-1) picks the appended -1
        return _Column(remap[self.codes], [str(v) for v in uniques.tolist()])

    @property
    def present(self) -> npt.NDArray[np.bool_]:
        return self.codes >= 0

    def strings(self) -> npt.NDArray[np.object_]:
        table = np.empty(len(self.values) + 1, dtype=object)
        table[:-1] = self.values
        table[-1] = None
        result: npt.NDArray[np.object_] = table[self.codes]
        return result

    def lookup(self, per_value: npt.NDArray[np.generic], missing: int) -> npt.NDArray[np.generic]:
        """Broadcast one number per distinct value to the rows, ``missing`` where the cell is missing."""
        return np.append(per_value, np.array([missing], dtype=per_value.dtype))[self.codes]


# --- data files -------------------------------------------------------------------------------


def _data_text(name: str) -> str:
    return resources.files(_DATA_PACKAGE).joinpath(name).read_text(encoding="utf-8")


@functools.cache
def surname_particles() -> tuple[frozenset[str], frozenset[str]]:
    """(particles dropped, particles attached to the next token), from ``data/surname_particles.txt``."""
    rules: dict[str, set[str]] = {"drop": set(), "attach": set()}
    for line in _data_text("surname_particles.txt").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            rule, particle = line.split()
            rules[rule].add(particle)
    return frozenset(rules["drop"]), frozenset(rules["attach"])


@functools.cache
def _street_abbreviations() -> dict[str, dict[str, str]]:
    by_position: dict[str, dict[str, str]] = {"any": {}, "first": {}, "last": {}}
    for row in csv.DictReader(io.StringIO(_data_text("street_abbreviations.csv"))):
        by_position[row["position"]][row["abbreviation"]] = row["expansion"]
    return by_position


@functools.cache
def _country_aliases() -> dict[str, str]:
    return {row["alias"]: row["alpha2"] for row in csv.DictReader(io.StringIO(_data_text("countries.csv")))}


# --- text folding -----------------------------------------------------------------------------

# Unicode dashes become ASCII hyphens before transliteration, which would drop them.
_DASHES = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d", "-"))
_WHITESPACE = b" \t\n\r\x0b\x0c"
_WORD_SEPARATORS = b"-_/,;+&"
# bytes.translate runs in C: one pass lowercases, turns separators into spaces and deletes the rest.
_FOLD_TABLE = bytes.maketrans(
    string.ascii_uppercase.encode() + _WORD_SEPARATORS,
    string.ascii_lowercase.encode() + b" " * len(_WORD_SEPARATORS),
)
_KEPT_IN_NAMES = set(string.ascii_letters.encode()) | set(_WHITESPACE) | set(_WORD_SEPARATORS)
_DELETED_FROM_NAMES = bytes(set(range(256)) - _KEPT_IN_NAMES)
_DELETED_FROM_TEXT = bytes(set(range(256)) - _KEPT_IN_NAMES - set(string.digits.encode()))


def fold(value: str, *, keep_digits: bool = False) -> str:
    """ASCII, lowercase, hyphens and other word separators as one space, other punctuation removed."""
    text = value if value.isascii() else to_ascii(value.translate(_DASHES))
    deleted = _DELETED_FROM_TEXT if keep_digits else _DELETED_FROM_NAMES
    return b" ".join(text.encode("ascii").translate(_FOLD_TABLE, deleted).split()).decode("ascii")


def _fold_all(values: list[str], *, keep_digits: bool = False) -> list[str]:
    return [fold(value, keep_digits=keep_digits) for value in values]


def _particle_pass(tokens: list[str], drop: frozenset[str], attach: frozenset[str]) -> list[str]:
    kept: list[str] = []
    prefix = ""
    last = len(tokens) - 1
    for index, token in enumerate(tokens):
        if index < last and (token in attach or (prefix and token in drop)):
            prefix += token  # "van der berg" -> "vanderberg"
        elif index < last and token in drop:
            continue
        else:
            kept.append(prefix + token)
            prefix = ""
    return kept


def remove_particles(name: str) -> str:
    """Drop or attach surname particles of a folded name (see ``data/surname_particles.txt``)."""
    drop, attach = surname_particles()
    tokens = name.split()
    if (drop | attach).isdisjoint(tokens[:-1]):
        return " ".join(tokens)
    # Attaching can form a new particle ("la" + "s"), so repeat until nothing changes: that
    # fixed point is what makes the rule idempotent.
    while len(tokens) > 1:
        changed = _particle_pass(tokens, drop, attach)
        if changed == tokens:
            break
        tokens = changed
    return " ".join(tokens)


def _family_names(values: list[str]) -> list[str]:
    return [remove_particles(name) if " " in name else name for name in _fold_all(values)]


_HYPHEN_WITH_SPACES = re.compile(r"\s*-\s*")


def _first_given_names(values: list[str]) -> list[str]:
    """The first given name; a hyphenated one ("Jean-Pierre") is one name."""
    firsts = []
    for value in values:
        if "-" in value or not value.isascii():
            value = _HYPHEN_WITH_SPACES.sub("-", value.translate(_DASHES))
        tokens = value.split(None, 1)
        firsts.append(fold(tokens[0]) if tokens else "")
    return firsts


def _last_tokens(values: list[str]) -> list[str]:
    return [value.rsplit(" ", 1)[-1] for value in values]


# --- birth dates ------------------------------------------------------------------------------

_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ][\d:.+\-Z]*)?")
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_DAY_FIRST_DATE = re.compile(r"(\d{1,2})([./])(\d{1,2})\2(\d{4})")
_DAYS_IN_MONTH = np.array([31, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _date_parts(value: str) -> tuple[int, int, int]:
    if match := _ISO_DATE.fullmatch(value):
        return int(match[1]), int(match[2]), int(match[3])
    if match := _COMPACT_DATE.fullmatch(value):
        return int(match[1]), int(match[2]), int(match[3])
    if match := _DAY_FIRST_DATE.fullmatch(value):
        return int(match[4]), int(match[3]), int(match[1])
    return -1, -1, -1


def _possible_dates(
    year: npt.NDArray[np.int64], month: npt.NDArray[np.int64], day: npt.NDArray[np.int64], today: dt.date
) -> npt.NDArray[np.bool_]:
    """Dates that can be a birth date; month or day 0 is a legal "unknown"."""
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    in_range = (year >= _EARLIEST_BIRTH_YEAR) & (month >= 0) & (month <= 12) & (day >= 0)
    last_day = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + (leap & (month == 2))
    earliest = year * 10000 + np.maximum(month, 1) * 100 + np.maximum(day, 1)
    not_future = earliest <= today.year * 10000 + today.month * 100 + today.day
    possible: npt.NDArray[np.bool_] = in_range & (day <= last_day) & not_future
    return possible


def _standardise_birth_dates(
    column: _Column, today: dt.date
) -> tuple[dict[str, npt.NDArray[np.generic]], _Column]:
    parts = np.array([_date_parts(value) for value in column.values], dtype=np.int64).reshape(-1, 3)
    year, month, day = parts[:, 0], parts[:, 1], parts[:, 2]
    possible = _possible_dates(year, month, day, today)
    year = np.where(possible, year, -1)
    month = np.where(possible, month, -1)
    day = np.where(possible, day, -1)
    texts = [
        f"{y:04d}-{m:02d}-{d:02d}" if y >= 0 else None
        for y, m, d in zip(year.tolist(), month.tolist(), day.tolist(), strict=True)
    ]
    iso = column.map(lambda _: texts)
    parts_by_row = {
        "birth_date": iso.strings(),
        "birth_year": column.lookup(year.astype(np.int16), -1),
        "birth_month": column.lookup(month.astype(np.int8), -1),
        "birth_day": column.lookup(day.astype(np.int8), -1),
    }
    return parts_by_row, iso


# --- sex --------------------------------------------------------------------------------------

_SEX_CODES = {
    **dict.fromkeys(("m", "male", "man", "masculin", "masculine", "homme", "h", "1", "mannlich"), "M"),
    **dict.fromkeys(("f", "female", "woman", "feminin", "feminine", "femme", "2", "w", "weiblich"), "F"),
    **dict.fromkeys(("o", "other", "autre", "divers", "x", "a", "ambiguous"), "O"),
}
# Codes that *say* the sex is unknown (HL7 U/N, ISO 5218 0/9): missing, but not an error.
_UNKNOWN_SEX = frozenset({"u", "unknown", "inconnu", "unbekannt", "n", "0", "9"})


def _sex(value: str) -> str | None:
    return _SEX_CODES.get(fold(value, keep_digits=True))


def _bad_sex_code(value: str) -> str | None:
    """Marks a code that is neither a sex nor an explicit "unknown"; used only to count them."""
    key = fold(value, keep_digits=True)
    return None if key in _SEX_CODES or key in _UNKNOWN_SEX else key or "empty after folding"


# --- addresses --------------------------------------------------------------------------------

_GERMAN_STREET_SUFFIX = re.compile(r"(?<=[a-z])str$")


def _street(value: str) -> str:
    abbreviations = _street_abbreviations()
    tokens = fold(value, keep_digits=True).split()
    last = len(tokens) - 1
    # "First" means first word: a French address may lead with its house number ("12 r. de la Gare").
    first = next((index for index, token in enumerate(tokens) if not token[0].isdigit()), -1)
    expanded = []
    for index, token in enumerate(tokens):
        if token == "st":
            # "Rue St Ulric" is a saint; "Main St" is a street.
            expanded.append("street" if index == last else "saint")
        elif token in abbreviations["any"]:
            expanded.append(abbreviations["any"][token])
        elif index == first and token in abbreviations["first"]:
            expanded.append(abbreviations["first"][token])
        elif index == last and token in abbreviations["last"]:
            expanded.append(abbreviations["last"][token])
        else:
            expanded.append(_GERMAN_STREET_SUFFIX.sub("strasse", token))  # "Hauptstr." -> "hauptstrasse"
    return " ".join(expanded)


_RANGE_SEPARATOR = re.compile(r"(?<=\d)\s*[-/&,]\s*(?=\d)")
_NOT_HOUSE_NUMBER = re.compile(r"[^a-z0-9-]+")
_LONE_HYPHEN = re.compile(r"(?<!\d)-|-(?!\d)")
_NUMBER_PREFIX = re.compile(r"^(?:nr|no|num|n)(?=\d)")


def _house_number(value: str) -> str:
    """``"12 A"`` -> ``"12a"``, ``"N° 3"`` -> ``"3"``; a range keeps a hyphen: ``"12/14"`` -> ``"12-14"``."""
    text = _RANGE_SEPARATOR.sub("-", to_ascii(value.translate(_DASHES)).lower())
    text = _LONE_HYPHEN.sub("", re.sub(r"-+", "-", _NOT_HOUSE_NUMBER.sub("", text)))
    return _NUMBER_PREFIX.sub("", text)


# Old European style country prefixes: "L-1234" (Luxembourg), "B-1000", "F-57000", "D-66111".
_PREFIXED_POSTCODE = re.compile(r"(?:lu?|b|be)(\d{4})|(?:f|fr|d|de)(\d{5})")


def _postcode(value: str) -> str:
    compact = "".join(fold(value, keep_digits=True).split())
    if match := _PREFIXED_POSTCODE.fullmatch(compact):
        return match[1] or match[2]
    return compact


def _country(value: str) -> str | None:
    key = fold(value)
    alias = _country_aliases().get(key)
    if alias is not None:
        return alias
    return key.upper() if len(key) == 2 else None


# --- contact ----------------------------------------------------------------------------------

_TRUNK_ZERO_IN_BRACKETS = re.compile(r"\(\s*0\s*\)")  # "+33 (0)6 ..." dials without the 0


def _phone(value: str, calling_code: str) -> str | None:
    text = _TRUNK_ZERO_IN_BRACKETS.sub("", value).strip()
    digits = "".join(ch for ch in text if ch.isascii() and ch.isdigit())
    if text.startswith("+"):
        number = digits
    elif digits.startswith("00"):
        number = digits[2:]
    elif digits.startswith(calling_code) and len(digits) - len(calling_code) >= _MIN_NATIONAL_DIGITS:
        # Already international (our own output): a Luxembourg landline has at most 8 digits
        # and a mobile number starts with 6, so none reads as 352 + 6 or more digits.
        number = digits
    elif digits.startswith("0"):
        number = calling_code + digits[1:]  # drop the trunk prefix (France, Germany, ...)
    else:
        number = calling_code + digits  # Luxembourg numbers have no trunk prefix
    if number.startswith(calling_code) and len(number) - len(calling_code) < _MIN_NATIONAL_DIGITS:
        return None
    if not _MIN_INTERNATIONAL_DIGITS <= len(number) <= _MAX_INTERNATIONAL_DIGITS or number.startswith("0"):
        return None
    return number


_EMAIL = re.compile(
    r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
    r"@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,}"
)


def _email(value: str) -> str | None:
    text = value.strip().lower().removeprefix("mailto:")
    return text if _EMAIL.fullmatch(text) else None


# --- the whole frame --------------------------------------------------------------------------

SCHEMA_COLUMNS = BATCH_COLUMNS
PASSTHROUGH_COLUMNS = ("record_id", "source", "local_id")


def _each(rule: Callable[[str], str | None]) -> Callable[[list[str]], list[str | None]]:
    return lambda values: [rule(value) for value in values]


def _canonical(names: list[str]) -> list[str | None]:
    canonical: list[str | None] = canonical_given_names(np.array(names, dtype=object)).tolist()
    return canonical


def _name_columns(raw: dict[str, _Column], out: dict[str, npt.NDArray[np.generic]]) -> dict[str, _Column]:
    """Name columns into ``out``; returns the standardised column of each raw name column."""
    results: dict[str, _Column] = {}
    if "family_name" in raw:
        family = results["family_name"] = raw["family_name"].map(_family_names)
        out["family_name"] = family.strings()
        out["family_last"] = family.map(_last_tokens).strings()
        out["family_dm"] = family.map(double_metaphone).strings()
        out["family_kp"] = family.map(cologne).strings()
    if "birth_name" in raw:
        birth = results["birth_name"] = raw["birth_name"].map(_family_names)
        out["birth_name"] = birth.strings()
        out["birth_name_dm"] = birth.map(double_metaphone).strings()
    if "given_names" in raw:
        first = raw["given_names"].map(_first_given_names)
        given = results["given_names"] = raw["given_names"].map(_fold_all)
        out["given_name"] = first.strings()
        out["given_names"] = given.strings()
        out["given_canonical"] = first.map(_canonical).strings()
        out["given_dm"] = first.map(double_metaphone).strings()
        out["given_kp"] = first.map(cologne).strings()
    return results


_TEXT_RULES: dict[str, Callable[[str], str | None]] = {
    "street": _street,
    "house_number": _house_number,
    "postcode": _postcode,
    "city": lambda value: fold(value, keep_digits=True),
    "country": _country,
    "email": _email,
}


def standardise(
    frame: pd.DataFrame, *, default_calling_code: str = "352", today: dt.date | None = None
) -> StandardisedFrame:
    """Standardise the batch-schema columns present in ``frame``; see the module docstring.

    Columns outside the batch schema are ignored. ``default_calling_code`` is the
    country calling code of phone numbers written without one; ``today``
    (default: the current date) bounds plausible birth dates.
    """
    today = today or dt.date.today()
    raw = {name: _Column.factorise(frame[name]) for name in SCHEMA_COLUMNS if name in frame.columns}
    out: dict[str, npt.NDArray[np.generic]] = {}
    results: dict[str, _Column] = {}

    for name in PASSTHROUGH_COLUMNS:
        if name in raw:
            out[name] = raw[name].strings()
            results[name] = raw[name]
    results.update(_name_columns(raw, out))
    if "birth_date" in raw:
        dates, results["birth_date"] = _standardise_birth_dates(raw["birth_date"], today)
        out.update(dates)
    if "sex" in raw:
        results["sex"] = raw["sex"].map(_each(_sex))
        out["sex"] = results["sex"].strings()
    if "national_id" in raw:
        column = raw["national_id"]
        normalised, status = (
            classify_matricules(np.array(column.values, dtype=object))
            if column.values
            else (np.array([], dtype=object), np.array([], dtype=np.int8))
        )
        results["national_id"] = column.map(lambda _: normalised.tolist())
        out["national_id"] = results["national_id"].strings()
        out["national_id_status"] = column.lookup(status.astype(np.int8), int(MatriculeStatus.MISSING))
    for name, rule in _TEXT_RULES.items():
        if name in raw:
            results[name] = raw[name].map(_each(rule))
            out[name] = results[name].strings()
    if "phone" in raw:
        results["phone"] = raw["phone"].map(_each(lambda value: _phone(value, default_calling_code)))
        out["phone"] = results["phone"].strings()

    invalid = {
        name: int(np.count_nonzero(raw[name].present & ~result.present)) for name, result in results.items()
    }
    if "sex" in raw:
        invalid["sex"] = int(np.count_nonzero(raw["sex"].map(_each(_bad_sex_code)).present))
    columns = {
        name: pd.Series(values, index=frame.index, dtype=values.dtype, copy=False)
        for name, values in out.items()
    }
    # copy=False keeps one block per column instead of copying them all into one object block.
    return StandardisedFrame(pd.DataFrame(columns, index=frame.index, copy=False), invalid)


# --- a few records at a time (the online path) --------------------------------------------------
#
# Scoring one probe against its candidates standardises a few dozen records per call. Factorising
# and building a DataFrame for so few rows costs tens of milliseconds, while the names, places and
# numbers involved recur from call to call; so the same per-value rules run one cell at a time and
# each cell's results are remembered. Unit tests hold both paths to the same output.

_Cell = tuple[object, ...]
_INT16, _INT8 = np.dtype(np.int16), np.dtype(np.int8)
# Per raw column, its standardised outputs as (name, dtype, value of a missing cell), in the order
# standardise() adds them; a dtype of None is text (an object array, None where missing).
_OUTPUTS: dict[str, tuple[tuple[str, np.dtype[np.generic] | None, int | None], ...]] = {
    **{name: ((name, None, None),) for name in PASSTHROUGH_COLUMNS},
    "family_name": tuple((n, None, None) for n in ("family_name", "family_last", "family_dm", "family_kp")),
    "birth_name": (("birth_name", None, None), ("birth_name_dm", None, None)),
    "given_names": tuple(
        (n, None, None) for n in ("given_name", "given_names", "given_canonical", "given_dm", "given_kp")
    ),
    "birth_date": (
        ("birth_date", None, None),
        ("birth_year", _INT16, -1),
        ("birth_month", _INT8, -1),
        ("birth_day", _INT8, -1),
    ),
    "sex": (("sex", None, None),),
    "national_id": (("national_id", None, None), ("national_id_status", _INT8, int(MatriculeStatus.MISSING))),
    **{name: ((name, None, None),) for name in (*_TEXT_RULES, "phone")},
}
_MISSING_CELL: dict[str, _Cell] = {
    column: tuple(missing for _, _, missing in outputs) for column, outputs in _OUTPUTS.items()
}


# The nickname table is read once; canonical_given_names looks names up in the same table.
_nicknames = functools.cache(load_nicknames)


def _each_present(
    values: Sequence[str | None], rule: Callable[[list[str]], Sequence[str | None]]
) -> list[str | None]:
    """``rule`` over the present values in one call, as :meth:`_Column.map` applies it (empty -> missing)."""
    present = [value for value in values if value is not None]
    results = iter(rule(present) if present else ())
    return [None if value is None else (next(results) or None) for value in values]


def _computed_cells(column: str, texts: list[str], calling_code: str, today: dt.date) -> list[_Cell]:
    """The outputs of present, stripped raw cells of one column, in the order of ``_OUTPUTS[column]``.

    Each rule runs once over all the cells, as the batch path runs it once over the distinct
    values: the array-based rules (phonetic codes, matricule checks) cost about as much for
    a dozen values as for one.
    """
    if column in ("family_name", "birth_name"):
        family = _each_present(texts, _family_names)
        metaphone = _each_present(family, double_metaphone)
        if column == "birth_name":
            return list(zip(family, metaphone, strict=True))
        last, kolner = _each_present(family, _last_tokens), _each_present(family, cologne)
        return list(zip(family, last, metaphone, kolner, strict=True))
    if column == "given_names":
        first = _each_present(texts, _first_given_names)
        nicknames = _nicknames()
        canonical = [None if name is None else (nicknames.get(name, name) or None) for name in first]
        given, metaphone = _each_present(texts, _fold_all), _each_present(first, double_metaphone)
        return list(zip(first, given, canonical, metaphone, _each_present(first, cologne), strict=True))
    if column == "birth_date":
        parts = np.array([_date_parts(text) for text in texts], dtype=np.int64).reshape(-1, 3)
        possible = _possible_dates(parts[:, 0], parts[:, 1], parts[:, 2], today).tolist()
        return [
            (f"{y:04d}-{m:02d}-{d:02d}", y, m, d) if ok else (None, -1, -1, -1)
            for (y, m, d), ok in zip(parts.tolist(), possible, strict=True)
        ]
    if column == "national_id":
        checked = [check_matricule(text) for text in texts]  # the scalar check: a handful of values
        return [(n or None, int(s)) for n, s in checked]
    if column == "sex":
        return [(_sex(text) or None,) for text in texts]
    if column == "phone":
        return [(_phone(text, calling_code) or None,) for text in texts]
    if column in _TEXT_RULES:
        rule = _TEXT_RULES[column]
        return [(rule(text) or None,) for text in texts]
    return [(text,) for text in texts]  # record_id, source and local_id pass through


class _CellCache:
    """Standardised cells by raw value, per column, for one calling code and one day.

    A full column's cache is emptied rather than trimmed: the values in use come back at
    once, and plain dicts keep a hit at a single lookup.
    """

    def __init__(self, calling_code: str, today: dt.date, per_column: int = 1 << 16) -> None:
        self.calling_code = calling_code
        self.today = today
        self._per_column = per_column
        self._columns: dict[str, dict[str, _Cell]] = {column: {} for column in _OUTPUTS}

    def cells(self, column: str, values: Sequence[str | None]) -> list[_Cell]:
        cache = self._columns[column]
        if len(cache) >= self._per_column:
            cache.clear()
        unseen = {value: value.strip() for value in values if value is not None and value not in cache}
        if unseen:
            present = {raw: text for raw, text in unseen.items() if text}
            if present:
                computed = _computed_cells(column, list(present.values()), self.calling_code, self.today)
                cache.update(zip(present, computed, strict=True))
            cache.update((raw, _MISSING_CELL[column]) for raw, text in unseen.items() if not text)
        missing = _MISSING_CELL[column]
        return [missing if value is None else cache[value] for value in values]


_cell_cache: list[_CellCache] = []  # the current cache; replaced when the day or calling code changes


def _cache_for(calling_code: str, today: dt.date) -> _CellCache:
    cache = _cell_cache[0] if _cell_cache else None
    if cache is None or cache.calling_code != calling_code or cache.today != today:
        cache = _CellCache(calling_code, today)
        _cell_cache[:] = [cache]
    return cache


def standardise_few(
    columns: Mapping[str, Sequence[str | None]],
    *,
    default_calling_code: str = "352",
    today: dt.date | None = None,
) -> dict[str, npt.NDArray[np.generic]]:
    """:func:`standardise` for a handful of records, without pandas.

    ``columns`` maps batch-schema column names to equally long sequences of raw
    cells (``None`` when missing). Returns the columns ``standardise`` would,
    in the same order, with the same values and dtypes, as numpy arrays.
    """
    cache = _cache_for(default_calling_code, today or dt.date.today())
    out: dict[str, npt.NDArray[np.generic]] = {}
    for column, outputs in _OUTPUTS.items():
        if column not in columns:
            continue
        cells = cache.cells(column, columns[column])
        for position, (name, dtype, _) in enumerate(outputs):
            out[name] = np.array([cell[position] for cell in cells], dtype=dtype or object)
    return out
