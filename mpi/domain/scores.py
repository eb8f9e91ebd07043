"""What the matcher says about one pair of records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Decision = Literal["link", "review", "none"]


@dataclass(frozen=True)
class ComparisonOutcome:
    """One comparison of a pair: which field, which agreement level, its weight."""

    name: str
    level: str
    weight: float


@dataclass(frozen=True)
class PairScore:
    """The matcher's verdict on a probe record against one candidate record."""

    match_probability: float
    match_weight: float
    decision: Decision
    comparisons: tuple[ComparisonOutcome, ...]
