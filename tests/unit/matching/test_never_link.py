"""Never-link caps: a conflicting strict identity trait keeps a pair from an automatic link.

The caps change the decision, never the score: a capped pair keeps its match
probability and goes to review. A cap naming a level a comparison does not have
is a broken rules file, refused when the engine is built.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mpi.domain.identifiers import complete_matricule
from mpi.errors import RulesError
from mpi.matching.encoding import EncodedRecords
from mpi.matching.engine import Engine
from mpi.matching.scoring import ScoredPairs, Scorer
from mpi.matching.standardise import standardise
from mpi.rules.loader import default_parameters_path, default_rules_path, load_parameters, load_rules
from mpi.rules.schema import LevelRef, Rules

TODAY = dt.date(2025, 6, 1)
RULES = load_rules()
PARAMS = load_parameters(default_parameters_path(), RULES)
PERSON = {
    "family_name": "Majerus",
    "given_names": "Jean",
    "birth_date": "1952-09-03",
    "sex": "M",
    "national_id": complete_matricule("19520903123"),
    "street": "Rue Neuve",
    "house_number": "7",
    "postcode": "9051",
    "city": "Ettelbruck",
    "phone": "26 81 12 34",
}


def encode(rows: list[dict[str, Any]]) -> EncodedRecords:
    raw = pd.DataFrame(rows).astype("string")
    raw.insert(0, "record_id", [f"r{i}" for i in range(len(rows))])
    return EncodedRecords.from_frame(standardise(raw, today=TODAY).frame)


def with_caps(rules: Rules, *refs: tuple[str, str]) -> Rules:
    never_link = tuple(LevelRef(comparison=c, level=level) for c, level in refs)
    return rules.model_copy(
        update={"thresholds": rules.thresholds.model_copy(update={"never_link": never_link})}
    )


def score_against_first(rows: list[dict[str, Any]], rules: Rules = RULES) -> tuple[Scorer, ScoredPairs]:
    """Score the first row against each of the others with the committed default parameters."""
    scorer = Engine(rules).scorer(encode(rows), PARAMS)
    others = np.arange(1, len(rows), dtype=np.int64)
    return scorer, scorer.score(np.zeros(others.size, dtype=np.int64), others)


def level_of(scorer: Scorer, scored: ScoredPairs, comparison: str) -> list[str]:
    k = [c.comparator.name for c in scorer.compiled].index(comparison)
    labels = scorer.compiled[k].comparator.labels
    return [labels[level] if level >= 0 else "missing" for level in scored.levels[:, k].tolist()]


# Each variant differs from PERSON in one strict trait, the way a twin, a parent or
# a namesake born the same day does; the last one is the same person, typed again.
CONFLICTS = {
    "sex": {"sex": "F"},
    "birth_date": {"birth_date": "1981-02-11"},
    "given_name": {"given_names": "Paul"},
    "matricule": {"national_id": complete_matricule("19520903456")},
    "matricule one digit apart": {"national_id": complete_matricule("19520903124")},
}


def test_a_conflicting_strict_trait_makes_a_pair_unlinkable_whatever_its_score() -> None:
    rows = [PERSON, *({**PERSON, **change} for change in CONFLICTS.values()), dict(PERSON)]
    scorer, scored = score_against_first(rows)
    assert scored.linkable.tolist() == [False] * len(CONFLICTS) + [True]
    assert level_of(scorer, scored, "matricule")[3:5] == ["different", "one_digit_apart"]
    # The same pairs without caps: the scores are the same, only the decision changes.
    _, uncapped = score_against_first(rows, with_caps(RULES))
    assert uncapped.linkable.all()
    np.testing.assert_array_equal(scored.match_weight, uncapped.match_weight)
    # Sharing everything else, the sex conflict alone would be linked on its score.
    assert scored.match_probability[0] >= RULES.thresholds.link


def test_an_agreeing_or_merely_fuzzy_trait_is_not_capped() -> None:
    typos = [
        {"family_name": "Majeruss"},
        {"given_names": "Jeann"},
        {"birth_date": "1952-03-09"},  # day and month swapped
        {"birth_date": "1953-09-03"},  # year off by one
        {"national_id": None},
        {"sex": None},
    ]
    _, scored = score_against_first([PERSON, *({**PERSON, **change} for change in typos)])
    assert scored.linkable.all()


def test_linkable_checks_every_cap_on_a_level_matrix() -> None:
    rules = with_caps(RULES, ("sex", "different"), ("birth_date", "different"))
    scorer = Engine(rules).scorer(encode([PERSON, PERSON]), PARAMS)
    names = [c.comparator.name for c in scorer.compiled]
    sex = scorer.compiled[names.index("sex")].comparator.labels.index("different")
    birth = scorer.compiled[names.index("birth_date")].comparator.labels.index("different")
    levels = np.zeros((4, len(names)), dtype=np.int8)
    levels[1, names.index("sex")] = sex
    levels[2, names.index("birth_date")] = birth
    levels[3, names.index("sex")] = -1  # missing is no conflict
    assert scorer.linkable(levels).tolist() == [True, False, False, True]


def test_a_cap_on_a_comparison_the_input_lacks_is_ignored() -> None:
    without_sex = [{k: v for k, v in PERSON.items() if k != "sex"}] * 2
    scorer, scored = score_against_first(without_sex)
    assert "sex" not in [c.comparator.name for c in scorer.compiled]
    assert scored.linkable.tolist() == [True]


def test_a_cap_naming_an_unknown_level_is_refused_naming_the_entry() -> None:
    rules = with_caps(RULES, ("sex", "different"), ("birth_date", "far_apart"))
    with pytest.raises(RulesError) as caught:
        Engine(rules)
    assert caught.value.key == "thresholds.never_link.1.level"
    assert "'far_apart'" in caught.value.message
    assert "day_month_swapped" in caught.value.message  # the levels it could have named


def test_a_cap_naming_an_unknown_comparison_is_refused_by_the_engine_too() -> None:
    raw = RULES.model_dump(by_alias=True)
    raw["thresholds"]["never_link"] = [{"comparison": "gender", "level": "different"}]
    with pytest.raises(RulesError) as caught:
        Engine(Rules.model_validate(raw))
    assert caught.value.key == "thresholds.never_link.0.comparison"


def test_a_rules_file_with_an_unknown_level_loads_but_builds_no_engine(tmp_path: Path) -> None:
    text = default_rules_path().read_text(encoding="utf-8")
    broken = text.replace(
        '{ comparison = "sex", level = "different" }', '{ comparison = "sex", level = "opposite" }'
    )
    assert broken != text
    path = tmp_path / "rules.toml"
    path.write_text(broken, encoding="utf-8")
    rules = load_rules(path)  # levels belong to comparators, which the loader does not build
    with pytest.raises(RulesError, match=r"thresholds\.never_link\.0\.level.*'opposite'"):
        Engine(rules)
