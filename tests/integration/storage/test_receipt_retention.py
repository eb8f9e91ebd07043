"""The answers kept for received messages are deleted after their retention, oldest first, a
batch at a time: the table would otherwise grow with every message ever received."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mpi.service.bootstrap import Services
from mpi.service.delivery import MessageKey, Receipt
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.feed import Feed, FeedTransaction

AT = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def key(n: int) -> MessageKey:
    return MessageKey("HIS", "CHL", f"C{n}")


def test_receipts_received_before_a_time_are_forgotten_oldest_first(any_services: Services) -> None:
    store = any_services.store
    received = [Receipt(key(n), f"ACK {n}".encode(), AT + timedelta(days=n)) for n in range(5)]
    store.run(lambda uow: [uow.add_receipt(r) for r in reversed(received)])
    before = AT + timedelta(days=3)
    assert store.run(lambda uow: uow.forget_receipts(before, 2)) == 2
    assert store.run(lambda uow: [uow.find_receipt(key(n)) for n in range(5)], write=False) == [
        None,
        None,
        *received[2:],
    ]
    assert store.run(lambda uow: uow.forget_receipts(before, 2)) == 1
    assert store.run(lambda uow: uow.forget_receipts(before, 2)) == 0
    assert (
        store.run(lambda uow: [uow.find_receipt(key(n)) for n in range(5)], write=False)[3:] == received[3:]
    )


def test_a_message_resent_after_the_retention_is_applied_again(any_services: Services) -> None:
    now = [AT]
    feed = Feed(any_services.settings, any_services.store, FakeMatcher(), lambda: now[0])
    applied: list[str] = []

    def change(_: FeedTransaction) -> str:
        applied.append("applied")
        return "done"

    def answer(result: str) -> bytes:
        return f"ACK {len(applied)}".encode()

    assert feed.apply(key(1), "hl7:HIS/CHL", change, answer) == (b"ACK 1", False)
    now[0] = AT + timedelta(days=29)
    assert feed.forget_receipts(timedelta(days=30), batch=1) == 0
    assert feed.apply(key(1), "hl7:HIS/CHL", change, answer) == (b"ACK 1", True)  # a resend
    now[0] = AT + timedelta(days=31)
    assert feed.forget_receipts(timedelta(days=30), batch=1) == 1
    assert feed.apply(key(1), "hl7:HIS/CHL", change, answer) == (b"ACK 2", False)
    assert applied == ["applied", "applied"]
