"""Continuations of paged query answers, the same on the in-memory fake, SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mpi.domain.mpi_id import new_mpi_id
from mpi.service.bootstrap import Services
from mpi.service.continuations import Continuations
from mpi.service.directory import Hit
from mpi.service.ports import Continuation

AT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
PORTAL = ("PORTAL", "ANY")
QPD = "QPD|IHE PDQ Query|T2|@PID.5.1.1^SCHM*"


class Clock:
    def __init__(self) -> None:
        self.now = AT

    def __call__(self) -> datetime:
        return self.now


def continuation(token: str, **changes: Any) -> Continuation:
    remaining = ((new_mpi_id(), 0.987654321), (new_mpi_id(), 1.0))
    return replace(Continuation(token, PORTAL, "T2", QPD, remaining, 4, AT), **changes)


def test_continuations_round_trip_and_are_removed_one_by_sender_and_tag_or_by_age(
    any_services: Services,
) -> None:
    store = any_services.store
    kept = continuation("a1", query="QPD|Q|T2|@PID.5.1.1^Wéber~@PID.8^F")
    rows = [
        kept,
        continuation("b2"),
        continuation("c3", sender=("PORTAL", "OTHER")),
        continuation("d4", tag="T3"),
        continuation("e5", created_at=AT - timedelta(seconds=1)),
        continuation("f6", created_at=AT - timedelta(seconds=2), sender=("LIS", "LAB")),
    ]

    store.run(lambda uow: [uow.add_continuation(row) for row in rows])
    assert store.run(lambda uow: uow.find_continuation("a1"), write=False) == kept
    assert store.run(lambda uow: uow.find_continuation("zz"), write=False) is None

    assert store.run(lambda uow: uow.take_continuation("a1", "Q-1")) is True
    assert store.run(lambda uow: uow.take_continuation("a1", "Q-2")) is False  # taken already
    assert store.run(lambda uow: uow.take_continuation("zz", "Q-1")) is False
    assert store.run(lambda uow: uow.find_continuation("a1"), write=False) == replace(kept, taken_by="Q-1")

    # A cancellation: the sender's own of that tag, not another facility's, not another tag's.
    assert store.run(lambda uow: uow.remove_continuations(PORTAL, "T2")) == 3  # a1 (taken), b2, e5
    assert store.run(lambda uow: uow.remove_continuations(PORTAL, "T2")) == 0
    # Expiry: created strictly before the time given.
    assert store.run(lambda uow: uow.remove_continuations_before(AT - timedelta(seconds=1))) == 1  # f6
    left = store.run(lambda uow: [uow.find_continuation(t) for t in ("c3", "d4", "f6")], write=False)
    assert [c.token if c else None for c in left] == ["c3", "d4", None]


def test_a_continuation_is_used_up_only_by_its_sender_repeating_its_query_before_it_expires(
    any_services: Services,
) -> None:
    clock = Clock()
    hits = [Hit(new_mpi_id(), 0.5), Hit(new_mpi_id(), 0.25)]
    first = Continuations(any_services.store, timedelta(seconds=600), clock)
    second = Continuations(any_services.store, timedelta(seconds=600), clock)  # another process
    token = first.remember(PORTAL, "T2", QPD, hits, 5)

    assert second.take(token, ("LIS", "LAB"), QPD, "Q-1") is None  # another sender's guess
    assert second.take(token, PORTAL, QPD + "~@PID.8^F", "Q-1") is None  # another query
    assert second.take(token, PORTAL, QPD, "Q-1") == (hits, 5)
    assert first.take(token, PORTAL, QPD, "Q-2") is None  # used up by another request
    assert first.take(token, PORTAL, QPD, "Q-1") == (hits, 5)  # the same one, resent

    cancelled = first.remember(PORTAL, "T2", QPD, hits, 5)
    other_tag = first.remember(PORTAL, "T9", QPD, hits, 5)
    assert second.cancel(PORTAL, "T2") == 2  # and the one taken, kept for a resend of its request
    assert first.take(cancelled, PORTAL, QPD, "Q-3") is None
    assert first.take(other_tag, PORTAL, QPD, "Q-3") == (hits, 5)

    old = first.remember(PORTAL, "T2", QPD, hits, 5)
    clock.now += timedelta(seconds=601)
    assert second.take(old, PORTAL, QPD, "Q-4") is None  # expired
    stale = first.remember(PORTAL, "T2", QPD, hits, 5)
    clock.now += timedelta(seconds=601)
    first.remember(PORTAL, "T2", QPD, hits, 5)  # writing a new one deletes the expired ones
    assert any_services.store.run(lambda uow: uow.find_continuation(stale), write=False) is None
