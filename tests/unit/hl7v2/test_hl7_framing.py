"""MLLP framing: frames survive any chunking; bad bytes are reported, never fatal."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpi.hl7v2.framing import (
    Frame,
    FrameEvent,
    GarbageSkipped,
    MLLPDecoder,
    OversizedFrame,
    TruncatedFrame,
    frame,
)

MESSAGE_A = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||123\r"
MESSAGE_B = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A08|2|P|2.5\rPID|1||456\r"


def feed_in_pieces(stream: bytes, cuts: list[int], max_message_bytes: int = 1 << 16) -> list[FrameEvent]:
    decoder = MLLPDecoder(max_message_bytes)
    events: list[FrameEvent] = []
    bounds = [0, *sorted(cuts), len(stream)]
    for start, stop in itertools.pairwise(bounds):
        events += decoder.feed(stream[start:stop])
    return events


def payloads(events: list[FrameEvent]) -> list[bytes]:
    return [event.payload for event in events if isinstance(event, Frame)]


def test_frame_wraps_a_message_in_start_and_end_blocks() -> None:
    assert frame(b"MSH|x") == b"\x0bMSH|x\x1c\x0d"


@pytest.mark.parametrize("framing_byte", [b"\x0b", b"\x1c"])
def test_frame_refuses_a_message_holding_a_framing_byte(framing_byte: bytes) -> None:
    with pytest.raises(ValueError, match="0x0B or 0x1C"):
        frame(b"MSH|" + framing_byte)


def test_decoder_yields_each_complete_frame_with_its_stream_offset() -> None:
    stream = frame(MESSAGE_A) + frame(MESSAGE_B)
    events = MLLPDecoder(1024).feed(stream)
    assert events == [Frame(MESSAGE_A, 0), Frame(MESSAGE_B, len(MESSAGE_A) + 3)]


def test_frames_split_at_every_byte_boundary_decode_identically() -> None:
    stream = frame(MESSAGE_A) + b"noise" + frame(MESSAGE_B)
    whole = feed_in_pieces(stream, [])
    assert payloads(whole) == [MESSAGE_A, MESSAGE_B]
    for cut in range(1, len(stream)):
        assert feed_in_pieces(stream, [cut]) == whole, cut


def test_feeding_one_byte_at_a_time_gives_the_same_events() -> None:
    stream = frame(MESSAGE_A) + frame(MESSAGE_B)
    assert feed_in_pieces(stream, list(range(1, len(stream)))) == feed_in_pieces(stream, [])


stream_parts = st.lists(
    st.one_of(
        st.binary(max_size=40).map(lambda body: ("frame", body.replace(b"\x0b", b"").replace(b"\x1c", b""))),
        st.binary(min_size=1, max_size=10).map(lambda junk: ("junk", junk)),
    ),
    max_size=8,
)


@settings(max_examples=300)
@given(parts=stream_parts, data=st.data())
def test_events_do_not_depend_on_how_the_stream_is_chunked(
    parts: list[tuple[str, bytes]], data: st.DataObject
) -> None:
    stream = b"".join(frame(body) if kind == "frame" else body for kind, body in parts)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=12))
    assert feed_in_pieces(stream, cuts, max_message_bytes=30) == feed_in_pieces(
        stream, [], max_message_bytes=30
    )


@settings(max_examples=300)
@given(bodies=st.lists(st.binary(max_size=60), max_size=6), data=st.data())
def test_every_frame_sent_is_received_whole_and_in_order(bodies: list[bytes], data: st.DataObject) -> None:
    bodies = [body.replace(b"\x0b", b"").replace(b"\x1c", b"") for body in bodies]
    stream = b"".join(frame(body) for body in bodies)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=20))
    events = feed_in_pieces(stream, cuts)
    assert all(isinstance(event, Frame) for event in events)
    assert payloads(events) == bodies


def test_garbage_between_frames_is_reported_once_per_run_and_skipped() -> None:
    garbage = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    stream = garbage + frame(MESSAGE_A) + b"\x00\x00\x00" + frame(MESSAGE_B) + b"tail"
    events = MLLPDecoder(1024).feed(stream)
    second_run_at = len(garbage) + len(MESSAGE_A) + 3
    assert events == [
        GarbageSkipped(0),
        Frame(MESSAGE_A, len(garbage)),
        GarbageSkipped(second_run_at),
        Frame(MESSAGE_B, second_run_at + 3),
        GarbageSkipped(second_run_at + 3 + len(MESSAGE_B) + 3),
    ]


def test_a_garbage_run_spread_over_several_reads_is_reported_once() -> None:
    decoder = MLLPDecoder(1024)
    assert decoder.feed(b"abc") == [GarbageSkipped(0)]
    assert decoder.feed(b"def") == []
    assert decoder.feed(frame(MESSAGE_A)) == [Frame(MESSAGE_A, 6)]


def test_line_breaks_between_frames_are_not_garbage() -> None:
    stream = b"\r\n" + frame(MESSAGE_A) + b"\n" + frame(MESSAGE_B) + b"\r\n"
    assert payloads(MLLPDecoder(1024).feed(stream)) == [MESSAGE_A, MESSAGE_B]
    assert not any(isinstance(event, GarbageSkipped) for event in MLLPDecoder(1024).feed(stream))


def test_an_end_block_without_its_carriage_return_still_ends_the_frame() -> None:
    stream = b"\x0b" + MESSAGE_A + b"\x1c" + frame(MESSAGE_B)
    assert MLLPDecoder(1024).feed(stream) == [Frame(MESSAGE_A, 0), Frame(MESSAGE_B, len(MESSAGE_A) + 2)]


def test_oversized_frame_is_reported_discarded_and_the_connection_stays_usable() -> None:
    limit = len(MESSAGE_A)
    big = MESSAGE_A + b"X" * 500
    decoder = MLLPDecoder(limit)
    events = decoder.feed(frame(big) + frame(MESSAGE_A))
    assert events == [
        OversizedFrame(0, limit, big[:limit]),
        Frame(MESSAGE_A, len(big) + 3),
    ]


def test_oversized_frame_is_reported_once_even_when_it_arrives_in_many_reads() -> None:
    decoder = MLLPDecoder(10)
    events = decoder.feed(b"\x0b" + b"Y" * 8)
    events += decoder.feed(b"Y" * 8)
    events += decoder.feed(b"Y" * 8)
    assert events == [OversizedFrame(0, 10, b"Y" * 10)]
    assert decoder.pending_bytes == b""
    assert decoder.feed(b"\x1c\x0d" + frame(b"ok")) == [Frame(b"ok", 27)]


def test_a_message_exactly_at_the_limit_is_accepted() -> None:
    assert MLLPDecoder(len(MESSAGE_A)).feed(frame(MESSAGE_A)) == [Frame(MESSAGE_A, 0)]


def test_new_start_block_inside_an_unfinished_frame_reports_it_truncated() -> None:
    stream = b"\x0b" + MESSAGE_A[:20] + frame(MESSAGE_B)
    assert MLLPDecoder(1024).feed(stream) == [
        TruncatedFrame(0, MESSAGE_A[:20]),
        Frame(MESSAGE_B, 21),
    ]


def test_a_new_start_block_after_an_oversized_frame_starts_cleanly() -> None:
    decoder = MLLPDecoder(5)
    events = decoder.feed(b"\x0b" + b"Z" * 20 + frame(b"ok"))
    assert events == [OversizedFrame(0, 5, b"Z" * 5), Frame(b"ok", 21)]


def test_pending_bytes_expose_a_frame_cut_by_connection_close() -> None:
    decoder = MLLPDecoder(1024)
    assert decoder.pending_bytes == b""
    assert decoder.feed(b"\x0b" + MESSAGE_A[:15]) == []
    assert decoder.pending_bytes == MESSAGE_A[:15]
    decoder.feed(MESSAGE_A[15:] + b"\x1c\x0d")
    assert decoder.pending_bytes == b""


@pytest.mark.parametrize("limit", [0, -1])
def test_decoder_needs_a_positive_limit(limit: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        MLLPDecoder(limit)
