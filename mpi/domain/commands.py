"""Commands: what every entry point (CSV row, HL7 message, FHIR call, CLI) asks the MPI to do.

An HL7 ``ADT^A04``, a ``POST /fhir/Patient`` and a row of a batch file all
become the same :class:`RegisterRecord`, so they go through the same service
call and the same matching kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpi.domain.records import Demographics, RecordKey
from mpi.domain.reviews import ReviewAction

SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class RegisterRecord:
    """Register a source record, or store a new version if the source already sent it."""

    key: RecordKey
    demographics: Demographics
    actor: str = SYSTEM_ACTOR


@dataclass(frozen=True)
class UpdateRecord:
    """Store a new version of an existing source record and re-evaluate its link."""

    key: RecordKey
    demographics: Demographics
    actor: str = SYSTEM_ACTOR


@dataclass(frozen=True)
class MergePersons:
    """Merge ``retired`` into ``survivor``: its links move, it is retired with replaced-by."""

    survivor: str
    retired: str
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class UnmergePerson:
    """Undo the merge that retired ``mpi_id``."""

    mpi_id: str
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class LinkRecord:
    """Attach a record to a person by hand (a MANUAL link, sticky against re-matching)."""

    key: RecordKey
    mpi_id: str
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class UnlinkRecord:
    """Detach a record from its person by hand; it gets a new person of its own."""

    key: RecordKey
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class MarkNotDuplicate:
    """Record that two persons are different people; the pair is never proposed again."""

    first: str
    second: str
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class ResolveReview:
    """Answer a review task. For a merge, ``survivor`` names the person that stays
    (by default the one created first, whose id is the most likely to be in use)."""

    task_id: int
    action: ReviewAction
    actor: str
    reason: str | None = None
    survivor: str | None = None


@dataclass(frozen=True)
class ValidateIdentity:
    """A steward checked the person's strict traits against a high-trust identity document."""

    mpi_id: str
    actor: str
    reason: str | None = None
