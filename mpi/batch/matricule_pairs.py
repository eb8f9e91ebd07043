"""Records of a load that share a valid matricule, and how their strict traits compare.

Online, a record is compared with every record holding its valid matricule,
whatever the blocking keys, and their sex and birth date decide before the
score does (:func:`mpi.service.evidence.strict_relation`): both differ, a
collision, never linked and always put before a human; neither differs, the
same person, linked; one differs, the matcher decides. Here the same rule is
applied to a whole load at once: the pairs come from a group-by on the
normalised matricule and the traits are compared as columns (a million rows:
about a second). ``tests/unit/batch/test_matricule_pairs.py`` holds the two to
the same answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mpi.matching.blocking import _within_block_pairs

# The relation of a pair, as in mpi.service.evidence.MatriculeRelation.
NONE, COMPATIBLE, UNDECIDED, CONFLICTING = 0, 1, 2, 3
_SEX_CODES = {"M": 1, "F": 2}
_DATE = r"^(\d+)-(\d+)-(\d+)\Z"


def matricule_codes(matricules: npt.NDArray[Any] | pd.Series[Any]) -> npt.NDArray[np.int64]:
    """A code per record, equal for equal normalised valid matricules (``None`` or NaN: -1)."""
    codes, _ = pd.factorize(np.asarray(matricules, dtype=object), use_na_sentinel=True)
    return codes.astype(np.int64)


def shared_matricule_pairs(
    codes: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Every pair of positions (left < right) with the same :func:`matricule_codes`."""
    known = np.flatnonzero(codes >= 0)
    empty = np.zeros(0, dtype=np.int64)
    if known.size < 2:
        return empty, empty
    order = known[np.argsort(codes[known], kind="stable")]
    _, sizes = np.unique(codes[order], return_counts=True)
    shared = sizes > 1
    if not shared.any():
        return empty, empty
    # Only the groups of two or more: the others make no pair.
    order = order[np.repeat(shared, sizes)]
    sizes = sizes[shared].astype(np.int64)
    starts = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
    total = int((sizes * (sizes - 1) // 2).sum())
    chunks = list(_within_block_pairs(order, starts, sizes, total))
    left = np.concatenate([a for a, _ in chunks]).astype(np.int64)
    right = np.concatenate([b for _, b in chunks]).astype(np.int64)
    return np.minimum(left, right), np.maximum(left, right)


def _distinct(
    values: npt.NDArray[Any] | pd.Series[Any] | list[str | None], rows: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], pd.Series[Any]]:
    """The values at ``rows`` as codes into their distinct values (missing ones as ``None``):
    the text work is done once per distinct value, not once per record."""
    picked = np.asarray(values, dtype=object)[rows]
    codes, uniques = pd.factorize(picked, use_na_sentinel=False)
    distinct = pd.Series(np.asarray(uniques, dtype=object), dtype=object)
    return codes.astype(np.int64), distinct.where(distinct.notna(), None)


def strict_relations(
    sex: npt.NDArray[Any] | pd.Series[Any] | list[str | None],
    birth_date: npt.NDArray[Any] | pd.Series[Any] | list[str | None],
    left: npt.NDArray[np.int64],
    right: npt.NDArray[np.int64],
) -> npt.NDArray[np.int8]:
    """The relation of each pair ``(left[i], right[i])`` from the records' sex and birth date as
    given (not standardised: online compares them as stored): COMPATIBLE, UNDECIDED or CONFLICTING.

    Positions index ``sex`` and ``birth_date``; only the records in a pair are looked at.
    """
    if left.size == 0:
        return np.zeros(0, dtype=np.int8)
    involved, inverse = np.unique(np.r_[left, right], return_inverse=True)

    sex_of, sexes = _distinct(sex, involved)
    first = sexes.fillna("").astype(str).str.strip().str.upper().str[:1]
    sex_code = first.map(_SEX_CODES).fillna(0).to_numpy(dtype=np.int8)[sex_of]
    a, b = sex_code[inverse[: left.size]], sex_code[inverse[left.size :]]
    sex_differs = (a > 0) & (b > 0) & (a != b)

    date_of, dates = _distinct(birth_date, involved)
    text = dates.fillna("").astype(str)
    given = (text.str.len() > 0).to_numpy()  # as Python's truth: a blank is given
    stripped_of, _ = pd.factorize(text.str.strip().to_numpy(dtype=object))
    parts = text.str.strip().str.extract(_DATE)
    parsed = parts.notna().all(axis=1).to_numpy()
    da, db = date_of[inverse[: left.size]], date_of[inverse[left.size :]]
    # Unparsed dates (either side) differ when both are given and differ once trimmed.
    date_differs = given[da] & given[db] & (stripped_of[da] != stripped_of[db])
    both = np.flatnonzero(parsed[da] & parsed[db])
    if both.size:
        # Parsed dates differ when a part differs that neither side gives as 00 (unknown).
        pa, pb = da[both], db[both]
        differs = np.zeros(both.size, dtype=bool)
        for column in parts.columns:
            part = parts[column].fillna("")
            part_of, _ = pd.factorize(part.to_numpy(dtype=object))
            known = ~part.str.fullmatch("0+").to_numpy(dtype=bool)
            differs |= (part_of[pa] != part_of[pb]) & known[pa] & known[pb]
        date_differs[both] = differs
    return np.where(
        sex_differs & date_differs,
        CONFLICTING,
        np.where(sex_differs | date_differs, UNDECIDED, COMPATIBLE),
    ).astype(np.int8)
