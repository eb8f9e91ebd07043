"""Answers to received messages: acknowledgements (original and enhanced mode) and query responses.

Every answer is written with the delimiters and the character set of the
message it answers, with the MPI as sender (or, for PDQ, the data source asked
for in MSH-5) and the incoming sender as receiver.

Acknowledgement modes (HL7 v2.5 chapter 2.9, IHE ITI TF-2 Appendix C):
original mode (MSH-15 and MSH-16 empty) answers AA/AE/AR. Enhanced mode
answers a commit acknowledgement CA/CE/CR when MSH-15 asks for one (``AL``
always, ``ER`` on error, ``SU`` on success, ``NE`` never); the MPI commits
before it answers, so the commit acknowledgement also tells the outcome. When
only MSH-16 asks, the application acknowledgement goes back on the same
connection, the only route the MPI has to the sender.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from mpi.hl7v2.ack import AckCode, ErrorDetail, build_ack, error_segments
from mpi.hl7v2.encode import Components, Raw, encode_message, encode_segment
from mpi.hl7v2.encode import format_timestamp as _timestamp
from mpi.hl7v2.header import HierarchicDesignator
from mpi.hl7v2.message import Message

_COMMIT_CODES: dict[str, AckCode] = {"AA": "CA", "AE": "CE", "AR": "CR"}


def new_control_id() -> str:
    """A fresh MSH-10: 20 characters, the 2.5 maximum."""
    return secrets.token_hex(10)


def _wants(condition: str, success: bool) -> bool:
    match condition.strip().upper():
        case "AL":
            return True
        case "ER":
            return not success
        case "SU":
            return success
        case _:
            return False


def is_enhanced_mode(message: Message) -> bool:
    return bool(message.msh.accept_ack_type.strip() or message.msh.application_ack_type.strip())


def acknowledge(
    message: Message,
    code: AckCode,
    errors: Sequence[ErrorDetail],
    *,
    application: str,
    facility: str,
    timestamp: datetime,
) -> bytes:
    """The acknowledgement the sender asked for, as bytes; ``b""`` when it asked for none.

    ``code`` is the application outcome (AA, AE or AR).
    """
    success = code == "AA"
    if is_enhanced_mode(message):
        if _wants(message.msh.accept_ack_type, success):
            code = _COMMIT_CODES[code]
        elif not _wants(message.msh.application_ack_type, success):
            return b""
    return build_ack(
        message,
        code,
        errors,
        sending_app=application,
        sending_facility=facility,
        control_id=new_control_id(),
        timestamp=timestamp,
    )


def response(
    message: Message,
    *,
    message_type: tuple[str, str, str],
    sender: HierarchicDesignator,
    facility: str | HierarchicDesignator,
    code: AckCode,
    errors: Sequence[ErrorDetail],
    body: Sequence[str],
    timestamp: datetime,
) -> bytes:
    """A query response: MSH, MSA, ERR..., then ``body`` (segments already encoded)."""
    delimiters = message.delimiters
    raw = message.msh.segment.raw_value
    header = encode_segment(
        "MSH",
        {
            3: Components(*sender),
            4: Components(*facility) if isinstance(facility, HierarchicDesignator) else facility,
            5: Raw(raw(3)),
            6: Raw(raw(4)),
            7: _timestamp(timestamp),
            9: Components(*message_type),
            10: new_control_id(),
            11: Raw(raw(11)),
            12: Raw(raw(12)),
            18: Raw(raw(18)),
        },
        delimiters,
    )
    acknowledgement = encode_segment("MSA", {1: code, 2: Raw(raw(10))}, delimiters)
    segments = [header, acknowledgement, *error_segments(errors, message.msh.version, delimiters), *body]
    return encode_message(segments, message.codec, errors="fold")
