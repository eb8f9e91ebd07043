"""The matching engine facade: one object the batch job, the online MPI and Spark share.

``Engine(rules)`` resolves the rules into comparators; on a set of encoded
records it tells which comparisons and blocking rules the data supports, trains,
generates candidate pairs and scores them. Everything is arrays in, arrays out.

Timing the kernel alone (what the throughput benchmark does)::

    engine = Engine(load_rules())
    records = engine.encode(standardise(frame).frame)
    scorer = engine.scorer(records, params)
    scored = scorer.score(left, right)   # left/right: int64 record indices
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from mpi.errors import RulesError
from mpi.matching.blocking import PreparedRule, candidate_pairs, prepare_rule
from mpi.matching.comparators import Comparator, build_comparator
from mpi.matching.encoding import EncodedRecords, Indices
from mpi.matching.explain import Explanation, explain_pair
from mpi.matching.scoring import CompiledComparison, Scorer
from mpi.matching.training import Progress, TrainingReport, train_supervised, train_unsupervised
from mpi.rules.columns import SOURCE_COLUMN
from mpi.rules.parameters import TrainedParameters
from mpi.rules.schema import BlockingRule, Rules


@dataclass(frozen=True)
class Dropped:
    """A comparison or blocking rule the input cannot support, and why."""

    name: str
    missing_columns: tuple[str, ...]


def _no_progress(_: str) -> None:
    return None


class Engine:
    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        # Compiled weight tables by (parameters, comparisons used): the online path builds a
        # scorer per probe, and compiling costs more than scoring a dozen pairs. The entry
        # holds the parameters, so their id cannot be reused while it is cached.
        self._compiled: dict[tuple[int, tuple[str, ...]], tuple[TrainedParameters, list[CompiledComparison]]]
        self._compiled = {}
        self.comparators = [build_comparator(c) for c in rules.comparisons]
        labels = {c.name: c.labels for c in self.comparators}
        for i, ref in enumerate(rules.thresholds.never_link):
            if ref.comparison not in labels:
                key = f"thresholds.never_link.{i}.comparison"
                raise RulesError(rules.stamp, key, f"unknown comparison {ref.comparison!r}")
            if ref.level not in labels[ref.comparison]:
                raise RulesError(
                    rules.stamp,
                    f"thresholds.never_link.{i}.level",
                    f"comparison {ref.comparison!r} has no level {ref.level!r} "
                    f"(its levels: {', '.join(labels[ref.comparison])})",
                )

    @staticmethod
    def encode(frame: pd.DataFrame, file_index: npt.NDArray[np.int16] | None = None) -> EncodedRecords:
        return EncodedRecords.from_frame(frame, file_index)

    def usable_comparators(self, records: EncodedRecords) -> tuple[list[Comparator], list[Dropped]]:
        usable, dropped = [], []
        for comparator in self.comparators:
            missing = comparator.usable_with(records.has)
            if missing:
                sources = tuple(sorted({SOURCE_COLUMN.get(c, c) for c in missing}))
                dropped.append(Dropped(comparator.name, sources))
            else:
                usable.append(comparator)
        return usable, dropped

    def usable_blocking_rules(
        self, records: EncodedRecords, rules: Sequence[BlockingRule] | None = None
    ) -> tuple[list[BlockingRule], list[Dropped]]:
        usable, dropped = [], []
        for rule in rules if rules is not None else self.rules.blocking.rules:
            missing = tuple(k for k in rule.keys if not records.has(k))
            if missing:
                sources = tuple(sorted({SOURCE_COLUMN.get(c, c) for c in missing}))
                dropped.append(Dropped(rule.name, sources))
            else:
                usable.append(rule)
        return usable, dropped

    def train(
        self,
        records: EncodedRecords,
        *,
        link_only: bool = False,
        truth: npt.NDArray[np.int64] | None = None,
        progress: Progress = _no_progress,
    ) -> tuple[TrainedParameters, TrainingReport]:
        comparators, _ = self.usable_comparators(records)
        if truth is not None:
            return train_supervised(
                comparators, records, self.rules, truth, link_only=link_only, progress=progress
            )
        return train_unsupervised(comparators, records, self.rules, link_only=link_only, progress=progress)

    def scorer(
        self, records: EncodedRecords, params: TrainedParameters, *, term_frequencies: bool = True
    ) -> Scorer:
        """A scorer of ``records``; ``term_frequencies=False`` when they are not a population
        (a probe and its candidates), whose value frequencies would mean nothing."""
        comparators, _ = self.usable_comparators(records)
        comparators = [c for c in comparators if c.name in params.comparisons]
        caps = [(ref.comparison, ref.level) for ref in self.rules.thresholds.never_link]
        key = (id(params), tuple(c.name for c in comparators))
        cached = self._compiled.get(key)
        if cached is None or cached[0] is not params:
            if len(self._compiled) >= 64:
                self._compiled.clear()
            compiled = [CompiledComparison.build(c, params.comparisons[c.name]) for c in comparators]
            cached = self._compiled[key] = (params, compiled)
        return Scorer(
            comparators, params, records, caps, precompiled=cached[1], term_frequencies=term_frequencies
        )

    def prepare_blocking(self, records: EncodedRecords) -> list[PreparedRule]:
        rules, _ = self.usable_blocking_rules(records)
        return [prepare_rule(records, rule, self.rules.blocking.max_block_size) for rule in rules]

    @staticmethod
    def candidate_pairs(
        records: EncodedRecords,
        prepared: Sequence[PreparedRule],
        *,
        link_only: bool = False,
        chunk_pairs: int = 2_000_000,
    ) -> Iterator[tuple[int, Indices, Indices]]:
        return candidate_pairs(records, prepared, link_only=link_only, chunk_pairs=chunk_pairs)

    @staticmethod
    def explain(scorer: Scorer, left: int, right: int) -> Explanation:
        return explain_pair(scorer, left, right)
