"""Read models for people and tools: a person with its records, tasks and history."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from mpi.domain.access import Access, AccessAction
from mpi.domain.events import Event
from mpi.domain.mpi_id import is_valid_mpi_id, normalise_mpi_id
from mpi.domain.persons import Link, Person
from mpi.domain.records import RecordIdentifier, RecordKey, RecordVersion, SourceRecord
from mpi.domain.reviews import ReviewTask
from mpi.errors import InputError, NotFound
from mpi.service.access import Viewer
from mpi.service.ports import Store, UnitOfWork


@dataclass(frozen=True)
class LinkedRecord:
    record: SourceRecord
    link: Link


@dataclass(frozen=True)
class PersonView:
    person: Person
    current_mpi_id: str  # the person itself, or the active survivor of the merges that retired it
    records: tuple[LinkedRecord, ...]
    pending_reviews: tuple[ReviewTask, ...]
    history: tuple[Event, ...]


@dataclass(frozen=True)
class RecordView:
    record: SourceRecord
    link: Link
    versions: tuple[RecordVersion, ...]
    identifiers: tuple[RecordIdentifier, ...]


def _checked_id(text: str) -> str:
    mpi_id = normalise_mpi_id(text)
    if not is_valid_mpi_id(mpi_id):
        # The check character catches a mistyped id before it reaches the database.
        raise NotFound(f"{text!r} is not a valid MPI id (wrong length, character or check character)")
    return mpi_id


class Persons:
    """What people read about persons and records; given a ``viewer``, the read is recorded in
    the access audit trail in the same transaction (no entry, no data)."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    def show(self, mpi_id: str, viewer: Viewer | None = None) -> PersonView:
        wanted = _checked_id(mpi_id)

        def work(uow: UnitOfWork) -> PersonView:
            person = uow.get_person(wanted)
            if person is None:
                raise NotFound(f"no person with MPI id {wanted}")
            current = person
            seen = {current.mpi_id}
            while current.replaced_by is not None and current.replaced_by not in seen:
                successor = uow.get_person(current.replaced_by)
                if successor is None:
                    break
                seen.add(successor.mpi_id)
                current = successor
            links = uow.links_of_person(wanted)
            records = uow.get_records([link.record_id for link in links])
            if viewer is not None:
                shown = (wanted, current.mpi_id)
                viewer.record(uow, self._clock(), AccessAction.PERSON_VIEWED, shown)
            return PersonView(
                person=person,
                current_mpi_id=current.mpi_id,
                records=tuple(LinkedRecord(records[link.record_id], link) for link in links),
                pending_reviews=tuple(uow.pending_reviews_of_persons([wanted])),
                history=tuple(uow.events_about(wanted)),
            )

        return self._store.run(work, write=viewer is not None)

    def record(self, key: RecordKey, viewer: Viewer | None = None) -> RecordView:
        def work(uow: UnitOfWork) -> RecordView:
            record = uow.find_record(key)
            if record is None:
                raise NotFound(f"no source record {key.local_id!r} in assigning authority {key.authority!r}")
            link = uow.get_links([record.record_id])[record.record_id]
            if viewer is not None:
                viewer.record(uow, self._clock(), AccessAction.RECORD_VIEWED, [link.mpi_id], f"record {key}")
            return RecordView(
                record=record,
                link=link,
                versions=tuple(uow.record_versions(record.record_id)),
                identifiers=tuple(uow.active_identifiers(record.record_id)),
            )

        return self._store.run(work, write=viewer is not None)


class AccessTrail:
    """Reads the access audit trail, newest first (MPI ids and criteria, never demographics)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def read(
        self,
        *,
        mpi_id: str | None = None,
        actor: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[Access]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        wanted = _checked_id(mpi_id) if mpi_id is not None else None
        return self._store.run(
            lambda uow: uow.accesses(mpi_id=wanted, actor=actor, before=before, limit=limit), write=False
        )


def parse_record_key(text: str, default_domain: str) -> RecordKey:
    """``AUTHORITY|LOCAL_ID``, or a bare local id in the default domain."""
    authority, sep, local_id = text.rpartition("|")
    if not sep:
        authority, local_id = default_domain, text
    try:
        return RecordKey(authority.strip(), local_id.strip())
    except ValueError as exc:
        raise InputError("record key", f"{text!r}: {exc}") from exc
