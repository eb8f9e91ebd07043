"""The persistent blocking-key index and the locks that make concurrent registration safe.

Each record has the keys of every blocking rule it satisfies (computed by the
matcher, the same rules as batch); a probe's candidates are the records that
share at least one key. Rows are replaced when a record gets a new version,
so the index follows the data one record at a time.

Locking: two transactions registering the same new person share a blocking
key. On PostgreSQL each writer takes a transaction-scoped advisory lock per key
(a 64-bit hash of it) in sorted order before reading candidates, so the second
one waits and then, under READ COMMITTED, sees the first one's committed
record. SQLite needs nothing here: write transactions start with
``BEGIN IMMEDIATE`` and so already run one at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, delete, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, INTEGER, TEXT, VARCHAR

from mpi.storage.direct import DirectStatements
from mpi.storage.statements import chunks
from mpi.storage.tables import blocking_key, record_form

_LOCK_MANY = text(
    "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT unnest(:keys) AS k ORDER BY 1) AS ordered"
).bindparams(bindparam("keys", type_=ARRAY(BIGINT)))
# Built once: building a statement costs more than running it on an indexed table.
_KEYS_OF_RECORD = select(blocking_key.c.key).where(blocking_key.c.record_id == bindparam("record_id"))
_RECORDS_WITH_KEYS = (
    select(blocking_key.c.record_id)
    .where(blocking_key.c.key.in_(bindparam("keys", expanding=True)))
    .distinct()
)
_INSERT_KEY = insert(blocking_key)
_INSERT_FORM = insert(record_form)
_UPDATE_FORM = (
    update(record_form)
    .where(record_form.c.record_id == bindparam("b_record_id"))
    .values(version=bindparam("version"), form=bindparam("form"))
)
_DELETE_FORM = delete(record_form).where(record_form.c.record_id == bindparam("record_id"))
_RESTAMP_FORM = (
    update(record_form)
    .where(record_form.c.record_id == bindparam("b_record_id"))
    .values(version=bindparam("version"))
)
# PostgreSQL: a new record's keys and form in one statement (one round trip instead of two).
_INDEX_NEW = text(
    "WITH new_form AS (INSERT INTO record_form (record_id, version, form) "
    "SELECT :record_id, :version, :form WHERE :form IS NOT NULL) "
    "INSERT INTO blocking_key (key, record_id) SELECT DISTINCT unnest(:keys), :record_id"
).bindparams(
    bindparam("keys", type_=ARRAY(VARCHAR)),
    bindparam("record_id", type_=BIGINT),
    bindparam("version", type_=INTEGER),
    bindparam("form", type_=TEXT),
)


def lock_id(key: str) -> int:
    """A signed 64-bit lock id for ``key``; a hash collision only makes two keys wait for each other."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


class CandidateIndex:
    def __init__(self, connection: Connection, direct: DirectStatements) -> None:
        self._connection = connection
        self._direct = direct
        self._is_postgres = connection.dialect.name == "postgresql"

    def lock_keys(self, keys: Sequence[str]) -> None:
        if self._is_postgres and keys:
            self._direct.execute(_LOCK_MANY, {"keys": sorted({lock_id(k) for k in keys})})

    def index_new(self, record_id: int, version: int, keys: Sequence[str], form: str | None) -> None:
        """The keys and form of a record that has neither yet."""
        if self._is_postgres:
            params = {"record_id": record_id, "version": version, "form": form, "keys": list(keys)}
            self._direct.execute(_INDEX_NEW, params)
            return
        self.set_blocking_keys(record_id, keys, is_new=True)
        self.set_form(record_id, version, form, is_new=True)

    def set_blocking_keys(self, record_id: int, keys: Sequence[str], *, is_new: bool = False) -> None:
        """Make ``keys`` the keys of the record; ``is_new`` says it has none yet."""
        wanted = set(keys)
        stored = set() if is_new else set(self._connection.scalars(_KEYS_OF_RECORD, {"record_id": record_id}))
        stale = stored - wanted
        if stale:
            self._connection.execute(
                delete(blocking_key).where(
                    blocking_key.c.record_id == record_id, blocking_key.c.key.in_(stale)
                )
            )
        fresh = sorted(wanted - stored)
        if fresh:
            self._connection.execute(_INSERT_KEY, [{"key": k, "record_id": record_id} for k in fresh])

    def set_form(self, record_id: int, version: int, form: str | None, *, is_new: bool = False) -> None:
        """Make ``form`` the stored form of the record's ``version`` (none: the record has none).

        The store drops a record's form when it stores a new version of it, so a form row is
        always of the record's current version."""
        if form is None:
            if not is_new:
                self.drop_form(record_id)
            return
        values = {"version": version, "form": form}
        if (
            is_new
            or self._connection.execute(_UPDATE_FORM, {"b_record_id": record_id, **values}).rowcount == 0
        ):
            self._connection.execute(_INSERT_FORM, {"record_id": record_id, **values})

    def drop_form(self, record_id: int) -> None:
        """The record's form no longer describes it (a new version with other demographics)."""
        self._connection.execute(_DELETE_FORM, {"record_id": record_id})

    def restamp_form(self, record_id: int, version: int) -> None:
        """The record's form describes its new ``version`` too (only its key changed)."""
        self._connection.execute(_RESTAMP_FORM, {"b_record_id": record_id, "version": version})

    def records_with_keys(self, keys: Sequence[str]) -> list[int]:
        distinct = sorted(set(keys))
        found: set[int] = set()
        for chunk in chunks(distinct):
            found.update(self._connection.scalars(_RECORDS_WITH_KEYS, {"keys": chunk}))
        return sorted(found)
