"""Holes in the event log a reader has passed: sequence numbers perhaps still to commit.

On PostgreSQL a sequence number is taken when an event is inserted and becomes
visible when its transaction commits, so a later event can be read before an
earlier one. A reader that must not wait for the earlier one (the PDQ directory:
a search would lag behind every change meanwhile) moves on, remembers the hole
and reads it again until it is filled or too old to be anything but a
rolled-back transaction's.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from mpi.domain.events import Event
from mpi.service.ports import UnitOfWork

# How long a hole in the event log may still be a transaction to commit. A group-commit
# writer holds a batch's events for milliseconds, a retried transaction for longer; past
# this the hole is taken for a rolled-back transaction's and no longer looked at.
HOLE_GRACE_SECONDS = 120.0


@dataclass(frozen=True)
class Hole:
    """Sequence numbers ``first``..``last`` (both included) not seen yet, since ``seen_at``."""

    first: int
    last: int
    seen_at: float

    def without(self, seqs: Sequence[int]) -> list[Hole]:
        """What is left of the hole once the sorted ``seqs`` have been read."""
        pieces: list[Hole] = []
        start = self.first
        for seq in seqs[bisect.bisect_left(seqs, self.first) : bisect.bisect_right(seqs, self.last)]:
            if seq > start:
                pieces.append(Hole(start, seq - 1, self.seen_at))
            start = seq + 1
        if start <= self.last:
            pieces.append(Hole(start, self.last, self.seen_at))
        return pieces


def holes_before(cursor: int, seqs: Sequence[int], seen_at: float) -> list[Hole]:
    """The gaps in the ascending ``seqs`` read after ``cursor``."""
    holes: list[Hole] = []
    expected = cursor + 1
    for seq in seqs:
        if seq > expected:
            holes.append(Hole(expected, seq - 1, seen_at))
        expected = max(expected, seq + 1)
    return holes


def distinct_holes(holes: Sequence[Hole]) -> list[Hole]:
    """``holes`` without repeats; one seen several times keeps its first sighting. Holes that
    overlap otherwise are kept as they are: reading a filled hole twice is harmless."""
    first_seen: dict[tuple[int, int], float] = {}
    for hole in holes:
        span = (hole.first, hole.last)
        first_seen[span] = min(hole.seen_at, first_seen.get(span, hole.seen_at))
    return [Hole(first, last, seen_at) for (first, last), seen_at in sorted(first_seen.items())]


def look_back(uow: UnitOfWork, cursor: int, depth: int, now: float) -> tuple[list[Event], list[Hole]]:
    """The events among the ``depth`` sequence numbers up to ``cursor``, and the holes between
    them: what a reader that starts (or loads everything) at ``cursor`` may not have seen."""
    start = max(cursor - depth, 0)
    recent = uow.events_in([(start + 1, cursor)]) if cursor > start else []
    return recent, holes_before(start, [e.seq or 0 for e in recent], now)


def filled_holes(
    uow: UnitOfWork, holes: Sequence[Hole], now: float, grace: float, limit: int
) -> tuple[list[Event], list[Hole]]:
    """The events committed since into ``holes`` (the first ``limit``; the rest are read next
    time), and the holes left: those older than ``grace`` seconds are forgotten."""
    live = [hole for hole in holes if now - hole.seen_at < grace]
    if not live:
        return [], []
    late = uow.events_in([(hole.first, hole.last) for hole in live], limit=limit)
    if not late:
        return [], live
    seqs = sorted(e.seq or 0 for e in late)
    return late, [piece for hole in live for piece in hole.without(seqs)]
