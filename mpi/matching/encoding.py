"""Integer coding of standardised columns, and string similarity on codes.

Every string column becomes ``codes`` (int32, -1 for missing) into a vocabulary
of distinct values. Comparators then work on code arrays: equality is an integer
compare, and a string similarity is computed once per *distinct* value pair
(rapidfuzz, in C, on all cores), or looked up in a dense matrix for small
vocabularies, never per row in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
from rapidfuzz import distance, fuzz, process

from mpi.rules.columns import INTEGER_COLUMNS, STRING_COLUMNS

Codes = npt.NDArray[np.int32]
Floats = npt.NDArray[np.float32]
Indices = npt.NDArray[np.int64]

# Columns cross-compared with each other share one vocabulary, so that a code
# means the same string in both (married name against birth name).
SHARED_VOCABULARIES: tuple[tuple[str, ...], ...] = (
    ("family_name", "birth_name", "given_name"),
    ("family_dm", "birth_name_dm", "given_dm"),
    ("family_kp", "given_kp"),
)

# Blocking keys derived from two columns of a shared vocabulary, order-free:
# family and given names swapped still give the same key.
UNORDERED_PAIRS: dict[str, tuple[str, str]] = {"name_pair_dm": ("family_dm", "given_dm")}

# A vocabulary this small gets a dense similarity matrix (at most 4 M cells):
# one SIMD cdist call is cheaper than hashing the distinct pairs of every chunk.
DENSE_VOCABULARY_LIMIT = 2048


def _jaro_winkler(left: list[str], right: list[str]) -> Floats:
    return np.asarray(
        process.cpdist(left, right, scorer=distance.JaroWinkler.normalized_similarity, workers=-1),
        dtype=np.float32,
    )


def _token_set(left: list[str], right: list[str]) -> Floats:
    scores = process.cpdist(left, right, scorer=fuzz.token_set_ratio, workers=-1)
    return np.asarray(scores, dtype=np.float32) / np.float32(100.0)


def _payload_edit(left: list[str], right: list[str]) -> Floats:
    """1 - OSA distance over the 11-digit matricule payload (substitution or transposition = 1 edit)."""
    lp = [s[:11] for s in left]
    rp = [s[:11] for s in right]
    return np.float32(1.0) - np.asarray(
        process.cpdist(lp, rp, scorer=distance.OSA.distance, workers=-1), dtype=np.float32
    )


def _jaro_winkler_matrix(vocab: list[str]) -> Floats:
    return np.asarray(
        process.cdist(
            vocab, vocab, scorer=distance.JaroWinkler.normalized_similarity, workers=-1, dtype=np.float32
        ),
        dtype=np.float32,
    )


@dataclass(frozen=True)
class Similarity:
    name: str
    pairwise: Callable[[list[str], list[str]], Floats]
    dense: Callable[[list[str]], Floats] | None = None


JARO_WINKLER = Similarity("jaro_winkler", _jaro_winkler, _jaro_winkler_matrix)
TOKEN_SET = Similarity("token_set", _token_set)
PAYLOAD_EDIT = Similarity("payload_edit", _payload_edit)


@dataclass
class StringColumn:
    codes: Codes
    vocab: npt.NDArray[np.object_]
    counts: npt.NDArray[np.int64]
    _dense: dict[str, Floats] = field(default_factory=dict, repr=False)

    @property
    def non_null(self) -> int:
        return int(self.counts.sum())

    def frequencies(self) -> npt.NDArray[np.float64]:
        """Share of non-missing cells holding each vocabulary value."""
        total = max(self.non_null, 1)
        return self.counts.astype(np.float64) / total

    def similarity(self, kind: Similarity, left: Codes, right: Codes) -> Floats:
        """Similarity of the values at ``left`` and ``right`` codes (both non-missing); 1.0 when equal."""
        out = np.ones(left.shape[0], dtype=np.float32)
        differ = np.flatnonzero(left != right)
        if differ.size == 0:
            return out
        cl = left[differ]
        cr = right[differ]
        if kind.dense is not None and self.vocab.size <= DENSE_VOCABULARY_LIMIT:
            matrix = self._dense.get(kind.name)
            if matrix is None:
                matrix = kind.dense(self.vocab.tolist())
                self._dense[kind.name] = matrix
            out[differ] = matrix[cl, cr]
            return out
        pair_keys = (cl.astype(np.int64) << 32) | cr.astype(np.int64)
        inverse, distinct = pd.factorize(pair_keys, sort=False)
        distinct = np.asarray(distinct, dtype=np.int64)
        left_values = self.vocab[(distinct >> 32).astype(np.int64)].tolist()
        right_values = self.vocab[(distinct & 0xFFFFFFFF).astype(np.int64)].tolist()
        out[differ] = kind.pairwise(left_values, right_values)[inverse]
        return out


def _encode_strings(values: Iterable[npt.NDArray[np.object_]]) -> tuple[list[Codes], npt.NDArray[np.object_]]:
    arrays = list(values)
    lengths = [a.shape[0] for a in arrays]
    joined = np.concatenate(arrays) if arrays else np.empty(0, dtype=object)
    codes, vocab = pd.factorize(pd.Series(joined, dtype=object), use_na_sentinel=True)
    codes = codes.astype(np.int32)
    parts = np.split(codes, np.cumsum(lengths)[:-1])
    split: list[Codes] = [np.asarray(part, dtype=np.int32) for part in parts]
    return split, np.asarray(vocab, dtype=object)


@dataclass
class EncodedRecords:
    """The standardised records of one job as integer-coded numpy columns."""

    n: int
    strings: dict[str, StringColumn]
    integers: dict[str, npt.NDArray[np.int16]]
    file_index: npt.NDArray[np.int16]

    def has(self, column: str) -> bool:
        if column in UNORDERED_PAIRS:
            return all(c in self.strings for c in UNORDERED_PAIRS[column])
        return column in self.strings or column in self.integers

    def key_codes(self, column: str) -> npt.NDArray[np.int64]:
        """Codes usable as a blocking key part: -1 where missing or unknown."""
        if column in UNORDERED_PAIRS:
            a, b = (self.strings[c].codes.astype(np.int64) for c in UNORDERED_PAIRS[column])
            low, high = np.minimum(a, b), np.maximum(a, b)
            codes, _ = pd.factorize((low << 32) | high, sort=False)
            return np.where(low >= 0, codes, -1).astype(np.int64)
        if column in self.strings:
            return self.strings[column].codes.astype(np.int64)
        values = self.integers[column].astype(np.int64)
        return np.where(values > 0, values, -1)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        file_index: npt.NDArray[np.int16] | None = None,
    ) -> EncodedRecords:
        n = len(frame)
        strings: dict[str, StringColumn] = {}
        grouped = {c for group in SHARED_VOCABULARIES for c in group}
        groups: list[tuple[str, ...]] = [
            tuple(c for c in group if c in frame.columns) for group in SHARED_VOCABULARIES
        ]
        groups += [(c,) for c in frame.columns if c in STRING_COLUMNS and c not in grouped]
        for group in groups:
            if not group:
                continue
            arrays = [_object_column(frame[c]) for c in group]
            codes_list, vocab = _encode_strings(arrays)
            shared_cache: dict[str, Floats] = {}  # one similarity matrix serves the whole group
            for column, codes in zip(group, codes_list, strict=True):
                counts = np.bincount(codes[codes >= 0], minlength=vocab.size).astype(np.int64)
                strings[column] = StringColumn(codes=codes, vocab=vocab, counts=counts, _dense=shared_cache)
        integers = {
            c: np.asarray(frame[c].to_numpy(), dtype=np.int16) for c in frame.columns if c in INTEGER_COLUMNS
        }
        if file_index is None:
            file_index = np.zeros(n, dtype=np.int16)
        return cls(n=n, strings=strings, integers=integers, file_index=file_index)

    def column_names(self) -> Mapping[str, str]:
        names = dict.fromkeys(self.strings, "string")
        names.update(dict.fromkeys(self.integers, "integer"))
        return names


def _object_column(series: pd.Series) -> npt.NDArray[np.object_]:
    values = series.astype(object).where(series.notna(), None)
    return np.asarray(values.to_numpy(), dtype=object)
