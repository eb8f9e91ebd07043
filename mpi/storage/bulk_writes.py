"""Bulk writes: a load into an empty registry, many rows per statement, through the driver itself.

SQLAlchemy's ``executemany`` builds and processes a parameter dict per row, which
costs more than SQLite spends storing it (22 s for the 1.08 M blocking keys of
100,000 records). Here rows are plain tuples: SQLite takes them with the sqlite3
cursor's ``executemany``, PostgreSQL with ``COPY ... FROM STDIN``; both in the
caller's transaction (the DB-API connection under its SQLAlchemy connection).
Ids come from the table (SQLite: after the largest, under the write lock every
SQLite write transaction holds) or the column's sequence (PostgreSQL), so rows
need no ``RETURNING``.

The blocking-key index is the one large table: about ten keys per record, ten
million rows for a million records. Inserted in record order, each key lands at
a random place of the primary-key B-tree; into an empty table it is cheaper to
insert them sorted, or to build the indexes once at the end (see
:meth:`BulkWriter.add_keys` and :mod:`mpi.storage.bulk_indexes`).
"""

from __future__ import annotations

import json
import operator
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Column, Connection, Table
from sqlalchemy.exc import DBAPIError

from mpi.domain.events import Event, EventKind, encode_changes
from mpi.domain.persons import Link, Person
from mpi.domain.records import DEMOGRAPHIC_FIELDS, Demographics, MatriculeFlag, RecordIdentifier, RecordKey
from mpi.domain.reviews import ReviewTask
from mpi.storage import tables as t
from mpi.storage.bulk_indexes import DeferredIndexes

Row = tuple[Any, ...]
_demographics = operator.attrgetter(*DEMOGRAPHIC_FIELDS)
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # as tables.person_values writes
# The columns each row gives, in order.
_RECORD_COLUMNS = (
    "record_id", "authority", "local_id", "version", *DEMOGRAPHIC_FIELDS, "matricule", "updated_at", "actor",
)  # fmt: skip
_IDENTIFIER_COLUMNS = (
    "identifier_id", "record_id", "system", "value", "raw", "status", "active", "assigned_at", "replaced_by",
)  # fmt: skip
_PERSON_COLUMNS = (
    "mpi_id", "status", "trust", "document_checked", "replaced_by", "flags", "golden", "created_at",
)  # fmt: skip
_LINK_COLUMNS = (
    "record_id", "mpi_id", "provenance", "score", "model_version", "linked_at", "actor", "reason",
)  # fmt: skip
_SQLITE_KEYS_STAGE = "mpi_bulk_keys"
# Building the index from sorted rows needs them all in the sorter: a larger page cache for
# that statement only (SQLite sizes its sorter's memory by it).
_SQLITE_SORT_CACHE_KIB = 512 * 1024


P = ParamSpec("P")
R = TypeVar("R")


def _as_sqlalchemy_errors(
    method: Callable[Concatenate[BulkWriter, P], R],
) -> Callable[Concatenate[BulkWriter, P], R]:
    """Driver errors raised as SQLAlchemy's, like those of every other statement of the store
    (which retries a transaction that lost a lock on ``DBAPIError``)."""

    def translated(self: BulkWriter, /, *args: P.args, **kwargs: P.kwargs) -> R:
        base = self._dialect.loaded_dbapi.Error
        try:
            return method(self, *args, **kwargs)
        except base as exc:
            raise DBAPIError.instance(None, None, exc, base, dialect=self._dialect) from exc

    return translated


class BulkWriter:
    """Rows of a bulk load, written in the transaction of ``connection``."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection
        self._dialect = connection.dialect
        self._postgres = connection.dialect.name == "postgresql"
        self._raw: Any = connection.connection.driver_connection
        self._quote = connection.dialect.identifier_preparer.quote
        self._deferred: DeferredIndexes | None = None

    @_as_sqlalchemy_errors
    def begin_load(self) -> None:
        """Defer the loaded tables' foreign keys and secondary indexes to :meth:`finish_load`."""
        if self._deferred is None:
            self._deferred = DeferredIndexes(self._c)
            self._deferred.defer()

    @_as_sqlalchemy_errors
    def finish_load(self) -> None:
        if self._deferred is not None:
            self._deferred.restore()
            self._deferred = None
        if self._postgres:
            # Planner statistics for the tables just filled: until autovacuum gets to them, the
            # candidate query would scan whole tables (89 ms instead of 0.2 ms at 20,000 records).
            self._c.exec_driver_sql(
                "ANALYZE source_record, record_form, blocking_key, link, person, record_identifier, "
                "review_task"
            )

    # -- values as the column types would bind them ------------------------------------
    def _cached(self, column: Column[Any]) -> Callable[[Any], Any]:
        """Binds values of ``column``, each distinct one once: a load's rows share a few instants."""
        bound: dict[Any, Any] = {}

        def bind(value: Any) -> Any:
            if value not in bound:
                bound[value] = self._bound(column, value)
            return bound[value]

        return bind

    def _bound(self, column: Column[Any], value: Any) -> Any:
        """``value`` as SQLAlchemy would send it for ``column``, and as the driver then adapts it:
        sqlite3 turns each datetime into text with a Python function, so a load's few distinct
        instants are turned once each rather than once per row."""
        processor = column.type.bind_processor(self._dialect)
        if processor is not None and value is not None:
            value = processor(value)
        if not self._postgres:
            adapt = sqlite3.adapters.get((type(value), sqlite3.PrepareProtocol))
            if adapt is not None:
                value = adapt(value)
        return value

    def _binder(self, table: Table, names: Sequence[str]) -> Callable[[Row], Row]:
        """A function binding whole rows of ``names``: their datetimes and booleans, each
        distinct value once (the rest the driver takes as they are)."""
        kinds = (datetime, bool)
        bound = {
            i: self._cached(table.c[name])
            for i, name in enumerate(names)
            if table.c[name].type.python_type in kinds
        }
        if not bound:
            return lambda row: row

        def bind(row: Row) -> Row:
            values = list(row)
            for i, convert in bound.items():
                if values[i] is not None:
                    values[i] = convert(values[i])
            return tuple(values)

        return bind

    # -- the driver's bulk paths -------------------------------------------------------
    def _insert(self, table: Table, names: Sequence[str], rows: Iterable[Row]) -> None:
        columns = ", ".join(self._quote(name) for name in names)
        if self._postgres:
            with (
                self._raw.cursor() as cursor,
                cursor.copy(f"COPY {self._quote(table.name)} ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join("?" * len(names))
        self._raw.executemany(f"INSERT INTO {self._quote(table.name)} ({columns}) VALUES ({marks})", rows)

    def _new_ids(self, table: Table, column: str, n: int) -> list[int]:
        if n == 0:
            return []
        if self._postgres:
            with self._raw.cursor() as cursor:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                    (table.name, column, n),
                )
                return [row[0] for row in cursor.fetchall()]
        # Every SQLite write transaction holds the database's write lock (BEGIN IMMEDIATE),
        # so no other writer can take these ids before commit.
        (top,) = self._raw.execute(
            f"SELECT max({self._quote(column)}) FROM {self._quote(table.name)}"
        ).fetchone()
        start = (top or 0) + 1
        return list(range(start, start + n))

    # -- the tables of a load ----------------------------------------------------------
    @_as_sqlalchemy_errors
    def add_records(
        self, rows: Sequence[tuple[RecordKey, Demographics, MatriculeFlag]], at: datetime, actor: str
    ) -> list[int]:
        """Version 1 of each new record; their ids, in order."""
        ids = self._new_ids(t.source_record, "record_id", len(rows))
        when = self._bound(t.source_record.c.updated_at, at)
        self._insert(
            t.source_record,
            _RECORD_COLUMNS,
            (
                (record_id, key.authority, key.local_id, 1, *_demographics(d), flag.value, when, actor)
                for record_id, (key, d, flag) in zip(ids, rows, strict=True)
            ),
        )
        return ids

    @_as_sqlalchemy_errors
    def add_identifiers(self, identifiers: Sequence[RecordIdentifier]) -> list[int]:
        ids = self._new_ids(t.record_identifier, "identifier_id", len(identifiers))
        when, yes = (
            self._cached(t.record_identifier.c.assigned_at),
            self._bound(t.record_identifier.c.active, True),
        )
        self._insert(
            t.record_identifier,
            _IDENTIFIER_COLUMNS,
            (
                (
                    n,
                    i.record_id,
                    i.system,
                    i.value,
                    i.raw,
                    i.status.value,
                    yes if i.active else self._bound(t.record_identifier.c.active, False),
                    when(i.assigned_at),
                    i.replaced_by,
                )
                for n, i in zip(ids, identifiers, strict=True)
            ),
        )
        return ids

    @_as_sqlalchemy_errors
    def add_persons(self, persons: Sequence[Person]) -> None:
        # The values of mpi.storage.tables.person_values, without a dict per row.
        when, checked = self._cached(t.person.c.created_at), t.person.c.document_checked
        self._insert(
            t.person,
            _PERSON_COLUMNS,
            (
                (
                    p.mpi_id,
                    p.status.value,
                    p.trust.value,
                    self._bound(checked, p.document_checked),
                    p.replaced_by,
                    ",".join(sorted(flag.value for flag in p.flags)),
                    _JSON.encode(dict(zip(DEMOGRAPHIC_FIELDS, _demographics(p.golden), strict=True))),
                    when(p.created_at),
                )
                for p in persons
            ),
        )

    @_as_sqlalchemy_errors
    def add_links(self, links: Sequence[Link]) -> None:
        when = self._cached(t.link.c.linked_at)
        self._insert(
            t.link,
            _LINK_COLUMNS,
            (
                (
                    link.record_id,
                    link.mpi_id,
                    link.provenance.value,
                    link.score,
                    link.model_version,
                    when(link.linked_at),
                    link.actor,
                    link.reason,
                )
                for link in links
            ),
        )

    @_as_sqlalchemy_errors
    def add_reviews(self, tasks: Sequence[ReviewTask]) -> list[int]:
        ids = self._new_ids(t.review_task, "task_id", len(tasks))
        if tasks:
            values = [{"task_id": n, **t.review_values(task)} for n, task in zip(ids, tasks, strict=True)]
            self._insert_values(t.review_task, values)
        return ids

    def _insert_values(self, table: Table, values: list[dict[str, Any]]) -> None:
        names = tuple(values[0])
        bind = self._binder(table, names)
        self._insert(table, names, (bind(tuple(row.values())) for row in values))

    @_as_sqlalchemy_errors
    def append_events(self, events: Sequence[Event]) -> list[int]:
        """Append events; those of a bulk load (``records.loaded``) in the compact form."""
        seqs = self._new_ids(t.event, "seq", len(events))
        if not events:
            return seqs
        names = ("seq", "kind", "occurred_at", "actor", "reason", "subjects", "changes")
        bind = self._binder(t.event, names)
        self._insert(
            t.event,
            names,
            (
                bind(
                    (
                        seq,
                        e.kind.value,
                        e.occurred_at,
                        e.actor,
                        e.reason,
                        ",".join(e.subjects),
                        encode_changes(e.changes, compact=e.kind is EventKind.RECORDS_LOADED),
                    )
                )
                for seq, e in zip(seqs, events, strict=True)
            ),
        )
        self._insert(
            t.event_subject,
            ("mpi_id", "seq"),
            ((s, seq) for e, seq in zip(events, seqs, strict=True) for s in e.subjects),
        )
        return seqs

    # -- the blocking-key index ----------------------------------------------------------
    @_as_sqlalchemy_errors
    def add_keys(self, batches: Iterable[Sequence[tuple[int, str]]]) -> None:
        """Index ``(record_id, key)`` pairs given batch by batch.

        SQLite builds a primary key only row by row: into an empty index the rows are staged
        and inserted in key order. PostgreSQL builds the indexes of a load by sorting, at the
        end (:mod:`mpi.storage.bulk_indexes`); outside a load, and into a used SQLite index,
        the keys are inserted as they come.
        """
        if self._postgres or not self._is_empty(t.blocking_key):
            for batch in batches:
                self._insert(t.blocking_key, ("key", "record_id"), ((key, rid) for rid, key in batch))
            return
        self._sqlite_keys(batches)

    @_as_sqlalchemy_errors
    def add_forms(self, rows: Iterable[tuple[int, str]]) -> None:
        """Forms of version 1 of new records; in record id order they append to the primary key."""
        self._insert(t.record_form, ("record_id", "version", "form"), ((rid, 1, form) for rid, form in rows))

    def _is_empty(self, table: Table) -> bool:
        return self._raw.execute(f"SELECT 1 FROM {self._quote(table.name)} LIMIT 1").fetchone() is None

    def _sqlite_keys(self, batches: Iterable[Sequence[tuple[int, str]]]) -> None:
        # Sorted by SQLite's sorter from a staging table: each key then goes to the right-hand
        # end of the B-tree. The other index is built after, from the table.
        raw = self._raw
        raw.execute(f"DROP TABLE IF EXISTS temp.{_SQLITE_KEYS_STAGE}")
        raw.execute(f"CREATE TEMP TABLE {_SQLITE_KEYS_STAGE} (key TEXT NOT NULL, record_id INTEGER NOT NULL)")
        for batch in batches:
            raw.executemany(
                f"INSERT INTO temp.{_SQLITE_KEYS_STAGE} VALUES (?, ?)", ((key, rid) for rid, key in batch)
            )
        with self._sqlite_indexes_dropped("blocking_key"), self._sqlite_cache(_SQLITE_SORT_CACHE_KIB):
            raw.execute(
                'INSERT INTO blocking_key ("key", record_id) '
                f"SELECT key, record_id FROM temp.{_SQLITE_KEYS_STAGE} ORDER BY key, record_id"
            )
        raw.execute(f"DROP TABLE temp.{_SQLITE_KEYS_STAGE}")

    @contextmanager
    def _sqlite_cache(self, kib: int) -> Iterator[None]:
        previous = {db: self._raw.execute(f"PRAGMA {db}.cache_size").fetchone()[0] for db in ("main", "temp")}
        for db in previous:
            self._raw.execute(f"PRAGMA {db}.cache_size=-{int(kib)}")
        try:
            yield
        finally:
            for db, size in previous.items():
                self._raw.execute(f"PRAGMA {db}.cache_size={int(size)}")

    @contextmanager
    def _sqlite_indexes_dropped(self, table: str) -> Iterator[None]:
        """The table's own indexes (not those of its key constraints) dropped, then rebuilt."""
        indexes = self._raw.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            (table,),
        ).fetchall()
        for name, _ in indexes:
            self._raw.execute(f"DROP INDEX {self._quote(name)}")
        yield
        for _, definition in indexes:
            self._raw.execute(definition)
