"""``mpi serve --processes 2``: two server processes share one listener.

Messages about the same patients arrive on several connections at once, so the two
processes apply them side by side. Every message must still be applied once (a resend
answered by the other process gets the stored answer, and so does a message resent because
the process handling it was killed), the hospital's and the lab's records of a patient must
still meet in one person, every PIX update notification must go out once, and the killed
worker is replaced while the listener keeps answering (on PostgreSQL, where more processes
pay off). A killed parent leaves no worker behind.
"""

from __future__ import annotations

import os
import signal
import socket
import socketserver
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from mllp_listener import Listener, MLLPConnection, er7, start_listener, write_config
from test_restart import PATIENTS, Consumer, feed_messages

from mpi.hl7v2.parse import parse_message
from mpi.service.bootstrap import bootstrap
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.settings import Settings

pytestmark = pytest.mark.slow

CONNECTIONS = 4


def workers_of(listener: Listener) -> list[int]:
    """The pids of the server's worker processes."""
    pid = listener.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sorted(int(child) for child in children)


def served_by(pid: int, port: int) -> int:
    """How many established connections to ``port`` the process ``pid`` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:  # 01: established
                count += 1
    return count


def identifiers_announced(payload: bytes) -> bytes:
    """PID-3 of a notification, whole: every identifier it announces for the person."""
    pid = next(segment for segment in payload.split(b"\r") if segment.startswith(b"PID|"))
    return pid.split(b"|")[3]


def wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


@pytest.mark.postgres
def test_two_processes_apply_every_message_once_and_notify_once(tmp_path: Path, postgres_url: str) -> None:
    consumer = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Consumer)
    threading.Thread(target=consumer.serve_forever, daemon=True).start()
    Consumer.received.clear()
    extra = (
        f'[[consumer]]\nname = "xds"\nhost = "127.0.0.1"\nport = {consumer.server_address[1]}\n'
        'application = "XDS"\nfacility = "ESANTE"\ndomains = ["CHL", "LABO"]\ntimeout_seconds = 5\n'
    )
    config = write_config(tmp_path, extra)
    messages = feed_messages()
    listener = start_listener(config, postgres_url, tmp_path / "serve.log", ["--processes", "2"])
    try:
        first_workers = workers_of(listener)
        assert len(first_workers) == 2
        # Each connection sends every patient's messages in a different order, so the same
        # patients' hospital and lab records arrive on different connections at once. Midway,
        # the worker that sends no notifications is killed: whoever loses a connection without
        # an answer connects again and resends, as an MLLP sender does.
        answers: dict[int, list[bytes]] = {}
        acknowledged = threading.Semaphore(0)
        resent: list[int] = []

        # The worker to be killed must be serving some of the connections (the kernel and the
        # workers decide which takes each): reconnect until it is.
        connections = [MLLPConnection(listener.port) for _ in range(CONNECTIONS)]
        for _ in range(20):
            wait_for(lambda: sum(served_by(pid, listener.port) for pid in first_workers) == CONNECTIONS)
            if served_by(first_workers[1], listener.port):
                break
            connections[0].close()
            connections[0] = MLLPConnection(listener.port)
        assert served_by(first_workers[1], listener.port) > 0

        def send(connection_index: int) -> None:
            connection = connections[connection_index]
            answers[connection_index] = []
            for index in list(range(len(messages)))[connection_index::CONNECTIONS]:
                while True:
                    try:
                        answers[connection_index].append(connection.ask(messages[index]))
                        break
                    except OSError:  # ConnectionError included: its process died
                        connection.close()
                        connection = MLLPConnection(listener.port)
                        resent.append(index)
                acknowledged.release()
                time.sleep(0.02)  # a sender's pace, so that the kill finds messages in flight
            connection.close()

        threads = [threading.Thread(target=send, args=(n,)) for n in range(CONNECTIONS)]
        for thread in threads:
            thread.start()
        for _ in range(len(messages) // 3):
            assert acknowledged.acquire(timeout=60)
        victim = first_workers[1]
        os.kill(victim, signal.SIGKILL)
        for thread in threads:
            thread.join(timeout=120)
        assert resent, "the killed worker was serving none of the connections"
        assert sum(len(a) for a in answers.values()) == len(messages)
        assert all(b"MSA|AA|" in answer for batch in answers.values() for answer in batch)

        # Resent on new connections (served by either process): the stored answers, byte for byte.
        first_answer = answers[0][0]
        resends = [MLLPConnection(listener.port) for _ in range(4)]
        assert all(connection.ask(messages[0]) == first_answer for connection in resends)
        for connection in resends:
            connection.close()

        def everyone_announced() -> bool:
            with Consumer.lock:
                announced = {parse_message(p).segment("PID").get(3, 1, 1) for p in Consumer.received}
            return len(announced) >= PATIENTS

        wait_for(everyone_announced)
        time.sleep(1.0)  # a duplicate would come from a second sender: give it the time to arrive

        # The dead worker was replaced, and the listener kept answering meanwhile.
        wait_for(lambda: len(workers_of(listener)) == 2 and victim not in workers_of(listener), 60.0)
        connection = MLLPConnection(listener.port)
        assert b"MSA|AA|" in connection.ask(messages[1])
        connection.close()
    finally:
        assert listener.stop(signal.SIGTERM) == 0
        consumer.shutdown()
        consumer.server_close()

    with Consumer.lock:
        received = list(Consumer.received)
    announced = Counter(identifiers_announced(p) for p in received)
    persons = {parse_message(p).segment("PID").get(3, 1, 1) for p in received}
    assert persons == {f"C{n}" for n in range(PATIENTS)}
    assert max(announced.values()) == 1, "a person's same identifiers were announced twice"

    settings = Settings(database_url=postgres_url, _env_file=None)  # type: ignore[call-arg]
    services = bootstrap(settings, FakeMatcher())
    try:
        state = services.store.run(lambda uow: uow.snapshot(), write=False)
    finally:
        services.close()
    assert len(state.records) == 2 * PATIENTS
    assert all(record.version == 1 for record in state.records.values())  # nothing applied twice
    assert len({link.mpi_id for link in state.links.values()}) == PATIENTS  # no duplicate person


def test_killing_the_parent_stops_its_workers_and_frees_the_port(tmp_path: Path) -> None:
    listener = start_listener(
        write_config(tmp_path),
        f"sqlite:///{tmp_path / 'mpi.db'}",
        tmp_path / "serve.log",
        ["--processes", "2"],
    )
    workers = workers_of(listener)
    assert len(workers) == 2
    listener.stop(signal.SIGKILL)

    def gone(pid: int) -> bool:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        return stat.rsplit(")", 1)[1].split()[0] == "Z"  # exited, not yet reaped by init

    wait_for(lambda: all(gone(pid) for pid in workers), 30.0)
    # Nobody listens on the port any more. (Binding it as a probe would also fail if another
    # program's outgoing connection had just been given it as its ephemeral port.)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", listener.port), 5):
        pass


def test_the_next_page_of_a_pdq_answer_is_served_by_the_other_process(tmp_path: Path) -> None:
    """A PDQ consumer that reconnects between pages may reach the other process: the continuation
    pointer the first gave must lead there too."""
    listener = start_listener(
        write_config(tmp_path),
        f"sqlite:///{tmp_path / 'mpi.db'}",
        tmp_path / "serve.log",
        ["--processes", "2"],
    )
    try:
        workers = workers_of(listener)
        assert len(workers) == 2

        def connection_to(worker: int) -> MLLPConnection:
            for _ in range(40):
                connection = MLLPConnection(listener.port)
                wait_for(lambda: sum(served_by(pid, listener.port) for pid in workers) == 1)
                if served_by(worker, listener.port):
                    return connection
                connection.close()
            raise AssertionError(f"no connection reached worker {worker}")

        feed = MLLPConnection(listener.port)
        for n, name in enumerate(("Schmit^Anne", "Schmitt^Marie", "Schmidt^Claire")):
            answer = feed.ask(
                er7(
                    f"MSH|^~\\&|HIS|CHL|MPI|ESANTE|20240101||ADT^A04^ADT_A01|S{n}|P|2.5\n"
                    f"PID|||S-{n}^^^CHL||{name}||1980010{n + 1}|F"
                )
            )
            assert b"MSA|AA|" in answer
        feed.close()

        def page(connection: MLLPConnection, control: str, pointer: str = "") -> list[str]:
            query = (
                f"MSH|^~\\&|PORTAL|ANY|MPI|ESANTE|20240101||QBP^Q22^QBP_Q21|{control}|P|2.5\n"
                "QPD|IHE PDQ Query|T1|@PID.5.1.1^SCHM*\nRCP|I|1^RD"
            )
            if pointer:
                query += f"\nDSC|{pointer}|I"
            return [s.raw for s in parse_message(connection.ask(er7(query))).segments]

        first = connection_to(workers[0])
        # Each process's PDQ directory follows the event log: wait until this one has all three.
        wait_for(lambda: "QAK|T1|OK|IHE PDQ Query|3|1|2" in page(first, "WAIT"))
        answer = page(first, "P1")
        pointer = next(s for s in answer if s.startswith("DSC|")).split("|")[1]
        first.close()

        second = connection_to(workers[1])
        answer = page(second, "P2", pointer)
        assert "MSA|AA|P2" in answer and "QAK|T1|OK|IHE PDQ Query|3|1|1" in answer
        pointer = next(s for s in answer if s.startswith("DSC|")).split("|")[1]
        second.close()

        third = connection_to(workers[0])
        answer = page(third, "P3", pointer)
        assert "MSA|AA|P3" in answer and "QAK|T1|OK|IHE PDQ Query|3|1|0" in answer
        third.close()
    finally:
        assert listener.stop(signal.SIGTERM) == 0
