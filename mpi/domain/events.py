"""The append-only event log: every change to the MPI, who made it, when and why.

Each event carries the state of every entity it touched before and after the
change. That makes the log an audit trail a reviewer can read, lets
:func:`mpi.service.audit.replay` rebuild the whole registry from it, and gives
unmerge the exact pre-merge state to restore.
"""

from __future__ import annotations

import enum
import json
import operator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from mpi.domain.persons import Link, LinkProvenance, Person, PersonFlag, PersonStatus, TrustStatus
from mpi.domain.records import (
    DEMOGRAPHIC_FIELDS,
    Demographics,
    MatriculeFlag,
    RecordIdentifier,
    RecordKey,
    SourceRecord,
)
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


def encode_changes(changes: tuple[Change, ...], *, compact: bool = False) -> str:
    """An event's changes as JSON text (an exact round trip through :func:`decode_changes`).

    With ``compact``, the changes of one newly loaded person (see :func:`_loaded_form`) are
    written in a form that states what all its records share once; any other changes are
    written as usual.
    """
    if compact:
        loaded = _loaded_form(changes)
        if loaded is not None:
            return _JSON.encode(loaded)
    return _CHANGES.dump_json(changes).decode("utf-8")


def decode_changes(text: str | bytes) -> tuple[Change, ...]:
    if text[:1] in ("{", b"{"):  # the compact form is an object, the general one an array
        return _from_loaded_form(json.loads(text))
    return _CHANGES.validate_json(text)


# -- the compact form of a bulk-loaded person ---------------------------------------------
#
# A bulk load writes one event per person: its new records, their identifiers, the person
# and one link per record, all at one instant, by one actor, with one model. Written out in
# full, each record repeats the instant four times and the link's provenance, actor, model
# and reason; a million-record load would log over a gigabyte. This form keeps the shared
# values once and each record as one array, and decodes to exactly the changes it encodes.
_LOADED_VERSION = 1
_demographics_of = operator.attrgetter(*DEMOGRAPHIC_FIELDS)
_JSON = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":")
)  # one encoder: json.dumps builds one a call


def _loaded_form(changes: tuple[Change, ...]) -> dict[str, Any] | None:
    """``{"loaded": 1, ...}`` when ``changes`` are records, their identifiers, one new person,
    then each record's new link to it, in record order and all at the person's creation
    instant; ``None`` for any other changes."""
    n = 0
    while n < len(changes) and isinstance(changes[n], RecordChanged):
        n += 1
    records = [change.record for change in changes[:n] if isinstance(change, RecordChanged)]
    rest = changes[n:]
    if not records or len(rest) < 1 + n:
        return None
    identifiers = rest[: len(rest) - 1 - n]
    person_change, links = rest[len(identifiers)], rest[len(identifiers) + 1 :]
    if not isinstance(person_change, PersonChanged) or person_change.before is not None:
        return None
    person = person_change.after
    mpi_id, at = person.mpi_id, person.created_at
    first = links[0]
    if person_change.mpi_id != mpi_id or not isinstance(first, LinkChanged):
        return None
    shared = (first.after.provenance, first.after.actor, first.after.model_version, first.after.reason)

    def same_instant(moment: datetime) -> bool:
        # The decoded changes all carry one instant, in the zone the text names.
        return moment == at and moment.tzinfo == at.tzinfo

    position = {record.record_id: i for i, record in enumerate(records)}
    identifier_at: list[list[Any] | None] = [None] * n
    last = -1
    for change in identifiers:
        if not isinstance(change, IdentifierChanged) or change.before is not None:
            return None
        identifier = change.after
        i = position.get(identifier.record_id, -1)
        # One identifier per record, in record order: the order they decode in.
        if i <= last or change.identifier_id != identifier.identifier_id:
            return None
        if identifier.assigned_at is not at and not same_instant(identifier.assigned_at):
            return None
        identifier_at[i] = [
            identifier.identifier_id,
            identifier.system,
            identifier.value,
            identifier.raw,
            identifier.status.value,
            identifier.active,
            identifier.replaced_by,
        ]
        last = i
    rows: list[list[Any]] = []
    for record, change, identifier_row in zip(records, links, identifier_at, strict=True):
        if not isinstance(change, LinkChanged) or change.before is not None:
            return None
        link = change.after
        record_id = record.record_id
        if (
            change.record_id != record_id
            or link.record_id != record_id
            or link.mpi_id != mpi_id
            or (link.provenance, link.actor, link.model_version, link.reason) != shared
            or (link.linked_at is not at and not same_instant(link.linked_at))
            or (record.updated_at is not at and not same_instant(record.updated_at))
        ):
            return None
        rows.append(
            [
                record_id,
                record.key.authority,
                record.key.local_id,
                record.version,
                record.matricule.value,
                _demographics_of(record.demographics),
                link.score,
                identifier_row,
            ]
        )
    provenance, actor, model_version, reason = shared
    return {
        "loaded": _LOADED_VERSION,
        "at": at.isoformat(),
        "person": [
            mpi_id,
            person.status.value,
            person.trust.value,
            person.document_checked,
            person.replaced_by,
            sorted(flag.value for flag in person.flags),
            _demographics_of(person.golden),
        ],
        "link": [provenance.value, actor, model_version, reason],
        "records": rows,
    }


def _from_loaded_form(form: dict[str, Any]) -> tuple[Change, ...]:
    if form.get("loaded") != _LOADED_VERSION:
        raise ValueError(f"unknown compact event form {form.get('loaded')!r}")
    at = datetime.fromisoformat(form["at"])
    mpi_id, status, trust, document_checked, replaced_by, flags, golden = form["person"]
    person = Person(
        mpi_id=mpi_id,
        status=PersonStatus(status),
        trust=TrustStatus(trust),
        golden=Demographics(*golden),
        created_at=at,
        replaced_by=replaced_by,
        document_checked=document_checked,
        flags=frozenset(PersonFlag(flag) for flag in flags),
    )
    provenance, actor, model_version, reason = form["link"]
    provenance = LinkProvenance(provenance)
    records: list[Change] = []
    identifiers: list[Change] = []
    links: list[Change] = []
    for record_id, authority, local_id, version, matricule, demographics, score, identifier in form[
        "records"
    ]:
        record = SourceRecord(
            record_id,
            RecordKey(authority, local_id),
            version,
            Demographics(*demographics),
            MatriculeFlag(matricule),
            at,
        )
        records.append(RecordChanged(record))
        if identifier is not None:
            identifier_id, system, value, raw, id_status, active, successor = identifier
            identifiers.append(
                IdentifierChanged(
                    identifier_id,
                    None,
                    RecordIdentifier(
                        identifier_id,
                        record_id,
                        system,
                        value,
                        raw,
                        MatriculeFlag(id_status),
                        active,
                        at,
                        successor,
                    ),
                )
            )
        link = Link(record_id, mpi_id, provenance, at, actor, score, model_version, reason)
        links.append(LinkChanged(record_id, None, link))
    return (*records, *identifiers, PersonChanged(mpi_id, None, person), *links)
