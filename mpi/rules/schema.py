"""Pydantic model of a rules file (``matching_rules/*.toml``).

A rules file is the whole match model except its trained numbers: which
comparisons to make and at which thresholds, how to block, the decision
thresholds, and how to train. Trained parameters live in a JSON file beside
it, stamped with the rules' name and version (:mod:`mpi.rules.parameters`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ComparatorKind = Literal[
    "given_name",
    "surname",
    "birth_date",
    "national_id",
    "exact",
    "string",
    "postcode",
    "phone",
    "email",
    "address",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelInfo(_Strict):
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    description: str = ""


class LevelRef(_Strict):
    comparison: str = Field(min_length=1)
    level: str = Field(min_length=1)


class Thresholds(_Strict):
    link: float = Field(gt=0.0, lt=1.0, description="match probability at or above which a pair is linked")
    review: float = Field(
        gt=0.0, lt=1.0, description="match probability at or above which a pair is reviewed"
    )

    never_link: tuple[LevelRef, ...] = Field(
        default=(),
        description="comparison levels that cap a pair at review, whatever its score: conflicting "
        "strict identity traits go to a person, never to an automatic link",
    )

    @model_validator(mode="after")
    def _review_below_link(self) -> Thresholds:
        if self.review > self.link:
            raise ValueError(f"review threshold {self.review} is above the link threshold {self.link}")
        return self


class BlockingRule(_Strict):
    name: str = Field(min_length=1)
    keys: tuple[str, ...] = Field(min_length=1)
    max_pairs: int | None = Field(
        default=None,
        ge=1,
        description="skip the whole rule when it would make more candidate pairs than this: a broad "
        "rule (one name alone) then serves small files and stays out of the way of large ones",
    )


class Blocking(_Strict):
    max_block_size: int = Field(default=2000, ge=2)
    rules: tuple[BlockingRule, ...] = Field(min_length=1)

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: tuple[BlockingRule, ...]) -> tuple[BlockingRule, ...]:
        names = [r.name for r in rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"blocking rule names must be unique; repeated: {', '.join(dupes)}")
        return rules


class Training(_Strict):
    u_sample_pairs: int = Field(default=2_000_000, ge=1000)
    em_max_pairs: int = Field(default=2_000_000, ge=1000)
    em_max_iterations: int = Field(default=40, ge=1)
    em_tolerance: float = Field(default=1e-4, gt=0)
    em_blocking: tuple[BlockingRule, ...] = Field(min_length=1)
    deterministic_rules: tuple[BlockingRule, ...] = Field(min_length=1)
    deterministic_recall: float = Field(default=0.7, gt=0.0, le=1.0)
    seed: int = 42


class Comparison(_Strict):
    name: str = Field(min_length=1)
    comparator: ComparatorKind
    column: str = Field(min_length=1, description="the standardised column compared")
    alternates: tuple[str, ...] = Field(
        default=(), description="columns also cross-compared (birth name for married names)"
    )
    thresholds: tuple[float, ...] = ()
    term_frequency: bool = False

    @field_validator("thresholds")
    @classmethod
    def _descending(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 < v <= 1.0 for v in values):
            raise ValueError("similarity thresholds lie in (0, 1]")
        if list(values) != sorted(values, reverse=True) or len(set(values)) != len(values):
            raise ValueError("similarity thresholds must be strictly decreasing")
        return values


class Rules(_Strict):
    model: ModelInfo
    thresholds: Thresholds
    blocking: Blocking
    training: Training
    comparisons: tuple[Comparison, ...] = Field(min_length=1, alias="comparison")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("comparisons")
    @classmethod
    def _unique_comparisons(cls, comparisons: tuple[Comparison, ...]) -> tuple[Comparison, ...]:
        names = [c.name for c in comparisons]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"comparison names must be unique; repeated: {', '.join(dupes)}")
        return comparisons

    @property
    def stamp(self) -> str:
        return f"{self.model.name}@{self.model.version}"
