"""HL7 table 0357 (message error condition codes), as used in ERR-3 and ERR-1.

Codes are strings because that is how they travel; ``ErrorCode`` is a ``StrEnum``
so ``HL7Error(code=ErrorCode.REQUIRED_FIELD_MISSING)`` and ``error.code == "101"``
both work.
"""

from __future__ import annotations

from enum import StrEnum

ERROR_CODE_TABLE = "HL70357"
"""The coding system name put beside a table-0357 code in ERR-3."""


class ErrorCode(StrEnum):
    """HL7 table 0357. 1xx: the message is malformed; 2xx: it is well formed but refused."""

    MESSAGE_ACCEPTED = "0"
    SEGMENT_SEQUENCE_ERROR = "100"
    REQUIRED_FIELD_MISSING = "101"
    DATA_TYPE_ERROR = "102"
    TABLE_VALUE_NOT_FOUND = "103"
    UNSUPPORTED_MESSAGE_TYPE = "200"
    UNSUPPORTED_EVENT_CODE = "201"
    UNSUPPORTED_PROCESSING_ID = "202"
    UNSUPPORTED_VERSION_ID = "203"
    UNKNOWN_KEY_IDENTIFIER = "204"
    DUPLICATE_KEY_IDENTIFIER = "205"
    APPLICATION_RECORD_LOCKED = "206"
    APPLICATION_INTERNAL_ERROR = "207"

    @property
    def text(self) -> str:
        """The table's display text, as sent in ERR-3.2 (2.5+) or ERR-1.4.2 (2.3.1)."""
        return _TEXTS[self]


_TEXTS: dict[ErrorCode, str] = {
    ErrorCode.MESSAGE_ACCEPTED: "Message Accepted",
    ErrorCode.SEGMENT_SEQUENCE_ERROR: "Segment Sequence Error",
    ErrorCode.REQUIRED_FIELD_MISSING: "Required Field Missing",
    ErrorCode.DATA_TYPE_ERROR: "Data Type Error",
    ErrorCode.TABLE_VALUE_NOT_FOUND: "Table Value Not Found",
    ErrorCode.UNSUPPORTED_MESSAGE_TYPE: "Unsupported Message Type",
    ErrorCode.UNSUPPORTED_EVENT_CODE: "Unsupported Event Code",
    ErrorCode.UNSUPPORTED_PROCESSING_ID: "Unsupported Processing ID",
    ErrorCode.UNSUPPORTED_VERSION_ID: "Unsupported Version ID",
    ErrorCode.UNKNOWN_KEY_IDENTIFIER: "Unknown Key Identifier",
    ErrorCode.DUPLICATE_KEY_IDENTIFIER: "Duplicate Key Identifier",
    ErrorCode.APPLICATION_RECORD_LOCKED: "Application Record Locked",
    ErrorCode.APPLICATION_INTERNAL_ERROR: "Application Internal Error",
}
