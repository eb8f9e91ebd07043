"""Reads of the event log and of the whole registry, for :class:`~mpi.storage.store.SqlUnitOfWork`.

What the history, the audit, the export and the start-up checks read: many rows at
once, never on the path of a registration.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import BindParameter, Connection, bindparam, exists, func, or_, select

from mpi.domain.events import Event, EventKind, decode_changes
from mpi.domain.registry_state import RegistryState
from mpi.service.ports import SEARCHED_FIELDS, LinkRow, SearchColumns
from mpi.storage import tables as t

_record = t.source_record
# An OR of ranges per statement, well inside SQLite's limit on an expression's depth.
_SPANS_PER_QUERY = 100
_SEARCH_COLUMNS = (
    select(_record.c.record_id, t.link.c.mpi_id, *(_record.c[name] for name in SEARCHED_FIELDS))
    .join(t.link, t.link.c.record_id == _record.c.record_id)
    .where(~exists().where(t.superseded_record.c.record_id == _record.c.record_id))
    .order_by(_record.c.record_id)
)


def _inline(value: int) -> BindParameter[int]:
    return bindparam(None, int(value), type_=t.event.c.seq.type, literal_execute=True)


class RegistryReads:
    """The whole-registry reads of the unit of work; the class using it provides the connection ``_c``."""

    _c: Connection

    @staticmethod
    def _events(rows: Sequence[Any]) -> list[Event]:
        return [
            Event(
                kind=EventKind(row["kind"]),
                occurred_at=row["occurred_at"],
                actor=row["actor"],
                changes=decode_changes(row["changes"]),
                reason=row["reason"],
                subjects=tuple(s for s in row["subjects"].split(",") if s),
                seq=row["seq"],
            )
            for row in rows
        ]

    def events(self, after: int = 0, limit: int | None = None) -> list[Event]:
        query = select(t.event).where(t.event.c.seq > after).order_by(t.event.c.seq)
        if limit is not None:
            query = query.limit(limit)
        return self._events(self._c.execute(query).mappings().all())

    def events_in(self, spans: Sequence[tuple[int, int]], limit: int | None = None) -> list[Event]:
        found: dict[int, Event] = {}
        for start in range(0, len(spans), _SPANS_PER_QUERY):
            chosen = spans[start : start + _SPANS_PER_QUERY]
            # The bounds are written into the statement: planned for bound parameters (generic
            # plans, see engine.py), each range counts as a share of the log, and a few dozen of
            # them made PostgreSQL scan the whole log (0.4 s at a million events) for a few rows.
            # Single numbers (the usual hole: one transaction's event) are one look-up in the index.
            single = [first for first, last in chosen if first == last]
            ranges = [(first, last) for first, last in chosen if first != last]
            within = or_(
                *([t.event.c.seq.in_([_inline(seq) for seq in single])] if single else []),
                *(t.event.c.seq.between(_inline(first), _inline(last)) for first, last in ranges),
            )
            query = select(t.event).where(within).order_by(t.event.c.seq)
            if limit is not None:
                query = query.limit(limit)
            found.update(
                (event.seq or 0, event) for event in self._events(self._c.execute(query).mappings().all())
            )
        wanted = sorted(found)
        return [found[seq] for seq in (wanted if limit is None else wanted[:limit])]

    def events_about(self, mpi_id: str) -> list[Event]:
        seqs = select(t.event_subject.c.seq).where(t.event_subject.c.mpi_id == mpi_id)
        query = select(t.event).where(t.event.c.seq.in_(seqs)).order_by(t.event.c.seq)
        return self._events(self._c.execute(query).mappings().all())

    # -- whole-registry reads ---------------------------------------------------------
    def link_rows(self, batch_size: int) -> Iterator[list[LinkRow]]:
        query = (
            select(
                t.source_record.c.authority,
                t.source_record.c.local_id,
                t.source_record.c.record_id,
                t.link.c.mpi_id,
                t.link.c.provenance,
                t.link.c.score,
            )
            .join(t.link, t.link.c.record_id == t.source_record.c.record_id)
            .order_by(t.source_record.c.record_id)
        )
        result = self._c.execution_options(yield_per=batch_size).execute(query)
        for partition in result.partitions(batch_size):
            yield [LinkRow(*row) for row in partition]

    def search_columns(self, batch_size: int) -> Iterator[SearchColumns]:
        # On the driver's cursor: a million rows through SQLAlchemy's result rows cost seconds
        # more, for columns that need no conversion (a server-side cursor on PostgreSQL).
        sql = str(_SEARCH_COLUMNS.compile(dialect=self._c.dialect))
        self._c.get_transaction() or self._c.begin()
        driver: Any = self._c.connection.dbapi_connection
        streamed = self._c.dialect.name == "postgresql"
        cursor = driver.cursor(name="mpi_search_columns") if streamed else driver.cursor()
        try:
            cursor.execute(sql)
            while rows := cursor.fetchmany(batch_size):
                record_ids, mpi_ids, *traits = (list(column) for column in zip(*rows, strict=True))
                yield SearchColumns(record_ids, mpi_ids, dict(zip(SEARCHED_FIELDS, traits, strict=True)))
        finally:
            cursor.close()

    def count_records(self) -> int:
        return int(self._c.execute(select(func.count()).select_from(t.source_record)).scalar_one())

    def form_coverage(self) -> tuple[int, tuple[str, ...]]:
        forms = int(self._c.execute(select(func.count()).select_from(t.record_form)).scalar_one())
        samples = []
        for order in (t.record_form.c.record_id.asc(), t.record_form.c.record_id.desc()):
            form = self._c.execute(select(t.record_form.c.form).order_by(order).limit(1)).scalar()
            if form is not None:
                samples.append(form)
        return forms, tuple(samples)

    def snapshot(self) -> RegistryState:
        state = RegistryState()
        c = self._c
        state.records = {
            row["record_id"]: t.source_record_of(row)
            for row in c.execute(select(t.source_record).order_by(t.source_record.c.record_id)).mappings()
        }
        versions = select(t.record_version).order_by(t.record_version.c.record_id, t.record_version.c.version)
        for row in c.execute(versions).mappings():
            state.versions.setdefault(row["record_id"], []).append(t.record_version_of(row))
        for row in c.execute(select(t.source_record).order_by(t.source_record.c.record_id)).mappings():
            state.versions.setdefault(row["record_id"], []).append(t.current_version_of(row))
        identifiers = select(t.record_identifier).order_by(t.record_identifier.c.identifier_id)
        state.identifiers = {
            row["identifier_id"]: t.identifier_of(row) for row in c.execute(identifiers).mappings()
        }
        state.persons = {row["mpi_id"]: t.person_of(row) for row in c.execute(select(t.person)).mappings()}
        state.links = {row["record_id"]: t.link_of(row) for row in c.execute(select(t.link)).mappings()}
        reviews = select(t.review_task).order_by(t.review_task.c.task_id)
        state.reviews = {row["task_id"]: t.review_of(row) for row in c.execute(reviews).mappings()}
        state.not_duplicates = {
            (row["person_a"], row["person_b"]): t.not_duplicate_of(row)
            for row in c.execute(select(t.not_duplicate)).mappings()
        }
        return state
