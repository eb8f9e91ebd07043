"""The SQL store: SQLite (a file in WAL mode, no server) or PostgreSQL (psycopg 3), by URL.

:class:`SqlStore` runs each unit of work as one transaction and retries it
when it loses to a concurrent one; :class:`SqlUnitOfWork` implements the
service's ``UnitOfWork`` port with SQLAlchemy Core statements.
"""

from __future__ import annotations

import functools
import operator
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    event,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import DBAPIError

from mpi.domain.events import Event, encode_changes
from mpi.domain.persons import Link, Person
from mpi.domain.records import (
    Demographics,
    MatriculeFlag,
    RecordIdentifier,
    RecordKey,
    RecordVersion,
    SourceRecord,
)
from mpi.domain.reviews import ReviewTask
from mpi.service.ports import Candidate, NewIdentifier, NewLink, RecordIndex
from mpi.storage import statements as q
from mpi.storage import tables as t
from mpi.storage.access_rows import AccessRows
from mpi.storage.bulk_writes import BulkWriter
from mpi.storage.candidate_index import CandidateIndex
from mpi.storage.continuation_rows import ContinuationRows
from mpi.storage.delivery import DeliveryRows
from mpi.storage.direct import DirectStatements
from mpi.storage.engine import WRITE_OPTION, WalCheckpointer, is_sqlite_file
from mpi.storage.registry_reads import RegistryReads
from mpi.storage.review_rows import ReviewRows

T = TypeVar("T")
_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected


def _retryable(exc: DBAPIError, is_sqlite: bool) -> bool:
    if is_sqlite:
        message = str(exc.orig).lower()
        return "database is locked" in message or "database is busy" in message
    return getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


class SqlStore:
    def __init__(self, engine: Engine, max_attempts: int = 20) -> None:
        self.engine = engine
        self._max_attempts = max_attempts
        self._is_sqlite = engine.dialect.name == "sqlite"
        self._checkpointer: WalCheckpointer | None = None
        if is_sqlite_file(engine):

            @event.listens_for(engine, "connect")
            def _no_checkpoint_in_commits(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

            self._checkpointer = WalCheckpointer(engine)

    def run(self, work: Callable[[Any], T], *, write: bool = True) -> T:
        for attempt in range(1, self._max_attempts + 1):
            try:
                with self.engine.connect() as connection:
                    connection.execution_options(**{WRITE_OPTION: write})
                    with connection.begin():
                        return work(SqlUnitOfWork(connection))
            except DBAPIError as exc:
                if attempt == self._max_attempts or not _retryable(exc, self._is_sqlite):
                    raise
                time.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 7)))
        raise AssertionError("unreachable: the last attempt re-raises")

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        self.engine.dispose()


_by_record_id = operator.itemgetter(0)  # of a Candidate


def _first_version(
    key: RecordKey, demographics: Demographics, matricule: MatriculeFlag, at: datetime, actor: str
) -> dict[str, Any]:
    """The ``source_record`` row of a new record's version 1."""
    return {
        "authority": key.authority,
        "local_id": key.local_id,
        "version": 1,
        **demographics.as_dict(),
        "matricule": matricule.value,
        "updated_at": at,
        "actor": actor,
    }


def _event_values(event: Event) -> dict[str, Any]:
    return {
        "kind": event.kind.value,
        "occurred_at": event.occurred_at,
        "actor": event.actor,
        "reason": event.reason,
        "subjects": ",".join(event.subjects),
        "changes": encode_changes(event.changes),
    }


class SqlUnitOfWork(AccessRows, ContinuationRows, DeliveryRows, RegistryReads, ReviewRows):
    def __init__(self, connection: Connection) -> None:
        self._c = connection
        self._direct = DirectStatements(connection)
        self._index = CandidateIndex(connection, self._direct)
        self._is_postgres = connection.dialect.name == "postgresql"
        # Records created in this transaction have no identifiers, keys or link until
        # they are written here: knowing it saves a lookup for each.
        self._without_identifiers: set[int] = set()
        self._without_keys: set[int] = set()
        self._without_link: set[int] = set()
        self._without_form: set[int] = set()  # their form was dropped here with their last version

    def _rows(self, statement: Any, name: str, values: Sequence[Any], **other: Any) -> Iterator[RowMapping]:
        for chunk in q.chunks(list(values)):
            # all(): one fetch of every row, rather than one driver call per row.
            yield from self._c.execute(statement, {name: list(chunk), **other}).mappings().all()

    # -- source records ---------------------------------------------------------------
    def find_record(self, key: RecordKey) -> SourceRecord | None:
        params = {"authority": key.authority, "local_id": key.local_id}
        row = self._direct.execute(q.FIND_RECORD, params).mappings().first()
        return None if row is None else t.source_record_of(row)

    def get_records(self, record_ids: Sequence[int]) -> dict[int, SourceRecord]:
        return {
            row["record_id"]: t.source_record_of(row)
            for row in self._rows(q.RECORDS_BY_ID, "ids", record_ids)
        }

    def records_after(self, record_id: int, limit: int) -> list[SourceRecord]:
        # SQLite: a write transaction already excludes every other writer.
        statement = q.RECORDS_AFTER_FOR_UPDATE if self._is_postgres else q.RECORDS_AFTER
        rows = self._c.execute(statement, {"after": record_id, "limit": limit}).mappings()
        return [t.source_record_of(row) for row in rows]

    def add_record(
        self, key: RecordKey, demographics: Demographics, matricule: MatriculeFlag, at: datetime, actor: str
    ) -> SourceRecord:
        values = _first_version(key, demographics, matricule, at, actor)
        record_id: int = self._direct.execute(q.INSERT_RECORD, values).scalar_one()
        self._without_identifiers.add(record_id)
        self._without_keys.add(record_id)
        self._without_link.add(record_id)
        return SourceRecord(record_id, key, 1, demographics, matricule, at)

    def add_indexed_record(
        self,
        key: RecordKey,
        demographics: Demographics,
        matricule: MatriculeFlag,
        at: datetime,
        actor: str,
        identifier: NewIdentifier | None,
        index: RecordIndex,
        link: NewLink | None = None,
        *,
        members: bool = False,
        new_person: Person | None = None,
    ) -> tuple[SourceRecord, RecordIdentifier | None, list[SourceRecord] | None]:
        if not self._is_postgres:
            if new_person is not None:
                self.add_person(new_person)
            record = self.add_record(key, demographics, matricule, at, actor)
            added = None
            if identifier is not None:
                added = self.add_identifier(
                    record.record_id,
                    identifier.system,
                    identifier.value,
                    identifier.raw,
                    identifier.status,
                    at,
                )
            self.index_record(record.record_id, 1, index.blocking_keys, index.form)
            if link is None:
                return record, added, None
            self.save_link(link.of(record.record_id, at, actor))
            return record, added, self.records_of_person(link.mpi_id) if members else None
        params = {
            **_first_version(key, demographics, matricule, at, actor),
            "i_system": identifier.system if identifier else None,
            "i_value": identifier.value if identifier else None,
            "i_raw": identifier.raw if identifier else None,
            "i_status": identifier.status.value if identifier else None,
            "form": index.form,
            "keys": list(index.blocking_keys),
            "l_mpi_id": link.mpi_id if link else None,
            "l_provenance": link.provenance.value if link else None,
            "l_score": link.score if link else None,
            "l_model_version": link.model_version if link else None,
            "l_reason": link.reason if link else None,
        }
        others: list[SourceRecord] | None = None
        if new_person is not None:
            person = {f"p_{name}": value for name, value in t.person_values(new_person).items()}
            statement = q.PG_INSERT_INDEXED_RECORD_OF_NEW_PERSON
            record_id, identifier_id = self._direct.execute(statement, {**params, **person}).one()
            others = [] if members else None  # a new person has no other records
        elif members and link is not None:
            rows = self._direct.execute(q.PG_INSERT_INDEXED_RECORD_READING_MEMBERS, params).mappings().all()
            record_id, identifier_id = rows[0]["new_record_id"], rows[0]["new_identifier_id"]
            others = [t.source_record_of(row) for row in rows if row["record_id"] is not None]
        else:
            record_id, identifier_id = self._direct.execute(q.PG_INSERT_INDEXED_RECORD, params).one()
        record = SourceRecord(record_id, key, 1, demographics, matricule, at)
        # The statement's own reads do not see what it inserts: the new record joins the others.
        on_person = None if others is None else sorted([*others, record], key=lambda r: r.record_id)
        if link is None:
            self._without_link.add(record_id)  # it has its identifiers, keys and form already
        if identifier is None:
            self._without_identifiers.add(record_id)
            return record, None, on_person
        system, value, raw, status = identifier.system, identifier.value, identifier.raw, identifier.status
        added = RecordIdentifier(identifier_id, record_id, system, value, raw, status, True, at)
        return record, added, on_person

    def add_record_version(
        self, record: SourceRecord, actor: str, *, same_demographics: bool = False
    ) -> None:
        if same_demographics:
            self._index.restamp_form(record.record_id, record.version)
        else:
            self._index.drop_form(record.record_id)
            self._without_form.add(record.record_id)
        self._c.execute(q.ARCHIVE_CURRENT_VERSION, {"record_id": record.record_id})
        self._c.execute(
            q.UPDATE_RECORD,
            {
                "b_record_id": record.record_id,
                "version": record.version,
                **record.demographics.as_dict(),
                "matricule": record.matricule.value,
                "updated_at": record.updated_at,
                "actor": actor,
            },
        )

    def record_versions(self, record_id: int) -> list[RecordVersion]:
        history = [
            t.record_version_of(row)
            for row in self._c.execute(q.VERSION_HISTORY, {"record_id": record_id}).mappings()
        ]
        current = self._c.execute(q.RECORDS_BY_ID, {"ids": [record_id]}).mappings().first()
        return history if current is None else [*history, t.current_version_of(current)]

    # -- identifiers ------------------------------------------------------------------
    def active_identifiers(self, record_id: int) -> list[RecordIdentifier]:
        if record_id in self._without_identifiers:
            return []
        rows = self._direct.execute(q.ACTIVE_IDENTIFIERS, {"record_id": record_id}).mappings().all()
        return [t.identifier_of(row) for row in rows]

    def add_identifier(
        self, record_id: int, system: str, value: str, raw: str, status: MatriculeFlag, at: datetime
    ) -> RecordIdentifier:
        identifier = RecordIdentifier(0, record_id, system, value, raw, status, True, at)
        values = t.identifier_values(identifier)
        identifier_id = self._direct.execute(q.INSERT_IDENTIFIER, values).scalar_one()
        self._without_identifiers.discard(record_id)
        return RecordIdentifier(identifier_id, record_id, system, value, raw, status, True, at)

    def save_identifier(self, identifier: RecordIdentifier) -> None:
        self._c.execute(
            q.UPDATE_IDENTIFIER,
            {"b_identifier_id": identifier.identifier_id, **t.identifier_values(identifier)},
        )

    def records_with_identifier(self, system: str, value: str) -> list[int]:
        return list(self._c.scalars(q.RECORDS_WITH_IDENTIFIER, {"system": system, "value": value}))

    # -- blocking-key index -----------------------------------------------------------
    def lock_keys(self, keys: Sequence[str]) -> None:
        self._index.lock_keys(keys)

    def index_record(
        self, record_id: int, version: int, keys: Sequence[str], form: str | None = None
    ) -> None:
        if record_id in self._without_keys:
            self._index.index_new(record_id, version, keys, form)
        else:
            self._index.set_blocking_keys(record_id, keys)
            self._index.set_form(record_id, version, form, is_new=record_id in self._without_form)
        self._without_keys.discard(record_id)
        self._without_form.discard(record_id)

    def records_with_keys(self, keys: Sequence[str]) -> list[int]:
        return self._index.records_with_keys(keys)

    def candidate_records(
        self, keys: Sequence[str], identifier: tuple[str, str] | None = None
    ) -> list[Candidate]:
        distinct = sorted(set(keys))
        if len(distinct) > q.SELECT_CHUNK:  # beyond one statement's parameters: fetch the ids first
            found = set(self.records_with_keys(distinct))
            holders = self.get_records(self.records_with_identifier(*identifier)) if identifier else {}
            traits = {i: (True, r.demographics.sex, r.demographics.birth_date) for i, r in holders.items()}
            rows = [
                (r["record_id"], r["mpi_id"], r["form"], *traits.get(r["record_id"], (False, None, None)))
                for r in self._rows(q.CANDIDATES_BY_ID, "ids", sorted(found | set(holders)))
            ]
            return self._candidates(rows)
        if identifier is None:
            by_key = q.PG_CANDIDATES_BY_KEY if self._is_postgres else q.CANDIDATES_BY_KEY
            return self._candidates(self._direct.execute(by_key, {"keys": distinct}).all())
        params = {"keys": distinct, "system": identifier[0], "value": identifier[1]}
        by_either = (
            q.PG_CANDIDATES_BY_KEY_OR_IDENTIFIER if self._is_postgres else q.CANDIDATES_BY_KEY_OR_IDENTIFIER
        )
        return self._candidates(self._direct.execute(by_either, params).all())

    def record_and_candidates(
        self, key: RecordKey, keys: Sequence[str], identifier: tuple[str, str] | None = None
    ) -> tuple[SourceRecord | None, list[Candidate]]:
        distinct = sorted(set(keys))
        if not self._is_postgres or len(distinct) > q.SELECT_CHUNK:  # SQLite: no round trip to save
            existing = self.find_record(key)
            return existing, [] if existing is not None else self.candidate_records(keys, identifier)
        params: dict[str, Any] = {"keys": distinct, "authority": key.authority, "local_id": key.local_id}
        if identifier is None:
            statement = q.PG_KEYED_CANDIDATES_BY_KEY
        else:
            statement = q.PG_KEYED_CANDIDATES_BY_KEY_OR_IDENTIFIER
            params.update(system=identifier[0], value=identifier[1])
        rows = self._direct.execute(statement, params).all()
        if rows[0][0] is not None:  # the record exists (one row, whatever its candidates)
            return self.find_record(key), []
        return None, self._candidates(rows, first=1)

    def _candidates(self, rows: Sequence[Sequence[Any]], first: int = 0) -> list[Candidate]:
        """The candidates of rows that hold, from their column ``first`` on: record id, MPI id,
        form and, when an identifier was asked for, whether the record holds it, its sex and its
        birth date (a row without a record id stands for none), by record id."""
        a, b, c, d, e, f = range(first, first + 6)
        if rows and len(rows[0]) > d:
            found = [
                Candidate(r[a], r[b], r[c], None, (r[e], r[f]) if r[d] else None)
                for r in rows
                if r[a] is not None
            ]
        else:
            found = [Candidate(r[a], r[b], r[c], None, None) for r in rows if r[a] is not None]
        without_form = [candidate.record_id for candidate in found if candidate.form is None]
        if without_form:
            records = self.get_records(without_form)
            found = [x if x.form is not None else x._replace(record=records.get(x.record_id)) for x in found]
        found.sort(key=_by_record_id)
        return found

    # -- persons and links ------------------------------------------------------------
    def get_person(self, mpi_id: str) -> Person | None:
        row = self._direct.execute(q.PERSON, {"mpi_id": mpi_id}).mappings().first()
        return None if row is None else t.person_of(row)

    def get_persons(self, mpi_ids: Sequence[str]) -> dict[str, Person]:
        return {row["mpi_id"]: t.person_of(row) for row in self._rows(q.PERSONS, "ids", sorted(set(mpi_ids)))}

    def lock_persons(self, mpi_ids: Sequence[str]) -> dict[str, Person]:
        if len(mpi_ids) == 1:  # the common case, without the cost of an expanding IN
            one = q.PERSON_FOR_UPDATE if self._is_postgres else q.PERSON
            row = self._direct.execute(one, {"mpi_id": mpi_ids[0]}).mappings().first()
            return {} if row is None else {row["mpi_id"]: t.person_of(row)}
        wanted = sorted(set(mpi_ids))
        if self._is_postgres:
            rows = self._direct.execute(q.PG_PERSONS_FOR_UPDATE, {"ids": wanted}).mappings().all()
            return {row["mpi_id"]: t.person_of(row) for row in rows}
        return {row["mpi_id"]: t.person_of(row) for row in self._rows(q.PERSONS, "ids", wanted)}

    def add_person(self, person: Person) -> None:
        self._direct.execute(q.INSERT_PERSON, t.person_values(person))

    def save_person(self, person: Person) -> None:
        # The key is left out of the SET list: SQLite re-checks every foreign key that refers
        # to a column an UPDATE assigns, even to the same value.
        values = t.person_values(person)
        del values["mpi_id"]
        self._direct.execute(q.UPDATE_PERSON, {"b_mpi_id": person.mpi_id, **values})

    def get_links(self, record_ids: Sequence[int]) -> dict[int, Link]:
        return {row["record_id"]: t.link_of(row) for row in self._rows(q.LINKS_BY_RECORD, "ids", record_ids)}

    def links_of_person(self, mpi_id: str) -> list[Link]:
        rows = self._direct.execute(q.LINKS_OF_PERSON, {"mpi_id": mpi_id}).mappings().all()
        return [t.link_of(row) for row in rows]

    def records_of_persons(self, mpi_ids: Sequence[str]) -> list[int]:
        found = (row["record_id"] for row in self._rows(q.LINKED_TO_PERSONS, "ids", sorted(set(mpi_ids))))
        return sorted(found)

    def records_of_person(self, mpi_id: str) -> list[SourceRecord]:
        rows = self._direct.execute(q.RECORDS_OF_PERSON, {"mpi_id": mpi_id}).mappings().all()
        return [t.source_record_of(row) for row in rows]

    def current_records_by_person(self, mpi_ids: Sequence[str]) -> dict[str, list[SourceRecord]]:
        found: dict[str, list[SourceRecord]] = {mpi_id: [] for mpi_id in dict.fromkeys(mpi_ids)}
        for row in self._rows(q.RECORDS_OF_PERSONS, "ids", sorted(found)):
            found[row["linked_mpi_id"]].append(t.source_record_of(row))
        return found

    def linked_records(self, record_ids: Sequence[int]) -> list[tuple[SourceRecord, str]]:
        found = [
            (t.source_record_of(row), row["linked_mpi_id"])
            for row in self._rows(q.LINKED_RECORDS, "ids", sorted(set(record_ids)))
        ]
        return sorted(found, key=lambda pair: pair[0].record_id)

    def save_link(self, link: Link) -> None:
        values = t.link_values(link)
        if link.record_id in self._without_link:
            self._direct.execute(q.INSERT_LINK, values)
            self._without_link.discard(link.record_id)
            return
        if self._direct.execute(q.UPDATE_LINK, {"b_record_id": link.record_id, **values}).rowcount == 0:
            self._direct.execute(q.INSERT_LINK, values)

    # -- event log --------------------------------------------------------------------
    def append_event(self, event: Event, persons: Sequence[Person] = ()) -> int:
        if persons and self._is_postgres:
            return self._append_event_saving(event, persons)
        for person in persons:
            self.save_person(person)
        values = _event_values(event)
        if self._is_postgres:
            statement = q.INSERT_EVENT_WITH_SUBJECTS
            return int(
                self._direct.execute(statement, {**values, "subject_ids": list(event.subjects)}).scalar_one()
            )
        seq: int = self._direct.execute(q.INSERT_EVENT, values).scalar_one()
        if event.subjects:
            self._c.execute(q.INSERT_EVENT_SUBJECT, [{"mpi_id": s, "seq": seq} for s in event.subjects])
        return seq

    def _append_event_saving(self, event: Event, persons: Sequence[Person]) -> int:
        rows = [t.person_values(person) for person in persons]
        arrays = {
            "mpi_ids": [row["mpi_id"] for row in rows],
            "statuses": [row["status"] for row in rows],
            "trusts": [row["trust"] for row in rows],
            "checked": [row["document_checked"] for row in rows],
            "replaced": [row["replaced_by"] for row in rows],
            "flag_sets": [row["flags"] for row in rows],
            "goldens": [row["golden"] for row in rows],
        }
        values = {**_event_values(event), "subject_ids": list(event.subjects), **arrays}
        return int(self._direct.execute(q.INSERT_EVENT_SAVING_PERSONS, values).scalar_one())

    # -- bulk writes ------------------------------------------------------------------
    # Through the driver's own bulk paths (mpi.storage.bulk_writes): a load's millions of rows.
    @functools.cached_property
    def _bulk(self) -> BulkWriter:
        return BulkWriter(self._c)

    def begin_bulk_load(self) -> None:
        self._bulk.begin_load()

    def finish_bulk_load(self) -> None:
        self._bulk.finish_load()

    def add_records(
        self, rows: Sequence[tuple[RecordKey, Demographics, MatriculeFlag]], at: datetime, actor: str
    ) -> list[SourceRecord]:
        ids = self._bulk.add_records(rows, at, actor)
        return [
            SourceRecord(record_id, key, 1, d, flag, at)
            for record_id, (key, d, flag) in zip(ids, rows, strict=True)
        ]

    def add_identifiers(self, identifiers: Sequence[RecordIdentifier]) -> list[RecordIdentifier]:
        ids = self._bulk.add_identifiers(identifiers)
        return [
            RecordIdentifier(n, i.record_id, i.system, i.value, i.raw, i.status, i.active, i.assigned_at)
            for i, n in zip(identifiers, ids, strict=True)
        ]

    def add_blocking_keys(self, batches: Iterable[Sequence[tuple[int, str]]]) -> None:
        self._bulk.add_keys(batches)

    def add_forms(self, rows: Iterable[tuple[int, str]]) -> None:
        self._bulk.add_forms(rows)

    def add_persons(self, persons: Sequence[Person]) -> None:
        self._bulk.add_persons(persons)

    def add_links(self, links: Sequence[Link]) -> None:
        self._bulk.add_links(links)

    def add_reviews(self, tasks: Sequence[ReviewTask]) -> list[ReviewTask]:
        ids = self._bulk.add_reviews(tasks)
        return [replace(task, task_id=n) for task, n in zip(tasks, ids, strict=True)]

    def append_events(self, events: Sequence[Event]) -> list[int]:
        return self._bulk.append_events(events)

    # -- several commands in one transaction ------------------------------------------
    def savepoint(self, work: Callable[[], T]) -> T:
        # What this unit of work knows about records created in the transaction must forget
        # what a rolled-back savepoint created (SQLite may hand the same ids out again).
        known = (set(self._without_identifiers), set(self._without_keys), set(self._without_link))
        try:
            with self._c.begin_nested():
                return work()
        except BaseException:
            self._without_identifiers, self._without_keys, self._without_link = known
            raise
