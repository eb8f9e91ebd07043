"""An in-memory stand-in for the store port, for fast tests of the service.

:class:`InMemoryStore` keeps the same contract as the SQL store (the contract
suite in ``tests/integration/storage`` runs against all three), serialising
transactions with one lock and rolling back by discarding a working copy. The
matcher's stand-in is :class:`~mpi.service.fake_matcher.FakeMatcher`.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from mpi.domain.access import Access
from mpi.domain.events import Event
from mpi.domain.persons import Link, Person
from mpi.domain.records import (
    Demographics,
    MatriculeFlag,
    RecordIdentifier,
    RecordKey,
    RecordVersion,
    SourceRecord,
)
from mpi.domain.registry_state import RegistryState
from mpi.domain.reviews import NotDuplicate, ReviewStatus, ReviewTask
from mpi.service.delivery import MessageKey, OutboundMessage, OutboundStatus, Receipt
from mpi.service.ports import (
    SEARCHED_FIELDS,
    Candidate,
    Continuation,
    LinkRow,
    NewIdentifier,
    NewLink,
    RecordIndex,
    SearchColumns,
    UnitOfWork,
)

T = TypeVar("T")


@dataclass
class _Tables:
    state: RegistryState = field(default_factory=RegistryState)
    by_key: dict[RecordKey, int] = field(default_factory=dict)
    blocking: dict[str, set[int]] = field(default_factory=dict)
    keys_of: dict[int, tuple[str, ...]] = field(default_factory=dict)
    forms: dict[int, str] = field(default_factory=dict)  # of each record's current version
    events: list[Event] = field(default_factory=list)
    next_record: int = 1
    next_identifier: int = 1
    next_review: int = 1
    superseded: dict[int, int] = field(default_factory=dict)
    receipts: dict[MessageKey, Receipt] = field(default_factory=dict)
    cursors: dict[str, int] = field(default_factory=dict)
    outbound: dict[int, OutboundMessage] = field(default_factory=dict)
    accesses: list[Access] = field(default_factory=list)
    continuations: dict[str, Continuation] = field(default_factory=dict)


class _FakeUnitOfWork:
    def __init__(self, tables: _Tables) -> None:
        self.t = tables
        self.s = tables.state

    def find_record(self, key: RecordKey) -> SourceRecord | None:
        record_id = self.t.by_key.get(key)
        return None if record_id is None else self.s.records[record_id]

    def records_after(self, record_id: int, limit: int) -> list[SourceRecord]:
        return [self.s.records[i] for i in sorted(i for i in self.s.records if i > record_id)[:limit]]

    def get_records(self, record_ids: Sequence[int]) -> dict[int, SourceRecord]:
        return {i: self.s.records[i] for i in record_ids if i in self.s.records}

    def add_record(
        self, key: RecordKey, demographics: Demographics, matricule: MatriculeFlag, at: datetime, actor: str
    ) -> SourceRecord:
        record = SourceRecord(self.t.next_record, key, 1, demographics, matricule, at)
        self.t.next_record += 1
        self.t.by_key[key] = record.record_id
        self.s.records[record.record_id] = record
        self.s.versions[record.record_id] = [
            RecordVersion(record.record_id, 1, demographics, matricule, at, actor)
        ]
        return record

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
        if new_person is not None:
            self.add_person(new_person)
        record = self.add_record(key, demographics, matricule, at, actor)
        added = None
        if identifier is not None:
            added = self.add_identifier(
                record.record_id, identifier.system, identifier.value, identifier.raw, identifier.status, at
            )
        self.index_record(record.record_id, 1, index.blocking_keys, index.form)
        if link is None:
            return record, added, None
        self.save_link(link.of(record.record_id, at, actor))
        return record, added, self.records_of_person(link.mpi_id) if members else None

    def add_record_version(
        self, record: SourceRecord, actor: str, *, same_demographics: bool = False
    ) -> None:
        self.s.records[record.record_id] = record
        if not same_demographics:
            self.t.forms.pop(record.record_id, None)
        self.s.versions[record.record_id].append(
            RecordVersion(
                record.record_id,
                record.version,
                record.demographics,
                record.matricule,
                record.updated_at,
                actor,
            )
        )

    def record_versions(self, record_id: int) -> list[RecordVersion]:
        return list(self.s.versions.get(record_id, []))

    def active_identifiers(self, record_id: int) -> list[RecordIdentifier]:
        return sorted(
            (i for i in self.s.identifiers.values() if i.record_id == record_id and i.active),
            key=lambda i: i.identifier_id,
        )

    def add_identifier(
        self, record_id: int, system: str, value: str, raw: str, status: MatriculeFlag, at: datetime
    ) -> RecordIdentifier:
        identifier = RecordIdentifier(self.t.next_identifier, record_id, system, value, raw, status, True, at)
        self.t.next_identifier += 1
        self.s.identifiers[identifier.identifier_id] = identifier
        return identifier

    def save_identifier(self, identifier: RecordIdentifier) -> None:
        self.s.identifiers[identifier.identifier_id] = identifier

    def records_with_identifier(self, system: str, value: str) -> list[int]:
        return sorted(
            {
                i.record_id
                for i in self.s.identifiers.values()
                if i.active and i.system == system and i.value == value
            }
        )

    def lock_keys(self, keys: Sequence[str]) -> None:
        """Nothing to do: the in-memory store runs one transaction at a time."""

    def index_record(
        self, record_id: int, version: int, keys: Sequence[str], form: str | None = None
    ) -> None:
        if form is None or self.s.records[record_id].version != version:
            self.t.forms.pop(record_id, None)
        else:
            self.t.forms[record_id] = form
        for key in self.t.keys_of.get(record_id, ()):
            self.t.blocking[key].discard(record_id)
        self.t.keys_of[record_id] = tuple(keys)
        for key in keys:
            self.t.blocking.setdefault(key, set()).add(record_id)

    def records_with_keys(self, keys: Sequence[str]) -> list[int]:
        found: set[int] = set()
        for key in keys:
            found.update(self.t.blocking.get(key, ()))
        return sorted(found)

    def candidate_records(
        self, keys: Sequence[str], identifier: tuple[str, str] | None = None
    ) -> list[Candidate]:
        found = set(self.records_with_keys(keys))
        if identifier is not None:
            found.update(self.records_with_identifier(*identifier))
        holders = set(self.records_with_identifier(*identifier)) if identifier is not None else set()
        return [
            Candidate(
                r.record_id,
                m,
                form,
                None if form is not None else r,
                (r.demographics.sex, r.demographics.birth_date) if r.record_id in holders else None,
            )
            for r, m in self.linked_records(sorted(found))
            for form in [self.t.forms.get(r.record_id)]
        ]

    def record_and_candidates(
        self, key: RecordKey, keys: Sequence[str], identifier: tuple[str, str] | None = None
    ) -> tuple[SourceRecord | None, list[Candidate]]:
        existing = self.find_record(key)
        return existing, [] if existing is not None else self.candidate_records(keys, identifier)

    def get_person(self, mpi_id: str) -> Person | None:
        return self.s.persons.get(mpi_id)

    def get_persons(self, mpi_ids: Sequence[str]) -> dict[str, Person]:
        return {i: self.s.persons[i] for i in mpi_ids if i in self.s.persons}

    def lock_persons(self, mpi_ids: Sequence[str]) -> dict[str, Person]:
        return {i: self.s.persons[i] for i in mpi_ids if i in self.s.persons}

    def add_person(self, person: Person) -> None:
        if person.mpi_id in self.s.persons:
            raise ValueError(f"duplicate MPI id {person.mpi_id}")
        self.s.persons[person.mpi_id] = person

    def save_person(self, person: Person) -> None:
        self.s.persons[person.mpi_id] = person

    def get_links(self, record_ids: Sequence[int]) -> dict[int, Link]:
        return {i: self.s.links[i] for i in record_ids if i in self.s.links}

    def links_of_person(self, mpi_id: str) -> list[Link]:
        return sorted(
            (link for link in self.s.links.values() if link.mpi_id == mpi_id), key=lambda k: k.record_id
        )

    def records_of_persons(self, mpi_ids: Sequence[str]) -> list[int]:
        wanted = set(mpi_ids)
        return sorted(link.record_id for link in self.s.links.values() if link.mpi_id in wanted)

    def save_link(self, link: Link) -> None:
        self.s.links[link.record_id] = link

    def current_records_by_person(self, mpi_ids: Sequence[str]) -> dict[str, list[SourceRecord]]:
        return {mpi_id: self.records_of_person(mpi_id) for mpi_id in dict.fromkeys(mpi_ids)}

    def records_of_person(self, mpi_id: str) -> list[SourceRecord]:
        return [
            self.s.records[link.record_id]
            for link in self.links_of_person(mpi_id)
            if link.record_id not in self.t.superseded
        ]

    def linked_records(self, record_ids: Sequence[int]) -> list[tuple[SourceRecord, str]]:
        return [
            (self.s.records[i], self.s.links[i].mpi_id)
            for i in sorted(set(record_ids))
            if i in self.s.records
        ]

    def add_review(self, task: ReviewTask) -> ReviewTask:
        stored = replace(task, task_id=self.t.next_review)
        self.t.next_review += 1
        self.s.reviews[stored.task_id] = stored
        return stored

    def get_review(self, task_id: int) -> ReviewTask | None:
        return self.s.reviews.get(task_id)

    def save_review(self, task: ReviewTask) -> None:
        self.s.reviews[task.task_id] = task

    def pending_reviews_of_persons(self, mpi_ids: Sequence[str]) -> list[ReviewTask]:
        wanted = set(mpi_ids)
        return [
            task
            for _, task in sorted(self.s.reviews.items())
            if task.is_pending and (task.mpi_id in wanted or task.candidate_mpi_id in wanted)
        ]

    def list_reviews(self, statuses: Sequence[ReviewStatus], limit: int, offset: int = 0) -> list[ReviewTask]:
        chosen = [task for _, task in sorted(self.s.reviews.items()) if task.status in statuses]
        return chosen[offset : offset + limit]

    def add_not_duplicate(self, decision: NotDuplicate) -> None:
        self.s.not_duplicates[decision.pair] = decision

    def not_duplicate_partners(self, mpi_id: str) -> set[str]:
        return {b if a == mpi_id else a for a, b in self.s.not_duplicates if mpi_id in (a, b)}

    def append_event(self, event: Event, persons: Sequence[Person] = ()) -> int:
        for person in persons:
            self.save_person(person)
        seq = len(self.t.events) + 1
        self.t.events.append(replace(event, seq=seq))
        return seq

    def events(self, after: int = 0, limit: int | None = None) -> list[Event]:
        chosen = self.t.events[after:]
        return chosen if limit is None else chosen[:limit]

    def events_in(self, spans: Sequence[tuple[int, int]], limit: int | None = None) -> list[Event]:
        chosen = [e for e in self.t.events if any(first <= (e.seq or 0) <= last for first, last in spans)]
        return chosen if limit is None else chosen[:limit]

    def events_about(self, mpi_id: str) -> list[Event]:
        return [event for event in self.t.events if mpi_id in event.subjects]

    def begin_bulk_load(self) -> None:
        pass  # nothing to defer: every write is checked as it is made

    def finish_bulk_load(self) -> None:
        pass

    def add_records(
        self, rows: Sequence[tuple[RecordKey, Demographics, MatriculeFlag]], at: datetime, actor: str
    ) -> list[SourceRecord]:
        return [
            self.add_record(key, demographics, matricule, at, actor) for key, demographics, matricule in rows
        ]

    def add_identifiers(self, identifiers: Sequence[RecordIdentifier]) -> list[RecordIdentifier]:
        return [
            self.add_identifier(i.record_id, i.system, i.value, i.raw, i.status, i.assigned_at)
            for i in identifiers
        ]

    def add_blocking_keys(self, batches: Iterable[Sequence[tuple[int, str]]]) -> None:
        for record_id, key in (pair for batch in batches for pair in batch):
            self.t.keys_of[record_id] = (*self.t.keys_of.get(record_id, ()), key)
            self.t.blocking.setdefault(key, set()).add(record_id)

    def add_forms(self, rows: Iterable[tuple[int, str]]) -> None:
        self.t.forms.update(rows)

    def add_persons(self, persons: Sequence[Person]) -> None:
        for person in persons:
            self.add_person(person)

    def add_links(self, links: Sequence[Link]) -> None:
        for link in links:
            self.save_link(link)

    def add_reviews(self, tasks: Sequence[ReviewTask]) -> list[ReviewTask]:
        return [self.add_review(task) for task in tasks]

    def append_events(self, events: Sequence[Event]) -> list[int]:
        return [self.append_event(event) for event in events]

    def link_rows(self, batch_size: int) -> Iterator[list[LinkRow]]:
        rows = [
            LinkRow(
                record.key.authority,
                record.key.local_id,
                record_id,
                link.mpi_id,
                link.provenance.value,
                link.score,
            )
            for record_id, record in sorted(self.s.records.items())
            for link in (self.s.links[record_id],)
        ]
        for start in range(0, len(rows), batch_size):
            yield rows[start : start + batch_size]

    def count_records(self) -> int:
        return len(self.s.records)

    def form_coverage(self) -> tuple[int, tuple[str, ...]]:
        forms = self.t.forms
        return len(forms), (forms[min(forms)], forms[max(forms)]) if forms else ()

    def snapshot(self) -> RegistryState:
        return copy.deepcopy(self.s)

    def supersede_record(self, record_id: int, replaced_by: int, at: datetime, actor: str) -> None:
        self.t.superseded[record_id] = replaced_by

    def superseded_records(self, record_ids: Sequence[int]) -> dict[int, int]:
        return {i: self.t.superseded[i] for i in record_ids if i in self.t.superseded}

    def search_columns(self, batch_size: int) -> Iterator[SearchColumns]:
        in_use = [i for i in sorted(self.s.records) if i in self.s.links and i not in self.t.superseded]
        for start in range(0, len(in_use), batch_size):
            ids = in_use[start : start + batch_size]
            records = [self.s.records[i].demographics for i in ids]
            yield SearchColumns(
                ids,
                [self.s.links[i].mpi_id for i in ids],
                {name: [getattr(d, name) for d in records] for name in SEARCHED_FIELDS},
            )

    def find_receipt(self, key: MessageKey) -> Receipt | None:
        return self.t.receipts.get(key)

    def add_receipt(self, receipt: Receipt) -> None:
        if receipt.key in self.t.receipts:
            raise ValueError(f"duplicate receipt {receipt.key}")
        self.t.receipts[receipt.key] = receipt

    def forget_receipts(self, before: datetime, limit: int) -> int:
        old = sorted(
            (r for r in self.t.receipts.values() if r.received_at < before), key=lambda r: r.received_at
        )
        chosen = [r for r in old if r.received_at <= old[limit - 1].received_at] if len(old) >= limit else old
        for receipt in chosen:
            del self.t.receipts[receipt.key]
        return len(chosen)

    def last_event_seq(self) -> int:
        return len(self.t.events)

    def event_cursor(self, name: str) -> int | None:
        return self.t.cursors.get(name)

    def set_event_cursor(self, name: str, seq: int) -> None:
        self.t.cursors[name] = seq

    def add_accesses(self, accesses: Sequence[Access]) -> None:
        for access in accesses:
            subjects = tuple(sorted(set(access.subjects)))
            self.t.accesses.append(replace(access, subjects=subjects, access_id=len(self.t.accesses) + 1))

    def accesses(
        self, *, mpi_id: str | None = None, actor: str | None = None, before: int | None = None, limit: int
    ) -> list[Access]:
        found = [
            a
            for a in reversed(self.t.accesses)
            if (mpi_id is None or mpi_id in a.subjects)
            and (actor is None or a.actor == actor)
            and (before is None or a.access_id < before)
        ]
        return found[:limit]

    def add_outbound(self, messages: Sequence[OutboundMessage]) -> None:
        for message in messages:
            message_id = len(self.t.outbound) + 1
            self.t.outbound[message_id] = replace(message, message_id=message_id)

    def pending_outbound(self, limit: int) -> list[OutboundMessage]:
        pending = [m for _, m in sorted(self.t.outbound.items()) if m.status is OutboundStatus.PENDING]
        return pending[:limit]

    def pending_head(self, consumer: str) -> OutboundMessage | None:
        return next((m for m in self.pending_heads() if m.consumer == consumer), None)

    def pending_heads(self) -> list[OutboundMessage]:
        heads: dict[str, OutboundMessage] = {}
        for message in self.pending_outbound(len(self.t.outbound)):
            heads.setdefault(message.consumer, message)
        return list(heads.values())

    def save_outbound(self, message: OutboundMessage) -> None:
        self.t.outbound[message.message_id] = message

    def last_announced(self, consumer: str, mpi_ids: Sequence[str]) -> dict[str, str]:
        wanted, failed = set(mpi_ids), OutboundStatus.FAILED
        latest: dict[str, str] = {}
        for _, message in sorted(self.t.outbound.items()):
            if message.consumer == consumer and message.mpi_id in wanted and message.status is not failed:
                latest[message.mpi_id] = message.identifiers
        return latest

    def rename_record(self, record_id: int, key: RecordKey) -> None:
        record = self.s.records[record_id]
        del self.t.by_key[record.key]
        self.t.by_key[key] = record_id
        self.s.records[record_id] = replace(record, key=key)

    def add_continuation(self, continuation: Continuation) -> None:
        if continuation.token in self.t.continuations:
            raise ValueError(f"duplicate continuation {continuation.token}")
        self.t.continuations[continuation.token] = continuation

    def find_continuation(self, token: str) -> Continuation | None:
        return self.t.continuations.get(token)

    def take_continuation(self, token: str, request: str) -> bool:
        found = self.t.continuations.get(token)
        if found is None or found.taken_by is not None:
            return False
        self.t.continuations[token] = replace(found, taken_by=request)
        return True

    def remove_continuations(self, sender: tuple[str, str], tag: str) -> int:
        return self._remove_continuations(lambda c: c.sender == sender and c.tag == tag)

    def remove_continuations_before(self, before: datetime) -> int:
        return self._remove_continuations(lambda c: c.created_at < before)

    def _remove_continuations(self, chosen: Callable[[Continuation], bool]) -> int:
        tokens = [token for token, c in self.t.continuations.items() if chosen(c)]
        for token in tokens:
            del self.t.continuations[token]
        return len(tokens)

    def savepoint(self, work: Callable[[], T]) -> T:
        saved = copy.deepcopy(self.t)
        try:
            return work()
        except BaseException:
            # Restored in place: the store commits this very object at the end of the transaction.
            vars(self.t).update(vars(saved))
            self.s = self.t.state
            raise

    def person_by_record(self, key: RecordKey) -> tuple[Person, list[SourceRecord]] | None:
        record = self.find_record(key)
        if record is None or record.record_id in self.t.superseded:
            return None
        link = self.s.links.get(record.record_id)
        if link is None:
            return None
        records = [
            self.s.records[other.record_id]
            for other in sorted(self.s.links.values(), key=lambda other: other.record_id)
            if other.mpi_id == link.mpi_id and other.record_id not in self.t.superseded
        ]
        return self.s.persons[link.mpi_id], records


class TickingClock:
    """A clock that moves one second forward at every reading: distinct, predictable timestamps."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2024, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self._now += timedelta(seconds=1)
        return self._now


class InMemoryStore:
    """A store in a dict: each transaction works on a copy that replaces the original on commit."""

    def __init__(self) -> None:
        self._tables = _Tables()
        self._lock = threading.RLock()

    def run(self, work: Callable[[UnitOfWork], T], *, write: bool = True) -> T:
        with self._lock:
            working = copy.deepcopy(self._tables) if write else self._tables
            result = work(_FakeUnitOfWork(working))
            if write:
                self._tables = working
            return result

    def close(self) -> None:
        """Nothing to release."""
