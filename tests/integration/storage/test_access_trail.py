"""The access audit trail: every read of patient data through a service, on every store."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from mpi.domain.access import MAX_ACTOR_LENGTH, Access, AccessAction, AccessChannel
from mpi.domain.commands import RegisterRecord
from mpi.domain.mpi_id import new_mpi_id
from mpi.domain.records import Demographics, RecordKey
from mpi.errors import NotFound
from mpi.service.access import DeferredAccessLog, Viewer
from mpi.service.bootstrap import Services
from mpi.service.fakes import InMemoryStore
from mpi.service.ports import UnitOfWork

T = TypeVar("T")
AT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
JEAN = Demographics(family_name="Weber", given_names="Jean", birth_date="1980-01-02", sex="M")
WEBBER = Demographics(family_name="Webber", given_names="Jean", birth_date="1980-01-02", sex="M")
ALICE = Viewer("alice", AccessChannel.CLI)


def trail(services: Services, **filters: object) -> list[Access]:
    return services.access_trail.read(**filters)  # type: ignore[arg-type]


def test_accesses_round_trip_newest_first_and_filter_by_person_actor_and_page(any_services: Services) -> None:
    jean, anne = new_mpi_id(), new_mpi_id()
    entries = [
        Access(AT, "alice", AccessChannel.CLI, AccessAction.PERSON_VIEWED, (jean,)),
        Access(
            AT + timedelta(seconds=1),
            "HIS|CHL",
            AccessChannel.HL7,
            AccessAction.DEMOGRAPHICS_QUERIED,
            (anne, jean),
            "QPD|IHE PDQ Query|T1|@PID.5.1^Wéber",
            2,
        ),
        Access(
            AT + timedelta(seconds=2), "alice", AccessChannel.CLI, AccessAction.REGISTRY_EXPORTED, (), None, 7
        ),
    ]
    any_services.store.run(lambda uow: uow.add_accesses(entries))

    newest_first = trail(any_services)
    assert [a.action for a in newest_first] == [
        AccessAction.REGISTRY_EXPORTED,
        AccessAction.DEMOGRAPHICS_QUERIED,
        AccessAction.PERSON_VIEWED,
    ]
    ids = [a.access_id for a in newest_first]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 3
    pdq = newest_first[1]
    assert (pdq.at, pdq.actor, pdq.channel, pdq.criteria, pdq.results) == (
        AT + timedelta(seconds=1),
        "HIS|CHL",
        AccessChannel.HL7,
        "QPD|IHE PDQ Query|T1|@PID.5.1^Wéber",
        2,
    )
    assert set(pdq.subjects) == {anne, jean}

    assert [a.action for a in trail(any_services, mpi_id=jean)] == [
        AccessAction.DEMOGRAPHICS_QUERIED,
        AccessAction.PERSON_VIEWED,
    ]
    assert [a.action for a in trail(any_services, mpi_id=jean, actor="alice")] == [AccessAction.PERSON_VIEWED]
    assert [a.results for a in trail(any_services, actor="alice")] == [7, 0]
    assert trail(any_services, limit=1) == newest_first[:1]
    assert trail(any_services, before=ids[0], limit=1) == newest_first[1:2]
    assert trail(any_services, mpi_id=new_mpi_id()) == []


def register(services: Services, key: str, demographics: Demographics) -> str:
    authority, local_id = key.split("|")
    return services.registry.register(RegisterRecord(RecordKey(authority, local_id), demographics)).mpi_id


def test_every_read_for_a_viewer_is_in_the_trail_with_the_persons_it_showed(any_services: Services) -> None:
    jean = register(any_services, "HOSP|1", JEAN)
    webber = register(any_services, "HOSP|2", WEBBER)  # a review task between the two
    assert jean != webber and trail(any_services) == []  # registering is in the event log, not here

    any_services.persons.show(jean, ALICE)
    any_services.persons.record(RecordKey("HOSP", "2"), ALICE)
    hits = any_services.registry.search(JEAN, viewer=ALICE)
    tasks = any_services.reviews.list(viewer=Viewer("bob", AccessChannel.CLI))
    exported = any_services.registry.export(lambda rows: None, viewer=ALICE)

    viewed, record, searched, listed, export = reversed(trail(any_services))
    assert (viewed.action, viewed.actor, viewed.subjects, viewed.results) == (
        AccessAction.PERSON_VIEWED,
        "alice",
        (jean,),
        1,
    )
    assert (record.action, record.subjects, record.criteria) == (
        AccessAction.RECORD_VIEWED,
        (webber,),
        "record HOSP|2",
    )
    assert searched.action is AccessAction.PERSONS_SEARCHED
    assert set(searched.subjects) == {h.mpi_id for h in hits} and jean in searched.subjects
    assert searched.criteria == "family_name=Weber; given_names=Jean; birth_date=1980-01-02; sex=M"
    assert (listed.action, listed.actor, listed.results) == (AccessAction.REVIEWS_LISTED, "bob", len(tasks))
    assert set(listed.subjects) == {jean, webber}
    assert (export.action, export.subjects, export.results) == (AccessAction.REGISTRY_EXPORTED, (), exported)
    assert all(a.channel is AccessChannel.CLI for a in (viewed, record, searched, listed, export))


def test_a_read_that_fails_or_names_no_viewer_leaves_no_entry(any_services: Services) -> None:
    jean = register(any_services, "HOSP|1", JEAN)
    with pytest.raises(NotFound):
        any_services.persons.show(new_mpi_id(), ALICE)
    with pytest.raises(NotFound):
        any_services.persons.record(RecordKey("HOSP", "404"), ALICE)
    any_services.persons.show(jean)  # the service's own reads (tests, checks) are not someone looking
    any_services.registry.search(JEAN)
    assert trail(any_services) == []


class FlakyStore(InMemoryStore):
    """Fails its next ``failures`` write transactions, as a database going away would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def run(self, work: Callable[[UnitOfWork], T], *, write: bool = True) -> T:
        if write and self.failures > 0:
            self.failures -= 1
            raise ConnectionError("database unreachable")
        return super().run(work, write=write)


def query(n: int) -> Access:
    return Access(AT, "HIS|CHL", AccessChannel.HL7, AccessAction.CROSS_REFERENCES_QUERIED, (f"P{n}",))


def test_deferred_accesses_survive_a_failed_write_and_keep_their_order() -> None:
    store = FlakyStore(failures=1)
    deferred = DeferredAccessLog(store, interval_seconds=60)
    deferred.record(query(1))
    deferred.record(query(2))
    with pytest.raises(ConnectionError):
        deferred.flush()
    deferred.record(query(3))
    assert deferred.flush() == 3
    deferred.record(query(4))
    deferred.close()  # what is left goes out at close
    written = store.run(lambda uow: uow.accesses(limit=10), write=False)
    assert [a.subjects for a in reversed(written)] == [("P1",), ("P2",), ("P3",), ("P4",)]


def test_the_background_writer_flushes_on_its_own() -> None:
    store = InMemoryStore()
    deferred = DeferredAccessLog(store, interval_seconds=0.05)
    deferred.start()
    try:
        deferred.record(query(1))
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while not store.run(lambda uow: uow.accesses(limit=1), write=False):
            assert datetime.now(UTC) < deadline, "the background writer never wrote the access"
            time.sleep(0.01)
    finally:
        deferred.close()


def test_whatever_a_sender_wrote_is_stored_and_never_holds_up_the_trail(any_services: Services) -> None:
    # A facility wildcard admits any MSH-4, and a query's QPD is stored as sent.
    sender = "PORTAL|" + "F" * 300
    entry = Access(AT, sender, AccessChannel.HL7, AccessAction.DEMOGRAPHICS_QUERIED, (), "QPD|Q|T\x00|@PID.5")
    deferred = DeferredAccessLog(any_services.store, interval_seconds=60)
    deferred.record(entry)
    deferred.record(query(1))
    assert deferred.flush() == 2
    stored = trail(any_services)[-1]
    assert stored.actor == sender[:MAX_ACTOR_LENGTH] and stored.criteria == "QPD|Q|T\ufffd|@PID.5"
