"""A real `mpi serve` process on loopback, over a SQLite file, and helpers to talk MLLP to it."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from mpi.hl7v2.framing import Frame, MLLPDecoder, frame

CHL_OID = "1.3.182.3.1.1.1.2"
START_TIMEOUT = 60.0

CONFIG = """
[listener]
host = "127.0.0.1"
port = 0
idle_timeout_seconds = 30
max_message_bytes = 65536
shutdown_grace_seconds = 10

[identity]
application = "MPI"
facility = "ESANTE"

[[domain]]
namespace = "CHL"
universal_id = "1.3.182.3.1.1.1.2"
universal_id_type = "ISO"

[[domain]]
namespace = "LABO"

[[domain]]
namespace = "LUX"
universal_id = "1.3.182.4.4"
universal_id_type = "ISO"
kind = "matricule"
identifier_type = "NI"

[[domain]]
namespace = "MPI"
kind = "mpi"

[[sender]]
application = "HIS"
facility = "CHL"
domains = ["CHL"]

[[sender]]
application = "LIS"
facility = "*"
domains = ["LABO"]

[[sender]]
application = "PORTAL"
facility = "*"

[notifications]
poll_interval_seconds = 0.1
retry_initial_seconds = 0.2
retry_max_seconds = 1
"""


@dataclass
class Listener:
    process: subprocess.Popen[bytes]
    port: int

    def stop(self, how: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(how)
        return self.process.wait(timeout=timeout)


def write_config(directory: Path, extra: str = "") -> Path:
    path = directory / "hl7.toml"
    path.write_text(CONFIG + extra, encoding="utf-8")
    return path


def start_listener(
    config: Path, database_url: str, log: Path | None = None, extra_args: Sequence[str] = ()
) -> Listener:
    """A running ``mpi serve`` (with ``extra_args``) whose PDQ directories have loaded (it
    listens before they have); its log goes to ``log`` if given, else next to ``config``."""
    log = log if log is not None else config.with_name(f"{config.stem}-serve.log")
    command = [
        sys.executable,
        "-c",
        "from mpi.cli.serve_command import serve_app; serve_app()",
        "--config",
        str(config),
        "--db",
        database_url,
        "--log-level",
        "info",
        *extra_args,
    ]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=environment)
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    line = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            if b"listening on" in line:
                listener = Listener(process, int(line.rsplit(b":", 1)[1]))
                _wait_for_directories(listener, log, _processes(extra_args), deadline)
                return listener
            if not line and process.poll() is not None:
                break
    process.kill()
    raise AssertionError(f"mpi serve did not start (last line {line!r}, exit {process.poll()})")


def _processes(extra_args: Sequence[str]) -> int:
    arguments = list(extra_args)
    return int(arguments[arguments.index("--processes") + 1]) if "--processes" in arguments else 1


def _wait_for_directories(listener: Listener, log: Path, processes: int, deadline: float) -> None:
    while log.read_text(encoding="utf-8", errors="replace").count("PDQ directory loaded") < processes:
        if time.monotonic() > deadline or listener.process.poll() is not None:
            listener.process.kill()
            raise AssertionError(f"mpi serve did not load its PDQ directory; see {log}")
        time.sleep(0.05)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Listener]:
    running = start_listener(write_config(tmp_path), f"sqlite:///{tmp_path / 'mpi.db'}")
    try:
        yield running
    finally:
        running.stop(signal.SIGKILL)


class MLLPConnection:
    """A plain socket client: send frames or raw bytes, read answers one frame at a time."""

    def __init__(self, port: int, timeout: float = 20.0) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.decoder = MLLPDecoder(10_000_000)
        self.frames: list[bytes] = []

    def send(self, payload: bytes) -> None:
        self.socket.sendall(frame(payload))

    def send_raw(self, data: bytes) -> None:
        self.socket.sendall(data)

    def receive(self) -> bytes:
        while not self.frames:
            data = self.socket.recv(65536)
            if not data:
                raise ConnectionError("the listener closed the connection")
            self.frames += [e.payload for e in self.decoder.feed(data) if isinstance(e, Frame)]
        return self.frames.pop(0)

    def ask(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.receive()

    def close(self) -> None:
        self.socket.close()


def er7(text: str) -> bytes:
    return text.strip().replace("\n", "\r").encode("utf-8") + b"\r"
