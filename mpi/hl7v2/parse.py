"""Bytes to :class:`~mpi.hl7v2.message.Message` (ER7, the pipe-and-hat encoding).

What this module decides, and refuses with ``HL7Error`` and a table-0357 code:

* the character set, from MSH-18 (HL7 table 0211). Empty means UTF-8, with a
  Latin-1 fallback that the message records (``charset_fallback``), because
  undeclared 8-bit feeds are common. Bytes invalid in a *declared* set are refused
  (102, located at the segment and field holding the bad byte);
* the delimiters, from MSH-1 and MSH-2 (101/102 at ``MSH^1^1`` / ``MSH^1^2``);
* segments: ``\\r``, ``\\r\\n`` and ``\\n`` all end a segment, blank lines are
  skipped, a segment name is three characters ``[A-Z][A-Z0-9]{2}`` (100);
* the header fields an answer depends on: MSH-9 type, MSH-10 control id, MSH-11
  processing id and MSH-12 version must be present (101 at ``MSH^1^<field>``), and
  the fields that identify a resent message (MSH-3, MSH-4, MSH-10) no longer than
  their data types allow (102);
* a NUL byte anywhere (102, located at its field).

Header problems set ``reject=True`` (answer AR, as HL7 original mode prescribes
for a header the receiver cannot accept); problems in the body do not (AE).
"""

from __future__ import annotations

import re
from functools import lru_cache

from mpi.errors import HL7Error
from mpi.hl7v2.codes import ErrorCode
from mpi.hl7v2.delimiters import NULL_MARKER, Delimiters
from mpi.hl7v2.message import Message, Segment

_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}")
_UTF8_BOM = b"\xef\xbb\xbf"
_DEFAULT_CODEC = "utf-8"
_FALLBACK_CODEC = "latin-1"

_CHARSET_CODECS: dict[str, str] = {
    "ASCII": "ascii",
    "UNICODE UTF-8": "utf-8",
    "8859/1": "latin-1",
    **{f"8859/{part}": f"iso8859-{part}" for part in (2, 3, 4, 5, 6, 7, 8, 9, 15)},
}

_REQUIRED_HEADER_FIELDS = (
    (9, "message type"),
    (10, "message control id"),
    (11, "processing id"),
    (12, "version id"),
)


# The fields that identify a resent message, as sent: MSH-10 is an ST of at most 199 characters
# (HL7 v2.7; 20 in v2.5), MSH-3 and MSH-4 an HD of at most 20 + 199 + 6 and two separators.
_KEY_FIELD_LIMITS = (
    (3, "sending application", 227),
    (4, "sending facility", 227),
    (10, "message control id", 199),
)


def codec_for_charset(charset: str) -> str | None:
    """The Python codec for an MSH-18 value; ``None`` when nothing is declared.

    Raises ``HL7Error`` 103 (table value not found) at ``MSH^1^18`` for a character
    set this parser does not read.
    """
    name = charset.strip().upper()
    if not name:
        return None
    codec = _CHARSET_CODECS.get(name)
    if codec is None:
        supported = ", ".join(sorted(_CHARSET_CODECS))
        raise HL7Error(
            f"MSH-18 character set {charset.strip()!r} is not supported (supported: {supported})",
            code=ErrorCode.TABLE_VALUE_NOT_FOUND,
            location="MSH^1^18",
            reject=True,
        )
    return codec


def parse_message(data: bytes) -> Message:
    """Parse one message (the payload of an MLLP frame). Raises only ``HL7Error``."""
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    # Some senders put a line break between the MLLP start block and MSH.
    data = data.lstrip(b"\r\n")
    header_line = data[: _end_of_first_line(data)]
    if not header_line.startswith(b"MSH"):
        raise HL7Error(
            "the message does not start with an MSH segment",
            code=ErrorCode.SEGMENT_SEQUENCE_ERROR,
            location="MSH^1",
            reject=True,
        )
    separator = header_line[3:4]
    header_parts = header_line.split(separator) if separator else [header_line]
    encoding_characters = header_parts[1] if len(header_parts) > 1 else b""
    delimiters = _delimiters(separator.decode("latin-1"), encoding_characters.decode("latin-1"))

    declared_charset = _declared_charset(header_parts, delimiters)
    declared_codec = codec_for_charset(declared_charset)
    text, codec, fallback = _decode(data, declared_codec, declared_charset, separator)
    _refuse_nul(data, separator)

    field_separator = delimiters.field
    segments: list[Segment] = []
    for line in text.replace("\r\n", "\r").replace("\n", "\r").split("\r"):
        if not line or line.isspace():
            continue
        fields = line.split(field_separator)
        if not segments:
            # MSH-1 is the separator itself: put it back so MSH fields keep their numbers.
            fields.insert(1, field_separator)
        else:
            _check_segment_name(fields[0], len(segments) + 1)
        segments.append(Segment(fields, line, delimiters, codec))

    header = segments[0]
    for number, label in _REQUIRED_HEADER_FIELDS:
        if header.raw_value(number, 1, 1).strip() in ("", NULL_MARKER):
            raise HL7Error(
                f"MSH-{number} ({label}) is missing",
                code=ErrorCode.REQUIRED_FIELD_MISSING,
                location=f"MSH^1^{number}",
                reject=True,
            )
    for number, label, limit in _KEY_FIELD_LIMITS:
        if len(header.raw_value(number).strip()) > limit:
            raise HL7Error(
                f"MSH-{number} ({label}) is longer than {limit} characters",
                code=ErrorCode.DATA_TYPE_ERROR,
                location=f"MSH^1^{number}",
                reject=True,
            )
    return Message(tuple(segments), delimiters, codec, charset_fallback=fallback)


def _refuse_nul(data: bytes, separator: bytes) -> None:
    # A NUL is no character of any text an HL7 field holds (and PostgreSQL cannot store one).
    # Every character set read here is ASCII-compatible: the byte is the character.
    offset = data.find(b"\x00")
    if offset < 0:
        return
    location = _location_of_offset(data, offset, separator)
    raise HL7Error(
        f"byte 0x00 (NUL) at offset {offset}",
        code=ErrorCode.DATA_TYPE_ERROR,
        location=location,
        reject=not location or location.startswith("MSH^"),
    )


@lru_cache(maxsize=64)
def _delimiters(field_separator: str, encoding_characters: str) -> Delimiters:
    # A feed uses one set of delimiters for every message: validate it once.
    return Delimiters.from_header(field_separator, encoding_characters)


def _end_of_first_line(data: bytes) -> int:
    ends = [position for position in (data.find(b"\r"), data.find(b"\n")) if position >= 0]
    return min(ends) if ends else len(data)


def _declared_charset(header_parts: list[bytes], delimiters: Delimiters) -> str:
    # header_parts[0] is "MSH" and header_parts[1] is MSH-2, so MSH-n is header_parts[n - 1].
    if len(header_parts) < 18:
        return ""
    first_repetition = header_parts[17].split(delimiters.repetition.encode("ascii"))[0]
    return first_repetition.decode("ascii", errors="replace")


def _decode(data: bytes, codec: str | None, declared_charset: str, separator: bytes) -> tuple[str, str, bool]:
    if codec is None:
        try:
            return data.decode(_DEFAULT_CODEC), _DEFAULT_CODEC, False
        except UnicodeDecodeError:
            return data.decode(_FALLBACK_CODEC), _FALLBACK_CODEC, True
    try:
        return data.decode(codec), codec, False
    except UnicodeDecodeError as error:
        raise HL7Error(
            f"byte 0x{data[error.start]:02X} at offset {error.start} is not valid in the declared "
            f"character set {declared_charset.strip()!r}",
            code=ErrorCode.DATA_TYPE_ERROR,
            location=_location_of_offset(data, error.start, separator),
        ) from None


def _location_of_offset(data: bytes, offset: int, separator: bytes) -> str:
    """The ERL (``PID^1^5``) of the field holding byte ``offset``, or ``""``."""
    lines = data[:offset].replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
    current = lines[-1]
    name = current.split(separator)[0]
    if not _SEGMENT_NAME.fullmatch(name.decode("latin-1")):
        return ""
    occurrence = 1 + sum(1 for line in lines[:-1] if line.split(separator)[0] == name)
    field = current.count(separator) + (1 if name == b"MSH" else 0)
    if field == 0:
        return f"{name.decode('ascii')}^{occurrence}"
    return f"{name.decode('ascii')}^{occurrence}^{field}"


def _check_segment_name(name: str, position: int) -> None:
    if name == "MSH":
        raise HL7Error(
            f"segment {position} is a second MSH; batches (BHS/FHS) are not accepted",
            code=ErrorCode.SEGMENT_SEQUENCE_ERROR,
            location="MSH^2",
        )
    if _SEGMENT_NAME.fullmatch(name) is None:
        raise HL7Error(
            f"segment {position} has no valid segment name (three characters [A-Z][A-Z0-9]{{2}})",
            code=ErrorCode.SEGMENT_SEQUENCE_ERROR,
        )
