"""Candidate persons for a probe record: fetched through the blocking-key index, scored, judged.

The same evidence serves register (which person to link to), update (does the
record still fit its person) and search (ranked persons). Scoring goes through
the :class:`~mpi.service.ports.Matcher`, in one call per probe over all its
candidates, so the kernel works on arrays and never on single pairs.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace

from mpi.domain.records import Demographics, MatriculeFlag, SourceRecord
from mpi.domain.scores import Decision, PairScore
from mpi.service.operations import MATRICULE_SYSTEM, judge_matricule
from mpi.service.ports import Candidate, Matcher, UnitOfWork

_KNOWN_SEXES = frozenset({"M", "F"})
_VALID_FLAGS = (MatriculeFlag.VALID, MatriculeFlag.UPGRADED)


class MatriculeRelation(enum.StrEnum):
    NONE = "none"  # no shared valid matricule: the matcher alone decides
    COMPATIBLE = "compatible"  # same matricule, sex and birth date agree: the same person
    CONFLICTING = "conflicting"  # same matricule, sex and birth date both disagree: a collision
    UNDECIDED = "undecided"  # same matricule, one of sex or birth date disagrees: the matcher decides


@dataclass(frozen=True)
class Probe:
    """A record prepared for matching."""

    demographics: Demographics  # as given, with the national id normalised or removed
    matricule: str | None  # the valid 13-digit matricule, if any
    matricule_flag: MatriculeFlag
    blocking_keys: tuple[str, ...]
    form: str | None = None  # the matcher's standardised form, stored beside the record

    @property
    def lock_keys(self) -> list[str]:
        """What a writer locks: every blocking key, plus the matricule, which links without one."""
        keys = [f"key:{k}" for k in self.blocking_keys]
        if self.matricule is not None:
            keys.append(f"nid:{self.matricule}")
        return keys


@dataclass(frozen=True)
class PersonEvidence:
    """The best evidence that the probe is this person."""

    mpi_id: str
    record_id: int  # the person's record that scored best
    score: PairScore
    matricule: MatriculeRelation

    @property
    def decision(self) -> Decision | None:
        """``None`` for a collision: never linked, always put before a human."""
        if self.matricule is MatriculeRelation.CONFLICTING:
            return None
        if self.matricule is MatriculeRelation.COMPATIBLE:
            return "link"
        return self.score.decision

    @property
    def rank(self) -> tuple[bool, float, float, int, str]:
        # Equal evidence goes to the person whose matching record came first: MPI ids are
        # random, so ordering by them would make the same history link differently.
        return (
            self.matricule is not MatriculeRelation.COMPATIBLE,
            -self.score.match_probability,
            -self.score.match_weight,
            self.record_id,
            self.mpi_id,
        )


def for_matching(demographics: Demographics, matricule: str | None) -> Demographics:
    # An invalid matricule is a typing error: matching on it would link strangers.
    if demographics.national_id == matricule:  # most records: none, or already normalised
        return demographics
    return replace(demographics, national_id=matricule)


def make_probes(matcher: Matcher, demographics: Sequence[Demographics]) -> list[Probe]:
    """Probes for records to register or search for, standardised in one call for all of them:
    the form is stored beside a registered record, and scores the probe either way."""
    judged = [judge_matricule(d.national_id) for d in demographics]
    matchable = [for_matching(d, matricule) for d, (matricule, _) in zip(demographics, judged, strict=True)]
    keys, forms = matcher.keys_and_forms(matchable)
    return [
        Probe(view, matricule, flag, tuple(dict.fromkeys(record_keys)), form)
        for view, (matricule, flag), record_keys, form in zip(matchable, judged, keys, forms, strict=True)
    ]


def make_probe(matcher: Matcher, demographics: Demographics) -> Probe:
    return make_probes(matcher, [demographics])[0]


def _sex(value: str | None) -> str | None:
    text = (value or "").strip().upper()[:1]
    return text if text in _KNOWN_SEXES else None


def _date_parts(value: str | None) -> tuple[str, ...] | None:
    parts = (value or "").strip().split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return tuple(parts)


def _birth_dates_disagree(first: str | None, second: str | None) -> bool:
    a, b = _date_parts(first), _date_parts(second)
    if a is None or b is None:
        return bool(first and second and first.strip() != second.strip())
    # A 00 month or day means unknown: it agrees with anything.
    return any(x != y and int(x) != 0 and int(y) != 0 for x, y in zip(a, b, strict=True))


def strict_relation(
    probe: Demographics, candidate_traits: tuple[str | None, str | None]
) -> MatriculeRelation:
    """How two records sharing a valid matricule compare on sex and birth date (the candidate's
    as stored, in that order)."""
    candidate_sex, candidate_birth_date = candidate_traits
    sex_a, sex_b = _sex(probe.sex), _sex(candidate_sex)
    sex_differs = sex_a is not None and sex_b is not None and sex_a != sex_b
    date_differs = _birth_dates_disagree(probe.birth_date, candidate_birth_date)
    if sex_differs and date_differs:
        return MatriculeRelation.CONFLICTING
    if sex_differs or date_differs:
        return MatriculeRelation.UNDECIDED
    return MatriculeRelation.COMPATIBLE


def _as_stored(raw: str | None) -> str | None:
    """A valid number already in its normal form (13 digits) needs no second check."""
    return raw if raw is not None and len(raw) == 13 and raw.isdigit() else None


def matchable_records(records: Sequence[SourceRecord]) -> tuple[list[Demographics], list[str | None]]:
    """Stored records as the matcher must see them, and their valid matricules.

    The flag stored with each record says whether its number was valid, so only
    valid ones are normalised again (from a cache: the same numbers recur).
    """
    matricules = [
        (_as_stored(r.demographics.national_id) or judge_matricule(r.demographics.national_id)[0])
        if r.matricule in _VALID_FLAGS
        else None
        for r in records
    ]
    return [for_matching(r.demographics, m) for r, m in zip(records, matricules, strict=True)], matricules


def searched_identifier(probe: Probe) -> tuple[str, str] | None:
    """The identifier a probe's candidates are also found by: its valid matricule."""
    return (MATRICULE_SYSTEM, probe.matricule) if probe.matricule is not None else None


def gather(
    uow: UnitOfWork,
    matcher: Matcher,
    probe: Probe,
    exclude: int | None = None,
    candidates: Sequence[Candidate] | None = None,
) -> list[PersonEvidence]:
    """Every person that shares a blocking key or a valid matricule with the probe, best first
    (from ``candidates``, when the caller has read them already)."""
    if candidates is None:
        candidates = uow.candidate_records(probe.blocking_keys, searched_identifier(probe))
    found = [c for c in candidates if c.record_id != exclude]
    if not found:
        return []
    # Most candidates are scored from their stored forms; the records themselves are read only
    # for those without a current form.
    usable = [c.form is not None and matcher.form_is_current(c.form) for c in found]
    wanted = [c.record_id for c, ok in zip(found, usable, strict=True) if c.record is None and not ok]
    read = uow.get_records(wanted) if wanted else {}
    records = {c.record_id: c.record or read[c.record_id] for c in found if c.record or c.record_id in read}
    views = dict(zip(records, matchable_records(list(records.values()))[0], strict=True))
    scores = matcher.score(
        probe.form if probe.form is not None else probe.demographics,  # standardised once
        [
            c.form if ok and c.form is not None else views[c.record_id]
            for c, ok in zip(found, usable, strict=True)
        ],
    )

    best: dict[str, PersonEvidence] = {}
    relations: dict[str, list[MatriculeRelation]] = {}
    for candidate, score in zip(found, scores, strict=True):
        mpi_id = candidate.mpi_id
        if candidate.holder_traits is not None and probe.matricule is not None:
            relations.setdefault(mpi_id, []).append(
                strict_relation(probe.demographics, candidate.holder_traits)
            )
        current = best.get(mpi_id)
        if current is None or (score.match_probability, score.match_weight) > (
            current.score.match_probability,
            current.score.match_weight,
        ):
            best[mpi_id] = PersonEvidence(mpi_id, candidate.record_id, score, MatriculeRelation.NONE)
    evidence = []
    for mpi_id, found_evidence in best.items():
        seen = relations.get(mpi_id, [])
        # One conflicting record is enough to make the person a potential collision.
        for relation in (
            MatriculeRelation.CONFLICTING,
            MatriculeRelation.UNDECIDED,
            MatriculeRelation.COMPATIBLE,
        ):
            if relation in seen:
                found_evidence = replace(found_evidence, matricule=relation)
                break
        evidence.append(found_evidence)
    return sorted(evidence, key=lambda e: e.rank)
