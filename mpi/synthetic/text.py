"""Vectorised string operations on numpy ``StringDType`` columns.

Name-level transformations (folding accents, looking up variants) run once per
distinct value and are broadcast back; per-row edits (typos, digit slips) work on
a fixed-width code-point matrix, so a million rows cost a few array passes and
no Python loop over rows.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

TEXT = np.dtypes.StringDType()
TextArray: TypeAlias = npt.NDArray[Any]  # one-dimensional, dtype TEXT
IntArray: TypeAlias = npt.NDArray[np.int64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]

# QWERTZ, the layout of Luxembourg's (Swiss) and German keyboards; digits are left
# out so a slip inside a name stays alphabetic.
_KEYBOARD_ROWS = ("qwertzuiopü", "asdfghjklöä", "yxcvbnm")
_TABLE_SIZE = 0x250
_FALLBACK_LETTERS = np.array([ord(c) for c in "aeinorstul"], dtype=np.uint32)
_INSERT, _DELETE, _SUBSTITUTE, _TRANSPOSE = 0, 1, 2, 3
# Damerau's classes; substitutions and deletions are the most frequent slips.
_EDIT_CUMULATIVE = np.cumsum([0.25, 0.3, 0.3, 0.15])
_FOLD_EXTRA = str.maketrans({"ß": "ss", "đ": "d", "Đ": "D", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O",
                             "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ı": "i"})  # fmt: skip


def _keyboard_table() -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]:
    position = {ch: (r, c) for r, row in enumerate(_KEYBOARD_ROWS) for c, ch in enumerate(row)}
    at = {pos: ch for ch, pos in position.items()}
    table = np.zeros((_TABLE_SIZE, 8), dtype=np.uint32)
    counts = np.zeros(_TABLE_SIZE, dtype=np.int64)
    for ch, (r, c) in position.items():
        # Each row sits half a key right of the one above: (r, c) touches c and c+1 above, c-1 and c below.
        around = [(r, c - 1), (r, c + 1), (r - 1, c), (r - 1, c + 1), (r + 1, c - 1), (r + 1, c)]
        near = [at[p] for p in around if p in at]
        for key, keys in ((ch, near), (ch.upper(), [k.upper() for k in near])):
            table[ord(key), : len(keys)] = [ord(k) for k in keys]
            counts[ord(key)] = len(keys)
    return table, counts


_NEIGHBOURS, _NEIGHBOUR_COUNTS = _keyboard_table()


def text(values: Sequence[str]) -> TextArray:
    return np.array(values, dtype=TEXT)


def blank(n: int) -> TextArray:
    return np.full(n, "", dtype=TEXT)


def digits(numbers: IntArray, width: int) -> TextArray:
    """Zero-padded decimal strings of non-negative integers."""
    return np.strings.zfill(numbers.astype(TEXT), width)


def partition(values: TextArray, sep: str) -> tuple[TextArray, TextArray, TextArray]:
    """Before, separator and after the first ``sep`` of each value (numpy wants the separator typed alike)."""
    before, found, after = np.strings.partition(values, np.array(sep, dtype=TEXT))
    return before, found, after


def join_nonempty(columns: Sequence[TextArray], sep: str = " ") -> TextArray:
    """Row-wise join of the non-empty values of several columns."""
    joined = columns[0].copy()
    for column in columns[1:]:
        # Later columns are mostly empty (second surnames, third given names): touch only filled rows.
        rows = np.flatnonzero(column != "")
        head, tail = joined[rows], column[rows]
        joined[rows] = np.where(head == "", tail, np.strings.add(np.strings.add(head, sep), tail))
    return joined


def distinct(values: TextArray) -> list[str]:
    """The distinct values, sorted; hashing, as sorting a million strings is slow."""
    return sorted(str(v) for v in pc.unique(pa.array(values, type=pa.string())).to_pylist())


def factorize(values: TextArray) -> tuple[npt.NDArray[np.intp], list[str]]:
    """Codes into the distinct values, and the distinct values in order of first appearance."""
    encoded = pa.array(values, type=pa.string()).dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp)
    return codes, [str(v) for v in encoded.dictionary.to_pylist()]


def gather(values: TextArray, index: npt.NDArray[np.intp] | IntArray) -> TextArray:
    """``values[index]`` for a column with few distinct values (names, streets, towns).

    Indexing a large string array at random misses the cache on every row; going
    through integer codes touches only the small array of distinct values.
    """
    codes, uniques = factorize(values)
    return text(uniques)[codes[index]]


def map_distinct(values: TextArray, func: Callable[[str], str]) -> TextArray:
    """``func`` applied to each distinct value once, broadcast to every row."""
    if len(values) == 0:
        return values.copy()
    codes, uniques = factorize(values)
    return text([func(u) for u in uniques])[codes]


def flag_distinct(values: TextArray, predicate: Callable[[str], bool]) -> BoolArray:
    """``predicate`` evaluated once per distinct value, broadcast to every row."""
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    codes, uniques = factorize(values)
    return np.array([predicate(u) for u in uniques], dtype=bool)[codes]


def fold_one(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value.translate(_FOLD_EXTRA))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def fold_diacritics(values: TextArray) -> TextArray:
    """Accents dropped (Conceição -> Conceicao), as ASCII-only systems store names."""
    return map_distinct(values, fold_one)


def has_diacritics(values: TextArray) -> BoolArray:
    return flag_distinct(values, lambda v: not v.isascii())


def has_alternative(values: TextArray, table: Mapping[str, tuple[str, ...]]) -> BoolArray:
    return flag_distinct(values, lambda v: v in table)


def draw_alternative(
    values: TextArray, table: Mapping[str, tuple[str, ...]], rng: np.random.Generator
) -> TextArray:
    """One alternative per row, drawn uniformly from ``table[value]``; rows without one keep their value."""
    if len(values) == 0:
        return values.copy()
    codes, uniques = factorize(values)
    options = [table.get(u, (u,)) for u in uniques]
    counts = np.array([len(o) for o in options], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    flat = text([alt for o in options for alt in o])
    pick = (rng.random(len(values)) * counts[codes]).astype(np.int64)
    return flat[offsets[codes] + pick]


def _to_codes(values: TextArray, spare: int) -> tuple[npt.NDArray[np.uint32], IntArray]:
    lengths = np.strings.str_len(values).astype(np.int64)
    width = int(lengths.max(initial=0)) + spare
    matrix = np.ascontiguousarray(values.astype(f"<U{width}")).view(np.uint32).reshape(len(values), width)
    return matrix.copy(), lengths


def _from_codes(codes: npt.NDArray[np.uint32]) -> TextArray:
    n, width = codes.shape
    return np.ascontiguousarray(codes).view(f"<U{width}").reshape(n).astype(TEXT)


def _neighbour(chars: npt.NDArray[np.uint32], rng: np.random.Generator) -> npt.NDArray[np.uint32]:
    """A key next to each character; letters off the layout get a common letter."""
    in_table = chars < _TABLE_SIZE
    index = np.where(in_table, chars, 0).astype(np.intp)
    counts = np.where(in_table, _NEIGHBOUR_COUNTS[index], 0)
    pick = (rng.random(len(chars)) * np.maximum(counts, 1)).astype(np.intp)
    fallback = _FALLBACK_LETTERS[rng.integers(0, len(_FALLBACK_LETTERS), len(chars))]
    fallback = np.where(fallback == chars, _FALLBACK_LETTERS[0] + 1, fallback)  # never a no-op
    return np.where(counts > 0, _NEIGHBOURS[index, pick], fallback).astype(np.uint32)


def _one_edit(
    codes: npt.NDArray[np.uint32], lengths: IntArray, rng: np.random.Generator
) -> tuple[npt.NDArray[np.uint32], IntArray]:
    n, width = codes.shape
    rows = np.arange(n)
    op = np.searchsorted(_EDIT_CUMULATIVE, rng.random(n) * _EDIT_CUMULATIVE[-1], side="right")
    op = np.where(((op == _DELETE) | (op == _TRANSPOSE)) & (lengths < 2), _SUBSTITUTE, op)
    span = np.where(op == _TRANSPOSE, lengths - 1, lengths)
    pos = np.minimum((rng.random(n) * span).astype(np.int64), np.maximum(span - 1, 0))
    current = codes[rows, pos]
    following = codes[rows, np.minimum(pos + 1, width - 1)]
    # Swapping two equal letters changes nothing: slip a key instead.
    op = np.where((op == _TRANSPOSE) & (current == following), _SUBSTITUTE, op)

    cols = np.arange(width)[None, :]
    p = pos[:, None]
    source = np.broadcast_to(cols, (n, width)).copy()
    source = np.where((op == _DELETE)[:, None] & (cols >= p), cols + 1, source)
    source = np.where((op == _INSERT)[:, None] & (cols > p), cols - 1, source)
    source = np.where((op == _TRANSPOSE)[:, None] & (cols == p), cols + 1, source)
    source = np.where((op == _TRANSPOSE)[:, None] & (cols == p + 1), cols - 1, source)
    edited = np.take_along_axis(codes, np.minimum(source, width - 1), axis=1)
    edited[:, width - 1] = 0  # the spare column stays a terminator

    neighbour = _neighbour(current, rng)
    substitute = np.flatnonzero(op == _SUBSTITUTE)
    edited[substitute, pos[substitute]] = neighbour[substitute]
    # Half the insertions double the letter (already done by the shift), half hit a nearby key.
    nearby = np.flatnonzero((op == _INSERT) & (rng.random(n) < 0.5))
    edited[nearby, pos[nearby] + 1] = neighbour[nearby]
    lengths = lengths + (op == _INSERT) - (op == _DELETE)
    return edited, lengths


def apply_typos(values: TextArray, rng: np.random.Generator, second_edit: float) -> TextArray:
    """One keyboard slip per non-empty value (insertion, deletion, substitution by a
    neighbouring key, or adjacent transposition); a share ``second_edit`` get a second."""
    if len(values) == 0:
        return values.copy()
    original, lengths = _to_codes(values, spare=3)  # room for two insertions and a terminator
    codes = original.copy()
    editable = np.flatnonzero(lengths > 0)
    codes[editable], lengths[editable] = _one_edit(codes[editable], lengths[editable], rng)
    again = editable[rng.random(len(editable)) < second_edit]
    twice, _ = _one_edit(codes[again], lengths[again], rng)
    # A second slip that undoes the first (two swaps, an insertion deleted) leaves the first alone.
    undone = (twice == original[again]).all(axis=1)
    codes[again[~undone]] = twice[~undone]
    return _from_codes(codes)


def mistype_digits(values: TextArray, rng: np.random.Generator) -> TextArray:
    """One wrong digit or one adjacent transposition of different digits in each digit string."""
    if len(values) == 0:
        return values.copy()
    codes, lengths = _to_codes(values, spare=0)
    if (lengths < 2).any():
        raise ValueError("a digit slip needs at least two digits")
    n = len(values)
    rows = np.arange(n)
    pos = (rng.random(n) * (lengths - 1)).astype(np.int64)
    current, following = codes[rows, pos], codes[rows, pos + 1]
    transpose = (rng.random(n) < 0.4) & (current != following)
    shift = rng.integers(1, 10, n).astype(np.uint32)
    substituted = (current - 48 + shift) % 10 + 48
    codes[rows, pos] = np.where(transpose, following, substituted)
    codes[rows[transpose], pos[transpose] + 1] = current[transpose]
    return _from_codes(codes)
