"""A record's standardised form as one line of text, stored beside the record and read back for scoring.

An online registration scores the new record against a few dozen stored
candidates. Standardising those candidates again on every call (folding,
particles, phonetic codes, matricule checks) cost more than scoring them, and
at a million records most candidates carry values no cache has seen. So the
form the kernel compares is computed once, when a record version is written,
and read back with the candidate.

A form is the kernel's columns (:data:`FORM_COLUMNS`) joined by the unit
separator, behind a stamp. The stamp changes with this module's layout, with
the data tables the standardiser reads (nicknames, particles, abbreviations,
countries) and with the Unicode and phonetic libraries it relies on, so a form
written under other rules is never used: it fails :func:`from_forms` and the
record is standardised afresh (``mpi db reindex`` writes current forms).
"""

from __future__ import annotations

import functools
import hashlib
import math
import unicodedata
from collections.abc import Sequence
from importlib import metadata, resources

import numpy as np
import numpy.typing as npt

from mpi.rules.columns import INTEGER_COLUMNS, STRING_COLUMNS

# Bump when what standardise() computes changes in a way the data tables do not show.
LAYOUT_VERSION = 1
SEPARATOR = "\x1f"
FORM_COLUMNS: tuple[str, ...] = tuple(sorted(STRING_COLUMNS | INTEGER_COLUMNS))
_INTEGER_DTYPES: dict[str, np.dtype[np.generic]] = {
    "birth_year": np.dtype(np.int16),
    "birth_month": np.dtype(np.int8),
    "birth_day": np.dtype(np.int8),
}
if set(_INTEGER_DTYPES) != INTEGER_COLUMNS:
    raise RuntimeError("stored_form needs the dtype of every integer column of mpi.rules.columns")

Columns = dict[str, npt.NDArray[np.generic]]


@functools.cache
def form_stamp(default_calling_code: str = "352") -> str:
    """What a form was computed under: layout, columns, calling code and the standardiser's data."""
    digest = hashlib.blake2b(digest_size=6)
    digest.update(f"{LAYOUT_VERSION}|{default_calling_code}|{','.join(FORM_COLUMNS)}".encode())
    # Folding follows the Unicode tables of the running Python; phonetic codes, the library's.
    digest.update(f"|{unicodedata.unidata_version}|{metadata.version('doublemetaphone')}".encode())
    data = resources.files("mpi.matching.data")
    for name in sorted(entry.name for entry in data.iterdir() if entry.name.endswith((".csv", ".txt"))):
        digest.update(name.encode())
        digest.update(data.joinpath(name).read_bytes())
    return f"f{LAYOUT_VERSION}:{digest.hexdigest()}"


def refused_birth_dates(raw: Sequence[str | None], standardised: npt.NDArray[np.generic]) -> list[bool]:
    """Per record, whether the standardiser refused a birth date it was given.

    Such a record gets no stored form: the refusal may not last (a date in the future
    becomes possible), so it is standardised afresh whenever it is scored.
    """
    return [
        not isinstance(value, str) and given is not None and given.strip() != ""
        for given, value in zip(raw, np.asarray(standardised, dtype=object).tolist(), strict=True)
    ]


def to_forms(
    columns: Columns, n: int, stamp: str | None = None, withheld: Sequence[bool] | None = None
) -> list[str | None]:
    """One form per record of standardised ``columns``; ``None`` where ``withheld`` says so or a
    value holds the separator.

    Text is stored as is and missing text as an empty field (standardised text is never
    empty); integers as decimals, ``-1`` when missing. A column the data lacks is missing.
    """
    stamp = stamp or form_stamp()
    parts: list[list[str]] = []
    for name in FORM_COLUMNS:
        values = columns.get(name)
        if values is None:
            parts.append(["-1" if name in INTEGER_COLUMNS else ""] * n)
        elif name in INTEGER_COLUMNS:
            # Missing is -1 on both standardising paths; a NaN or NA (a float column) is missing too.
            parts.append(
                [
                    str(int(v)) if isinstance(v, int | float) and not math.isnan(v) else "-1"
                    for v in np.asarray(values).tolist()
                ]
            )
        else:
            # Missing text is None, NaN or pd.NA depending on the path that standardised it.
            parts.append([v if isinstance(v, str) else "" for v in np.asarray(values, dtype=object).tolist()])
    expected = len(FORM_COLUMNS)
    forms: list[str | None] = []
    for k, fields in enumerate(zip(*parts, strict=True)):
        form = SEPARATOR.join((stamp, *fields))
        # A raw value that survived standardisation with a separator in it would shift every
        # field after it: such a record is simply standardised again whenever it is scored.
        keep = form.count(SEPARATOR) == expected and not (withheld is not None and withheld[k])
        forms.append(form if keep else None)
    return forms


def form_fields(forms: Sequence[str], stamp: str | None = None) -> list[tuple[str, ...]] | None:
    """The raw fields of ``forms``, one tuple per column of :data:`FORM_COLUMNS` (text as stored,
    ``""`` when missing; integers as decimals); ``None`` unless every form is current."""
    stamp = stamp or form_stamp()
    rows = [form.split(SEPARATOR) for form in forms]
    width = len(FORM_COLUMNS) + 1
    if any(len(row) != width or row[0] != stamp for row in rows):
        return None
    return list(zip(*rows, strict=True))[1:] if rows else [() for _ in FORM_COLUMNS]


def from_forms(forms: Sequence[str], stamp: str | None = None) -> Columns | None:
    """The standardised columns of ``forms``, in order; ``None`` unless every one is current."""
    fields = form_fields(forms, stamp)
    if fields is None:
        return None
    columns: Columns = {}
    for name, values in zip(FORM_COLUMNS, fields, strict=True):
        if name in INTEGER_COLUMNS:
            columns[name] = np.array([int(v) for v in values], dtype=_INTEGER_DTYPES[name])
        else:
            text = np.empty(len(values), dtype=object)
            text[:] = [v or None for v in values]
            columns[name] = text
    return columns


def is_current(form: str | None, stamp: str | None = None) -> bool:
    """Whether ``form`` was written under the current stamp (cheap: no split)."""
    return form is not None and form.startswith((stamp or form_stamp()) + SEPARATOR)
