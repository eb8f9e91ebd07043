"""Trained parameters of a match model, saved as JSON beside the rules.

Each comparison carries its level labels (so a file can be read without the
code), the m and u probability of every level, and the whole file is stamped
with the rules' name and version so a model trained for other rules is refused.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LevelParameters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: tuple[str, ...] = Field(min_length=2)
    m: tuple[float, ...]
    u: tuple[float, ...]

    @model_validator(mode="after")
    def _consistent(self) -> LevelParameters:
        if not len(self.labels) == len(self.m) == len(self.u):
            raise ValueError("labels, m and u must have one entry per level")
        for name, probs in (("m", self.m), ("u", self.u)):
            if any(not (0.0 < p <= 1.0) or math.isnan(p) for p in probs):
                raise ValueError(f"every {name} probability lies in (0, 1]")
            if abs(sum(probs) - 1.0) > 1e-3:
                raise ValueError(f"the {name} probabilities of a comparison sum to 1 (got {sum(probs):.4f})")
        return self

    def weights(self) -> tuple[float, ...]:
        return tuple(math.log2(m / u) for m, u in zip(self.m, self.u, strict=True))


class TrainedParameters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules_name: str
    rules_version: str
    method: str = Field(description="how the numbers were obtained: 'em' or 'supervised'")
    prior: float = Field(gt=0.0, lt=1.0, description="probability that two random records match")
    comparisons: dict[str, LevelParameters]
    trained_on_records: int = Field(ge=0)
    warnings: tuple[str, ...] = ()

    @property
    def stamp(self) -> str:
        return f"{self.rules_name}@{self.rules_version}"
