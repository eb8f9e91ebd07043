"""References and secondary indexes checked and built once, after a load fills an empty registry.

Row by row, a million-record load pays for every index entry at a random place of
its B-tree and for every foreign key with a lookup in the referenced table (on
PostgreSQL a trigger per row): on SQLite the ten million blocking keys spend two
thirds of their time in foreign-key lookups. The database documentation's advice
for populating a table applies: drop the secondary indexes and foreign keys, load,
then build each index from one sort and check each reference with one query.

Everything happens in the load's transaction, so a failed load leaves the schema
as it was. SQLite only turns foreign-key enforcement off outside a transaction:
the (still empty) transaction is committed, enforcement turned off and the
transaction begun again, and the connection is closed after the load instead of
going back to the pool with enforcement off.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Connection

# The tables a load writes. The primary key of the blocking-key index is the one that is not
# on a growing id: on PostgreSQL it is built once too, as are the unique constraints.
LOADED_TABLES = (
    "source_record",
    "record_form",
    "record_identifier",
    "blocking_key",
    "person",
    "link",
    "review_task",
    "event",
    "event_subject",
)
_REBUILT_PRIMARY_KEYS = ("blocking_key",)
_SQLITE_INDEX_CACHE_KIB = 512 * 1024  # the sorter of CREATE INDEX sizes its memory by the page cache
_POSTGRES_INDEX_MEMORY = "512MB"  # maintenance_work_mem for the index builds


class DeferredIndexes:
    """Drops the loaded tables' secondary indexes and foreign keys, then restores them."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection
        self._raw: Any = connection.connection.driver_connection
        self._postgres = connection.dialect.name == "postgresql"
        self._quote = connection.dialect.identifier_preparer.quote
        self._indexes: list[tuple[str, str]] = []  # (name, definition)
        self._constraints: list[tuple[str, str, str, str]] = []  # (table, name, kind, definition)

    def defer(self) -> None:
        if self._postgres:
            self._postgres_defer()
        else:
            self._sqlite_defer()

    def restore(self) -> None:
        if self._postgres:
            self._postgres_restore()
        else:
            self._sqlite_restore()

    # -- SQLite -------------------------------------------------------------------------
    def _sqlite_defer(self) -> None:
        if self._c.in_nested_transaction():
            raise RuntimeError("a bulk load into SQLite needs a transaction of its own, not a savepoint")
        raw = self._raw
        raw.execute("COMMIT")  # the load's transaction, begun by the store, has written nothing yet
        raw.execute("PRAGMA foreign_keys=OFF")
        raw.execute("BEGIN IMMEDIATE")
        self._c.detach()  # closed after the load: it must not serve anyone else without checks
        marks = ", ".join("?" * len(LOADED_TABLES))
        self._indexes = raw.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({marks}) ORDER BY name",
            LOADED_TABLES,
        ).fetchall()
        for name, _ in self._indexes:
            raw.execute(f"DROP INDEX {self._quote(name)}")

    def _sqlite_restore(self) -> None:
        raw = self._raw
        (cache,) = raw.execute("PRAGMA cache_size").fetchone()
        raw.execute(f"PRAGMA cache_size=-{_SQLITE_INDEX_CACHE_KIB}")
        for _, definition in self._indexes:
            raw.execute(definition)
        raw.execute(f"PRAGMA cache_size={int(cache)}")
        for table in LOADED_TABLES:
            for reference in raw.execute(f"PRAGMA foreign_key_list({self._quote(table)})").fetchall():
                self._sqlite_check(table, parent=reference[2], column=reference[3], key=reference[4])

    def _sqlite_check(self, table: str, *, parent: str, column: str, key: str | None) -> None:
        """Every value of ``table.column`` names a row of ``parent``: one query, over the distinct
        values in order (read from the column's index when it has one)."""
        if key is None:
            raise sqlite3.IntegrityError(f"{table}.{column} refers to {parent} without naming a column")
        q = self._quote
        missing = self._raw.execute(
            f"SELECT v FROM (SELECT DISTINCT {q(column)} AS v FROM {q(table)} WHERE {q(column)} IS NOT NULL) "
            f"WHERE NOT EXISTS (SELECT 1 FROM {q(parent)} WHERE {q(parent)}.{q(key)} = v) LIMIT 1"
        ).fetchone()
        if missing is not None:
            raise sqlite3.IntegrityError(
                f"the load wrote {table}.{column} = {missing[0]!r}, which names no row of {parent}"
            )

    # -- PostgreSQL ---------------------------------------------------------------------
    def _postgres_defer(self) -> None:
        with self._raw.cursor() as cursor:
            cursor.execute(f"SET LOCAL maintenance_work_mem = '{_POSTGRES_INDEX_MEMORY}'")
            # Foreign keys; unique constraints no foreign key relies on; the rebuilt primary keys.
            cursor.execute(
                "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) "
                "FROM pg_constraint c WHERE conrelid IN (SELECT unnest(%s::text[])::regclass) AND ("
                "contype = 'f' "
                "OR contype = 'u' AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint f WHERE f.conindid = c.conindid AND f.contype = 'f') "
                "OR contype = 'p' AND conrelid IN (SELECT unnest(%s::text[])::regclass)) "
                "ORDER BY contype DESC, 1, 2",
                (list(LOADED_TABLES), list(_REBUILT_PRIMARY_KEYS)),
            )
            self._constraints = cursor.fetchall()  # keys ('u', 'p') before foreign keys ('f')
            cursor.execute(
                "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid IN (SELECT unnest(%s::text[])::regclass) "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) ORDER BY 1",
                (list(LOADED_TABLES),),
            )
            self._indexes = cursor.fetchall()
            for table, name, _, _ in reversed(self._constraints):  # foreign keys before the keys
                cursor.execute(f"ALTER TABLE {self._quote(table)} DROP CONSTRAINT {self._quote(name)}")
            for name, _ in self._indexes:
                cursor.execute(f"DROP INDEX {self._quote(name)}")

    def _postgres_restore(self) -> None:
        # Keys, then indexes, then foreign keys, whose checks may read the indexes.
        with self._raw.cursor() as cursor:
            for table, name, kind, definition in self._constraints:
                if kind != "f":
                    cursor.execute(
                        f"ALTER TABLE {self._quote(table)} ADD CONSTRAINT {self._quote(name)} {definition}"
                    )
            for _, definition in self._indexes:
                cursor.execute(definition)
            for table, name, kind, definition in self._constraints:
                if kind == "f":
                    cursor.execute(
                        f"ALTER TABLE {self._quote(table)} ADD CONSTRAINT {self._quote(name)} {definition}"
                    )
