"""Kill the listener mid-feed (SIGKILL), restart it, resend what was not acknowledged: every message
is applied exactly once, and every pending PIX update notification is still delivered."""

from __future__ import annotations

import signal
import socketserver
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from mllp_listener import MLLPConnection, er7, start_listener, write_config

from mpi.domain.identifiers import luhn_digits, verhoeff_digits
from mpi.hl7v2.framing import Frame, MLLPDecoder, frame
from mpi.hl7v2.parse import parse_message
from mpi.service.bootstrap import bootstrap
from mpi.service.delivery import MessageKey
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.settings import Settings

pytestmark = pytest.mark.slow

PATIENTS = 24
KILL_AFTER = 15  # acknowledged messages before the kill


def matricule(birth: str, sequence: int) -> str:
    payload = np.array([[int(c) for c in f"{birth}{sequence:03d}"]], dtype=np.int8)
    return f"{birth}{sequence:03d}{int(luhn_digits(payload)[0])}{int(verhoeff_digits(payload)[0])}"


def feed_messages() -> list[bytes]:
    """Per patient, the hospital's A04 then the lab's: one person, two domains, one notification."""
    messages = []
    for n in range(PATIENTS):
        birth = f"1970{(n % 12) + 1:02d}{(n % 28) + 1:02d}"
        nid = matricule(birth, 100 + n)
        pid = f"||Patient{n:02d}^Given{n:02d}||{birth}|{'MF'[n % 2]}"
        messages.append(
            er7(
                f"MSH|^~\\&|HIS|CHL|MPI|ESANTE|20240101||ADT^A04^ADT_A01|H{n}|P|2.5\n"
                f"PID|||C{n}^^^CHL~{nid}^^^LUX{pid}"
            )
        )
        messages.append(
            er7(
                f"MSH|^~\\&|LIS|LAB|MPI|ESANTE|20240101||ADT^A04|L{n}|P|2.3.1\n"
                f"PID|||L{n}^^^LABO~{nid}^^^LUX{pid}"
            )
        )
    return messages


class Consumer(socketserver.BaseRequestHandler):
    """A PIX consumer that keeps every notification it receives and acknowledges it AA."""

    received: ClassVar[list[bytes]] = []
    lock = threading.Lock()

    def handle(self) -> None:
        decoder = MLLPDecoder(1_000_000)
        while data := self.request.recv(65536):
            for event in decoder.feed(data):
                if isinstance(event, Frame):
                    with self.lock:
                        self.received.append(event.payload)
                    control = parse_message(event.payload).msh.control_id
                    self.request.sendall(
                        frame(
                            f"MSH|^~\\&|XDS|E|MPI|E|20240101||ACK^A31^ACK|A|P|2.5\rMSA|AA|{control}\r".encode()
                        )
                    )


def test_kill_restart_and_resend_applies_each_message_once(tmp_path: Path) -> None:
    consumer = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Consumer)
    Consumer.received.clear()
    threading.Thread(target=consumer.serve_forever, daemon=True).start()
    extra = (
        f'[[consumer]]\nname = "xds"\nhost = "127.0.0.1"\nport = {consumer.server_address[1]}\n'
        'application = "XDS"\nfacility = "ESANTE"\ndomains = ["CHL", "LABO"]\ntimeout_seconds = 5\n'
    )
    config = write_config(tmp_path, extra)
    database = f"sqlite:///{tmp_path / 'mpi.db'}"
    messages = feed_messages()
    answers: dict[int, bytes] = {}

    first = start_listener(config, database)
    connection = MLLPConnection(first.port)
    for index in range(KILL_AFTER):
        answers[index] = connection.ask(messages[index])
    connection.send(
        messages[KILL_AFTER]
    )  # in flight when the process dies: maybe applied, never acknowledged
    first.stop(signal.SIGKILL)
    connection.close()

    second = start_listener(config, database)
    try:
        connection = MLLPConnection(second.port)
        for index in range(KILL_AFTER, len(messages)):
            answers[index] = connection.ask(messages[index])
        resent = connection.ask(messages[3])  # acknowledged before the kill: the stored answer, byte for byte
        connection.close()
        assert resent == answers[3]
        assert all(b"MSA|AA|" in answer for answer in answers.values())
        deadline_rounds = 0
        while deadline_rounds < 200:
            with Consumer.lock:
                announced = {parse_message(p).segment("PID").get(3, 1, 1) for p in Consumer.received}
            if len(announced) >= PATIENTS:
                break
            threading.Event().wait(0.1)
            deadline_rounds += 1
    finally:
        second.stop(signal.SIGTERM)
        consumer.shutdown()
        consumer.server_close()

    settings = Settings(database_url=database, _env_file=None)  # type: ignore[call-arg]
    services = bootstrap(settings, FakeMatcher())
    try:
        state = services.store.run(lambda uow: uow.snapshot(), write=False)
        receipts = services.store.run(lambda uow: [uow.find_receipt(_key(m)) for m in messages], write=False)
    finally:
        services.close()
    assert len(state.records) == 2 * PATIENTS
    assert all(record.version == 1 for record in state.records.values())  # nothing applied twice
    assert all(receipt is not None for receipt in receipts)
    persons = {link.mpi_id for link in state.links.values()}
    assert len(persons) == PATIENTS
    assert announced == {f"C{n}" for n in range(PATIENTS)}  # every person announced, none lost


def _key(message: bytes) -> MessageKey:
    return MessageKey(*parse_message(message).msh.key)
