"""Continuations of paged query answers (PDQ's DSC pointer), kept in the store.

A query whose answer is longer than one page hands its consumer a pointer to the
rest; the consumer asks for the next page with that pointer, possibly on a new
connection, which ``mpi serve --processes N`` may give to another process: so
the rest lives in the database, where every process finds it. A pointer is
used up by the one request that may use it: from the consumer it was given to,
repeating the query it was given for. A request from anyone else, or for
another query, is refused and leaves the pointer to its rightful consumer. The
request that used it up may come again (same MSH-10: its answer was lost and
the sender resent it) and gets the same page.
Pointers expire ``ttl`` after they were given; expired ones are deleted
whenever a new one is written.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from mpi.service.directory import Hit
from mpi.service.ports import Continuation, Store, UnitOfWork

Sender = tuple[str, str]  # (application, facility) as they name themselves in the message header


class Continuations:
    def __init__(self, store: Store, ttl: timedelta, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock

    def remember(self, sender: Sender, tag: str, query: str, remaining: Sequence[Hit], total: int) -> str:
        """Keep the hits not yet shown; returns the pointer to hand the consumer."""
        now = self._clock()
        continuation = Continuation(
            token=secrets.token_hex(8),
            sender=sender,
            tag=tag,
            query=query,
            remaining=tuple((hit.mpi_id, float(hit.confidence)) for hit in remaining),
            total=total,
            created_at=now,
        )

        def work(uow: UnitOfWork) -> None:
            uow.remove_continuations_before(now - self._ttl)
            uow.add_continuation(continuation)

        self._store.run(work)
        return continuation.token

    def take(self, token: str, sender: Sender, query: str, request: str) -> tuple[list[Hit], int] | None:
        """The hits left and the total of the answer ``token`` points into, if ``sender`` may use
        it for ``query``, and the pointer is used up by ``request`` (the asking message's id);
        ``None`` if it is unknown, expired, used up by another request, or was given to another
        sender or for another query (it is then kept). The request that used it up may ask
        again: its answer may have been lost, and the sender resends."""
        oldest = self._clock() - self._ttl

        def work(uow: UnitOfWork) -> Continuation | None:
            found = uow.find_continuation(token)
            if found is None or found.created_at < oldest:
                return None  # expired ones are deleted as new ones are written
            if found.sender != sender or found.query != query:
                return None
            if found.taken_by is not None:
                return found if found.taken_by == request else None
            # Two requests for one pointer at once: only the one that marks it gets the page.
            return found if uow.take_continuation(token, request) else None

        found = self._store.run(work)
        if found is None:
            return None
        return [Hit(mpi_id, confidence) for mpi_id, confidence in found.remaining], found.total

    def cancel(self, sender: Sender, tag: str) -> int:
        """Forget the pointers given to ``sender`` for the query ``tag``; returns how many."""
        return self._store.run(lambda uow: uow.remove_continuations(sender, tag))
