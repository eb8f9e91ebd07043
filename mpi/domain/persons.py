"""Persons (MPI identities) and the links that attach source records to them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from mpi.domain.records import Demographics


class PersonStatus(enum.StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"  # merged into another person, named by ``replaced_by``


class TrustStatus(enum.StrEnum):
    """The four mutually exclusive identity trust statuses of the RNIV/INS model."""

    PROVISIONAL = "provisional"  # neither checked against a document nor retrieved
    RETRIEVED = "retrieved"  # found in the national reference
    VALIDATED = "validated"  # checked against a high-trust identity document
    QUALIFIED = "qualified"  # both retrieved and validated

    @classmethod
    def of(cls, *, retrieved: bool, document_checked: bool) -> TrustStatus:
        if retrieved and document_checked:
            return cls.QUALIFIED
        if document_checked:
            return cls.VALIDATED
        if retrieved:
            return cls.RETRIEVED
        return cls.PROVISIONAL


class PersonFlag(enum.StrEnum):
    """Identity-vigilance flags (after HL7 table 0445 and French practice)."""

    POTENTIAL_DUPLICATE = "potential_duplicate"
    POTENTIAL_COLLISION = "potential_collision"


class LinkProvenance(enum.StrEnum):
    AUTO = "AUTO"  # decided by the matcher; may be re-evaluated
    MANUAL = "MANUAL"  # decided by a person; never undone by automatic re-matching


@dataclass(frozen=True)
class Person:
    """One MPI identity. Its golden record is recomputed from its linked records."""

    mpi_id: str
    status: PersonStatus
    trust: TrustStatus
    golden: Demographics
    created_at: datetime
    replaced_by: str | None = None
    document_checked: bool = False
    flags: frozenset[PersonFlag] = field(default_factory=frozenset)

    @property
    def is_active(self) -> bool:
        return self.status is PersonStatus.ACTIVE


@dataclass(frozen=True)
class Link:
    """A source record attached to a person, with how and why."""

    record_id: int
    mpi_id: str
    provenance: LinkProvenance
    linked_at: datetime
    actor: str
    score: float | None = None
    model_version: str | None = None
    reason: str | None = None
