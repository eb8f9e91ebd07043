"""A stand-in for the matcher port: a small, deterministic field-agreement scorer.

It is not a match model, only something whose decisions a test can predict.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Callable, Sequence

from mpi.domain.records import DEMOGRAPHIC_FIELDS, Demographics
from mpi.domain.scores import ComparisonOutcome, Decision, PairScore


def fold(text: str | None) -> str:
    """Upper case without accents, spaces or punctuation."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if ch.isalnum()).upper()


def _first_given(demographics: Demographics) -> str:
    return fold((demographics.given_names or "").split(" ")[0])


# Per field: (folded value, weight when equal, weight when different)
_FIELDS: tuple[tuple[str, Callable[[Demographics], str], float, float], ...] = (
    ("family_name", lambda d: fold(d.family_name), 4.0, -3.0),
    ("given_name", _first_given, 3.0, -3.0),
    ("birth_date", lambda d: fold(d.birth_date), 5.0, -5.0),
    ("sex", lambda d: fold(d.sex), 0.5, -4.0),
    ("national_id", lambda d: fold(d.national_id), 6.0, -1.0),
    ("postcode", lambda d: fold(d.postcode), 1.0, -0.5),
)


class FakeMatcher:
    """Blocks on surname or given name with birth date, and on national id; scores by agreement.

    A pair links at a match weight of 8 or more (for example surname, given name
    and birth date equal) and goes to review from 3.
    """

    def __init__(
        self, link_weight: float = 8.0, review_weight: float = 3.0, model_version: str = "fake-1"
    ) -> None:
        self.link_weight = link_weight
        self.review_weight = review_weight
        self.model_version = model_version

    def blocking_keys(self, records: Sequence[Demographics]) -> list[list[str]]:
        keys: list[list[str]] = []
        for record in records:
            own = []
            dob = fold(record.birth_date)
            if dob and fold(record.family_name):
                own.append(f"surname_dob:{fold(record.family_name)[:4]}|{dob}")
            if dob and _first_given(record):
                own.append(f"given_dob:{_first_given(record)[:4]}|{dob}")
            if fold(record.national_id):
                own.append(f"national_id:{fold(record.national_id)}")
            keys.append(own)
        return keys

    def forms(self, records: Sequence[Demographics]) -> list[str | None]:
        """A record's raw fields: the fake compares raw values."""
        return [json.dumps([getattr(record, f) for f in DEMOGRAPHIC_FIELDS]) for record in records]

    def keys_and_forms(self, records: Sequence[Demographics]) -> tuple[list[list[str]], list[str | None]]:
        return self.blocking_keys(records), self.forms(records)

    def form_is_current(self, form: str) -> bool:
        return form.startswith("[")

    def score(
        self, given_probe: Demographics | str, candidates: Sequence[Demographics | str]
    ) -> list[PairScore]:
        probe = (
            given_probe if isinstance(given_probe, Demographics) else Demographics(*json.loads(given_probe))
        )
        scores = []
        for given in candidates:
            candidate = given if isinstance(given, Demographics) else Demographics(*json.loads(given))
            outcomes = []
            for name, value, agree, disagree in _FIELDS:
                a, b = value(probe), value(candidate)
                if not a or not b:
                    outcomes.append(ComparisonOutcome(name, "null", 0.0))
                elif a == b:
                    outcomes.append(ComparisonOutcome(name, "exact", agree))
                else:
                    outcomes.append(ComparisonOutcome(name, "else", disagree))
            weight = sum(o.weight for o in outcomes)
            decision: Decision = (
                "link" if weight >= self.link_weight else "review" if weight >= self.review_weight else "none"
            )
            probability = 1.0 / (1.0 + math.pow(2.0, -(weight - 6.0)))
            scores.append(PairScore(probability, weight, decision, tuple(outcomes)))
        return scores
