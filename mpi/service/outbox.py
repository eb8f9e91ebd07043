"""The durable outbox of cross-reference notifications (PIX update notifications, ITI-10).

Every change to the MPI, whichever adapter made it, is an event in the log.
:meth:`Outbox.collect` reads the events after its cursor, finds the persons
whose cross-references they may have changed, asks a *composer* (the HL7
adapter) for the message each consumer could get about each person, keeps
those that tell that consumer something new, and stores them with the
advanced cursor in one transaction. So no change is missed, across restarts,
whichever process made it.

Something new is judged by identifier, not by person alone: what a consumer
believes about an identifier is what the last message listing it said, and
that message may be about another person than the one holding it now (an
unmerge gives identifiers back to a person retired meanwhile; a record moved
away and back leaves its holder's own last message stale). So a person is
announced unless the last message about it lists exactly its identifiers and
no message about a person concerned by the same events lists one of them with
others; a person that is not cross-referenced (see :class:`Notification`) is
announced only when such a message lists one of its identifiers. Whatever the
consumer was told about an identifier is, after each collection, the last
message about the person holding it; an identifier that moves is in the last
message about the person it left, a person concerned by the move: so it is
among those compared, and a change is never missed (a repeat can happen).

On PostgreSQL a later event can commit before an earlier one, so the cursor
passing an event does not mean it was read. The collector does not wait for a
hole in the sequence (every consumer would hear of every change late, and
holes are common: a refused message rolls back its group commit's first try):
it remembers the hole and reads it again at each collection until it is
filled or has lasted ``gap_grace`` (a rolled-back transaction leaves a hole for
ever). An event read late is announced as any other: each message says what a
person's cross-references are now, so its order among the events does not
matter. Holes are remembered in memory; a collector that starts reads again the
last events below the cursor, so a transaction that was still open when the
previous one stopped is not missed (announcing again what did not change sends
nothing).

Delivery is the adapter's job; it records each outcome here: delivered, failed
for good (the receiver refused the message as erroneous), or retried later
with exponential back-off. Messages to one consumer go out in order, one at a
time, so a consumer never sees an older state after a newer one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from mpi.domain.events import Event, IdentifierChanged, LinkChanged, RecordChanged
from mpi.service.crossrefs import PersonIdentifiers, identifiers_of
from mpi.service.delivery import OutboundMessage, OutboundStatus
from mpi.service.log_holes import HOLE_GRACE_SECONDS, Hole, filled_holes, holes_before, look_back
from mpi.service.ports import Store, UnitOfWork
from mpi.service.registry import Clock, utc_now

DEFAULT_CURSOR = "pix-update-notifications"
# A collector that starts reads again this many events below the cursor: far more than the
# transactions writers can have open at once.
_START_LOOK_BACK = 500
_LATE_BATCH = 500


@dataclass(frozen=True)
class Notification:
    """A message a composer wants sent to one consumer about one person."""

    consumer: str
    identifiers: str  # what it announces: one identifier a line, sorted (equal text: nothing new)
    payload: bytes
    # The person has identifiers in two or more of the consumer's domains. If not, the
    # message only withdraws cross-references the consumer was told of, and goes out only
    # when the consumer was told of one of its identifiers with others.
    cross_referenced: bool = True


Composer = Callable[[PersonIdentifiers, int], list[Notification]]
"""Given a person's current identifiers and the event seq, the messages for each consumer."""


@dataclass(frozen=True)
class Backoff:
    initial: timedelta = timedelta(seconds=2)
    maximum: timedelta = timedelta(minutes=10)

    def after(self, attempts: int) -> timedelta:
        """The wait before attempt ``attempts + 1``: doubling from ``initial`` up to ``maximum``."""
        doubled: timedelta = self.initial * (2 ** min(max(attempts - 1, 0), 30))
        return min(self.maximum, doubled)


def persons_concerned(uow: UnitOfWork, events: Sequence[Event]) -> list[str]:
    """The persons whose identifiers the events may have changed, in order of first mention."""
    persons: dict[str, None] = {}
    records: dict[int, None] = {}
    for event in events:
        persons.update(dict.fromkeys(event.subjects))
        for change in event.changes:
            match change:
                case LinkChanged(before=before, after=after):
                    persons[after.mpi_id] = None
                    if before is not None:
                        persons[before.mpi_id] = None
                case RecordChanged(record=record):
                    records[record.record_id] = None
                case IdentifierChanged(after=identifier):
                    records[identifier.record_id] = None
                case _:
                    pass
    if records:
        links = uow.get_links(list(records))
        persons.update(dict.fromkeys(links[record_id].mpi_id for record_id in records if record_id in links))
    return list(persons)


def _news(note: Notification, own: set[str] | None, told: Sequence[set[str]]) -> bool:
    """Whether ``note`` tells its consumer something new, given the last message about its person
    (``own``) and those about every person concerned by the events (``told``)."""
    mine = set(note.identifiers.splitlines())
    listed = [identifiers for identifiers in told if identifiers & mine]
    if any(identifiers != mine for identifiers in listed):
        return True  # the consumer links one of them with others
    if own == mine:
        return False  # the consumer knows exactly this
    return note.cross_referenced or bool(listed)


class Outbox:
    def __init__(
        self,
        store: Store,
        compose: Composer,
        *,
        clock: Clock = utc_now,
        backoff: Backoff | None = None,
        gap_grace: timedelta = timedelta(seconds=HOLE_GRACE_SECONDS),
        cursor: str = DEFAULT_CURSOR,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._compose = compose
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._gap_grace = gap_grace.total_seconds()
        self._cursor = cursor
        self._monotonic = monotonic
        # Below the cursor, events perhaps still to commit; None until the first collection,
        # which looks back at the last events before the cursor.
        self._holes: list[Hole] | None = None

    def collect(self, limit: int = 500) -> int:
        """Turn the next events into outbound messages; returns how many new events were read."""
        read, holes = self._store.run(lambda uow: self._collect(uow, limit))
        self._holes = holes  # once committed: a failed collection reads the same events again
        return read

    def _collect(self, uow: UnitOfWork, limit: int) -> tuple[int, list[Hole]]:
        # Two collectors (two servers on one database) take turns: each reads the cursor the
        # other left, so no event is turned into messages twice.
        uow.lock_keys([f"outbox:{self._cursor}"])
        cursor = uow.event_cursor(self._cursor)
        if cursor is None:
            # Consumers learn of changes from when notifications are first switched on;
            # the history before that is what a PIX query is for.
            uow.set_event_cursor(self._cursor, uow.last_event_seq())
            return 0, []
        seen_at = self._monotonic()
        late, holes = self._late_events(uow, cursor, seen_at)
        events = uow.events(after=cursor, limit=limit)
        holes.extend(holes_before(cursor, [e.seq or 0 for e in events], seen_at))
        if not late and not events:
            return 0, holes
        read = [*late, *events]
        persons = persons_concerned(uow, read)
        seq = max(e.seq or 0 for e in read)
        current = identifiers_of(uow, persons)
        drafts = [(person, n) for person in current.values() for n in self._compose(person, seq)]
        now = self._clock()
        fresh: list[OutboundMessage] = []
        for consumer in sorted({n.consumer for _, n in drafts}):
            wanted = [(p, n) for p, n in drafts if n.consumer == consumer]
            # Retired persons too: their last messages may still list identifiers of others.
            told = {
                mpi_id: set(text.splitlines())
                for mpi_id, text in uow.last_announced(consumer, persons).items()
            }
            fresh.extend(
                OutboundMessage(
                    message_id=0,
                    consumer=consumer,
                    mpi_id=person.mpi_id,
                    event_seq=seq,
                    identifiers=note.identifiers,
                    payload=note.payload,
                    status=OutboundStatus.PENDING,
                    attempts=0,
                    created_at=now,
                    next_attempt_at=now,
                )
                for person, note in wanted
                if _news(note, told.get(person.mpi_id), list(told.values()))
            )
        uow.add_outbound(fresh)
        if events:
            uow.set_event_cursor(self._cursor, events[-1].seq or cursor)
        return len(events), holes

    def _late_events(self, uow: UnitOfWork, cursor: int, now: float) -> tuple[list[Event], list[Hole]]:
        """The events committed since into holes the cursor has passed, and the holes left; at
        the first collection, every event of the last ones before the cursor."""
        if self._holes is None:
            return look_back(uow, cursor, _START_LOOK_BACK, now)
        return filled_holes(uow, self._holes, now, self._gap_grace, _LATE_BATCH)

    # -- delivery bookkeeping ---------------------------------------------------------
    def due(self) -> list[OutboundMessage]:
        """The oldest pending message of each consumer, if its time has come. Whatever one
        consumer has waiting (it may be down for days), the others' heads are found."""
        now = self._clock()
        heads = self._store.run(lambda uow: uow.pending_heads(), write=False)
        return [m for m in heads if m.next_attempt_at <= now]

    def head(self, consumer: str) -> OutboundMessage | None:
        """``consumer``'s oldest pending message if its time has come, else ``None``."""
        now = self._clock()
        head = self._store.run(lambda uow: uow.pending_head(consumer), write=False)
        return head if head is not None and head.next_attempt_at <= now else None

    def pending_count(self) -> int:
        return len(self._store.run(lambda uow: uow.pending_outbound(1_000_000), write=False))

    def delivered(self, message: OutboundMessage) -> None:
        now = self._clock()
        self._save(
            replace(
                message,
                status=OutboundStatus.DELIVERED,
                attempts=message.attempts + 1,
                delivered_at=now,
                last_error=None,
            )
        )

    def failed(self, message: OutboundMessage, error: str) -> None:
        """The receiver refused the message as erroneous: resending it unchanged cannot help."""
        self._save(
            replace(message, status=OutboundStatus.FAILED, attempts=message.attempts + 1, last_error=error)
        )

    def retry_later(self, message: OutboundMessage, error: str) -> OutboundMessage:
        attempts = message.attempts + 1
        later = replace(
            message,
            attempts=attempts,
            next_attempt_at=self._clock() + self._backoff.after(attempts),
            last_error=error,
        )
        self._save(later)
        return later

    def _save(self, message: OutboundMessage) -> None:
        self._store.run(lambda uow: uow.save_outbound(message))
