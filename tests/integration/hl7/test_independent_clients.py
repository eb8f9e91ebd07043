"""End to end over real loopback sockets, with two MLLP clients that are not ours.

* python-hl7's ``mllp_send`` (PyPI ``hl7``);
* simple-hl7 on Node.js (npm), installed with
  ``npm ci --prefix tests/integration/hl7/node``. Without it the test is skipped,
  unless ``MPI_REQUIRE_NODE=1`` (CI), which makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mllp_listener import CHL_OID, Listener, MLLPConnection, er7

from mpi.hl7v2.parse import parse_message

pytestmark = pytest.mark.slow

NODE_CLIENT = Path(__file__).parent / "node"


def mllp_send_program() -> str:
    beside = Path(sys.executable).parent / "mllp_send"
    found = str(beside) if beside.exists() else shutil.which("mllp_send")
    if found is None:
        pytest.fail("mllp_send is missing: pip install hl7 (it is in the test extra)")
    return found


def answers_of(output: bytes) -> list[list[str]]:
    """mllp_send prints each answer as it came, framed, one per line: the segments of each."""
    blocks = output.decode("utf-8").split("\x1c\r\n")
    return [block.lstrip("\x0b").strip("\r").split("\r") for block in blocks if block.strip()]


def test_python_hl7_mllp_send_feeds_and_queries(listener: Listener, tmp_path: Path) -> None:
    messages = tmp_path / "feed.hl7"
    messages.write_text(
        "MSH|^~\\&|HIS|CHL|MPI|ESANTE|20240101||ADT^A04^ADT_A01|F-1|P|2.5\r"
        "PID|||A-1^^^CHL||Weber^Jean||19820802|M\r\n"
        "MSH|^~\\&|LIS|LAB|MPI|ESANTE|20240101||ADT^A04|F-2|P|2.3.1\r"
        "PID|||L-1^^^LABO||Weber^Jean||19820802|M\r\n"
        "MSH|^~\\&|PORTAL|X|MPI|ESANTE|20240101||QBP^Q23^QBP_Q21|Q-1|P|2.5\r"
        "QPD|IHE PIX Query|T1|A-1^^^CHL|^^^LABO\rRCP|I\r\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [mllp_send_program(), "--loose", "--file", str(messages), "--port", str(listener.port), "127.0.0.1"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    answers = answers_of(result.stdout)
    assert [a[1] for a in answers] == ["MSA|AA|F-1", "MSA|AA|F-2", "MSA|AA|Q-1"]
    assert answers[1][0].split("|")[11] == "2.3.1"
    pix = answers[2]
    assert pix[2] == "QAK|T1|OK|IHE PIX Query"
    assert pix[4] == "PID|||L-1^^^LABO^PI||~^^^^^^S"


def test_node_simple_hl7_client_gets_every_answer(listener: Listener, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (NODE_CLIENT / "node_modules" / "simple-hl7").is_dir():
        message = "simple-hl7 is not installed: npm ci --prefix tests/integration/hl7/node"
        if os.environ.get("MPI_REQUIRE_NODE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    messages = [
        f"MSH|^~\\&|HIS|CHL|MPI|ESANTE|20240101||ADT^A04^ADT_A01|N-{n}|P|2.5\r"
        f"PID|||N-{n}^^^CHL&{CHL_OID}&ISO||Kremer^Luc{n}||1970010{n}|M\rPV1||N"
        for n in range(1, 4)
    ]
    messages.append(
        "MSH|^~\\&|PORTAL|X|MPI|ESANTE|20240101||QBP^Q22^QBP_Q21|N-Q|P|2.5\r"
        "QPD|IHE PDQ Query|T2|@PID.5.1.1^KREMER\rRCP|I|2^RD"
    )
    file = tmp_path / "messages.json"
    file.write_text(json.dumps(messages), encoding="utf-8")
    result = subprocess.run(
        [node, str(NODE_CLIENT / "send.js"), "127.0.0.1", str(listener.port), str(file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answers = [parse_message(text.encode("utf-8")) for text in json.loads(result.stdout)]
    assert [a.segment("MSA").raw for a in answers] == ["MSA|AA|N-1", "MSA|AA|N-2", "MSA|AA|N-3", "MSA|AA|N-Q"]
    assert answers[3].segment("QAK").raw == "QAK|T2|OK|IHE PDQ Query|3|2|1"
    assert answers[3].find_segment("DSC") is not None


def test_framing_problems_are_answered_and_the_connection_stays_usable(listener: Listener) -> None:
    connection = MLLPConnection(listener.port)
    try:
        connection.send_raw(b"garbage between frames\r\n")
        oversized = er7("MSH|^~\\&|HIS|CHL|MPI|ESANTE|20240101||ADT^A04^ADT_A01|BIG|P|2.5\nPID|||X^^^CHL||")
        connection.send(oversized + b"A" * 70_000)
        answer = parse_message(connection.receive())
        assert answer.segment("MSA").raw == "MSA|AR|BIG"
        # A frame cut short by the next start block is answered AR, the next one normally.
        connection.send_raw(b"\x0b" + er7("MSH|^~\\&|HIS|CHL|MPI|ESANTE|20240101||ADT^A04^ADT_A01|CUT|P|2.5"))
        connection.send(
            er7("MSH|^~\\&|HIS|CHL|MPI|ESANTE|20240101||ADT^A04^ADT_A01|OK-1|P|2.5\nPID|||Z-1^^^CHL")
        )
        assert parse_message(connection.receive()).segment("MSA").raw == "MSA|AR|CUT"
        assert parse_message(connection.receive()).segment("MSA").raw == "MSA|AA|OK-1"
        connection.send(b"not an HL7 message")
        assert parse_message(connection.receive()).segment("MSA").raw == "MSA|AR"
    finally:
        connection.close()
