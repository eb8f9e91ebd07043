"""Group commit: the writes many threads submit at about the same time share one transaction.

A feed message's work is small (a registration is a few milliseconds) and each
transaction has a fixed cost on top: a pooled connection, ``BEGIN IMMEDIATE`` on
SQLite, and the commit, which on PostgreSQL waits for the write-ahead log to
reach the disk. :class:`GroupCommit` lets the works that arrive while a
transaction is running wait for it to end and then run together in the next
one, and every work of a batch returns (or raises) to its caller only after the
batch has committed.

A work refused by the service (an ``MPIError``: an unknown key, a conflict) must
have only its own changes rolled back. Refusals are rare, so a batch first runs
its works one after the other without savepoints (two statements less per work);
if one is refused, that transaction is rolled back and the batch runs again with
each work in a savepoint of its own, where the refused one rolls back alone.
Anything else that goes wrong fails the batch's transaction: the store retries it
if it lost to a concurrent one (a deadlock), and otherwise each work is replayed
alone. Nothing is acknowledged before it is durable, and nothing that fails
takes the others down with it.

There is no thread of its own: the first caller that finds a writer slot free
runs the batch of everything queued so far (usually just its own work when the
load is light, so a lone message waits for nobody) and then hands the slot to
the oldest waiting caller, which runs the next batch; every other caller sleeps
until its batch is done.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from mpi.errors import MPIError
from mpi.service.ports import Store, UnitOfWork

T = TypeVar("T")

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 32


def _closed_gate() -> threading.Lock:
    gate = threading.Lock()
    gate.acquire()
    return gate


@dataclass(eq=False)
class _Pending(Generic[T]):
    work: Callable[[UnitOfWork], T]
    # Its thread sleeps on its own gate, so waking one waiter never wakes the others.
    gate: threading.Lock = field(default_factory=_closed_gate)
    signalled: bool = False  # the gate is open (or about to be): state worth a look changed
    leads: bool = False  # a writer slot was handed to it: it runs the next batch
    done: bool = False
    value: T | None = None
    error: Exception | None = None


class GroupCommit:
    """Runs works submitted from many threads in shared write transactions of ``store``.

    ``writers`` batches may run at once (1 for SQLite, which has one writer
    anyway); a batch holds at most ``max_batch`` works.
    """

    def __init__(self, store: Store, *, writers: int = 1, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        if writers < 1 or max_batch < 1:
            raise ValueError("writers and max_batch must be at least 1")
        self._store = store
        self._max_batch = max_batch
        self._free = writers
        self._queue: deque[_Pending[Any]] = deque()
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """How many works wait for a batch."""
        with self._lock:
            return len(self._queue)

    def run(self, work: Callable[[UnitOfWork], T]) -> T:
        """Run ``work`` in a savepoint of a shared transaction; return once that has committed.

        If ``work`` raises, its changes are rolled back, the others' are not, and
        the exception is raised here (after the others have run alone, unless it
        is an ``MPIError``). Like ``Store.run``, ``work`` may run more
        than once (a transaction lost to a concurrent one is retried), so it must
        have no effect outside the unit of work.
        """
        item: _Pending[T] = _Pending(work)
        with self._lock:
            self._queue.append(item)
            if self._free:
                self._free -= 1
                item.leads = True
        while True:
            with self._lock:
                item.signalled = False
                leads, item.leads = item.leads, False
            if leads:
                self._lead()
            if item.done:
                break
            item.gate.acquire()
        if item.error is not None:
            raise item.error
        return cast(T, item.value)

    def _lead(self) -> None:
        """Run the batch at the head of the queue, then hand the writer slot on."""
        try:
            with self._lock:
                batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
            if batch:
                self._run_batch(batch)
        finally:
            with self._lock:
                successor = next((queued for queued in self._queue if not queued.leads), None)
                if successor is None:
                    self._free += 1
                else:
                    successor.leads = True
                    _signal(successor)

    def _run_batch(self, batch: list[_Pending[Any]]) -> None:
        """Run ``batch`` in one transaction and record each work's outcome; never raises."""

        def together(uow: UnitOfWork) -> list[tuple[Any, Exception | None]]:
            # If one raises, rolling the whole transaction back undoes it and the others.
            return [(item.work(uow), None) for item in batch]

        def in_savepoints(uow: UnitOfWork) -> list[tuple[Any, Exception | None]]:
            return [_in_savepoint(uow, item.work) for item in batch]

        interrupted = RuntimeError("the transaction was interrupted; the message was not applied")
        outcomes: list[tuple[Any, Exception | None]] = [(None, interrupted)] * len(batch)
        try:
            try:
                outcomes = self._store.run(together)
            except MPIError:
                if len(batch) == 1:
                    raise  # alone in its transaction, the refused work rolled back alone
                log.debug(
                    "a work of a batch of %d was refused: the batch runs again in savepoints", len(batch)
                )
                outcomes = self._store.run(in_savepoints)
        except Exception as failure:
            # Something other than a refusal went wrong (or the commit failed): nothing of
            # the batch was committed. Alone, each work fails or succeeds on its own.
            alone = len(batch) > 1
            outcomes = [self._alone(item) for item in batch] if alone else [(None, failure)]
        finally:
            # Whatever happened, every caller of the batch is answered: none may sleep forever.
            with self._lock:
                for item, (value, error) in zip(batch, outcomes, strict=True):
                    item.value, item.error, item.done = value, error, True
                    _signal(item)

    def _alone(self, item: _Pending[Any]) -> tuple[Any, Exception | None]:
        try:
            return self._store.run(item.work), None
        except Exception as error:
            return None, error


def _signal(item: _Pending[Any]) -> None:
    """Open the item's gate (called with the lock held; one opening per look is enough)."""
    if not item.signalled:
        item.signalled = True
        item.gate.release()


def _in_savepoint(uow: UnitOfWork, work: Callable[[UnitOfWork], T]) -> tuple[T | None, Exception | None]:
    try:
        return uow.savepoint(lambda: work(uow)), None
    except MPIError as error:
        return None, error
