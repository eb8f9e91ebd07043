"""The production :class:`~mpi.service.ports.Matcher`: the batch matching engine, one probe at a time.

The online MPI scores a new record against its candidates with exactly the
standardiser, comparators, trained parameters and decision rules that
``mpi dedup`` uses, so a user who learns how one path matches has learned both.
One difference is deliberate: term-frequency adjustments need the frequency of
each name in the whole population, which a single probe and its handful of
candidates cannot give, so the online matcher scores without them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd

from mpi.domain.records import Demographics
from mpi.domain.scores import ComparisonOutcome, Decision, PairScore
from mpi.errors import RulesError
from mpi.matching.comparators import NULL_LEVEL
from mpi.matching.encoding import UNORDERED_PAIRS
from mpi.matching.engine import Engine
from mpi.matching.scoring import Scorer
from mpi.matching.standardise import standardise
from mpi.rules.loader import default_rules_path, load_parameters, load_rules, parameters_path_for
from mpi.rules.parameters import TrainedParameters
from mpi.rules.schema import Rules
from mpi.service.settings import Settings

_FIELDS = tuple(f.name for f in fields(Demographics))
_INTEGER_KEYS = ("birth_year", "birth_month", "birth_day")


def _frame(records: Sequence[Demographics]) -> pd.DataFrame:
    columns = {name: [getattr(r, name) for r in records] for name in _FIELDS}
    frame = pd.DataFrame(columns, dtype=object)
    return frame.astype(pd.StringDtype())


class EngineMatcher:
    """Scores one probe against candidates with the batch engine and a trained model."""

    def __init__(self, rules: Rules, params: TrainedParameters) -> None:
        self.engine = Engine(rules)
        self.rules = rules
        self.params = params
        self.model_version = f"{params.stamp}/{params.method}"

    def _standardised(self, records: Sequence[Demographics]) -> pd.DataFrame:
        return standardise(_frame(records)).frame.reset_index(drop=True)

    def blocking_keys(self, records: Sequence[Demographics]) -> list[list[str]]:
        if not records:
            return []
        frame = self._standardised(records)
        keys: list[list[str]] = [[] for _ in records]
        for rule in self.rules.blocking.rules:
            parts: list[list[object]] = []
            usable = True
            for column in rule.keys:
                if column in UNORDERED_PAIRS:
                    a, b = UNORDERED_PAIRS[column]
                    if a not in frame or b not in frame:
                        usable = False
                        break
                    left = frame[a].to_numpy(dtype=object)
                    right = frame[b].to_numpy(dtype=object)
                    pair = [
                        None if x is None or y is None else "|".join(sorted((str(x), str(y))))
                        for x, y in zip(left, right, strict=True)
                    ]
                    parts.append(list(pair))
                elif column in _INTEGER_KEYS:
                    numbers = frame[column].to_numpy()
                    parts.append([str(int(v)) if v > 0 else None for v in numbers])
                elif column in frame:
                    column_values = frame[column].astype(object)
                    parts.append(column_values.where(column_values.notna(), None).tolist())
                else:
                    usable = False
                    break
            if not usable:
                continue
            for i in range(len(records)):
                key_parts = [p[i] for p in parts]
                if all(v is not None for v in key_parts):
                    keys[i].append(f"{rule.name}:{'|'.join(map(str, key_parts))}")
        return keys

    def _scorer(self, frame: pd.DataFrame) -> Scorer:
        records = self.engine.encode(frame)
        scorer = self.engine.scorer(records, self.params)
        scorer.disable_term_frequencies()
        return scorer

    def score(self, probe: Demographics, candidates: Sequence[Demographics]) -> list[PairScore]:
        if not candidates:
            return []
        frame = self._standardised([probe, *candidates])
        scorer = self._scorer(frame)
        right = np.arange(1, len(candidates) + 1, dtype=np.int64)
        left = np.zeros_like(right)
        scored = scorer.score(left, right)
        link_t, review_t = self.rules.thresholds.link, self.rules.thresholds.review
        out = []
        for i in range(len(candidates)):
            p = float(scored.match_probability[i])
            decision: Decision
            if p >= link_t and bool(scored.linkable[i]):
                decision = "link"
            elif p >= review_t:
                decision = "review"
            else:
                decision = "none"
            outcomes = []
            for k, compiled in enumerate(scorer.compiled):
                level = int(scored.levels[i, k])
                label = "missing" if level == NULL_LEVEL else compiled.comparator.labels[level]
                weight = float(compiled.table[level])
                outcomes.append(ComparisonOutcome(compiled.comparator.name, label, weight))
            out.append(PairScore(p, float(scored.match_weight[i]), decision, tuple(outcomes)))
        return out


def load_matcher(settings: Settings) -> EngineMatcher:
    """The matcher of the settings' rules, with the trained parameters beside them."""
    rules_path: Path = settings.rules or default_rules_path()
    rules = load_rules(rules_path)
    params_path = parameters_path_for(rules_path)
    if not params_path.exists():
        raise RulesError(
            str(params_path),
            "",
            f"no trained parameters beside the rules; train them with "
            f"`mpi train FILE --rules {rules_path} --out {params_path}`",
        )
    return EngineMatcher(rules, load_parameters(params_path, rules))
