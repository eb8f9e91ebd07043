"""The append-only event log: every change to the MPI, who made it, when and why.

Each event carries the state of every entity it touched before and after the
change. That makes the log an audit trail a reviewer can read, lets
:func:`mpi.service.audit.replay` rebuild the whole registry from it, and gives
unmerge the exact pre-merge state to restore.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from mpi.domain.persons import Link, Person
from mpi.domain.records import RecordIdentifier, SourceRecord
from mpi.domain.reviews import NotDuplicate, ReviewTask


class EventKind(enum.StrEnum):
    RECORD_REGISTERED = "record.registered"
    RECORD_UPDATED = "record.updated"
    RECORD_LINKED = "record.linked"
    RECORD_UNLINKED = "record.unlinked"
    PERSONS_MERGED = "persons.merged"
    PERSONS_UNMERGED = "persons.unmerged"
    PERSONS_NOT_DUPLICATE = "persons.not_duplicate"
    IDENTITY_VALIDATED = "person.identity_validated"
    REVIEW_RESOLVED = "review.resolved"
    REVIEW_DEFERRED = "review.deferred"
    RECORDS_LOADED = "records.loaded"
    REVIEWS_RAISED = "reviews.raised"


@dataclass(frozen=True)
class RecordChanged:
    """A new version of a source record (``record.version == 1`` when it is new)."""

    record: SourceRecord
    type: Literal["record"] = "record"


@dataclass(frozen=True)
class PersonChanged:
    mpi_id: str
    before: Person | None
    after: Person
    type: Literal["person"] = "person"


@dataclass(frozen=True)
class LinkChanged:
    record_id: int
    before: Link | None
    after: Link
    type: Literal["link"] = "link"


@dataclass(frozen=True)
class IdentifierChanged:
    identifier_id: int
    before: RecordIdentifier | None
    after: RecordIdentifier
    type: Literal["identifier"] = "identifier"


@dataclass(frozen=True)
class ReviewChanged:
    task_id: int
    before: ReviewTask | None
    after: ReviewTask
    type: Literal["review"] = "review"


@dataclass(frozen=True)
class NotDuplicateAdded:
    decision: NotDuplicate
    type: Literal["not_duplicate"] = "not_duplicate"


Change = Annotated[
    RecordChanged | PersonChanged | LinkChanged | IdentifierChanged | ReviewChanged | NotDuplicateAdded,
    Field(discriminator="type"),
]


@dataclass(frozen=True)
class Event:
    """One transaction's worth of changes. ``seq`` is assigned by the log."""

    kind: EventKind
    occurred_at: datetime
    actor: str
    changes: tuple[Change, ...]
    reason: str | None = None
    subjects: tuple[str, ...] = field(default=())  # the MPI ids the event concerns
    seq: int | None = None


_CHANGES = TypeAdapter(tuple[Change, ...])


def encode_changes(changes: tuple[Change, ...]) -> str:
    """An event's changes as JSON text (an exact round trip through :func:`decode_changes`)."""
    return _CHANGES.dump_json(changes).decode("utf-8")


def decode_changes(text: str | bytes) -> tuple[Change, ...]:
    return _CHANGES.validate_json(text)
