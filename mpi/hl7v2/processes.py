"""``mpi serve --processes N``: several server processes sharing one MLLP listening socket.

One Python process applies messages on one core at a time (the interpreter lock), so a
listener in one process tops out at what one core can match and write. With
``--processes N`` the parent binds the socket, then forks N workers that each accept
connections on it (the kernel hands every new connection to one of them) and each run
the whole application: its own database connections, model, PDQ directory and
group commits. Everything they share lives in the database, which already keeps them
apart: a repeated message is recognised by every worker (its key is locked), records
and persons are locked as they are changed, each worker's PDQ directory follows
the event log, and a PDQ continuation pointer one worker gave is served by any (a
consumer may reconnect between pages). Only worker 0 sends PIX update notifications,
so each goes out once and in order; if it dies, its replacement resumes from the
durable outbox.

The parent forks before it opens any database connection or starts any thread, then
only supervises: it reports ready once every worker listens, replaces a worker that
dies, and on SIGTERM or SIGINT stops them all gracefully (each finishes its in-flight
messages) before it exits.

PostgreSQL gains from more processes up to the number of cores; SQLite, which commits
one writer at a time, gains little.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import ForkProcess
from types import FrameType

from mpi.errors import ListenError

log = logging.getLogger("mpi.hl7v2")

# A worker that dies younger than this is replaced after a delay that doubles each time.
YOUNG_SECONDS = 10.0
MAX_RESTART_DELAY_SECONDS = 60.0
# How long the parent waits for every worker to say it listens.
START_TIMEOUT_SECONDS = 600.0

_PR_SET_PDEATHSIG = 1

WorkerMain = Callable[[int, socket.socket, Callable[[], None]], None]
"""Runs worker ``index`` on the shared socket until SIGTERM; calls its argument once it listens."""


def listening_socket(host: str, port: int, backlog: int = 512) -> socket.socket:
    """The socket every worker accepts on (``port`` 0: any free port); ``host`` an IPv4 or IPv6
    address or a name, as for one process."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        return socket.create_server((host, port), family=family, backlog=backlog, reuse_port=False)
    except OSError as exc:
        raise ListenError(host, port, exc) from exc


def _stop_with_parent(parent: int) -> None:
    """Have the kernel send this worker SIGTERM when the parent dies (Linux), so that a killed
    parent never leaves workers behind holding the port."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: a supervisor must stop the process group
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


class _Worker:
    def __init__(self, index: int, process: ForkProcess, ready: Connection) -> None:
        self.index = index
        self.process = process
        self.ready = ready
        self.started = time.monotonic()


class Supervisor:
    """Forks the workers, keeps them running, and stops them on a signal."""

    def __init__(
        self, processes: int, sock: socket.socket, worker_main: WorkerMain, *, grace_seconds: float
    ) -> None:
        if processes < 1:
            raise ValueError("at least one worker process is needed")
        self._count = processes
        self._grace = grace_seconds
        self._socket = sock
        self._worker_main = worker_main
        self._context = multiprocessing.get_context("fork")
        self._workers: dict[int, _Worker] = {}
        self._stopping = False

    def run(self, ready: Callable[[], None]) -> int:
        """Serve until SIGTERM or SIGINT; returns the exit code (0 after a clean stop)."""
        previous = {s: signal.signal(s, self._stop_requested) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(self._count):
                self._start(index)
            if not self._await_ready():
                self._stop_all()
                return 1
            ready()
            return self._supervise()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _stop_requested(self, _signal: int, _frame: FrameType | None) -> None:
        self._stopping = True

    def _start(self, index: int) -> None:
        receive, send = self._context.Pipe(duplex=False)
        parent = os.getpid()

        def main() -> None:
            # The parent's handlers were inherited with the fork: the worker's own event loop
            # installs its handlers for these signals once it runs.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _stop_with_parent(parent)
            receive.close()

            def listening() -> None:
                send.send(os.getpid())
                send.close()

            self._worker_main(index, self._socket, listening)

        process = self._context.Process(target=main, name=f"mpi-serve-{index}", daemon=False)
        process.start()
        send.close()
        if (replaced := self._workers.get(index)) is not None:
            replaced.ready.close()
        self._workers[index] = _Worker(index, process, receive)

    def _await_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        waiting = {w.ready: w for w in self._workers.values()}
        while waiting and not self._stopping and time.monotonic() < deadline:
            sentinels = {w.process.sentinel: w for w in waiting.values()}
            done = multiprocessing.connection.wait([*waiting, *sentinels], timeout=0.5)
            for item in done:
                if item in sentinels:
                    worker = sentinels[item]
                    code = worker.process.exitcode
                    log.error("worker %d exited with %s before listening", worker.index, code)
                    return False
                if isinstance(item, Connection) and item in waiting:
                    try:
                        item.recv()
                    except EOFError:
                        continue  # the worker died: its sentinel says so next
                    del waiting[item]
        return not waiting and not self._stopping

    def _supervise(self) -> int:
        """Replace dead workers until a stop is requested: at once after a long life, after a
        doubling delay (up to a minute) when one keeps dying young."""
        restart_at: dict[int, float] = {}
        quick_deaths: dict[int, int] = {}
        while not self._stopping:
            now = time.monotonic()
            for index, when in list(restart_at.items()):
                if when <= now:
                    del restart_at[index]
                    self._start(index)
            alive = {w.process.sentinel: w for w in self._workers.values() if w.index not in restart_at}
            for item in multiprocessing.connection.wait(list(alive), timeout=0.5):
                worker = alive[item]  # type: ignore[index]
                worker.process.join()
                if self._stopping:
                    break
                lived = time.monotonic() - worker.started
                quick_deaths[worker.index] = (
                    quick_deaths.get(worker.index, 0) + 1 if lived < YOUNG_SECONDS else 0
                )
                delay = min(2.0 ** quick_deaths[worker.index] - 1, MAX_RESTART_DELAY_SECONDS)
                log.error(
                    "worker %d exited with %s after %.0f s; replacing it in %.0f s",
                    worker.index,
                    worker.process.exitcode,
                    lived,
                    delay,
                )
                restart_at[worker.index] = time.monotonic() + delay
        self._stop_all()
        return 0

    def _stop_all(self) -> None:
        """SIGTERM every worker (each finishes its in-flight messages), then wait for them."""
        for worker in self._workers.values():
            if worker.process.is_alive() and worker.process.pid is not None:  # not waiting to restart
                os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._grace + 30.0
        for worker in self._workers.values():
            worker.process.join(timeout=max(deadline - time.monotonic(), 0.1))
            if worker.process.is_alive():
                log.error("worker %d did not stop within its grace period: killing it", worker.index)
                worker.process.kill()
                worker.process.join()
