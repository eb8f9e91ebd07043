"""HL7 v2 protocol layer, sans I/O: MLLP framing, ER7 parsing and writing, acknowledgements.

No sockets, no event loop, no database: the MLLP listener and the translators
(message -> service command, result -> ACK/RSP) are built on top of this.
"""

from mpi.hl7v2.ack import AckCode, ErrorDetail, Severity, build_ack, build_ack_for_unparsable
from mpi.hl7v2.codes import ERROR_CODE_TABLE, ErrorCode
from mpi.hl7v2.delimiters import DEFAULT_DELIMITERS, NULL_MARKER, Delimiters
from mpi.hl7v2.encode import (
    NULL,
    Components,
    FieldValue,
    Null,
    Raw,
    Repetitions,
    Subcomponents,
    encode_field,
    encode_message,
    encode_segment,
    format_timestamp,
)
from mpi.hl7v2.framing import (
    Frame,
    FrameEvent,
    GarbageSkipped,
    MLLPDecoder,
    OversizedFrame,
    TruncatedFrame,
    frame,
)
from mpi.hl7v2.header import HierarchicDesignator, MessageHeader, MessageType
from mpi.hl7v2.location import Location
from mpi.hl7v2.message import Component, Field, Message, Repetition, Segment
from mpi.hl7v2.parse import codec_for_charset, parse_message

__all__ = [
    "DEFAULT_DELIMITERS",
    "ERROR_CODE_TABLE",
    "NULL",
    "NULL_MARKER",
    "AckCode",
    "Component",
    "Components",
    "Delimiters",
    "ErrorCode",
    "ErrorDetail",
    "Field",
    "FieldValue",
    "Frame",
    "FrameEvent",
    "GarbageSkipped",
    "HierarchicDesignator",
    "Location",
    "MLLPDecoder",
    "Message",
    "MessageHeader",
    "MessageType",
    "Null",
    "OversizedFrame",
    "Raw",
    "Repetition",
    "Repetitions",
    "Segment",
    "Severity",
    "Subcomponents",
    "TruncatedFrame",
    "build_ack",
    "build_ack_for_unparsable",
    "codec_for_charset",
    "encode_field",
    "encode_message",
    "encode_segment",
    "format_timestamp",
    "frame",
    "parse_message",
]
