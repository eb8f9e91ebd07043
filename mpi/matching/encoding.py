"""Integer coding of standardised columns, and string similarity on codes.

Every string column becomes ``codes`` (int32, -1 for missing) into a vocabulary
of distinct values. Comparators then work on code arrays: equality is an integer
compare, and a string similarity is computed once per *distinct* value pair
(rapidfuzz, in C, on all cores), or looked up in a dense matrix for small
vocabularies, never per row in Python.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from rapidfuzz import distance, process

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

# Vocabularies are ordered by falling frequency, so the most frequent values
# have the smallest codes. Pairs of two values among the first DENSE_TOP codes
# read their similarity from a matrix computed once with one SIMD cdist call
# (most pairs, as names and places are Zipf-distributed); the rest are computed
# once per distinct pair with cpdist.
DENSE_TOP = 3072
# The matrix is only worth building for jobs that compare many pairs.
DENSE_MIN_PAIRS = 400_000
_MATRIX_LOCK = threading.Lock()


# Below this many pairs one thread beats starting a pool (~0.35 ms a call, more on a busy machine).
_THREADED_MIN_PAIRS = 20_000
_FEW_PAIRS = 4096
# Up to this many pairs a Python dict finds the distinct ones faster than numpy's sort.
_TINY_PAIRS = 256


def _jaro_winkler(left: list[str], right: list[str]) -> Floats:
    workers = -1 if len(left) >= _THREADED_MIN_PAIRS else 1
    return np.asarray(
        process.cpdist(left, right, scorer=distance.JaroWinkler.normalized_similarity, workers=workers),
        dtype=np.float32,
    )


def _word_subset(left: list[str], right: list[str]) -> Floats:
    """1.0 where the words of one value are all among the words of the other, else 0.0."""
    return np.array(
        [float(a <= b or b <= a) for a, b in zip(map(_words, left), map(_words, right), strict=True)],
        dtype=np.float32,
    )


def _words(value: str) -> frozenset[str]:
    return frozenset(value.split())


@functools.lru_cache(maxsize=1 << 17)
def _word_signature(value: str) -> int:
    # The process's string hash: a signature is only compared within this process.
    # Cached: an online call's few dozen values are mostly the same names again.
    return sum({1 << (hash(word) & 63) for word in value.split()})


def _distinct_pairs(pair_keys: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """The distinct keys (in any order) and, per key, the position of its value among them."""
    if pair_keys.size <= _TINY_PAIRS:
        position: dict[int, int] = {}
        at = [position.setdefault(key, len(position)) for key in pair_keys.tolist()]
        return np.fromiter(position, dtype=np.int64, count=len(position)), np.array(at, dtype=np.intp)
    if pair_keys.size <= _FEW_PAIRS:  # pandas' hash table costs more than a sort this small
        distinct, inverse = np.unique(pair_keys, return_inverse=True)
        return distinct, np.asarray(inverse, dtype=np.intp)
    codes, uniques = pd.factorize(pair_keys, sort=False)
    return np.asarray(uniques, dtype=np.int64), np.asarray(codes, dtype=np.intp)


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
    # Token-set similarity of two single words is just their equality: skip them.
    multi_token_only: bool = False
    # Pairs whose word signatures are not in a subset relation score 0 without a look.
    signature_filter: bool = False


JARO_WINKLER = Similarity("jaro_winkler", _jaro_winkler, _jaro_winkler_matrix)
# "Ferreira dos Santos" ~ "Santos": one value's words are a subset of the other's.
# A 64-bit word signature per value rules out most pairs with integer operations;
# only pairs passing it are checked word by word.
WORD_SUBSET = Similarity("word_subset", _word_subset, multi_token_only=True, signature_filter=True)


@dataclass
class StringColumn:
    codes: Codes
    vocab: npt.NDArray[np.object_]
    # Occurrences of each vocabulary value; counted on first need when not given (an online
    # call scores without term frequencies and never needs them).
    counts: npt.NDArray[np.int64] | None = None
    _dense: dict[str, Floats] = field(default_factory=dict, repr=False)
    # Per-vocabulary arrays derived once and kept (e.g. matricule payload digits).
    derived: dict[str, npt.NDArray[Any]] = field(default_factory=dict, repr=False)
    _signatures: npt.NDArray[np.uint64] | None = field(default=None, repr=False)

    @property
    def non_null(self) -> int:
        return int(self.value_counts().sum())

    def multi_token(self) -> npt.NDArray[np.bool_]:
        """Per vocabulary value: does it hold several words."""
        cached = self._dense.get("__multi_token__")
        if cached is None:
            spaces = np.array([" " in v for v in self.vocab.tolist()], dtype=bool)
            cached = spaces.astype(np.float32)
            self._dense["__multi_token__"] = cached
        return cached > 0

    def word_signatures(self) -> npt.NDArray[np.uint64]:
        """Per vocabulary value, a 64-bit set of its words' hashes (a superset test never misses)."""
        cached = self._signatures
        if cached is None:
            bits = [_word_signature(value) for value in self.vocab.tolist()]
            cached = np.array(bits, dtype=np.uint64)
            self._signatures = cached
        return cached

    def frequencies(self) -> npt.NDArray[np.float64]:
        """Share of non-missing cells holding each vocabulary value."""
        total = max(self.non_null, 1)
        return self.value_counts().astype(np.float64) / total

    def value_counts(self) -> npt.NDArray[np.int64]:
        if self.counts is None:
            self.counts = np.bincount(self.codes[self.codes >= 0], minlength=self.vocab.size).astype(np.int64)
        return self.counts

    def _matrix(self, kind: Similarity, n_pairs: int) -> Floats | None:
        """The dense similarity matrix of the most frequent values, built on first need."""
        matrix = self._dense.get(kind.name)
        if matrix is None and kind.dense is not None and n_pairs >= DENSE_MIN_PAIRS:
            with _MATRIX_LOCK:  # scoring threads share the columns: build once
                matrix = self._dense.get(kind.name)
                if matrix is None:
                    matrix = kind.dense(self.vocab[:DENSE_TOP].tolist())
                    self._dense[kind.name] = matrix
        return matrix

    def similarity(self, kind: Similarity, left: Codes, right: Codes) -> Floats:
        """Similarity of the values at ``left`` and ``right`` codes (both non-missing); 1.0 when equal."""
        matrix = self._matrix(kind, left.shape[0]) if kind.dense is not None else None
        if matrix is not None:
            # One flat gather serves every pair of frequent values (equal ones sit on the diagonal).
            top = matrix.shape[0]
            in_matrix = (left < top) & (right < top)
            flat = np.where(in_matrix, left * np.int32(top) + right, 0)  # < 2**31: top is 3072
            out = matrix.reshape(-1).take(flat)
            todo = np.flatnonzero(~in_matrix)
            if todo.size == 0:
                return out
            out[todo] = 1.0
            differ = todo[left[todo] != right[todo]]
        else:
            out = np.ones(left.shape[0], dtype=np.float32)
            differ = np.flatnonzero(left != right)
        if differ.size == 0:
            return out
        cl = left[differ]
        cr = right[differ]
        if kind.multi_token_only:
            multi = self.multi_token()
            worded = multi[cl] | multi[cr]
            out[differ[~worded]] = 0.0
            differ, cl, cr = differ[worded], cl[worded], cr[worded]
            if differ.size == 0:
                return out
        if kind.signature_filter:
            signature = self.word_signatures()
            sl, sr = signature[cl], signature[cr]
            possible = ((sl & ~sr) == 0) | ((sr & ~sl) == 0)
            out[differ[~possible]] = 0.0
            differ, cl, cr = differ[possible], cl[possible], cr[possible]
            if differ.size == 0:
                return out
        pair_keys = (cl.astype(np.int64) << 32) | cr.astype(np.int64)
        distinct, inverse = _distinct_pairs(pair_keys)
        vocab = self.vocab
        left_values = vocab[(distinct >> 32).astype(np.int64)].tolist()
        right_values = vocab[(distinct & 0xFFFFFFFF).astype(np.int64)].tolist()
        out[differ] = kind.pairwise(left_values, right_values)[inverse]
        return out


def _encode_strings(values: Iterable[npt.NDArray[np.object_]]) -> tuple[list[Codes], npt.NDArray[np.object_]]:
    arrays = list(values)
    lengths = [a.shape[0] for a in arrays]
    joined = np.concatenate(arrays) if arrays else np.empty(0, dtype=object)
    codes, found = pd.factorize(pd.Series(joined, dtype=object), use_na_sentinel=True)
    vocab = np.asarray(found, dtype=object)
    # Re-code by falling frequency: frequent values get small codes (see DENSE_TOP).
    counts = np.bincount(codes[codes >= 0], minlength=len(vocab))
    by_frequency = np.argsort(-counts, kind="stable")
    rank = np.empty_like(by_frequency)
    rank[by_frequency] = np.arange(by_frequency.size)
    vocab = vocab[by_frequency]
    if vocab.size:
        codes = np.where(codes >= 0, rank[np.maximum(codes, 0)], -1).astype(np.int32)
    else:
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
    # Results a chunk's comparators share (keyed by name, holding the chunk's arrays).
    memo: dict[str, Any] = field(default_factory=dict, repr=False)

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
