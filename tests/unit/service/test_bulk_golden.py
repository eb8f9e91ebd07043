"""Golden records of many persons at once choose exactly what one person at a time would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from mpi.domain.identifiers import classify_matricules, complete_matricule
from mpi.domain.persons import Person, PersonStatus, TrustStatus
from mpi.domain.records import DEMOGRAPHIC_FIELDS, Demographics, MatriculeFlag, RecordKey, SourceRecord
from mpi.service.golden import (
    UNITS,
    MemberColumns,
    SurvivorshipRule,
    SurvivorshipRules,
    golden_columns,
    refreshed,
)

AUTHORITIES = ["RNPP", "CNS", "HOSP-A", "HOSP-B", "LAB-1", "GP"]
VALID = [complete_matricule(f"19800102{n:03d}") for n in range(3)]
RAW_MATRICULES = [None, None, *VALID, "18931201057", "1893120105732", "1980010200199", "12 34"]
FLAG = {0: MatriculeFlag.MISSING, 1: MatriculeFlag.VALID, 2: MatriculeFlag.UPGRADED, 3: MatriculeFlag.INVALID}


def random_members(seed: int, persons: int) -> list[list[SourceRecord]]:
    """Persons of 1 to 6 records with few distinct values, so that counts and dates tie often."""
    rng = np.random.default_rng(seed)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    out: list[list[SourceRecord]] = []
    record_id = 0
    for _ in range(persons):
        members = []
        for _ in range(int(rng.integers(1, 7))):
            record_id += int(rng.integers(1, 4))
            values: dict[str, str | None] = {
                name: (None if rng.random() < 0.3 else f"{name[:2]}{int(rng.integers(0, 3))}")
                for name in DEMOGRAPHIC_FIELDS
            }
            raw = RAW_MATRICULES[int(rng.integers(0, len(RAW_MATRICULES)))]
            values["national_id"] = raw
            _, status = classify_matricules(np.array([raw], dtype=object))
            members.append(
                SourceRecord(
                    record_id,
                    RecordKey(AUTHORITIES[int(rng.integers(0, len(AUTHORITIES)))], str(record_id)),
                    1,
                    Demographics(**values),
                    FLAG[int(status[0])],
                    base + timedelta(days=int(rng.integers(0, 3))),
                )
            )
        rng.shuffle(members)  # type: ignore[arg-type]
        out.append(members)
    return out


def columns_of(persons: list[list[SourceRecord]]) -> MemberColumns:
    flat = [(p, m) for p, members in enumerate(persons) for m in members]
    raw = np.array([m.demographics.national_id for _, m in flat], dtype=object)
    checked, status = classify_matricules(raw)
    demographics = {
        name: np.array([getattr(m.demographics, name) for _, m in flat], dtype=object)
        for name in DEMOGRAPHIC_FIELDS
    }
    demographics["national_id"] = checked
    return MemberColumns(
        person=np.array([p for p, _ in flat], dtype=np.int64),
        record_id=np.array([m.record_id for _, m in flat], dtype=np.int64),
        authority=[m.key.authority for _, m in flat],
        updated_at=np.array([m.updated_at.timestamp() for _, m in flat], dtype=np.float64),
        valid_matricule=np.isin(status, (1, 2)),
        demographics=demographics,
    )


RULE_SETS = [
    SurvivorshipRules(),
    SurvivorshipRules(default_rule=SurvivorshipRule.MOST_FREQUENT),
    SurvivorshipRules(default_rule=SurvivorshipRule.MOST_RECENT, rules={}),
    SurvivorshipRules(
        source_trust=["LAB*", "GP"],
        national_reference=["CNS", "RNPP"],
        rules={"address": SurvivorshipRule.MOST_FREQUENT, "national_id": SurvivorshipRule.MOST_RECENT},
    ),
]


@pytest.mark.parametrize("rules", RULE_SETS)
def test_golden_columns_equal_one_person_at_a_time(rules: SurvivorshipRules) -> None:
    persons = random_members(seed=len(rules.rules) + len(rules.source_trust), persons=1500)
    chosen, retrieved = golden_columns(columns_of(persons), len(persons), rules)
    at = datetime(2024, 2, 1, tzinfo=UTC)
    for index, members in enumerate(persons):
        blank = Person("X", PersonStatus.ACTIVE, TrustStatus.PROVISIONAL, Demographics(), at)
        expected = refreshed(blank, members, rules)
        assert Demographics(*(chosen[name][index] for name in DEMOGRAPHIC_FIELDS)) == expected.golden
        trust = TrustStatus.RETRIEVED if retrieved[index] else TrustStatus.PROVISIONAL
        assert trust is expected.trust


def test_the_random_persons_exercise_every_rule_and_tie() -> None:
    persons = random_members(seed=1, persons=300)
    sizes = [len(members) for members in persons]
    assert min(sizes) == 1 and max(sizes) == 6
    assert {m.matricule for members in persons for m in members} == set(MatriculeFlag)
    assert "address" in UNITS and "national_id" in UNITS


def test_no_person_and_persons_without_values() -> None:
    empty = columns_of([])
    chosen, retrieved = golden_columns(empty, 0, SurvivorshipRules())
    assert retrieved.size == 0 and all(column.size == 0 for column in chosen.values())
    at = datetime.now(UTC)
    nothing = SourceRecord(1, RecordKey("GP", "1"), 1, Demographics(), MatriculeFlag.MISSING, at)
    lone = [[nothing]]
    chosen, retrieved = golden_columns(columns_of(lone), 1, SurvivorshipRules())
    assert all(chosen[name][0] is None for name in DEMOGRAPHIC_FIELDS) and not retrieved[0]
