"""MLLP framing, sans I/O: ``feed(bytes) -> events`` and ``frame(bytes) -> bytes``.

A frame is ``0x0B`` + message + ``0x1C 0x0D``. The decoder never raises on what a
peer sends; it reports problems as events and resynchronises on the next start
block, so one bad frame does not cost the connection:

* :class:`Frame`: a complete message payload;
* :class:`GarbageSkipped`: bytes outside any frame, reported once per run (line
  breaks between frames are tolerated silently: several senders add one);
* :class:`OversizedFrame`: a payload longer than the limit, reported as soon as
  the limit is passed; the rest of it is discarded up to its end block;
* :class:`TruncatedFrame`: a start block inside an unfinished frame; the
  unfinished payload is reported and the new frame starts.

Every event carries the stream offset where its bytes began, so the events do
not depend on how the stream was chopped into reads.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
CARRIAGE_RETURN = b"\x0d"
_TOLERATED_BETWEEN_FRAMES = b"\r\n \t"
_OVERSIZED_HEAD_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Frame:
    """A complete message payload (between the start and end blocks)."""

    payload: bytes
    offset: int
    """Stream offset of the start block."""


@dataclass(frozen=True, slots=True)
class GarbageSkipped:
    """Bytes outside any frame; ``offset`` is the first of the run."""

    offset: int


@dataclass(frozen=True, slots=True)
class OversizedFrame:
    """A payload longer than ``limit``; the rest of it is being discarded.

    ``head`` is its beginning (up to 4 KiB, and never more than ``limit``), enough
    to read the MSH line and answer with an AR that names the message.
    """

    offset: int
    limit: int
    head: bytes


@dataclass(frozen=True, slots=True)
class TruncatedFrame:
    """An unfinished payload, abandoned because a new start block arrived."""

    offset: int
    payload: bytes


FrameEvent = Frame | GarbageSkipped | OversizedFrame | TruncatedFrame


class _State(enum.Enum):
    BETWEEN_FRAMES = enum.auto()
    IN_FRAME = enum.auto()
    DISCARDING = enum.auto()
    AFTER_END_BLOCK = enum.auto()


def frame(message: bytes) -> bytes:
    """Wrap one message for sending; raises ``ValueError`` if it holds a framing byte."""
    if START_BLOCK in message or END_BLOCK in message:
        raise ValueError("an HL7 message cannot contain the MLLP bytes 0x0B or 0x1C")
    return START_BLOCK + message + END_BLOCK + CARRIAGE_RETURN


class MLLPDecoder:
    """Turns the bytes of one connection into frame events."""

    def __init__(self, max_message_bytes: int) -> None:
        if max_message_bytes < 1:
            raise ValueError(f"max_message_bytes must be positive, got {max_message_bytes}")
        self.max_message_bytes = max_message_bytes
        self._state = _State.BETWEEN_FRAMES
        self._buffer = bytearray()
        self._frame_offset = 0
        self._stream_offset = 0
        self._garbage_reported = False

    @property
    def pending_bytes(self) -> bytes:
        """The payload of an unfinished frame (``b""`` if none): truncated if the peer closes now."""
        return bytes(self._buffer) if self._state is _State.IN_FRAME else b""

    def feed(self, data: bytes) -> list[FrameEvent]:
        """Consume bytes as they arrive; return the events they complete, in stream order."""
        events: list[FrameEvent] = []
        position = 0
        size = len(data)
        while position < size:
            if self._state is _State.AFTER_END_BLOCK:
                # The end is 0x1C 0x0D; a sender that omits the 0x0D still ended its frame.
                if data[position : position + 1] == CARRIAGE_RETURN:
                    position += 1
                self._state = _State.BETWEEN_FRAMES
            elif self._state is _State.BETWEEN_FRAMES:
                position = self._skip_between_frames(data, position, events)
            else:
                position = self._consume_frame(data, position, events)
        self._stream_offset += size
        return events

    def _skip_between_frames(self, data: bytes, position: int, events: list[FrameEvent]) -> int:
        start = data.find(START_BLOCK, position)
        stop = start if start >= 0 else len(data)
        if not self._garbage_reported:
            outside = data[position:stop]
            content = outside.lstrip(_TOLERATED_BETWEEN_FRAMES)
            if content:
                offset = self._stream_offset + position + len(outside) - len(content)
                events.append(GarbageSkipped(offset))
                self._garbage_reported = True
        if start < 0:
            return len(data)
        self._begin_frame(start)
        return start + 1

    def _begin_frame(self, position: int) -> None:
        self._state = _State.IN_FRAME
        self._buffer.clear()
        self._frame_offset = self._stream_offset + position
        self._garbage_reported = False

    def _consume_frame(self, data: bytes, position: int, events: list[FrameEvent]) -> int:
        end = data.find(END_BLOCK, position)
        restart = data.find(START_BLOCK, position, end if end >= 0 else len(data))
        stop = restart if restart >= 0 else (end if end >= 0 else len(data))
        if self._state is _State.IN_FRAME:
            self._buffer += data[position:stop]
            if len(self._buffer) > self.max_message_bytes:
                # Cut at a length that does not depend on how the bytes were chunked.
                head = bytes(self._buffer[: min(self.max_message_bytes, _OVERSIZED_HEAD_BYTES)])
                events.append(OversizedFrame(self._frame_offset, self.max_message_bytes, head))
                self._buffer.clear()
                self._state = _State.DISCARDING
        if restart >= 0:
            if self._state is _State.IN_FRAME:
                events.append(TruncatedFrame(self._frame_offset, bytes(self._buffer)))
            self._begin_frame(restart)
            return restart + 1
        if end >= 0:
            if self._state is _State.IN_FRAME:
                events.append(Frame(bytes(self._buffer), self._frame_offset))
            self._buffer.clear()
            self._state = _State.AFTER_END_BLOCK
            return end + 1
        return len(data)
