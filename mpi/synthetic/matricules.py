"""National identification numbers (matricules) for synthetic persons.

Every person gets a valid 13-digit number ``YYYYMMDD SSS L V`` whose sequence
``SSS`` is unique for its date. Persons registered before 2014 mostly carry a
number from the 11-digit era: their ``SSS`` is a two-digit order number (odd for
men, even for women) followed by the legacy mod-11 check digit, so the first 11
digits are themselves a valid legacy number, as on every public example.
"""

from __future__ import annotations

import numpy as np

from mpi.domain.identifiers import complete_matricules
from mpi.errors import MPIError
from mpi.synthetic.text import TEXT, BoolArray, IntArray, TextArray

LEGACY_ERA_END = 2014
_LEGACY_WEIGHTS = np.array([5, 4, 3, 2, 7, 6, 5, 4, 3, 2], dtype=np.int64)
_MAX_ATTEMPTS = 64


def _digit_matrix(numbers: IntArray, width: int) -> IntArray:
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    matrix: IntArray = (numbers[:, None] // powers[None, :]) % 10
    return matrix


def _legacy_sequences(rng: np.random.Generator, date_code: IntArray, male: BoolArray) -> IntArray:
    """Order number and mod-11 check digit as a 3-digit sequence; -1 where no check digit exists."""
    order = 2 * rng.integers(0, 50, len(date_code)) + male.astype(np.int64)
    weighted = (_digit_matrix(date_code * 100 + order, 10) * _LEGACY_WEIGHTS).sum(axis=1)
    check = (11 - weighted % 11) % 11
    return np.where(check == 10, -1, order * 10 + check)


def _later_duplicates(keys: IntArray) -> IntArray:
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    duplicates: IntArray = order[1:][ordered[1:] == ordered[:-1]]
    return duplicates


def assign_national_ids(
    rng: np.random.Generator,
    year: IntArray,
    month: IntArray,
    day: IntArray,
    sex: TextArray,
    legacy_share: float,
) -> tuple[TextArray, BoolArray]:
    """Unique valid matricules and whether each also has a valid 11-digit legacy form."""
    n = len(year)
    if (year < 1000).any() or (year > 9999).any():
        raise MPIError("matricules need four-digit birth years")
    date_code = year * 10000 + month * 100 + day
    legacy = (year < LEGACY_ERA_END) & (rng.random(n) < legacy_share)
    male = sex == "M"
    sequence = np.full(n, -1, dtype=np.int64)
    pending = np.arange(n)
    for attempt in range(_MAX_ATTEMPTS):
        if attempt == _MAX_ATTEMPTS // 2:
            legacy[pending] = False  # a crowded date ran out of legacy order numbers
        drawn = np.where(
            legacy[pending],
            _legacy_sequences(rng, date_code[pending], male[pending]),
            rng.integers(0, 1000, len(pending)),
        )
        sequence[pending] = drawn
        keys = np.where(sequence >= 0, date_code * 1000 + sequence, -1 - np.arange(n))
        pending = np.union1d(np.flatnonzero(sequence < 0), _later_duplicates(keys))
        if pending.size == 0:
            break
    else:
        raise MPIError("more than 1000 persons share a birth date; matricule sequences are exhausted")
    payload = _digit_matrix(date_code * 1000 + sequence, 11).astype(np.int8)
    full = (complete_matricules(payload).astype(np.uint8) + ord("0")).view("S13").reshape(n)
    return full.astype("U13").astype(TEXT), legacy
