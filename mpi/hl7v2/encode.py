"""Writing HL7 v2: values escaped, trailing empty delimiters dropped, ``\\r`` after every segment.

A field value is one of:

* ``str``: a primitive, escaped on the way out;
* :data:`NULL`: the explicit null ``""`` ("remove this value");
* :class:`Components` / :class:`Subcomponents` / :class:`Repetitions`: the
  structure, nested in that order (a repetition holds components, a component
  holds subcomponents);
* :class:`Raw`: text already escaped for the same delimiters, written as is
  (used to echo fields of a received message byte for byte).

Example: PID-3 with two identifiers::

    Repetitions(
        Components("123", "", "", Subcomponents("LUX", "1.3.182.4.4", "ISO"), "NI"),
        Components("A-77", "", "", Subcomponents("HOSP")),
    )
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from mpi.hl7v2.delimiters import DEFAULT_DELIMITERS, NULL_MARKER, Delimiters

_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}")


class Null:
    """The type of :data:`NULL`, the explicit null value."""

    _instance: Null | None = None

    def __new__(cls) -> Null:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NULL"


NULL: Final = Null()
"""Written as ``""``: the receiver must remove the value (an empty field means "no change")."""

Text = str | Null


@dataclass(frozen=True, slots=True, init=False)
class Raw:
    """Already-escaped text, written verbatim. Only valid with the delimiters it was escaped for."""

    text: str

    def __init__(self, text: str) -> None:
        object.__setattr__(self, "text", text)


@dataclass(frozen=True, slots=True, init=False)
class Subcomponents:
    """The subcomponents of one component (``&``-separated)."""

    values: tuple[Text, ...]

    def __init__(self, *values: Text) -> None:
        object.__setattr__(self, "values", values)


ComponentValue = Text | Subcomponents | Raw


@dataclass(frozen=True, slots=True, init=False)
class Components:
    """The components of one field repetition (``^``-separated)."""

    values: tuple[ComponentValue, ...]

    def __init__(self, *values: ComponentValue) -> None:
        object.__setattr__(self, "values", values)


RepetitionValue = Text | Components | Raw


@dataclass(frozen=True, slots=True, init=False)
class Repetitions:
    """The repetitions of one field (``~``-separated)."""

    values: tuple[RepetitionValue, ...]

    def __init__(self, *values: RepetitionValue) -> None:
        object.__setattr__(self, "values", values)


FieldValue = Text | Components | Repetitions | Raw


def _join_without_trailing_empties(separator: str, parts: list[str]) -> str:
    while parts and not parts[-1]:
        parts.pop()
    return separator.join(parts)


def _encode_text(value: Text, delimiters: Delimiters) -> str:
    if isinstance(value, Null):
        return NULL_MARKER
    return delimiters.escape_text(value)


def _encode_component(value: ComponentValue, delimiters: Delimiters) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Subcomponents):
        parts = [_encode_text(part, delimiters) for part in value.values]
        return _join_without_trailing_empties(delimiters.subcomponent, parts)
    return _encode_text(value, delimiters)


def _encode_repetition(value: RepetitionValue, delimiters: Delimiters) -> str:
    if isinstance(value, Components):
        parts = [_encode_component(part, delimiters) for part in value.values]
        return _join_without_trailing_empties(delimiters.component, parts)
    return _encode_component(value, delimiters)


def encode_field(value: FieldValue, delimiters: Delimiters = DEFAULT_DELIMITERS) -> str:
    """One field as escaped ER7 text."""
    if isinstance(value, Repetitions):
        parts = [_encode_repetition(part, delimiters) for part in value.values]
        return _join_without_trailing_empties(delimiters.repetition, parts)
    return _encode_repetition(value, delimiters)


def encode_segment(
    name: str,
    fields: Mapping[int, FieldValue],
    delimiters: Delimiters = DEFAULT_DELIMITERS,
) -> str:
    """One segment (without terminator); ``fields`` maps HL7 field numbers to values.

    For ``MSH``, fields 1 and 2 come from ``delimiters`` and must not be given.
    Missing numbers are empty fields.
    """
    if _SEGMENT_NAME.fullmatch(name) is None:
        raise ValueError(f"segment name must be three characters [A-Z][A-Z0-9]{{2}}, got {name!r}")
    if any(number < 1 for number in fields):
        raise ValueError(f"field numbers start at 1, got {sorted(fields)}")
    is_header = name == "MSH"
    if is_header and (1 in fields or 2 in fields):
        raise ValueError("MSH-1 and MSH-2 are the delimiters; pass them as `delimiters`")
    first = 3 if is_header else 1
    last = max(fields, default=0)
    prefix = [name, delimiters.encoding_characters] if is_header else [name]
    parts = [
        encode_field(fields[number], delimiters) if number in fields else ""
        for number in range(first, last + 1)
    ]
    return _join_without_trailing_empties(delimiters.field, prefix + parts)


def _folded(error: UnicodeError) -> tuple[str, int]:
    """A character the receiver's character set cannot carry, without its accents (``é`` as
    ``e``), or ``?`` when nothing of it is left: ``Weber`` reads better than ``W?ber``."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    unencodable = error.object[error.start : error.end]
    folded = (
        unicodedata.normalize("NFKD", character).encode("ascii", "ignore").decode("ascii") or "?"
        for character in unencodable
    )
    return "".join(folded), error.end


codecs.register_error("mpi.hl7.fold", _folded)


def encode_message(
    segments: Sequence[str],
    codec: str = "utf-8",
    *,
    errors: Literal["strict", "replace", "fold"] = "strict",
) -> bytes:
    """Segments joined and terminated by ``\\r``, encoded with a Python codec.

    For characters the codec cannot carry, ``errors="replace"`` writes ``?`` and
    ``errors="fold"`` writes them without their accents (``?`` if nothing is left):
    for answers, which must go out in the character set the sender declared
    whatever the registry holds.
    """
    if not segments:
        raise ValueError("a message needs at least an MSH segment")
    handler = "mpi.hl7.fold" if errors == "fold" else errors
    return ("\r".join(segments) + "\r").encode(codec, errors=handler)


def format_timestamp(moment: datetime) -> str:
    """An HL7 DTM: ``YYYYMMDDHHMMSS``, plus ``+HHMM`` when the time zone is known."""
    text = moment.strftime("%Y%m%d%H%M%S")
    return text + moment.strftime("%z") if moment.tzinfo is not None else text
