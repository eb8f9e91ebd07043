"""What at-least-once messaging keeps in the store, both ways.

In: a :class:`Receipt` holds the answer given to a received message, keyed by
what identifies a resend (for HL7 v2: MSH-3, MSH-4 and MSH-10 as sent). It is
written in the transaction that applied the message, so a resent message is
answered from it and never applied twice.

Out: an :class:`OutboundMessage` is a notification waiting for its receiver's
acknowledgement; it survives restarts and is retried with back-off.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class MessageKey:
    """What identifies one message of one sender, however often it is resent."""

    sending_application: str
    sending_facility: str
    control_id: str


@dataclass(frozen=True)
class Receipt:
    key: MessageKey
    response: bytes
    received_at: datetime


class OutboundStatus(enum.StrEnum):
    PENDING = "pending"  # not yet acknowledged: (re)tried at next_attempt_at
    DELIVERED = "delivered"  # acknowledged by the receiver
    FAILED = "failed"  # refused by the receiver as erroneous: resending it unchanged cannot help


@dataclass(frozen=True)
class OutboundMessage:
    message_id: int  # assigned by the store; 0 before
    consumer: str
    mpi_id: str
    event_seq: int  # the event whose change it reports
    identifiers: str  # what it announces, as canonical text: equal text means nothing new to announce
    payload: bytes
    status: OutboundStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None = None
    last_error: str | None = None
