"""Fellegi-Sunter scoring: levels -> match weights and probabilities, all in numpy.

The match weight of a pair is the prior log2-odds plus, per comparison, the
log2 Bayes factor of its level (``log2(m/u)``), plus term-frequency
adjustments: agreeing on a rare surname is stronger evidence than agreeing on a
common one, so an exact agreement is re-weighted by ``log2(u_exact / tf(value))``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mpi.matching.comparators import Comparator, Levels
from mpi.matching.encoding import EncodedRecords, Floats, Indices
from mpi.rules.parameters import LevelParameters, TrainedParameters

# Bound a term-frequency adjustment: a value seen twice in a small file is not
# proof of identity, and a very common one should not veto a match on its own.
TF_ADJUSTMENT_BOUND = 8.0


def probability_to_weight(p: float) -> float:
    return math.log2(p / (1.0 - p))


def weight_to_probability(weight: Floats) -> Floats:
    return (1.0 / (1.0 + np.exp2(-weight.astype(np.float64)))).astype(np.float32)


@dataclass(frozen=True)
class CompiledComparison:
    comparator: Comparator
    table: Floats  # one weight per level, plus 0.0 at the end for the null level (-1)
    tf_log2_u_exact: float | None  # set when term-frequency adjustment applies

    @classmethod
    def build(cls, comparator: Comparator, params: LevelParameters) -> CompiledComparison:
        if tuple(params.labels) != comparator.labels:
            raise ValueError(
                f"comparison {comparator.name!r}: trained levels {list(params.labels)} do not match "
                f"the rules' levels {list(comparator.labels)}"
            )
        table = np.array([*params.weights(), 0.0], dtype=np.float32)
        tf = None
        if comparator.config.term_frequency and comparator.exact_column is not None:
            tf = math.log2(params.u[0])
        return cls(comparator, table, tf)


@dataclass(frozen=True)
class ScoredPairs:
    left: Indices
    right: Indices
    levels: npt.NDArray[np.int8]  # (pairs, comparisons)
    match_weight: Floats
    match_probability: Floats
    linkable: npt.NDArray[np.bool_]  # false where a never-link level caps the pair at review


class Scorer:
    """Scores pairs of one set of encoded records with trained parameters."""

    def __init__(
        self,
        comparators: Sequence[Comparator],
        params: TrainedParameters,
        records: EncodedRecords,
        never_link: Sequence[tuple[str, str]] = (),
        precompiled: Sequence[CompiledComparison] | None = None,
        *,
        term_frequencies: bool = True,
    ) -> None:
        self.records = records
        positions = {c.name: k for k, c in enumerate(comparators)}
        # (column of the level matrix, level) pairs that forbid an automatic link
        self.caps = [
            (positions[name], comparators[positions[name]].labels.index(level))
            for name, level in never_link
            if name in positions and level in comparators[positions[name]].labels
        ]
        self.compiled = (
            list(precompiled)
            if precompiled is not None
            else [CompiledComparison.build(c, params.comparisons[c.name]) for c in comparators]
        )
        self.prior_weight = np.float32(probability_to_weight(params.prior))
        self._log2_tf: dict[str, Floats] = {}
        for compiled in self.compiled if term_frequencies else ():
            column = compiled.comparator.exact_column
            if compiled.tf_log2_u_exact is not None and column is not None and column in records.strings:
                freq = records.strings[column].frequencies()
                self._log2_tf[compiled.comparator.name] = np.log2(np.maximum(freq, 1e-12)).astype(np.float32)

    def levels(self, left: Indices, right: Indices) -> npt.NDArray[np.int8]:
        out = np.empty((left.shape[0], len(self.compiled)), dtype=np.int8)
        for k, compiled in enumerate(self.compiled):
            out[:, k] = compiled.comparator.levels(self.records, left, right)
        return out

    def tf_adjustment(self, k: int, levels: Levels, left: Indices) -> Floats | None:
        compiled = self.compiled[k]
        log2_tf = self._log2_tf.get(compiled.comparator.name)
        if log2_tf is None or compiled.tf_log2_u_exact is None:
            return None
        exact = levels == 0
        adjustment = np.zeros(levels.shape[0], dtype=np.float32)
        if exact.any():
            column = self.records.strings[compiled.comparator.exact_column or ""]
            codes = column.codes[left[exact]]
            adjustment[exact] = np.clip(
                compiled.tf_log2_u_exact - log2_tf[codes], -TF_ADJUSTMENT_BOUND, TF_ADJUSTMENT_BOUND
            )
        return adjustment

    def weights_of(self, levels: npt.NDArray[np.int8], left: Indices) -> Floats:
        total = np.full(levels.shape[0], self.prior_weight, dtype=np.float32)
        for k, compiled in enumerate(self.compiled):
            column_levels = levels[:, k]
            total += compiled.table[column_levels]  # level -1 picks the trailing 0.0
            adjustment = self.tf_adjustment(k, column_levels, left)
            if adjustment is not None:
                total += adjustment
        return total

    def score(self, left: Indices, right: Indices) -> ScoredPairs:
        levels = self.levels(left, right)
        weight = self.weights_of(levels, left)
        return ScoredPairs(left, right, levels, weight, weight_to_probability(weight), self.linkable(levels))

    def linkable(self, levels: npt.NDArray[np.int8]) -> npt.NDArray[np.bool_]:
        allowed = np.ones(levels.shape[0], dtype=bool)
        for column, level in self.caps:
            allowed &= levels[:, column] != level
        return allowed


def score_chunks(
    scorer: Scorer,
    chunks: Iterator[tuple[int, Indices, Indices]],
    *,
    workers: int = 2,
) -> Iterator[tuple[int, ScoredPairs]]:
    """Score chunks of candidate pairs on ``workers`` threads, yielding results in order.

    numpy and rapidfuzz release the GIL in their loops, so threads use both
    cores; at most ``2 * workers`` chunks are in flight, which bounds memory.
    """
    if workers <= 1:
        for tag, left, right in chunks:
            yield tag, scorer.score(left, right)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mpi-score") as pool:
        pending: deque[tuple[int, Future[ScoredPairs]]] = deque()
        for tag, left, right in chunks:
            pending.append((tag, pool.submit(scorer.score, left, right)))
            if len(pending) >= 2 * workers:
                done_tag, future = pending.popleft()
                yield done_tag, future.result()
        while pending:
            done_tag, future = pending.popleft()
            yield done_tag, future.result()
