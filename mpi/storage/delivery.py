"""Rows of at-least-once messaging and of superseded records, for :class:`~mpi.storage.store.SqlUnitOfWork`.

Kept apart from the registry's own tables: receipts of received messages, the
outbox of notifications, event-log cursors, and records a source merged away
(with the read that leaves them out of a person's cross-references).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.engine import RowMapping

from mpi.domain.persons import Person
from mpi.domain.records import RecordKey, SourceRecord
from mpi.service.delivery import MessageKey, OutboundMessage, OutboundStatus, Receipt
from mpi.storage import statements as q
from mpi.storage import tables as t
from mpi.storage.direct import DirectStatements

_IN_USE = ~exists().where(t.superseded_record.c.record_id == t.source_record.c.record_id)
_OWNER_OF_RECORD = (
    select(t.person)
    .join(t.link, t.link.c.mpi_id == t.person.c.mpi_id)
    .join(t.source_record, t.source_record.c.record_id == t.link.c.record_id)
    .where(
        t.source_record.c.authority == bindparam("authority"),
        t.source_record.c.local_id == bindparam("local_id"),
        _IN_USE,
    )
)
_RECORDS_IN_USE_OF_PERSON = (
    select(t.source_record)
    .join(t.link, t.link.c.record_id == t.source_record.c.record_id)
    .where(t.link.c.mpi_id == bindparam("mpi_id"), _IN_USE)
    .order_by(t.source_record.c.record_id)
)


class DeliveryRows:
    """The delivery part of the unit of work; the class using it provides the connection ``_c``."""

    _c: Connection
    _direct: DirectStatements

    # -- superseded records -------------------------------------------------------------
    def supersede_record(self, record_id: int, replaced_by: int, at: datetime, actor: str) -> None:
        values = {"record_id": record_id, "replaced_by": replaced_by, "superseded_at": at, "actor": actor}
        table = t.superseded_record
        if self._c.execute(update(table).where(table.c.record_id == record_id), values).rowcount == 0:
            self._c.execute(insert(table), values)

    def superseded_records(self, record_ids: Sequence[int]) -> dict[int, int]:
        wanted = sorted(set(record_ids))
        found: dict[int, int] = {}
        for chunk in q.chunks(wanted):
            rows = self._c.execute(q.SUPERSEDED_RECORDS, {"ids": chunk}).mappings().all()
            found.update((row["record_id"], row["replaced_by"]) for row in rows)
        return found

    def person_by_record(self, key: RecordKey) -> tuple[Person, list[SourceRecord]] | None:
        # Two statements where the generic reads take six: a PIX query is little else.
        params = {"authority": key.authority, "local_id": key.local_id}
        owner = self._direct.execute(_OWNER_OF_RECORD, params).mappings().first()
        if owner is None:
            return None
        rows = self._direct.execute(_RECORDS_IN_USE_OF_PERSON, {"mpi_id": owner["mpi_id"]}).mappings().all()
        return t.person_of(owner), [t.source_record_of(row) for row in rows]

    # -- receipts and outbox ----------------------------------------------------------
    def find_receipt(self, key: MessageKey) -> Receipt | None:
        row = self._direct.execute(q.RECEIPT, _receipt_key(key)).mappings().first()
        return None if row is None else Receipt(key, bytes(row["response"]), row["received_at"])

    def add_receipt(self, receipt: Receipt) -> None:
        self._direct.execute(
            q.INSERT_RECEIPT,
            {**_receipt_key(receipt.key), "response": receipt.response, "received_at": receipt.received_at},
        )

    def last_event_seq(self) -> int:
        return int(self._c.execute(select(func.coalesce(func.max(t.event.c.seq), 0))).scalar_one())

    def event_cursor(self, name: str) -> int | None:
        seq = self._c.execute(q.EVENT_CURSOR, {"name": name}).scalar_one_or_none()
        return None if seq is None else int(seq)

    def set_event_cursor(self, name: str, seq: int) -> None:
        if self._c.execute(q.UPDATE_EVENT_CURSOR, {"b_name": name, "last_seq": seq}).rowcount == 0:
            self._c.execute(insert(t.event_cursor), {"name": name, "last_seq": seq})

    def add_outbound(self, messages: Sequence[OutboundMessage]) -> None:
        if messages:
            self._c.execute(insert(t.outbound_message), [_outbound_values(m) for m in messages])

    def forget_receipts(self, before: datetime, limit: int) -> int:
        # Two range reads of the received_at index: the time of the limit-th oldest, then the
        # rows up to it. (A delete by key IN the oldest keys was a scan of the whole table.)
        received_at = t.message_receipt.c.received_at
        last = self._c.execute(
            select(received_at).where(received_at < before).order_by(received_at).offset(limit - 1).limit(1)
        ).scalar_one_or_none()
        up_to = received_at < before if last is None else received_at <= last
        return int(self._c.execute(delete(t.message_receipt).where(up_to)).rowcount)

    def pending_outbound(self, limit: int) -> list[OutboundMessage]:
        rows = self._c.execute(q.PENDING_OUTBOUND, {"status": OutboundStatus.PENDING.value, "limit": limit})
        return [_outbound_of(row) for row in rows.mappings()]

    def pending_head(self, consumer: str) -> OutboundMessage | None:
        params = {"consumer": consumer, "status": OutboundStatus.PENDING.value}
        row = self._c.execute(q.PENDING_HEAD, params).mappings().first()
        return None if row is None else _outbound_of(row)

    def pending_heads(self) -> list[OutboundMessage]:
        rows = self._c.execute(q.PENDING_HEADS, {"status": OutboundStatus.PENDING.value})
        return [_outbound_of(row) for row in rows.mappings()]

    def last_announced(self, consumer: str, mpi_ids: Sequence[str]) -> dict[str, str]:
        wanted = sorted(set(mpi_ids))
        found: dict[str, str] = {}
        for chunk in q.chunks(wanted):
            params = {"consumer": consumer, "ids": chunk, "refused": OutboundStatus.FAILED.value}
            rows = self._c.execute(q.LAST_ANNOUNCED, params).mappings()
            found.update((row["mpi_id"], row["identifiers"]) for row in rows)
        return found

    def rename_record(self, record_id: int, key: RecordKey) -> None:
        self._c.execute(
            q.RENAME_RECORD, {"b_record_id": record_id, "authority": key.authority, "local_id": key.local_id}
        )

    def save_outbound(self, message: OutboundMessage) -> None:
        self._c.execute(q.UPDATE_OUTBOUND, {"b_message_id": message.message_id, **_outbound_values(message)})


def _receipt_key(key: MessageKey) -> dict[str, str]:
    return {
        "sending_application": key.sending_application,
        "sending_facility": key.sending_facility,
        "control_id": key.control_id,
    }


def _outbound_values(message: OutboundMessage) -> dict[str, Any]:
    return {
        "consumer": message.consumer,
        "mpi_id": message.mpi_id,
        "event_seq": message.event_seq,
        "identifiers": message.identifiers,
        "payload": message.payload,
        "status": message.status.value,
        "attempts": message.attempts,
        "created_at": message.created_at,
        "next_attempt_at": message.next_attempt_at,
        "delivered_at": message.delivered_at,
        "last_error": message.last_error,
    }


def _outbound_of(row: RowMapping) -> OutboundMessage:
    return OutboundMessage(
        message_id=row["message_id"],
        consumer=row["consumer"],
        mpi_id=row["mpi_id"],
        event_seq=row["event_seq"],
        identifiers=row["identifiers"],
        payload=bytes(row["payload"]),
        status=OutboundStatus(row["status"]),
        attempts=row["attempts"],
        created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"],
        delivered_at=row["delivered_at"],
        last_error=row["last_error"],
    )
