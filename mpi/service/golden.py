"""Golden records: a person's best demographics, chosen from its linked records by survivorship rules.

The rules are configuration (``MPI_SURVIVORSHIP__*`` or the settings file):
which assigning authorities are trusted most, and per field or field group
whether the most trusted source, the most recent value or the most frequent
value wins. The golden record is a pure function of the linked records' current
versions, so recomputing it after any change (merge, unmerge, update) gives the
same answer as building it from scratch.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, Field, field_validator

from mpi.domain.identifiers import check_matricule
from mpi.domain.persons import Person, TrustStatus
from mpi.domain.records import DEMOGRAPHIC_FIELDS, Demographics, MatriculeFlag, SourceRecord

FIELD_GROUPS: dict[str, tuple[str, ...]] = {
    # An address is taken whole from one record; mixing a street from one source
    # with a postcode from another produces an address nobody lives at.
    "address": ("street", "house_number", "postcode", "city", "country"),
}
_GROUPED = {name for group in FIELD_GROUPS.values() for name in group}
UNITS: tuple[str, ...] = (*(f for f in DEMOGRAPHIC_FIELDS if f not in _GROUPED), *FIELD_GROUPS)
_VALID_MATRICULE = (MatriculeFlag.VALID, MatriculeFlag.UPGRADED)


class SurvivorshipRule(enum.StrEnum):
    SOURCE_TRUST = "source_trust"  # the most trusted source; the most recent among equals
    MOST_RECENT = "most_recent"  # the most recently updated record
    MOST_FREQUENT = "most_frequent"  # the value most records agree on


class SurvivorshipRules(BaseModel):
    """Which value of a person's records becomes the golden one."""

    source_trust: list[str] = Field(
        default_factory=lambda: ["RNPP", "CNS", "HOSP*", "LAB*"],
        description="Assigning-authority patterns (fnmatch), most trusted first; unlisted ones rank last.",
    )
    default_rule: SurvivorshipRule = SurvivorshipRule.SOURCE_TRUST
    rules: dict[str, SurvivorshipRule] = Field(
        default_factory=lambda: {
            "address": SurvivorshipRule.MOST_RECENT,
            "phone": SurvivorshipRule.MOST_RECENT,
            "email": SurvivorshipRule.MOST_RECENT,
        },
        description="Per field or field group (address) rule, overriding default_rule.",
    )
    national_reference: list[str] = Field(
        default_factory=lambda: ["RNPP"],
        description="Authority patterns of the national reference: a valid matricule from one makes "
        "the identity 'retrieved'.",
    )

    @field_validator("rules")
    @classmethod
    def _known_units(cls, rules: dict[str, SurvivorshipRule]) -> dict[str, SurvivorshipRule]:
        unknown = sorted(set(rules) - set(UNITS))
        if unknown:
            raise ValueError(f"unknown fields {unknown}; use one of {sorted(UNITS)}")
        return rules

    def trust_rank(self, authority: str) -> int:
        for rank, pattern in enumerate(self.source_trust):
            if fnmatchcase(authority, pattern):
                return rank
        return len(self.source_trust)

    def is_national_reference(self, authority: str) -> bool:
        return any(fnmatchcase(authority, pattern) for pattern in self.national_reference)


def _unit_values(record: SourceRecord, unit: str) -> tuple[str | None, ...]:
    if unit == "national_id":
        # Only a checked matricule survives, in its 13-digit form: an invalid one is a typing error.
        if record.matricule not in _VALID_MATRICULE:
            return (None,)
        return (check_matricule(record.demographics.national_id)[0],)
    names = FIELD_GROUPS.get(unit, (unit,))
    return tuple(getattr(record.demographics, name) for name in names)


def _newest_first(record: SourceRecord) -> tuple[float, int]:
    return (-record.updated_at.timestamp(), record.record_id)


def compute_golden(members: Sequence[SourceRecord], rules: SurvivorshipRules) -> Demographics:
    """The golden record of a person whose linked records are ``members``."""
    if len(members) == 1:  # every rule picks the only record: skip the ranking (most persons, in a load)
        only = members[0]
        return replace(only.demographics, national_id=_unit_values(only, "national_id")[0])
    chosen: dict[str, str | None] = dict.fromkeys(DEMOGRAPHIC_FIELDS)
    ranks = {m.record_id: rules.trust_rank(m.key.authority) for m in members}

    def by_trust(record: SourceRecord) -> tuple[int, float, int]:
        return (ranks[record.record_id], *_newest_first(record))

    for unit in UNITS:
        with_values = ((m, _unit_values(m, unit)) for m in members)
        holders = [(m, values) for m, values in with_values if any(v is not None for v in values)]
        if not holders:
            continue
        rule = rules.rules.get(unit, rules.default_rule)
        if rule is SurvivorshipRule.MOST_FREQUENT:
            counts = Counter(values for _, values in holders)
            best_of_value: dict[tuple[str | None, ...], tuple[int, float, int]] = {}
            for record, values in sorted(holders, key=lambda h: by_trust(h[0])):
                best_of_value.setdefault(values, by_trust(record))
            winner = min(counts, key=lambda values: (-counts[values], best_of_value[values]))
        elif rule is SurvivorshipRule.MOST_RECENT:
            winner = min(holders, key=lambda h: (*_newest_first(h[0]), ranks[h[0].record_id]))[1]
        else:
            winner = min(holders, key=lambda h: by_trust(h[0]))[1]
        chosen.update(zip(FIELD_GROUPS.get(unit, (unit,)), winner, strict=True))
    return Demographics(**chosen)


def strict_traits(golden: Demographics) -> tuple[str | None, ...]:
    """The strict identity traits of a golden record (birth name, first given name, birth date, sex)."""
    first_given = golden.given_names.split()[0].casefold() if golden.given_names else None
    birth_name = golden.birth_name or golden.family_name
    return (birth_name.casefold() if birth_name else None, first_given, golden.birth_date, golden.sex)


def refreshed(person: Person, members: Sequence[SourceRecord], rules: SurvivorshipRules) -> Person:
    """``person`` with its golden record and trust status recomputed from ``members``."""
    golden = compute_golden(members, rules)
    # Changing a strict trait drops a validated identity back: the document checked no longer matches.
    document_checked = person.document_checked and strict_traits(golden) == strict_traits(person.golden)
    retrieved = any(
        m.matricule in _VALID_MATRICULE and rules.is_national_reference(m.key.authority) for m in members
    )
    trust = TrustStatus.of(retrieved=retrieved, document_checked=document_checked)
    return replace(person, golden=golden, document_checked=document_checked, trust=trust)


# -- many persons at once (a bulk load) ------------------------------------------------------


@dataclass(frozen=True)
class MemberColumns:
    """The linked records of many persons, one array entry per record (any order).

    ``demographics["national_id"]`` holds the checked 13-digit matricule of the records with
    ``valid_matricule`` (a valid or upgraded number); survivorship ignores it elsewhere.
    """

    person: npt.NDArray[np.int64]  # which person, 0 .. persons - 1
    record_id: npt.NDArray[np.int64]
    authority: list[str]
    updated_at: npt.NDArray[np.float64]  # POSIX timestamps
    valid_matricule: npt.NDArray[np.bool_]
    demographics: dict[str, npt.NDArray[np.object_]]  # every DEMOGRAPHIC_FIELDS name


def _inverse(order: npt.NDArray[np.intp]) -> npt.NDArray[np.int64]:
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size, dtype=np.int64)
    return rank


def _first_per_person(
    person: npt.NDArray[np.int64], candidates: npt.NDArray[np.intp], *keys: npt.NDArray[np.int64]
) -> npt.NDArray[np.intp]:
    """Among ``candidates`` (record positions), the one per person that sorts first by ``keys``."""
    order = candidates[np.lexsort((*(key[candidates] for key in reversed(keys)), person[candidates]))]
    owners = person[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = owners[1:] != owners[:-1]
    return order[first]


def golden_columns(
    members: MemberColumns, persons: int, rules: SurvivorshipRules
) -> tuple[dict[str, npt.NDArray[np.object_]], npt.NDArray[np.bool_]]:
    """Every person's golden record, field by field, and whether it is retrieved.

    The same choice as :func:`compute_golden` and :func:`refreshed` make one person at a time,
    made with sorts over all records instead: a million records in seconds.
    """
    person = members.person
    ranks_of = {a: rules.trust_rank(a) for a in set(members.authority)}
    rank = np.array([ranks_of[a] for a in members.authority], dtype=np.int64)
    newest = _inverse(np.lexsort((members.record_id, -members.updated_at)))  # _newest_first
    by_trust = _inverse(np.lexsort((newest, rank)))  # rank, then newest first
    by_recency = newest  # the record id already breaks every tie of the trust rank
    columns = dict(members.demographics)
    columns["national_id"] = columns["national_id"].copy()
    columns["national_id"][~members.valid_matricule] = None  # only a checked matricule survives

    chosen = {name: np.full(persons, None, dtype=object) for name in DEMOGRAPHIC_FIELDS}
    for unit in UNITS:
        names = FIELD_GROUPS.get(unit, (unit,))
        present = [pd.notna(columns[name]) for name in names]
        holders = np.flatnonzero(np.logical_or.reduce(present))
        if holders.size == 0:
            continue
        rule = rules.rules.get(unit, rules.default_rule)
        if rule is SurvivorshipRule.MOST_FREQUENT:
            # How many of its person's records hold each record's value; ties go to the value
            # whose best holder ranks first by trust.
            value_of = np.zeros(holders.size, dtype=np.int64)
            for name in names:  # one code per distinct tuple of the unit's values
                column_codes, uniques = pd.factorize(columns[name][holders], use_na_sentinel=False)
                combined = value_of * (len(uniques) + 1) + column_codes
                value_of = np.unique(combined, return_inverse=True)[1].reshape(-1)
            group = person[holders] * (int(value_of.max()) + 1) + value_of
            _, where, counts = np.unique(group, return_inverse=True, return_counts=True)
            support = np.zeros(person.size, dtype=np.int64)
            support[holders] = counts[where.reshape(-1)]
            winners = _first_per_person(person, holders, -support, by_trust)
        elif rule is SurvivorshipRule.MOST_RECENT:
            winners = _first_per_person(person, holders, by_recency)
        else:
            winners = _first_per_person(person, holders, by_trust)
        for name in names:
            chosen[name][person[winners]] = columns[name][winners]

    retrieved_authority = {a: rules.is_national_reference(a) for a in ranks_of}
    from_reference = np.array([retrieved_authority[a] for a in members.authority], dtype=bool)
    retrieved = np.zeros(persons, dtype=bool)
    retrieved[person[members.valid_matricule & from_reference]] = True
    return chosen, retrieved
