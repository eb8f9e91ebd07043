"""What the registry can store: the widths of its text columns, and the one character it cannot.

Adapters check what they receive against these limits, so a sender hears which value is
refused and why (an HL7 field, a file's row and column) instead of a database error; the
service checks again, for any caller. PostgreSQL text cannot hold a NUL character at all.
"""

from __future__ import annotations

from collections.abc import Mapping

from mpi.domain.records import Demographics, RecordKey
from mpi.errors import InvalidValue

MAX_VALUE_LENGTH = 200  # a demographic field, a local id, an identifier's value
MAX_AUTHORITY_LENGTH = 100  # an assigning authority, an identifier's system
MAX_BLOCKING_KEY_LENGTH = 300
MAX_SENDER_LENGTH = 250  # MSH-3 and MSH-4 as sent: a resent message's key
MAX_CONTROL_ID_LENGTH = 200  # MSH-10


def problem_with(value: str, limit: int) -> str | None:
    """Why ``value`` cannot be stored in a column ``limit`` characters wide; ``None`` if it can."""
    if "\x00" in value:
        return "contains a NUL character"
    if len(value) > limit:
        return f"is {len(value)} characters long, more than the {limit} this MPI stores"
    return None


def check_storable(values: Mapping[str, str | None], limit: int = MAX_VALUE_LENGTH) -> None:
    """``InvalidValue`` naming the first of ``values`` (by field name) that cannot be stored."""
    for name, value in values.items():
        if value is not None and (problem := problem_with(value, limit)) is not None:
            raise InvalidValue(name, f"{name} {problem}")


def check_record(key: RecordKey, demographics: Demographics | None = None) -> None:
    """``InvalidValue`` if the record's key or demographics cannot be stored."""
    check_storable({"source": key.authority}, MAX_AUTHORITY_LENGTH)
    check_storable({"local_id": key.local_id})
    if demographics is not None:
        check_storable(demographics.as_dict())
