"""On PostgreSQL a later event can commit before an earlier one: the PDQ directory's cursor passes
the earlier one's sequence number before it is visible, and must still find its record."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import pytest

from mpi.domain.commands import RegisterRecord
from mpi.domain.records import Demographics, RecordKey
from mpi.service.bootstrap import bootstrap, wire
from mpi.service.directory import Criteria, PersonDirectory
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.ports import Store, UnitOfWork
from mpi.service.settings import Settings

T = TypeVar("T")

pytestmark = pytest.mark.postgres


class CommitsWhenReleased:
    """A store whose transactions do their work, then wait for ``release`` before committing."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.worked = threading.Event()
        self.release = threading.Event()

    def run(self, work: Callable[[UnitOfWork], T], *, write: bool = True) -> T:
        def held(uow: UnitOfWork) -> T:
            result = work(uow)
            self.worked.set()
            if not self.release.wait(30):
                raise TimeoutError("the held transaction was never released")
            return result

        return self._store.run(held, write=write)

    def close(self) -> None:
        self._store.close()


def person(family_name: str) -> Demographics:
    return Demographics(family_name=family_name, given_names="Anna", birth_date="1980-01-02", sex="F")


# Shares no blocking key with the others: registering them does not wait for its transaction.
KREMER = Demographics(family_name="Kremer", given_names="Paul", birth_date="1955-07-30", sex="M")


@contextmanager
def kremer_registered_uncommitted(settings: Settings) -> Iterator[list[str]]:
    """Registers KREMER on a connection of its own; inside the block its event has a sequence
    number and is not committed. Gives the list that holds its MPI id once committed."""
    held = CommitsWhenReleased(bootstrap(settings, FakeMatcher()).store)
    slow = wire(settings, held, FakeMatcher())
    registered: list[str] = []
    key = RecordKey("LABO", "L1")
    writer = threading.Thread(
        target=lambda: registered.append(slow.registry.register(RegisterRecord(key, KREMER)).mpi_id)
    )
    writer.start()
    try:
        assert held.worked.wait(10)
        yield registered
    finally:
        held.release.set()
        writer.join(10)
        slow.close()
    assert len(registered) == 1


def test_a_record_whose_event_commits_after_a_later_one_is_found(postgres_url: str) -> None:
    settings = Settings(database_url=postgres_url, _env_file=None)  # type: ignore[call-arg]
    services = bootstrap(settings, FakeMatcher())
    directory = PersonDirectory(services.store, FakeMatcher())
    services.registry.register(RegisterRecord(RecordKey("CHL", "0"), person("Muller")))
    directory.refresh()
    with kremer_registered_uncommitted(settings) as registered:
        quick = services.registry.register(RegisterRecord(RecordKey("CHL", "1"), person("Weber")))
        assert [h.mpi_id for h in directory.search(Criteria(family_name="Weber"))] == [quick.mpi_id]
        assert directory.search(Criteria(family_name="Kremer")) == []  # not committed yet
    assert [h.mpi_id for h in directory.search(Criteria(family_name="Kremer"))] == registered
    assert len(directory) == 3
    services.close()


def test_a_load_of_every_record_finds_a_transaction_committing_after_it(postgres_url: str) -> None:
    settings = Settings(database_url=postgres_url, _env_file=None)  # type: ignore[call-arg]
    services = bootstrap(settings, FakeMatcher())
    services.registry.register(RegisterRecord(RecordKey("CHL", "0"), person("Muller")))
    with kremer_registered_uncommitted(settings) as registered:
        services.registry.register(RegisterRecord(RecordKey("CHL", "1"), person("Weber")))
        directory = PersonDirectory(services.store, FakeMatcher())
        directory.refresh()  # loads every record: the cursor is past the uncommitted event
        assert len(directory) == 2
    assert [h.mpi_id for h in directory.search(Criteria(family_name="Kremer"))] == registered
    assert len(directory) == 3
    services.close()
