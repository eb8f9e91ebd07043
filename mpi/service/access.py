"""Recording who read whose data (the trail is read back by :class:`~mpi.service.views.AccessTrail`).

A command that shows patient data to someone takes a :class:`Viewer` and
records the access in its own transaction, before anything is shown: no
audit entry, no data. A query answered many times a second (an HL7 PIX or PDQ
query) instead hands its accesses to a :class:`DeferredAccessLog`, which writes
them in batches from a background thread, as IHE's audit trail (ATNA) sends
its records after the fact; a hard kill loses at most the last
``interval_seconds`` of them, a graceful stop none.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from mpi.domain.access import Access, AccessAction, AccessChannel
from mpi.service.ports import Store, UnitOfWork

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_SECONDS = 0.5
# Entries kept while the database is unreachable; past this the oldest are dropped (and said so).
MAX_PENDING = 100_000


@dataclass(frozen=True)
class Viewer:
    """Who is shown patient data, and through which channel."""

    actor: str
    channel: AccessChannel

    def access(
        self,
        at: datetime,
        action: AccessAction,
        subjects: Iterable[str],
        criteria: str | None = None,
        results: int | None = None,
    ) -> Access:
        shown = tuple(sorted(set(subjects)))
        count = len(shown) if results is None else results
        return Access(at, self.actor, self.channel, action, shown, criteria, count)

    def record(
        self,
        uow: UnitOfWork,
        at: datetime,
        action: AccessAction,
        subjects: Iterable[str],
        criteria: str | None = None,
        results: int | None = None,
    ) -> None:
        """Write the access in ``uow``: the transaction of the read it records."""
        uow.add_accesses([self.access(at, action, subjects, criteria, results)])


class DeferredAccessLog:
    """Queues accesses and writes them in one transaction every ``interval_seconds``."""

    def __init__(self, store: Store, interval_seconds: float = DEFAULT_INTERVAL_SECONDS) -> None:
        self._store = store
        self._interval = interval_seconds
        self._pending: list[Access] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one flush at a time keeps the trail in order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, access: Access) -> None:
        with self._lock:
            self._pending.append(access)
            overflow = len(self._pending) - MAX_PENDING
            if overflow > 0:
                del self._pending[:overflow]
        if overflow > 0:
            log.error("the access audit trail could not be written: %d oldest entries dropped", overflow)

    def flush(self) -> int:
        """Write what is queued; on failure it stays queued for the next flush. Returns the count."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return 0
            try:
                self._store.run(lambda uow: uow.add_accesses(batch))
            except Exception:
                with self._lock:
                    self._pending[:0] = batch
                raise
            return len(batch)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mpi-access-log", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception as exc:  # kept queued: the next round retries
                log.warning("writing the access audit trail failed (%s); retrying", type(exc).__name__)

    def close(self) -> None:
        """Stop the background thread and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
