"""Each consumer's notifications go out in order, whatever another consumer has waiting: a
consumer down for days must not hold back the others."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from mpi.service.bootstrap import Services
from mpi.service.delivery import OutboundMessage, OutboundStatus
from mpi.service.outbox import Outbox

AT = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def message(consumer: str, n: int) -> OutboundMessage:
    return OutboundMessage(
        message_id=0,
        consumer=consumer,
        mpi_id=f"P{n:012d}",
        event_seq=n,
        identifiers=f"CHL|{n}",
        payload=b"MSH|...",
        status=OutboundStatus.PENDING,
        attempts=0,
        created_at=AT,
        next_attempt_at=AT,
    )


def test_the_oldest_pending_message_of_each_consumer_is_due(any_services: Services) -> None:
    store = any_services.store
    backlog = [message("registry", n) for n in range(300)]  # the registry is down
    store.run(lambda uow: uow.add_outbound([*backlog, message("gp", 300), message("gp", 301)]))
    outbox = Outbox(store, lambda person, seq: [], clock=lambda: AT + timedelta(seconds=1))

    due = outbox.due()
    assert [(m.consumer, m.event_seq) for m in due] == [("registry", 0), ("gp", 300)]
    outbox.delivered(due[1])
    assert [(m.consumer, m.event_seq) for m in outbox.due()] == [("registry", 0), ("gp", 301)]

    # A head waiting for its retry holds back its own consumer only.
    head = store.run(lambda uow: uow.pending_heads(), write=False)[0]
    store.run(lambda uow: uow.save_outbound(replace(head, next_attempt_at=AT + timedelta(hours=1))))
    assert [(m.consumer, m.event_seq) for m in outbox.due()] == [("gp", 301)]


def test_what_a_consumer_was_told_leaves_out_what_it_refused(any_services: Services) -> None:
    store = any_services.store
    person = message("registry", 0).mpi_id

    def send(n: int, status: OutboundStatus) -> None:
        about = replace(message("registry", n), mpi_id=person)
        store.run(lambda uow: uow.add_outbound([about]))
        added = store.run(lambda uow: uow.pending_outbound(10), write=False)[-1]
        if status is not OutboundStatus.PENDING:
            store.run(lambda uow: uow.save_outbound(replace(added, status=status)))

    def told() -> dict[str, str]:
        return store.run(lambda uow: uow.last_announced("registry", [person]), write=False)

    send(1, OutboundStatus.DELIVERED)
    send(2, OutboundStatus.FAILED)
    assert told() == {person: "CHL|1"}
    send(3, OutboundStatus.PENDING)
    send(4, OutboundStatus.FAILED)
    assert told() == {person: "CHL|3"}


def test_a_consumer_s_next_message_is_read_for_it_alone(any_services: Services) -> None:
    store = any_services.store
    store.run(lambda uow: uow.add_outbound([*(message("down", n) for n in range(50)), message("gp", 50)]))
    assert store.run(lambda uow: uow.pending_head("gp"), write=False).event_seq == 50  # type: ignore[union-attr]
    assert store.run(lambda uow: uow.pending_head("down"), write=False).event_seq == 0  # type: ignore[union-attr]
    assert store.run(lambda uow: uow.pending_head("nobody"), write=False) is None
    outbox = Outbox(store, lambda person, seq: [], clock=lambda: AT + timedelta(seconds=1))
    assert outbox.head("gp") is not None
    assert Outbox(store, lambda person, seq: [], clock=lambda: AT - timedelta(seconds=1)).head("gp") is None
