"""General acknowledgements (ACK), per HL7 v2 chapter 2 and IHE ITI TF-2 Appendix C.

The ACK answers on the same connection and is shaped by the message it answers:

* MSH: our application/facility as sender, the incoming sender (MSH-3/MSH-4,
  echoed byte for byte) as receiver, MSH-9 ``ACK^<trigger>^ACK``, a new MSH-10,
  and MSH-11, MSH-12 and MSH-18 echoed, in the incoming delimiters and charset;
* MSA: MSA-1 the acknowledgement code, MSA-2 the incoming MSH-10. Details go in
  ERR, never in MSA-3;
* ERR, one per error, in the grammar of the version received: from 2.5, ERR-2
  location (``PID^1^3^1^1``), ERR-3 ``code^text^HL70357``, ERR-4 severity and
  ERR-7 diagnostic text; before 2.5, ERR-1 only (``PID^1^3^204&Unknown Key Identifier``).

:func:`build_ack_for_unparsable` answers bytes that did not parse, using whatever
can be salvaged from the MSH line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from mpi.errors import HL7Error
from mpi.hl7v2.codes import ERROR_CODE_TABLE, ErrorCode
from mpi.hl7v2.delimiters import DEFAULT_DELIMITERS, NULL_MARKER, Delimiters, is_valid_delimiter
from mpi.hl7v2.encode import (
    Components,
    FieldValue,
    Raw,
    Repetitions,
    Subcomponents,
    encode_message,
    encode_segment,
    format_timestamp,
)
from mpi.hl7v2.header import HierarchicDesignator
from mpi.hl7v2.location import Location
from mpi.hl7v2.message import Message

AckCode = Literal["AA", "AE", "AR", "CA", "CE", "CR"]
"""HL7 table 0008: application (A*) and commit (C*) accept, error, reject."""

Severity = Literal["E", "W", "I"]
"""HL7 table 0516: error, warning, information."""

_ACK_CODES = frozenset(get_args(AckCode))
_FIRST_VERSION_WITH_ERR_LOCATION = (2, 5)
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One problem to report in an ERR segment."""

    code: ErrorCode
    location: Location | None = None
    severity: Severity = "E"
    diagnostic: str = ""
    """Free text for the sender's support staff (ERR-7, 2.5+ only); no patient data."""

    def __post_init__(self) -> None:
        # Accept a bare "204" from callers that hold codes as text; refuse codes
        # outside table 0357 here rather than while an ACK is being written.
        object.__setattr__(self, "code", ErrorCode(self.code))
        if self.severity not in get_args(Severity):
            raise ValueError(f"severity must be one of {get_args(Severity)}, got {self.severity!r}")

    @classmethod
    def from_error(cls, error: HL7Error, severity: Severity = "E") -> ErrorDetail:
        """The detail of an ``HL7Error``; an unknown code becomes 207, an unreadable location none."""
        diagnostic = str(error)
        try:
            code = ErrorCode(error.code)
        except ValueError:
            code = ErrorCode.APPLICATION_INTERNAL_ERROR
            diagnostic = f"{diagnostic} (code {error.code!r})"
        try:
            location = Location.from_erl(error.location) if error.location else None
        except ValueError:
            location = None
            diagnostic = f"{diagnostic} (at {error.location!r})"
        return cls(code, location, severity, diagnostic)


def build_ack(
    incoming: Message,
    code: AckCode,
    errors: Sequence[ErrorDetail],
    *,
    sending_app: str | HierarchicDesignator,
    sending_facility: str | HierarchicDesignator,
    control_id: str,
    timestamp: datetime,
) -> bytes:
    """The ACK answering ``incoming``, as bytes ready to frame."""
    if code not in _ACK_CODES:
        raise ValueError(f"acknowledgement code must be one of {sorted(_ACK_CODES)}, got {code!r}")
    header = incoming.segments[0]
    echoed = header.raw_value
    delimiters = incoming.delimiters
    segments = [
        _ack_header(
            delimiters,
            sending_app=sending_app,
            sending_facility=sending_facility,
            timestamp=timestamp,
            control_id=control_id,
            echoed={
                5: Raw(echoed(3)),
                6: Raw(echoed(4)),
                11: Raw(echoed(11)),
                12: Raw(echoed(12)),
                18: Raw(echoed(18)),
            },
            trigger=Raw(echoed(9, 1, 2)),
        ),
        encode_segment("MSA", {1: code, 2: Raw(echoed(10))}, delimiters),
        *error_segments(errors, incoming.msh.version, delimiters),
    ]
    return encode_message(segments, incoming.codec, errors="fold")


def build_ack_for_unparsable(
    raw: bytes,
    error: HL7Error,
    *,
    sending_app: str | HierarchicDesignator,
    sending_facility: str | HierarchicDesignator,
    control_id: str,
    timestamp: datetime,
) -> bytes:
    """The ACK for a message that raised ``error`` while parsing (AR if ``error.reject``, else AE).

    Sender, control id, trigger, processing id, version and charset are taken from
    the MSH line when its field separator is usable; otherwise the ACK is minimal
    (version 2.5, processing id P, MSA-2 empty). Never raises for any ``raw``.
    """
    salvaged = _SalvagedHeader.read(raw)
    detail = ErrorDetail.from_error(error)
    # The echoed bytes are copied through Latin-1 unchanged whatever charset they
    # are in; keeping our own text ASCII keeps the whole ACK valid in that charset.
    detail = ErrorDetail(detail.code, detail.location, detail.severity, _ascii(detail.diagnostic))
    delimiters = salvaged.delimiters if salvaged else DEFAULT_DELIMITERS
    echoed: dict[int, FieldValue] = {11: "P", 12: "2.5"}
    trigger: str | Raw = ""
    version = "2.5"
    control_id_received: FieldValue = ""
    if salvaged is not None:
        echoed = {5: salvaged.value(3), 6: salvaged.value(4), 18: salvaged.value(18)}
        # MSH-11 and MSH-12 are required in the ACK too: fill in ours when the sender's are missing.
        echoed[11] = salvaged.value(11) if salvaged.has_value(11) else "P"
        echoed[12] = salvaged.value(12) if salvaged.has_value(12) else "2.5"
        trigger = salvaged.trigger()
        version = salvaged.version() or version
        control_id_received = salvaged.value(10)
    segments = [
        _ack_header(
            delimiters,
            sending_app=sending_app,
            sending_facility=sending_facility,
            timestamp=timestamp,
            control_id=control_id,
            echoed=echoed,
            trigger=trigger,
        ),
        encode_segment("MSA", {1: "AR" if error.reject else "AE", 2: control_id_received}, delimiters),
        *error_segments([detail], version, delimiters),
    ]
    return encode_message(segments, "latin-1", errors="fold")


def _ack_header(
    delimiters: Delimiters,
    *,
    sending_app: str | HierarchicDesignator,
    sending_facility: str | HierarchicDesignator,
    timestamp: datetime,
    control_id: str,
    echoed: dict[int, FieldValue],
    trigger: str | Raw,
) -> str:
    fields: dict[int, FieldValue] = {
        3: _designator(sending_app),
        4: _designator(sending_facility),
        7: format_timestamp(timestamp),
        9: Components("ACK", trigger, "ACK"),
        10: control_id,
        **echoed,
    }
    return encode_segment("MSH", fields, delimiters)


def _designator(value: str | HierarchicDesignator) -> FieldValue:
    if isinstance(value, HierarchicDesignator):
        return Components(*value)
    return value


def error_segments(errors: Sequence[ErrorDetail], version: str, delimiters: Delimiters) -> list[str]:
    """ERR segments in the grammar of ``version``: from 2.5 one ERR per error (ERR-2 to ERR-4);
    before, one ERR whose ERR-1 repeats, since ERR does not repeat in those versions' messages."""
    if not errors:
        return []
    if reports_error_location(version):
        return [_error_segment(detail, delimiters) for detail in errors]
    return [encode_segment("ERR", {1: Repetitions(*map(_legacy_error_location, errors))}, delimiters)]


def reports_error_location(version: str) -> bool:
    """ERR-2 to ERR-4 exist from 2.5 on; unreadable versions get the current grammar."""
    try:
        numbers = tuple(int(part) for part in version.split("."))
    except ValueError:
        return True
    return numbers >= _FIRST_VERSION_WITH_ERR_LOCATION


def _error_segment(detail: ErrorDetail, delimiters: Delimiters) -> str:
    fields: dict[int, FieldValue] = {
        3: Components(detail.code.value, detail.code.text, ERROR_CODE_TABLE),
        4: detail.severity,
    }
    if detail.location is not None:
        fields[2] = Components(*detail.location.erl_parts())
    if detail.diagnostic:
        fields[7] = detail.diagnostic
    return encode_segment("ERR", fields, delimiters)


def _legacy_error_location(detail: ErrorDetail) -> Components:
    # 2.3.1 ERR-1 (CM_ELD): segment ID ^ sequence ^ field position ^ code (a CE,
    # so its parts are subcomponents).
    where = detail.location.erl_parts()[:3] if detail.location is not None else ()
    where = (*where, "", "", "")[:3]
    return Components(*where, Subcomponents(detail.code.value, detail.code.text))


def _ascii(text: str) -> str:
    return text.encode("ascii", errors="mpi.hl7.fold").decode("ascii")


@dataclass(frozen=True, slots=True)
class _SalvagedHeader:
    """The fields of an MSH line that failed to parse, split as well as can be."""

    delimiters: Delimiters
    fields: list[str]
    escaped: bool
    """True when ``fields`` are escaped text for ``delimiters`` (echo them as is)."""

    @classmethod
    def read(cls, raw: bytes) -> _SalvagedHeader | None:
        data = raw.removeprefix(_UTF8_BOM).lstrip(b"\r\n")
        # A NUL is never echoed: it is what the message may have been refused for.
        line = data.split(b"\r", 1)[0].split(b"\n", 1)[0].decode("latin-1").replace("\x00", "")
        if not line.startswith("MSH") or len(line) < 4 or not is_valid_delimiter(line[3]):
            return None
        separator = line[3]
        parts = line.split(separator)
        fields = ["MSH", separator, *parts[1:]]
        try:
            delimiters = Delimiters.from_header(separator, fields[2] if len(fields) > 2 else "")
        except HL7Error:
            # The field separator splits, but the encoding characters are unusable:
            # treat each field as plain text and escape it with our own delimiters.
            return cls(DEFAULT_DELIMITERS, fields, escaped=False)
        return cls(delimiters, fields, escaped=True)

    def _text(self, number: int) -> str:
        return self.fields[number] if number < len(self.fields) else ""

    def has_value(self, number: int) -> bool:
        return self._first_component(number, 1).strip() not in ("", NULL_MARKER)

    def value(self, number: int) -> FieldValue:
        text = self._text(number)
        return Raw(text) if self.escaped else text

    def _first_component(self, number: int, component: int) -> str:
        if not self.escaped:
            return self._text(number) if component == 1 else ""
        repetition = self._text(number).split(self.delimiters.repetition)[0]
        components = repetition.split(self.delimiters.component)
        return components[component - 1] if component <= len(components) else ""

    def trigger(self) -> str | Raw:
        text = self._first_component(9, 2)
        return Raw(text) if self.escaped else text

    def version(self) -> str:
        return self._first_component(12, 1).strip()
