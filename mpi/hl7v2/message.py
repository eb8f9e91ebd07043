"""The parsed form of an HL7 v2 message: segments, fields and addressing.

Parsing (``mpi.hl7v2.parse``) only splits a message into segments and fields;
repetitions, components and subcomponents are split, and escapes decoded, when a
value is read. An ADT message has a few hundred fields and a translator reads a
few dozen, so splitting lazily is where the speed comes from.

Two ways in, same rules:

* paths, for a handful of values: ``message.get("PID-3[2].4.1")``;
* elements, to walk repeating structures: ``message.field("PID-3").repetitions``.

Reading never raises for absent values: it returns ``""``. The explicit null
``""`` also reads as ``""``; ``is_null`` tells the two apart.
"""

from __future__ import annotations

from mpi.errors import HL7Error
from mpi.hl7v2.codes import ErrorCode
from mpi.hl7v2.delimiters import NULL_MARKER, Delimiters
from mpi.hl7v2.header import MessageHeader
from mpi.hl7v2.location import Location


def _decode_primitive(raw: str, delimiters: Delimiters, codec: str) -> str:
    if raw == NULL_MARKER:
        return ""
    return delimiters.unescape_text(raw, codec)


def _nth(raw: str, separator: str, number: int) -> str:
    """Part ``number`` (1-based) of ``raw`` split on ``separator``; ``""`` when absent."""
    if separator not in raw:
        # Most values hold no delimiter at all: skip building a list.
        return raw if number == 1 else ""
    parts = raw.split(separator)
    return parts[number - 1] if 0 < number <= len(parts) else ""


class _Element:
    """Common part of a field, a repetition and a component: escaped wire text."""

    __slots__ = ("_codec", "_delimiters", "_literal", "raw")

    def __init__(self, raw: str, delimiters: Delimiters, codec: str, literal: bool = False) -> None:
        self.raw = raw
        """The text as written in the message, delimiters and escapes included."""
        self._delimiters = delimiters
        self._codec = codec
        # MSH-1 and MSH-2 hold the delimiters themselves: never split or unescape them.
        self._literal = literal

    @property
    def is_null(self) -> bool:
        """True for the explicit null ``""`` (the sender asks to remove the value)."""
        return self.raw == NULL_MARKER

    @property
    def is_empty(self) -> bool:
        """True when nothing was sent (the sender leaves the value unchanged): no text, or only
        separators (``^^^``, as some interface engines write a field they have no value for)."""
        if not self.raw or self._literal:
            return not self.raw
        d = self._delimiters
        return not self.raw.replace(d.component, "").replace(d.subcomponent, "").replace(d.repetition, "")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.raw!r})"


class Component(_Element):
    """One component; it may hold subcomponents."""

    __slots__ = ()

    @property
    def subcomponents(self) -> list[str]:
        """The decoded subcomponents (a null one reads as ``""``)."""
        if self._literal:
            return [self.raw]
        return [
            _decode_primitive(part, self._delimiters, self._codec)
            for part in self.raw.split(self._delimiters.subcomponent)
        ]

    def subcomponent(self, number: int = 1) -> str:
        """The decoded subcomponent ``number`` (1-based), ``""`` when absent."""
        if self._literal:
            return self.raw if number == 1 else ""
        raw = _nth(self.raw, self._delimiters.subcomponent, number)
        return _decode_primitive(raw, self._delimiters, self._codec) if raw else ""

    @property
    def value(self) -> str:
        """The first subcomponent, decoded."""
        return self.subcomponent(1)


class Repetition(_Element):
    """One occurrence of a (possibly repeating) field; it holds components."""

    __slots__ = ()

    @property
    def components(self) -> list[Component]:
        if self._literal:
            return [Component(self.raw, self._delimiters, self._codec, literal=True)]
        delimiters, codec = self._delimiters, self._codec
        return [Component(part, delimiters, codec) for part in self.raw.split(delimiters.component)]

    def component(self, number: int = 1) -> Component:
        """Component ``number`` (1-based); an empty one when absent."""
        if self._literal:
            raw = self.raw if number == 1 else ""
            return Component(raw, self._delimiters, self._codec, literal=True)
        raw = _nth(self.raw, self._delimiters.component, number)
        return Component(raw, self._delimiters, self._codec)

    @property
    def value(self) -> str:
        """The first component's first subcomponent, decoded."""
        return self.component(1).value


class Field(_Element):
    """One field with all its repetitions."""

    __slots__ = ()

    @property
    def repetitions(self) -> list[Repetition]:
        """The repetitions sent; an empty field has none, a null field has one (null)."""
        if not self.raw:
            return []
        if self._literal:
            return [Repetition(self.raw, self._delimiters, self._codec, literal=True)]
        delimiters, codec = self._delimiters, self._codec
        return [Repetition(part, delimiters, codec) for part in self.raw.split(delimiters.repetition)]

    def repetition(self, number: int = 1) -> Repetition:
        """Repetition ``number`` (1-based); an empty one when absent."""
        if self._literal:
            raw = self.raw if number == 1 else ""
            return Repetition(raw, self._delimiters, self._codec, literal=True)
        raw = _nth(self.raw, self._delimiters.repetition, number)
        return Repetition(raw, self._delimiters, self._codec)

    @property
    def value(self) -> str:
        """The first primitive value (first repetition, component, subcomponent), decoded."""
        return self.repetition(1).value


class Segment:
    """One segment. ``fields[n]`` is the escaped text of field ``n``, as numbered by HL7.

    ``fields[0]`` is the segment name; for MSH, ``fields[1]`` is the field separator
    and ``fields[2]`` the encoding characters, so MSH numbering matches the standard.
    """

    __slots__ = ("_codec", "_delimiters", "fields", "name", "raw")

    def __init__(self, fields: list[str], raw: str, delimiters: Delimiters, codec: str) -> None:
        self.name = fields[0]
        self.fields = fields
        self.raw = raw
        """The segment as written, without its terminator."""
        self._delimiters = delimiters
        self._codec = codec

    def __len__(self) -> int:
        """The number of the last field present."""
        return len(self.fields) - 1

    def __repr__(self) -> str:
        return f"Segment({self.raw!r})"

    def _is_literal(self, number: int) -> bool:
        return number <= 2 and self.name == "MSH"

    def field(self, number: int) -> Field:
        """Field ``number`` (1-based); an empty one when absent."""
        raw = self.fields[number] if 0 < number < len(self.fields) else ""
        return Field(raw, self._delimiters, self._codec, literal=self._is_literal(number))

    def raw_value(
        self,
        field: int,
        repetition: int | None = None,
        component: int | None = None,
        subcomponent: int | None = None,
    ) -> str:
        """The escaped text at a position; ``None`` stops at the level above.

        ``raw_value(3)`` is the whole field with all repetitions; ``raw_value(3, 2)``
        its second repetition; ``raw_value(5, component=1)`` the first component of
        the first repetition.
        """
        if not 0 < field < len(self.fields):
            return ""
        raw = self.fields[field]
        if repetition is None and component is None and subcomponent is None:
            return raw
        if self._is_literal(field):
            first = (repetition or 1, component or 1, subcomponent or 1) == (1, 1, 1)
            return raw if first else ""
        delimiters = self._delimiters
        raw = _nth(raw, delimiters.repetition, repetition or 1)
        if component is None:
            return raw
        raw = _nth(raw, delimiters.component, component)
        if subcomponent is None:
            return raw
        return _nth(raw, delimiters.subcomponent, subcomponent)

    def get(self, field: int, repetition: int = 1, component: int = 1, subcomponent: int = 1) -> str:
        """The decoded primitive at a position (1-based); ``""`` when absent or null."""
        raw = self.raw_value(field, repetition, component, subcomponent)
        if not raw:
            return raw
        if self._is_literal(field):
            return raw
        return _decode_primitive(raw, self._delimiters, self._codec)

    def is_null(
        self,
        field: int,
        repetition: int | None = None,
        component: int | None = None,
        subcomponent: int | None = None,
    ) -> bool:
        """True when the value at exactly this level is the explicit null ``""``."""
        return self.raw_value(field, repetition, component, subcomponent) == NULL_MARKER


class Message:
    """A parsed HL7 v2 message; build it with :func:`mpi.hl7v2.parse.parse_message`."""

    __slots__ = ("_by_name", "charset_fallback", "codec", "delimiters", "msh", "segments")

    def __init__(
        self,
        segments: tuple[Segment, ...],
        delimiters: Delimiters,
        codec: str,
        *,
        charset_fallback: bool = False,
    ) -> None:
        self.segments = segments
        self.delimiters = delimiters
        self.codec = codec
        """The Python codec the bytes were decoded with (and :meth:`encode` uses)."""
        self.charset_fallback = charset_fallback
        """True when MSH-18 was empty and the bytes were not UTF-8, so Latin-1 was assumed."""
        by_name: dict[str, list[Segment]] = {}
        for segment in segments:
            by_name.setdefault(segment.name, []).append(segment)
        self._by_name = by_name
        self.msh = MessageHeader(segments[0])
        """Typed access to the MSH fields."""

    def __repr__(self) -> str:
        names = ",".join(segment.name for segment in self.segments)
        return f"Message({names})"

    def find_segment(self, name: str, index: int = 0) -> Segment | None:
        """The ``index``-th (0-based) segment called ``name``, or ``None``."""
        found = self._by_name.get(name)
        if found is None or not 0 <= index < len(found):
            return None
        return found[index]

    def segment(self, name: str, index: int = 0) -> Segment:
        """The ``index``-th (0-based) segment called ``name``.

        A missing segment raises ``HL7Error`` 100 (segment sequence error), so a
        translator that needs a PID can let the error become the ACK.
        """
        found = self.find_segment(name, index)
        if found is None:
            raise HL7Error(
                f"segment {name} #{index + 1} is missing",
                code=ErrorCode.SEGMENT_SEQUENCE_ERROR,
                location=name if index == 0 else f"{name}^{index + 1}",
            )
        return found

    def segments_named(self, name: str) -> list[Segment]:
        """Every segment called ``name``, in message order."""
        return list(self._by_name.get(name, ()))

    def _segment_at(self, location: Location) -> Segment | None:
        if location.field is None:
            raise ValueError(f"a value path needs a field number: {location}")
        return self.find_segment(location.segment, location.occurrence - 1)

    def get(self, path: str | Location) -> str:
        """The decoded primitive at a path such as ``PID-3[2].4.1`` (see :class:`Location`).

        Unnamed levels default to the first: ``PID-5`` reads PID-5[1].1.1. Absent
        or null values read as ``""``.
        """
        location = path if isinstance(path, Location) else Location.parse(path)
        segment = self._segment_at(location)
        if segment is None or location.field is None:
            return ""
        return segment.get(
            location.field, location.repetition or 1, location.component or 1, location.subcomponent or 1
        )

    def is_null(self, path: str | Location) -> bool:
        """True when the value at exactly this level is ``""``: ``PID-5`` is the whole field."""
        location = path if isinstance(path, Location) else Location.parse(path)
        segment = self._segment_at(location)
        if segment is None or location.field is None:
            return False
        return segment.is_null(location.field, location.repetition, location.component, location.subcomponent)

    def field(self, path: str | Location) -> Field:
        """The field named by a path (its segment occurrence and field number)."""
        location = path if isinstance(path, Location) else Location.parse(path)
        segment = self._segment_at(location)
        if segment is None or location.field is None:
            return Field("", self.delimiters, self.codec)
        return segment.field(location.field)

    def encode(self) -> bytes:
        """The message as bytes: ``\\r`` after every segment, in the codec it was read with."""
        return ("\r".join(segment.raw for segment in self.segments) + "\r").encode(self.codec)
