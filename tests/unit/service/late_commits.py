"""A store wrapper for tests of readers of the event log: later events committing first."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from mpi.domain.events import Event
from mpi.service.ports import SearchColumns, Store, UnitOfWork

T = TypeVar("T")


class CommitsOutOfOrder:
    """A store whose events ``unseen`` stay invisible to readers (their transactions have not
    committed), as later events commit first on PostgreSQL; so do the records ``unseen_records``
    to a load of every record. Counts looks back at holes."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.unseen: set[int] = set()
        self.unseen_records: set[int] = set()
        self.looks_back = 0

    def run(self, work: Callable[[UnitOfWork], T], *, write: bool = True) -> T:
        def filtered(uow: UnitOfWork) -> T:
            events, events_in, search_columns = uow.events, uow.events_in, uow.search_columns

            def loaded(batch_size: int) -> Iterator[SearchColumns]:
                for batch in search_columns(batch_size):
                    keep = [k for k, i in enumerate(batch.record_ids) if i not in self.unseen_records]
                    yield SearchColumns(
                        [batch.record_ids[k] for k in keep],
                        [batch.mpi_ids[k] for k in keep],
                        {name: [values[k] for k in keep] for name, values in batch.traits.items()},
                    )

            def visible(after: int = 0, limit: int | None = None) -> list[Event]:
                return [e for e in events(after, None) if e.seq not in self.unseen][:limit]

            def visible_in(spans: Sequence[tuple[int, int]], limit: int | None = None) -> list[Event]:
                self.looks_back += 1
                return [e for e in events_in(spans) if e.seq not in self.unseen][:limit]

            uow.events, uow.events_in = visible, visible_in  # type: ignore[method-assign]
            uow.search_columns = loaded  # type: ignore[method-assign]
            return work(uow)

        return self._store.run(filtered, write=write)

    def close(self) -> None:
        self._store.close()
