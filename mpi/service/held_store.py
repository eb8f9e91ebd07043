"""A store wrapper for tests of what a server serves while its person directory loads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from mpi.service.ports import SearchColumns, Store, UnitOfWork

T = TypeVar("T")


class HeldDirectoryLoads:
    """A store whose reads of every record for the person directory (``search_columns``) wait
    for ``release`` while ``hold`` is set: a large registry loading, for tests of what is served
    meanwhile. ``loading`` is set when such a read starts waiting."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.hold = threading.Event()
        self.loading = threading.Event()
        self.release = threading.Event()

    def run(self, work: Callable[[UnitOfWork], T], *, write: bool = True) -> T:
        def held(uow: UnitOfWork) -> T:
            original = uow.search_columns

            def search_columns(batch_size: int) -> Iterator[SearchColumns]:
                if self.hold.is_set():
                    self.loading.set()
                    if not self.release.wait(30):
                        raise TimeoutError("the held directory load was never released")
                yield from original(batch_size)

            uow.search_columns = search_columns  # type: ignore[method-assign]
            return work(uow)

        return self._store.run(held, write=write)

    def close(self) -> None:
        self._store.close()
