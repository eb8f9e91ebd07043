"""PIX update notifications of changes whose events commit after later ones (PostgreSQL): each
is announced once it commits, without holding back the changes after it, across restarts."""

from __future__ import annotations

from late_commits import CommitsOutOfOrder

from mpi.domain.commands import RegisterRecord
from mpi.domain.records import Demographics, RecordKey
from mpi.service.bootstrap import Services
from mpi.service.crossrefs import PersonIdentifiers
from mpi.service.outbox import Notification, Outbox


def announce_every_person(person: PersonIdentifiers, seq: int) -> list[Notification]:
    return [Notification("registry", person.canonical(), person.canonical().encode())]


def stranger(family_name: str, n: int) -> Demographics:
    """Someone no other stranger is a candidate for."""
    given = ("Paul", "Ines", "Marc", "Sofia", "Luc", "Eva")[n]
    return Demographics(
        family_name=family_name, given_names=given, birth_date=f"19{50 + 7 * n}-0{n + 1}-1{n}"
    )


def announced(services: Services) -> list[str]:
    pending = services.store.run(lambda uow: uow.pending_outbound(1000), write=False)
    return [m.mpi_id for m in pending]


def register(services: Services, n: int, family_name: str) -> str:
    key = RecordKey("CHL", str(n))
    return services.registry.register(RegisterRecord(key, stranger(family_name, n))).mpi_id


def collector(store: CommitsOutOfOrder, clock: list[float]) -> Outbox:
    return Outbox(store, announce_every_person, monotonic=lambda: clock[0])


def test_a_change_committing_late_is_announced_and_holds_nothing_back(services: Services) -> None:
    store, clock = CommitsOutOfOrder(services.store), [0.0]
    outbox = collector(store, clock)
    outbox.collect()  # notifications switched on
    late = register(services, 0, "Kremer")  # event 1, its transaction still open
    store.unseen = {1}
    on_time = register(services, 1, "Weber")  # event 2 commits first
    outbox.collect()
    assert announced(services) == [on_time]  # at once, not after the hole is settled
    store.unseen = set()
    clock[0] = 60.0
    outbox.collect()
    assert announced(services) == [on_time, late]
    outbox.collect()
    assert announced(services) == [on_time, late]  # once


def test_a_collector_that_starts_reads_the_last_events_again(services: Services) -> None:
    store, clock = CommitsOutOfOrder(services.store), [0.0]
    collector(store, clock).collect()
    late = register(services, 0, "Kremer")
    store.unseen = {1}
    on_time = register(services, 1, "Weber")
    collector(store, clock).collect()  # then the server stops, the late transaction commits
    store.unseen = set()
    restarted = collector(store, clock)
    restarted.collect()
    assert announced(services) == [on_time, late]  # and what was announced is not sent again


def test_holes_are_read_again_until_they_are_too_old_to_be_filled(services: Services) -> None:
    store, clock = CommitsOutOfOrder(services.store), [0.0]
    outbox = collector(store, clock)
    outbox.collect()
    for n, name in enumerate(("Kremer", "Hoffmann", "Schmit", "Muller", "Weber")):
        register(services, n, name)
    store.unseen = {1, 3}  # two rolled-back transactions, say, between committed ones
    outbox.collect()
    assert len(announced(services)) == 3
    store.looks_back = 0
    outbox.collect()
    assert store.looks_back == 1  # both holes in one statement
    clock[0] = 121.0
    outbox.collect()
    outbox.collect()
    assert store.looks_back == 1
