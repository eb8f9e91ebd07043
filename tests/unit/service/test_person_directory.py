"""The PDQ person directory follows the registry through many small catch-ups and their merges."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from mpi.domain.commands import RegisterRecord
from mpi.domain.records import Demographics, RecordKey
from mpi.errors import NotReady
from mpi.service.bootstrap import Services
from mpi.service.directory import Criteria, PersonDirectory
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.ports import SearchColumns, Store, UnitOfWork

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


class _SlowFirstLoad:
    """A store whose whole-directory read waits for ``release`` (a large registry loading)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.loading = threading.Event()
        self.release = threading.Event()

    def run(self, work: Callable[[UnitOfWork], T], *, write: bool = True) -> T:
        def slow(uow: UnitOfWork) -> T:
            original = uow.search_columns

            def search_columns(batch_size: int) -> Iterator[SearchColumns]:
                self.loading.set()
                assert self.release.wait(10)
                yield from original(batch_size)

            uow.search_columns = search_columns  # type: ignore[method-assign]
            try:
                return work(uow)
            finally:
                del uow.search_columns

        return self._store.run(slow, write=write)

    def close(self) -> None:
        self._store.close()


def _loading(
    services: Services, load_wait: float
) -> tuple[PersonDirectory, _SlowFirstLoad, threading.Thread]:
    """A directory whose first load, started in another thread, waits for ``store.release``."""
    store = _SlowFirstLoad(services.store)
    directory = PersonDirectory(store, FakeMatcher(), load_wait=load_wait)
    assert not directory.loaded
    loader = threading.Thread(target=directory.refresh)
    loader.start()
    assert store.loading.wait(5)
    return directory, store, loader


def test_a_search_while_the_directory_loads_too_long_says_not_ready(services: Services) -> None:
    first = services.registry.register(RegisterRecord(RecordKey("CHL", "1"), anna("Muller", "4001")))
    directory, store, loader = _loading(services, load_wait=0.05)
    with pytest.raises(NotReady, match="still loading"):
        directory.search(Criteria(family_name="Muller"))
    store.release.set()
    loader.join(5)
    assert directory.loaded and len(directory) == 1
    assert [h.mpi_id for h in directory.search(Criteria(family_name="Muller"))] == [first.mpi_id]


def test_a_search_while_the_directory_loads_is_answered_once_it_is_loaded(services: Services) -> None:
    first = services.registry.register(RegisterRecord(RecordKey("CHL", "1"), anna("Muller", "4001")))
    directory, store, loader = _loading(services, load_wait=5.0)
    answers: list[list[str]] = []
    searching = threading.Thread(
        target=lambda: answers.append([h.mpi_id for h in directory.search(Criteria(family_name="Muller"))])
    )
    searching.start()
    store.release.set()
    loader.join(5)
    searching.join(5)
    assert answers == [[first.mpi_id]]
