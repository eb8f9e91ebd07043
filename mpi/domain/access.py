"""Who looked at whose data: the access audit trail.

The event log records every change with its actor; reading patient data
changes nothing, so it leaves no event. An :class:`Access` records a read
instead: who (a steward's login, an HL7 sender), through which channel, what
they did (viewed a person, searched, queried cross-references, exported), the
criteria they gave, and the persons whose data they were shown. An identity-
vigilance officer answers "who has looked at this patient?" from it, and spots
fishing (many searches, few follow-ups) by actor.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

# What the store keeps of an actor; an HL7 sender's MSH-4 may be anything a wildcard admits.
MAX_ACTOR_LENGTH = 200


class AccessChannel(enum.StrEnum):
    CLI = "cli"
    HL7 = "hl7"


class AccessAction(enum.StrEnum):
    PERSON_VIEWED = "person.viewed"  # a person with its records and history
    RECORD_VIEWED = "record.viewed"  # a source record with its versions and person
    PERSONS_SEARCHED = "persons.searched"  # ranked persons for demographics (search before create)
    REVIEWS_LISTED = "reviews.listed"  # review tasks, with the persons they name
    REGISTRY_EXPORTED = "registry.exported"  # every record with its person
    CROSS_REFERENCES_QUERIED = "pix.queried"  # IHE ITI-9: a person's identifiers in other domains
    DEMOGRAPHICS_QUERIED = "pdq.queried"  # IHE ITI-21: persons matching demographics


@dataclass(frozen=True)
class Access:
    """One read of patient data, as recorded (``access_id`` is 0 until stored)."""

    at: datetime
    actor: str
    channel: AccessChannel
    action: AccessAction
    subjects: tuple[str, ...]  # MPI ids of the persons whose data was shown (an export: none)
    criteria: str | None = None  # what was asked: a search's fields, a query's QPD, a record key
    results: int = 0  # how many persons (or rows, for an export) were returned
    access_id: int = 0

    def __post_init__(self) -> None:
        # Whatever a sender put in its header or query must not make the entry unstorable: an
        # entry the database refuses would hold up every entry queued behind it.
        object.__setattr__(self, "actor", _storable(self.actor)[:MAX_ACTOR_LENGTH])
        if self.criteria is not None:
            object.__setattr__(self, "criteria", _storable(self.criteria))


def _storable(text: str) -> str:
    """``text`` without NUL characters, which PostgreSQL text cannot hold."""
    return text.replace("\x00", "\ufffd")
