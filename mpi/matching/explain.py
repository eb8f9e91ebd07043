"""Explaining one pair: each comparison's level and weight, in order, like a waterfall."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mpi.matching.comparators import NULL_LEVEL
from mpi.matching.scoring import Scorer, weight_to_probability


@dataclass(frozen=True)
class Step:
    comparison: str
    level: str
    weight: float
    term_frequency_adjustment: float
    cumulative: float


@dataclass(frozen=True)
class Explanation:
    prior_weight: float
    steps: tuple[Step, ...]
    match_weight: float
    match_probability: float


def explain_pair(scorer: Scorer, left: int, right: int) -> Explanation:
    li = np.array([left], dtype=np.int64)
    ri = np.array([right], dtype=np.int64)
    levels = scorer.levels(li, ri)
    cumulative = float(scorer.prior_weight)
    steps = []
    for k, compiled in enumerate(scorer.compiled):
        level = int(levels[0, k])
        label = "missing" if level == NULL_LEVEL else compiled.comparator.labels[level]
        weight = float(compiled.table[level])
        adjustment = scorer.tf_adjustment(k, levels[:, k], li)
        tf = float(adjustment[0]) if adjustment is not None else 0.0
        cumulative += weight + tf
        steps.append(Step(compiled.comparator.name, label, weight, tf, cumulative))
    probability = float(weight_to_probability(np.array([cumulative], dtype=np.float32))[0])
    return Explanation(float(scorer.prior_weight), tuple(steps), cumulative, probability)
