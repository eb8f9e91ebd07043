"""The PDQ person directory follows the registry through many small catch-ups and their merges."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from late_commits import CommitsOutOfOrder

from mpi.domain.commands import RegisterRecord
from mpi.domain.events import Event, EventKind
from mpi.domain.records import Demographics, RecordKey, SourceRecord
from mpi.errors import NotReady
from mpi.service.bootstrap import Services
from mpi.service.directory import Criteria, PersonDirectory
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.log_holes import HOLE_GRACE_SECONDS
from mpi.service.ports import Store, UnitOfWork

T = TypeVar("T")


def anna(family_name: str, postcode: str) -> Demographics:
    return Demographics(
        family_name=family_name, given_names="Anna", birth_date="1980-01-02", sex="F", postcode=postcode
    )


def test_each_change_replaces_the_old_row_across_many_catch_ups(services: Services) -> None:
    directory = PersonDirectory(services.store, FakeMatcher())
    first = services.registry.register(RegisterRecord(RecordKey("CHL", "1"), anna("Muller", "4001")))
    directory.refresh()
    # Far more catch-ups than the directory keeps separate tables for, each changing the record,
    # with another person registered now and then.
    for number in range(80):
        services.registry.register(RegisterRecord(RecordKey("CHL", "1"), anna("Muller", f"{1000 + number}")))
        if number % 10 == 0:
            services.registry.register(
                RegisterRecord(
                    RecordKey("LABO", f"L{number}"), anna(f"Weber{chr(ord('a') + number // 10)}", "9201")
                )
            )
        directory.refresh()

    assert [h.mpi_id for h in directory.search(Criteria(family_name="Muller", postcode="1079"))] == [
        first.mpi_id
    ]
    for stale in ("4001", "1000", "1040", "1078"):
        assert directory.search(Criteria(family_name="Muller", postcode=stale)) == []
    assert len(directory.search(Criteria(family_name="Weberh*"))) == 1
    assert len(directory.search(Criteria(family_name="Weber*"))) == 8
    assert len(directory.search(Criteria(given_name="Anna", birth_date="1980-01-02"))) == 9


def test_a_directory_loaded_in_the_background_is_not_ready_until_it_has_loaded(services: Services) -> None:
    first = services.registry.register(RegisterRecord(RecordKey("CHL", "1"), anna("Muller", "4001")))
    directory = PersonDirectory(services.store, FakeMatcher(), loads_in_background=True)
    with pytest.raises(NotReady, match="still loading"):
        directory.search(Criteria(family_name="Muller"))
    assert not directory.loaded  # the search neither loaded it nor waited for it
    directory.refresh()  # the server's refresher
    assert directory.loaded and len(directory) == 1
    assert [h.mpi_id for h in directory.search(Criteria(family_name="Muller"))] == [first.mpi_id]


def test_a_directory_of_its_own_loads_at_its_first_search(services: Services) -> None:
    first = services.registry.register(RegisterRecord(RecordKey("CHL", "1"), anna("Muller", "4001")))
    directory = PersonDirectory(services.store, FakeMatcher())
    assert [h.mpi_id for h in directory.search(Criteria(family_name="Muller"))] == [first.mpi_id]
    assert directory.loaded


LATE = ("Kremer", "Hoffmann", "Schmit")


def stranger(family_name: str, n: int) -> Demographics:
    """Someone no other stranger is a candidate for (an event about one names no other)."""
    given = ("Paul", "Ines", "Marc", "Sofia", "Luc")[n]
    birth_date = f"19{50 + 7 * n}-0{n + 1}-1{n}"
    return Demographics(family_name=family_name, given_names=given, birth_date=birth_date)


def test_records_whose_events_commit_after_later_ones_are_found(services: Services) -> None:
    store = CommitsOutOfOrder(services.store)
    clock = [0.0]
    directory = PersonDirectory(store, FakeMatcher(), monotonic=lambda: clock[0])
    directory.refresh()
    late = [
        services.registry.register(RegisterRecord(RecordKey("CHL", str(n)), stranger(name, n)))
        for n, name in enumerate(LATE)
    ]
    store.unseen = {1, 3}  # the first and last of them: two holes, each below a visible event
    services.registry.register(RegisterRecord(RecordKey("CHL", "9"), stranger("Weber", 4)))
    assert len(directory.search(Criteria(family_name="Weber"))) == 1
    assert [len(directory.search(Criteria(family_name=name))) for name in LATE] == [0, 1, 0]

    store.unseen = {1}  # the later hole commits first
    clock[0] = HOLE_GRACE_SECONDS / 2
    assert [h.mpi_id for h in directory.search(Criteria(family_name=LATE[2]))] == [late[2].mpi_id]
    store.unseen = set()
    assert [h.mpi_id for h in directory.search(Criteria(family_name=LATE[0]))] == [late[0].mpi_id]
    assert len(directory) == 4

    store.looks_back = 0
    directory.search(Criteria(family_name="Weber"))
    assert store.looks_back == 0  # no hole left to look at


def test_a_hole_left_longer_than_a_transaction_can_last_is_no_longer_looked_at(services: Services) -> None:
    store = CommitsOutOfOrder(services.store)
    clock = [0.0]
    directory = PersonDirectory(store, FakeMatcher(), monotonic=lambda: clock[0])
    directory.refresh()
    store.unseen = {1}  # a rolled-back transaction's sequence number, never filled
    for n, name in enumerate(("Kremer", "Weber")):
        services.registry.register(RegisterRecord(RecordKey("CHL", str(n)), stranger(name, n)))
    directory.search(Criteria(family_name="Weber"))
    store.looks_back = 0
    directory.search(Criteria(family_name="Weber"))
    assert store.looks_back == 1  # looked at while it may still be filled
    clock[0] = HOLE_GRACE_SECONDS + 1
    directory.search(Criteria(family_name="Weber"))
    directory.search(Criteria(family_name="Weber"))
    assert store.looks_back == 1


class FailsOnce(CommitsOutOfOrder):
    """Reading records fails once when ``fail`` is set: a lost connection in mid-catch-up."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.fail = False

    def run(self, work: Callable[[UnitOfWork], T], *, write: bool = True) -> T:
        def failing(uow: UnitOfWork) -> T:
            read = uow.linked_records

            def linked_records(record_ids: Sequence[int]) -> list[tuple[SourceRecord, str]]:
                if self.fail:
                    self.fail = False
                    raise ConnectionError("server closed the connection unexpectedly")
                return read(record_ids)

            uow.linked_records = linked_records  # type: ignore[method-assign]
            return work(uow)

        return super().run(failing, write=write)


def test_a_catch_up_failing_once_a_hole_is_filled_reads_the_hole_again(services: Services) -> None:
    store = FailsOnce(services.store)
    directory = PersonDirectory(store, FakeMatcher(), monotonic=lambda: 0.0)
    directory.refresh()
    late = services.registry.register(RegisterRecord(RecordKey("CHL", "0"), stranger("Kremer", 0)))
    store.unseen = {1}
    services.registry.register(RegisterRecord(RecordKey("CHL", "1"), stranger("Weber", 1)))
    assert len(directory.search(Criteria(family_name="Weber"))) == 1
    store.unseen = set()  # the hole is filled
    store.fail = True
    with pytest.raises(ConnectionError):
        directory.refresh()  # the server's refresher logs it and tries again
    assert [h.mpi_id for h in directory.search(Criteria(family_name="Kremer"))] == [late.mpi_id]


def test_a_reload_keeps_looking_at_the_holes_known_before_it(services: Services) -> None:
    store = CommitsOutOfOrder(services.store)
    directory = PersonDirectory(store, FakeMatcher(), monotonic=lambda: 0.0)
    directory.refresh()
    late = services.registry.register(RegisterRecord(RecordKey("CHL", "0"), stranger("Kremer", 0)))
    store.unseen, store.unseen_records = {1}, {late.record_id}
    services.registry.register(RegisterRecord(RecordKey("CHL", "1"), stranger("Weber", 1)))
    directory.search(Criteria(family_name="Weber"))
    # A busy few seconds: thousands of events, then enough changes to make a reload due.
    busy = Event(EventKind.RECORDS_LOADED, datetime.now(UTC), "other-writers", ())
    services.store.run(lambda uow: [uow.append_event(busy) for _ in range(3000)])
    for n in range(150):
        someone = Demographics(family_name=f"Hoffmann{n}", given_names="Luc", sex="M")
        services.registry.register(RegisterRecord(RecordKey("LABO", str(n)), someone))
    directory.refresh()  # catches up
    directory.refresh()  # and reloads every record
    assert len(directory) == 151
    assert directory.search(Criteria(family_name="Kremer")) == []
    store.unseen, store.unseen_records = set(), set()
    assert [h.mpi_id for h in directory.search(Criteria(family_name="Kremer"))] == [late.mpi_id]
