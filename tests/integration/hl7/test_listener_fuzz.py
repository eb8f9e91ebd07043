"""Malformed frames and messages thrown at a live listener: every message gets an answer (but an
acknowledgement, which is never answered), and the listener keeps serving (a well-formed message
on the same connection and on a new one afterwards is accepted)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mllp_listener import Listener, MLLPConnection, er7, start_listener, write_config

from mpi.errors import HL7Error
from mpi.hl7v2.parse import parse_message

pytestmark = pytest.mark.slow

VALID = (
    "MSH|^~\\&|HIS|CHL|MPI|ESANTE|20240101||ADT^A04^ADT_A01|{control}|P|2.5\r"
    "EVN|A04\rPID|||{local}^^^CHL||Weber^Jean||19820802|M\rPV1||N\r"
)
FRAMING_BYTES = (0x0B, 0x1C)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listener]:
    directory: Path = tmp_path_factory.mktemp("fuzz")
    running = start_listener(write_config(directory), f"sqlite:///{directory / 'mpi.db'}")
    try:
        yield running
    finally:
        running.stop(signal.SIGKILL)


def _no_framing(data: bytes) -> bytes:
    return bytes(b for b in data if b not in FRAMING_BYTES)


def _is_acknowledgement(payload: bytes) -> bool:
    """Whether the listener reads ``payload`` as an ACK, which it must not answer."""
    try:
        return parse_message(payload).msh.message_type.code.strip().upper() == "ACK"
    except HL7Error:
        return False


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    """A valid feed message with bytes replaced, inserted or deleted (never the MLLP framing bytes)."""
    base = bytearray(
        VALID.format(control=draw(st.text("ABC123", min_size=1, max_size=8)), local="F1").encode()
    )
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(base)))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(st.integers(0, 255).filter(lambda b: b not in FRAMING_BYTES))
        if action == "insert" or position == len(base):
            base.insert(position, byte)
        elif action == "replace":
            base[position] = byte
        else:
            del base[position]
    return bytes(base)


payloads = st.one_of(
    mutated_messages(),
    st.binary(min_size=0, max_size=300).map(_no_framing),
    st.text(max_size=200).map(lambda text: _no_framing(("MSH|" + text).encode("utf-8"))),
    st.sampled_from(
        [
            b"MSH",
            b"MSH|",
            b"MSH|^~\\&",
            b"MSH|^~\\&|||||||||",
            b"MSH|^~\\&|HIS|CHL|||||ADT^A04|X|P|2.5",
            b"MSH|^~\\&|HIS|CHL|||||ADT^A04|X|P|2.5\rPID|||",
            b"PID|||1",
            b"\r\n\r\n",
            b"MSH|^~\\&|XDS|ESANTE|MPI|ESANTE|20240101||ACK^A31^ACK|K1|P|2.5\rMSA|AA|N1",
            b"MSH|^~\\&|ROGUE|X|||||ACK|K2|P|9.9\rMSA|AR",
        ]
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(payloads, min_size=1, max_size=5), garbage=st.binary(max_size=40).map(_no_framing))
def test_every_framed_message_is_answered_and_the_listener_keeps_serving(
    live: Listener, messages: list[bytes], garbage: bytes
) -> None:
    connection = MLLPConnection(live.port, timeout=20)
    try:
        connection.send_raw(garbage)
        for payload in messages:
            if _is_acknowledgement(payload):
                connection.send(payload)  # no answer: were there one, the next would be read off by one
                continue
            answer = connection.ask(payload)
            parsed = parse_message(answer)
            assert parsed.msh.message_type.code == "ACK"
            assert parsed.segment("MSA").get(1) in ("AA", "AE", "AR")
        last = parse_message(connection.ask(er7(VALID.format(control="LAST", local="OK2"))))
        assert last.segment("MSA").raw == "MSA|AA|LAST"
    finally:
        connection.close()
    fresh = MLLPConnection(live.port, timeout=20)
    try:
        answer = parse_message(fresh.ask(er7(VALID.format(control="AFTER", local="OK1"))))
        assert answer.segment("MSA").raw == "MSA|AA|AFTER"
    finally:
        fresh.close()
