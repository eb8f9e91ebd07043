"""The relational schema of the MPI (SQLAlchemy Core), and row <-> domain conversions.

The Alembic migrations in ``migrations/versions`` create exactly this schema; a
test compares the two so they cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

from mpi.domain.limits import (
    MAX_AUTHORITY_LENGTH,
    MAX_BLOCKING_KEY_LENGTH,
    MAX_CONTROL_ID_LENGTH,
    MAX_SENDER_LENGTH,
    MAX_VALUE_LENGTH,
)
from mpi.domain.persons import Link, LinkProvenance, Person, PersonFlag, PersonStatus, TrustStatus
from mpi.domain.records import (
    DEMOGRAPHIC_FIELDS,
    Demographics,
    MatriculeFlag,
    RecordIdentifier,
    RecordKey,
    RecordVersion,
    SourceRecord,
)
from mpi.domain.reviews import NotDuplicate, ReviewAction, ReviewKind, ReviewStatus, ReviewTask
from mpi.domain.scores import ComparisonOutcome


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores none of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")
MPI_ID = String(16)
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


def _demographic_columns() -> list[Column[Any]]:
    return [Column(name, String(MAX_VALUE_LENGTH), nullable=True) for name in DEMOGRAPHIC_FIELDS]


source_record = Table(
    "source_record",
    metadata,
    Column("record_id", Id, primary_key=True, autoincrement=True),
    Column("authority", String(MAX_AUTHORITY_LENGTH), nullable=False),
    Column("local_id", String(MAX_VALUE_LENGTH), nullable=False),
    Column("version", Integer, nullable=False),
    *_demographic_columns(),
    Column("matricule", String(10), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),  # who sent the current version
    UniqueConstraint("authority", "local_id"),
)

# Superseded versions only: the current one is the source_record row itself, so a record
# that never changes (most of them) is written once.
record_version = Table(
    "record_version",
    metadata,
    Column("record_id", Id, ForeignKey("source_record.record_id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    *_demographic_columns(),
    Column("matricule", String(10), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
)

record_identifier = Table(
    "record_identifier",
    metadata,
    Column("identifier_id", Id, primary_key=True, autoincrement=True),
    Column("record_id", Id, ForeignKey("source_record.record_id"), nullable=False, index=True),
    Column("system", String(MAX_AUTHORITY_LENGTH), nullable=False),
    Column("value", String(MAX_VALUE_LENGTH), nullable=False),
    Column("raw", String(MAX_VALUE_LENGTH), nullable=False),
    Column("status", String(10), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("assigned_at", UTCDateTime, nullable=False),
    Column("replaced_by", Id, ForeignKey("record_identifier.identifier_id"), nullable=True),
    Index(None, "system", "value", "active"),
)

blocking_key = Table(
    "blocking_key",
    metadata,
    Column("key", String(MAX_BLOCKING_KEY_LENGTH), primary_key=True),
    Column("record_id", Id, ForeignKey("source_record.record_id"), primary_key=True, index=True),
)

# The matcher's standardised form of a record's current version (revision 0004): written
# with its blocking keys, read with the record when it is a candidate, so candidates are not
# standardised again. A form of an older version is never read (the version must match).
record_form = Table(
    "record_form",
    metadata,
    Column("record_id", Id, ForeignKey("source_record.record_id"), primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    Column("form", Text, nullable=False),
)

person = Table(
    "person",
    metadata,
    Column("mpi_id", MPI_ID, primary_key=True),
    Column("status", String(10), nullable=False),
    Column("trust", String(12), nullable=False),
    Column("document_checked", Boolean, nullable=False),
    Column("replaced_by", MPI_ID, ForeignKey("person.mpi_id"), nullable=True, index=True),
    Column("flags", String(200), nullable=False),
    Column("golden", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

link = Table(
    "link",
    metadata,
    Column("record_id", Id, ForeignKey("source_record.record_id"), primary_key=True),
    Column("mpi_id", MPI_ID, ForeignKey("person.mpi_id"), nullable=False, index=True),
    Column("provenance", String(10), nullable=False),
    Column("score", Double, nullable=True),
    Column("model_version", String(100), nullable=True),
    Column("linked_at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=True),
)

review_task = Table(
    "review_task",
    metadata,
    Column("task_id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(30), nullable=False),
    Column("status", String(10), nullable=False),
    Column("record_id", Id, ForeignKey("source_record.record_id"), nullable=False),
    Column("mpi_id", MPI_ID, ForeignKey("person.mpi_id"), nullable=False, index=True),
    Column("candidate_mpi_id", MPI_ID, ForeignKey("person.mpi_id"), nullable=False, index=True),
    Column("candidate_record_id", Id, ForeignKey("source_record.record_id"), nullable=True),
    Column("match_probability", Double, nullable=False),
    Column("match_weight", Double, nullable=False),
    Column("comparisons", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolution", String(20), nullable=True),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("resolved_by", String(200), nullable=True),
    Column("note", Text, nullable=True),
    Index(None, "status", "task_id"),
)

not_duplicate = Table(
    "not_duplicate",
    metadata,
    Column("person_a", MPI_ID, ForeignKey("person.mpi_id"), primary_key=True),
    Column("person_b", MPI_ID, ForeignKey("person.mpi_id"), primary_key=True, index=True),
    Column("decided_at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=True),
)

event = Table(
    "event",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=True),
    Column("subjects", Text, nullable=False),  # the MPI ids concerned, comma-separated, in order
    Column("changes", Text, nullable=False),
)

event_subject = Table(
    "event_subject",
    metadata,
    Column("mpi_id", MPI_ID, primary_key=True),
    Column("seq", Id, ForeignKey("event.seq"), primary_key=True),
)


# -- HL7 v2 delivery (revision 0002) ----------------------------------------------------
# A received message's answer, by (MSH-3, MSH-4, MSH-10) as sent: written in the same
# transaction as the change the message made, so a resent message gets the same answer.
message_receipt = Table(
    "message_receipt",
    metadata,
    Column("sending_application", String(MAX_SENDER_LENGTH), primary_key=True),
    Column("sending_facility", String(MAX_SENDER_LENGTH), primary_key=True),
    Column("control_id", String(MAX_CONTROL_ID_LENGTH), primary_key=True),
    Column("response", LargeBinary, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Index(None, "received_at"),  # revision 0007: receipts past their retention are deleted
)

# Messages to send (PIX update notifications), kept until the receiver acknowledged them.
outbound_message = Table(
    "outbound_message",
    metadata,
    Column("message_id", Id, primary_key=True, autoincrement=True),
    Column("consumer", String(100), nullable=False),
    Column("mpi_id", MPI_ID, nullable=False),
    Column("event_seq", Id, nullable=False),
    Column("identifiers", Text, nullable=False),  # what it announces: equal text, nothing new to send
    Column("payload", LargeBinary, nullable=False),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Index(None, "status", "message_id"),
    Index(None, "consumer", "mpi_id", "message_id"),
    Index(None, "consumer", "status", "message_id"),  # revision 0008: a consumer's next message
)

# How far each reader of the event log (the notification collector) has got.
event_cursor = Table(
    "event_cursor",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("last_seq", Id, nullable=False),
)

# Source records whose local id their source retired by merging it into another (ADT^A40).
superseded_record = Table(
    "superseded_record",
    metadata,
    Column("record_id", Id, ForeignKey("source_record.record_id"), primary_key=True),
    Column("replaced_by", Id, ForeignKey("source_record.record_id"), nullable=False, index=True),
    Column("superseded_at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
)

# -- the access audit trail (revision 0005) -----------------------------------------------
# Reads of patient data: who, how, what was asked and how many answers; append-only.
access_log = Table(
    "access_log",
    metadata,
    Column("access_id", Id, primary_key=True, autoincrement=True),
    Column("accessed_at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("action", String(40), nullable=False),
    Column("criteria", Text, nullable=True),
    Column("results", Integer, nullable=False),
    Index(None, "actor", "access_id"),
)

# The persons an access showed: "who has looked at this patient" reads it by person.
access_subject = Table(
    "access_subject",
    metadata,
    Column("mpi_id", MPI_ID, primary_key=True),
    Column("access_id", Id, ForeignKey("access_log.access_id"), primary_key=True),
)

# -- continuations of paged queries (revision 0006) ---------------------------------------
# The rest of a PDQ answer longer than one page, until its consumer asks for the next page
# (DSC) or cancels (QCN^J01): here rather than in one server process, which the consumer's
# next connection may not reach. Rows past their time to live are deleted as new ones come.
query_continuation = Table(
    "query_continuation",
    metadata,
    Column("token", String(32), primary_key=True),
    Column("sending_application", Text, nullable=False),
    Column("sending_facility", Text, nullable=False),
    Column("query_tag", Text, nullable=False),
    Column("query", Text, nullable=False),  # the QPD segment as received
    Column("remaining", Text, nullable=False),  # JSON: [[mpi_id, confidence], ...] not yet shown
    Column("total", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, index=True),
    # The request (MSH-10) that took the next page (revision 0009): kept until it expires, so
    # that request, resent because its answer was lost, gets that page again.
    Column("taken_by", String(MAX_CONTROL_ID_LENGTH), nullable=True),
)


# -- conversions ------------------------------------------------------------------------
def demographics_of(row: Mapping[Any, Any]) -> Demographics:
    return Demographics(**{name: row[name] for name in DEMOGRAPHIC_FIELDS})


def source_record_of(row: Mapping[Any, Any]) -> SourceRecord:
    return SourceRecord(
        record_id=row["record_id"],
        key=RecordKey(row["authority"], row["local_id"]),
        version=row["version"],
        demographics=demographics_of(row),
        matricule=MatriculeFlag(row["matricule"]),
        updated_at=row["updated_at"],
    )


def current_version_of(row: Mapping[Any, Any]) -> RecordVersion:
    """The current version of a record, from its source_record row."""
    return RecordVersion(
        record_id=row["record_id"],
        version=row["version"],
        demographics=demographics_of(row),
        matricule=MatriculeFlag(row["matricule"]),
        recorded_at=row["updated_at"],
        actor=row["actor"],
    )


def record_version_of(row: Mapping[Any, Any]) -> RecordVersion:
    return RecordVersion(
        record_id=row["record_id"],
        version=row["version"],
        demographics=demographics_of(row),
        matricule=MatriculeFlag(row["matricule"]),
        recorded_at=row["recorded_at"],
        actor=row["actor"],
    )


def identifier_values(identifier: RecordIdentifier) -> dict[str, Any]:
    return {
        "record_id": identifier.record_id,
        "system": identifier.system,
        "value": identifier.value,
        "raw": identifier.raw,
        "status": identifier.status.value,
        "active": identifier.active,
        "assigned_at": identifier.assigned_at,
        "replaced_by": identifier.replaced_by,
    }


def identifier_of(row: Mapping[Any, Any]) -> RecordIdentifier:
    return RecordIdentifier(
        identifier_id=row["identifier_id"],
        record_id=row["record_id"],
        system=row["system"],
        value=row["value"],
        raw=row["raw"],
        status=MatriculeFlag(row["status"]),
        active=row["active"],
        assigned_at=row["assigned_at"],
        replaced_by=row["replaced_by"],
    )


def person_values(value: Person) -> dict[str, Any]:
    return {
        "mpi_id": value.mpi_id,
        "status": value.status.value,
        "trust": value.trust.value,
        "document_checked": value.document_checked,
        "replaced_by": value.replaced_by,
        "flags": ",".join(sorted(flag.value for flag in value.flags)),
        "golden": json.dumps(value.golden.as_dict(), separators=(",", ":"), ensure_ascii=False),
        "created_at": value.created_at,
    }


def person_of(row: Mapping[Any, Any]) -> Person:
    return Person(
        mpi_id=row["mpi_id"],
        status=PersonStatus(row["status"]),
        trust=TrustStatus(row["trust"]),
        golden=Demographics(**json.loads(row["golden"])),
        created_at=row["created_at"],
        replaced_by=row["replaced_by"],
        document_checked=row["document_checked"],
        flags=frozenset(PersonFlag(f) for f in row["flags"].split(",") if f),
    )


def link_values(value: Link) -> dict[str, Any]:
    return {
        "record_id": value.record_id,
        "mpi_id": value.mpi_id,
        "provenance": value.provenance.value,
        "score": value.score,
        "model_version": value.model_version,
        "linked_at": value.linked_at,
        "actor": value.actor,
        "reason": value.reason,
    }


def link_of(row: Mapping[Any, Any]) -> Link:
    return Link(
        record_id=row["record_id"],
        mpi_id=row["mpi_id"],
        provenance=LinkProvenance(row["provenance"]),
        linked_at=row["linked_at"],
        actor=row["actor"],
        score=row["score"],
        model_version=row["model_version"],
        reason=row["reason"],
    )


def review_values(task: ReviewTask) -> dict[str, Any]:
    return {
        "kind": task.kind.value,
        "status": task.status.value,
        "record_id": task.record_id,
        "mpi_id": task.mpi_id,
        "candidate_mpi_id": task.candidate_mpi_id,
        "candidate_record_id": task.candidate_record_id,
        "match_probability": task.match_probability,
        "match_weight": task.match_weight,
        "comparisons": json.dumps(
            [[c.name, c.level, c.weight] for c in task.comparisons], separators=(",", ":"), ensure_ascii=False
        ),
        "created_at": task.created_at,
        "resolution": task.resolution.value if task.resolution is not None else None,
        "resolved_at": task.resolved_at,
        "resolved_by": task.resolved_by,
        "note": task.note,
    }


def review_of(row: Mapping[Any, Any]) -> ReviewTask:
    return ReviewTask(
        task_id=row["task_id"],
        kind=ReviewKind(row["kind"]),
        status=ReviewStatus(row["status"]),
        record_id=row["record_id"],
        mpi_id=row["mpi_id"],
        candidate_mpi_id=row["candidate_mpi_id"],
        candidate_record_id=row["candidate_record_id"],
        match_probability=row["match_probability"],
        match_weight=row["match_weight"],
        comparisons=tuple(ComparisonOutcome(n, lv, w) for n, lv, w in json.loads(row["comparisons"])),
        created_at=row["created_at"],
        resolution=ReviewAction(row["resolution"]) if row["resolution"] is not None else None,
        resolved_at=row["resolved_at"],
        resolved_by=row["resolved_by"],
        note=row["note"],
    )


def not_duplicate_of(row: Mapping[Any, Any]) -> NotDuplicate:
    return NotDuplicate(
        pair=(row["person_a"], row["person_b"]),
        decided_at=row["decided_at"],
        actor=row["actor"],
        reason=row["reason"],
    )
