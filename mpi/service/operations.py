"""One service operation in progress: writes through the unit of work, each one recorded as a change.

Every use case (register, merge, resolve a task, ...) works through an
:class:`Operation`, so no write can reach the store without also reaching the
event that describes it. :meth:`Operation.finish` recomputes the golden records
and flags of the persons the operation touched, then appends exactly one event.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from mpi.domain.events import (
    Change,
    Event,
    EventKind,
    IdentifierChanged,
    LinkChanged,
    NotDuplicateAdded,
    PersonChanged,
    RecordChanged,
    ReviewChanged,
)
from mpi.domain.identifiers import check_matricule
from mpi.domain.mpi_id import is_valid_mpi_id, new_mpi_id
from mpi.domain.persons import Link, LinkProvenance, Person, PersonFlag, PersonStatus, TrustStatus
from mpi.domain.records import Demographics, MatriculeFlag, RecordIdentifier, RecordKey, SourceRecord
from mpi.domain.reviews import NotDuplicate, ReviewAction, ReviewKind, ReviewStatus, ReviewTask, person_pair
from mpi.domain.scores import ComparisonOutcome
from mpi.errors import Conflict, NotFound
from mpi.service.golden import SurvivorshipRules, refreshed
from mpi.service.ports import NewIdentifier, NewLink, RecordIndex, UnitOfWork

MATRICULE_SYSTEM = "urn:oid:1.3.182.4.4"

FLAG_OF_KIND = {
    ReviewKind.POTENTIAL_DUPLICATE: PersonFlag.POTENTIAL_DUPLICATE,
    ReviewKind.RECORD_MISMATCH: PersonFlag.POTENTIAL_DUPLICATE,
    ReviewKind.POTENTIAL_COLLISION: PersonFlag.POTENTIAL_COLLISION,
}
_MATRICULE_FLAG = {
    0: MatriculeFlag.MISSING,
    1: MatriculeFlag.VALID,
    2: MatriculeFlag.UPGRADED,
    3: MatriculeFlag.INVALID,
}


def _check_mpi_id(mpi_id: str) -> None:
    if not is_valid_mpi_id(mpi_id):
        raise NotFound(f"{mpi_id!r} is not a valid MPI id (wrong length, character or check character)")


@functools.lru_cache(maxsize=65_536)
def judge_matricule(raw: str | None) -> tuple[str | None, MatriculeFlag]:
    """The normalised 13-digit matricule (``None`` unless valid) and how it was judged."""
    normalised, status = check_matricule(raw)
    return normalised, _MATRICULE_FLAG[int(status)]


def _matricule_identifier(raw: str | None, matricule: MatriculeFlag) -> NewIdentifier | None:
    """The matricule identifier a record with national id ``raw`` carries, if any: the number
    normalised when valid, as sent (trimmed) otherwise, so a typing error stays findable."""
    normalised, _ = judge_matricule(raw)
    value = normalised or (raw.strip() if raw else None)
    if value is None or raw is None:
        return None
    return NewIdentifier(MATRICULE_SYSTEM, value, raw, matricule)


# Changes that move no record and change none: a person's records known before them still are.
_LEAVE_RECORDS_ALONE = (ReviewChanged, PersonChanged, NotDuplicateAdded)


class Operation:
    """The writes of one use case inside one transaction, and the event that records them."""

    def __init__(self, uow: UnitOfWork, rules: SurvivorshipRules, now: datetime, actor: str) -> None:
        self.uow = uow
        self.rules = rules
        self.now = now
        self.actor = actor
        self._changes: list[Change] = []
        self._touched: dict[str, None] = {}  # persons whose golden record and flags need a recompute
        self._reviews_changed: set[str] = set()  # persons whose flags may have changed
        # Every person write of the operation goes through it, so what it read or wrote stays current.
        self._persons: dict[str, Person] = {}
        # Persons locked by this transaction (or created by it): their rows in ``_persons`` are
        # current until it ends. A person is only ever written once locked, and read again
        # under the lock: a read taken before could undo a concurrent merge when written back.
        self._locked: set[str] = set()
        # A person's current records as this operation last wrote them, with the number of changes
        # made by then: the golden record is computed from them without reading them again, as
        # long as no change since touched a record or a link (see _LEAVE_RECORDS_ALONE).
        self._members: dict[str, tuple[int, list[SourceRecord]]] = {}
        self._unwritten: dict[str, Person] = {}  # new persons to store with their first record

    # -- reads ----------------------------------------------------------------------
    def record(self, key: RecordKey) -> SourceRecord:
        record = self.uow.find_record(key)
        if record is None:
            raise NotFound(f"no source record {key.local_id!r} in assigning authority {key.authority!r}")
        return record

    def person(self, mpi_id: str) -> Person:
        _check_mpi_id(mpi_id)
        person = self._persons.get(mpi_id) or self.uow.get_person(mpi_id)
        if person is None:
            raise NotFound(f"no person with MPI id {mpi_id!r}")
        self._persons[mpi_id] = person
        return person

    def active_person(self, mpi_id: str) -> Person:
        person = self.person(mpi_id)
        if not person.is_active:
            raise Conflict(f"person {mpi_id} is retired (merged into {person.replaced_by})")
        return person

    def lock_all(self, mpi_ids: Sequence[str]) -> dict[str, Person]:
        """Lock the persons not locked yet, read them afresh; every one that exists, locked."""
        wanted = sorted(set(mpi_ids) - self._locked)
        if wanted:
            found = self.uow.lock_persons(wanted)
            self._persons.update(found)
            self._locked.update(found)
        return {mpi_id: self._persons[mpi_id] for mpi_id in mpi_ids if mpi_id in self._locked}

    def lock_active(self, mpi_ids: Sequence[str]) -> dict[str, Person]:
        """Lock persons, each of which must exist and be active."""
        for mpi_id in mpi_ids:
            _check_mpi_id(mpi_id)
        locked = self.lock_all(mpi_ids)
        for mpi_id in mpi_ids:
            person = locked.get(mpi_id)
            if person is None:
                raise NotFound(f"no person with MPI id {mpi_id!r}")
            if not person.is_active:
                raise Conflict(f"person {mpi_id} is retired (merged into {person.replaced_by})")
        return locked

    def lock(self, mpi_id: str) -> Person | None:
        """Lock one person against concurrent change; ``None`` if it does not exist."""
        return self.lock_all([mpi_id]).get(mpi_id)

    def lock_active_successor(self, mpi_id: str) -> Person | None:
        """Lock the person, or the active person a merge committed meanwhile made its survivor."""
        current: str | None = mpi_id
        seen: set[str] = set()
        while current is not None and current not in seen:
            seen.add(current)
            person = self.lock(current)
            if person is None:
                return None
            if person.is_active:
                return person
            current = person.replaced_by
        return None

    def link_of(self, record_id: int) -> Link:
        return self.uow.get_links([record_id])[record_id]

    def lock_link(self, record_id: int, also: Sequence[str] = (), read: Link | None = None) -> Link:
        """The record's link, read once its person (and the persons ``also``) are locked; ``read``
        is the link as the caller read it before (it is read again once locked).

        Moving a link away from a person takes that person's lock, so a link read while its
        person is locked stays as read until the transaction ends; one read before may not.
        """
        link = read if read is not None else self.link_of(record_id)
        pending = {link.mpi_id, *also} - self._locked
        while pending:
            self.lock_all(sorted(pending))
            tried, link = link.mpi_id, self.link_of(record_id)  # read again: it may have moved
            if link.mpi_id == tried and tried not in self._locked:
                raise NotFound(f"record {record_id} is linked to an unknown person {tried!r}")
            pending = {link.mpi_id} - self._locked
        return link

    def members(self, mpi_id: str) -> list[SourceRecord]:
        known = self._members.get(mpi_id)
        if known is not None and all(isinstance(c, _LEAVE_RECORDS_ALONE) for c in self._changes[known[0] :]):
            return list(known[1])
        return self.uow.records_of_person(mpi_id)

    # -- records and identifiers ----------------------------------------------------
    def add_record(
        self,
        key: RecordKey,
        demographics: Demographics,
        matricule: MatriculeFlag,
        index: RecordIndex,
        link_to: NewLink | None = None,
    ) -> SourceRecord:
        """A new record, with its matricule identifier, its entry in the blocking-key index and,
        with ``link_to``, its link (stored together: one statement where the database allows)."""
        identifier = _matricule_identifier(demographics.national_id, matricule)
        # A person this operation created has no records but those it links to it.
        created = link_to is not None and self._members.get(link_to.mpi_id) == (len(self._changes), [])
        unwritten = self._unwritten.pop(link_to.mpi_id, None) if link_to is not None else None
        record, added, members = self.uow.add_indexed_record(
            key,
            demographics,
            matricule,
            self.now,
            self.actor,
            identifier,
            index,
            link_to,
            members=link_to is not None and not created,
            new_person=unwritten,
        )
        self._changes.append(RecordChanged(record))
        if added is not None:
            self._changes.append(IdentifierChanged(added.identifier_id, None, added))
        if link_to is not None:
            self._changes.append(
                LinkChanged(record.record_id, None, link_to.of(record.record_id, self.now, self.actor))
            )
            self._touched[link_to.mpi_id] = None
            if created or members is not None:
                self._members[link_to.mpi_id] = (len(self._changes), [record] if created else members or [])
        return record

    def add_version(
        self, current: SourceRecord, demographics: Demographics, matricule: MatriculeFlag
    ) -> SourceRecord:
        record = replace(
            current,
            version=current.version + 1,
            demographics=demographics,
            matricule=matricule,
            updated_at=self.now,
        )
        self.uow.add_record_version(record, self.actor)
        self._changes.append(RecordChanged(record))
        self._sync_identifier(record.record_id, demographics.national_id, matricule)
        return record

    def _sync_identifier(self, record_id: int, raw: str | None, matricule: MatriculeFlag) -> None:
        """Keep the record's matricule identifier current; a replaced one names its successor."""
        wanted = _matricule_identifier(raw, matricule)
        current = [i for i in self.uow.active_identifiers(record_id) if i.system == MATRICULE_SYSTEM]
        if wanted is not None and any(i.value == wanted.value for i in current):
            return
        self.replace_identifiers(record_id, current, wanted)

    def replace_identifiers(
        self, record_id: int, current: Sequence[RecordIdentifier], new: NewIdentifier | None
    ) -> None:
        """Retire ``current`` in favour of ``new``, which names its predecessors' successor; with
        ``new`` None they are retired without one."""
        successor = None
        if new is not None:
            successor = self.uow.add_identifier(
                record_id, new.system, new.value, new.raw, new.status, self.now
            )
            self._changes.append(IdentifierChanged(successor.identifier_id, None, successor))
        for old in current:
            retired = replace(
                old, active=False, replaced_by=successor.identifier_id if successor is not None else None
            )
            self.uow.save_identifier(retired)
            self._changes.append(IdentifierChanged(old.identifier_id, old, retired))

    # -- persons and links ----------------------------------------------------------
    def new_person(self, *, with_first_record: bool = False) -> Person:
        """A new person; ``with_first_record``: stored by the next ``add_record`` linking to it
        (in the same round trip where the store can), which the caller makes next."""
        person = Person(
            mpi_id=new_mpi_id(),
            status=PersonStatus.ACTIVE,
            trust=TrustStatus.PROVISIONAL,
            golden=Demographics(),
            created_at=self.now,
        )
        if with_first_record:
            self._unwritten[person.mpi_id] = person
        else:
            self.uow.add_person(person)
        self._persons[person.mpi_id] = person
        self._locked.add(person.mpi_id)  # no other transaction sees it before this one ends
        self._changes.append(PersonChanged(person.mpi_id, None, person))
        self._touched[person.mpi_id] = None
        self._members[person.mpi_id] = (len(self._changes), [])
        return person

    def save_person(self, before: Person, after: Person) -> None:
        if before != after:
            self.uow.save_person(after)
            self._persons[after.mpi_id] = after
            self._changes.append(PersonChanged(after.mpi_id, before, after))
        self._touched[after.mpi_id] = None

    def set_link(self, before: Link | None, after: Link) -> None:
        if before == after:
            return
        self.uow.save_link(after)
        self._changes.append(LinkChanged(after.record_id, before, after))
        self._touched[after.mpi_id] = None
        if before is not None:
            self._touched[before.mpi_id] = None

    def link(
        self,
        record_id: int,
        mpi_id: str,
        provenance: LinkProvenance,
        *,
        before: Link | None = None,
        score: float | None = None,
        model_version: str | None = None,
        reason: str | None = None,
    ) -> Link:
        after = Link(
            record_id=record_id,
            mpi_id=mpi_id,
            provenance=provenance,
            linked_at=self.now,
            actor=self.actor,
            score=score,
            model_version=model_version,
            reason=reason,
        )
        self.set_link(before, after)
        return after

    def touch(self, mpi_id: str, *, flags: bool = False) -> None:
        """Recompute the person's golden record at the end (and its flags, when ``flags``)."""
        self._touched[mpi_id] = None
        if flags:
            self._reviews_changed.add(mpi_id)

    # -- review tasks and decisions -------------------------------------------------
    def raise_review(
        self,
        kind: ReviewKind,
        record_id: int,
        mpi_id: str,
        candidate_mpi_id: str,
        candidate_record_id: int | None,
        match_probability: float,
        match_weight: float,
        comparisons: Sequence[ComparisonOutcome],
    ) -> ReviewTask | None:
        """Open a task unless the pair was ruled out by a human or already waits for one.

        The candidate person is locked first: merged meanwhile, its survivor is the candidate."""
        if kind is not ReviewKind.RECORD_MISMATCH:
            candidate = self.lock_active_successor(candidate_mpi_id)
            if candidate is None:
                return None
            candidate_mpi_id = candidate.mpi_id
        if kind is not ReviewKind.RECORD_MISMATCH and (
            candidate_mpi_id == mpi_id or candidate_mpi_id in self.uow.not_duplicate_partners(mpi_id)
        ):
            return None
        pair = person_pair(mpi_id, candidate_mpi_id)
        for pending in self.uow.pending_reviews_of_persons([mpi_id]):
            same_pair = person_pair(pending.mpi_id, pending.candidate_mpi_id) == pair
            if (
                same_pair
                and pending.kind is kind
                and (kind is not ReviewKind.RECORD_MISMATCH or pending.record_id == record_id)
            ):
                return None
        task = self.uow.add_review(
            ReviewTask(
                task_id=0,
                kind=kind,
                status=ReviewStatus.OPEN,
                record_id=record_id,
                mpi_id=mpi_id,
                candidate_mpi_id=candidate_mpi_id,
                candidate_record_id=candidate_record_id,
                match_probability=match_probability,
                match_weight=match_weight,
                comparisons=tuple(comparisons),
                created_at=self.now,
            )
        )
        self._changes.append(ReviewChanged(task.task_id, None, task))
        for person in (mpi_id, candidate_mpi_id):
            self._touched[person] = None
            self._reviews_changed.add(person)
        return task

    def save_review(self, before: ReviewTask, after: ReviewTask) -> None:
        if before == after:
            return
        self.uow.save_review(after)
        self._changes.append(ReviewChanged(after.task_id, before, after))
        for mpi_id in (before.mpi_id, before.candidate_mpi_id, after.mpi_id, after.candidate_mpi_id):
            self._touched[mpi_id] = None
            self._reviews_changed.add(mpi_id)

    def close_review(self, task: ReviewTask, action: ReviewAction, note: str | None) -> ReviewTask:
        closed = replace(
            task,
            status=ReviewStatus.DEFERRED if action is ReviewAction.DEFER else ReviewStatus.RESOLVED,
            resolution=None if action is ReviewAction.DEFER else action,
            resolved_at=self.now,
            resolved_by=self.actor,
            note=note,
        )
        self.save_review(task, closed)
        return closed

    def transfer_reviews(self, source: str, target: str, note: str) -> None:
        """Point the pending tasks of ``source`` at ``target`` (see :meth:`repoint_review`: a task
        now pairing ``target`` with itself is answered by the merge that caused it)."""
        for task in self.uow.pending_reviews_of_persons([source]):
            mpi_id = target if task.mpi_id == source else task.mpi_id
            candidate = target if task.candidate_mpi_id == source else task.candidate_mpi_id
            if task.kind is ReviewKind.RECORD_MISMATCH:
                self.save_review(task, replace(task, mpi_id=mpi_id, candidate_mpi_id=candidate))
            else:
                self.repoint_review(task, mpi_id, candidate, together=ReviewAction.MERGE, note=note)

    def repoint_review(
        self, task: ReviewTask, mpi_id: str, candidate: str, *, together: ReviewAction, note: str | None
    ) -> None:
        """Point a pending pair task at ``mpi_id`` and ``candidate``. One that would pair a person
        with itself is answered with ``together`` (what brought its records together); one that
        would pair persons judged not duplicates is answered by that judgement (such a pair is
        never proposed again)."""
        if mpi_id == candidate:
            self.close_review(task, together, note)
        elif candidate in self.uow.not_duplicate_partners(mpi_id):
            self.close_review(task, ReviewAction.NOT_A_DUPLICATE, "the pair was judged not a duplicate")
        else:
            self.save_review(task, replace(task, mpi_id=mpi_id, candidate_mpi_id=candidate))

    def add_not_duplicate(self, first: str, second: str, reason: str | None) -> None:
        pair = person_pair(first, second)
        if second in self.uow.not_duplicate_partners(first):
            return
        decision = NotDuplicate(pair=pair, decided_at=self.now, actor=self.actor, reason=reason)
        self.uow.add_not_duplicate(decision)
        self._changes.append(NotDuplicateAdded(decision))

    # -- completion -----------------------------------------------------------------
    def _refresh(self, mpi_id: str) -> Person | None:
        """The person with its golden record and flags recomputed, if they changed (unsaved)."""
        person = self.lock(mpi_id)
        if person is None or not person.is_active:
            return None  # a retired person keeps the golden record it had when it was merged
        flags = person.flags
        if mpi_id in self._reviews_changed:  # flags follow the pending tasks, which only change here
            pending = self.uow.pending_reviews_of_persons([mpi_id])
            flags = frozenset(FLAG_OF_KIND[task.kind] for task in pending)
        after = replace(refreshed(person, self.members(mpi_id), self.rules), flags=flags)
        if after == person:
            return None
        self._persons[mpi_id] = after
        self._changes.append(PersonChanged(mpi_id, person, after))
        return after

    def finish(self, kind: EventKind, reason: str | None = None, about: Sequence[str] = ()) -> Event:
        """Recompute what the changes invalidated and append the one event of this operation
        (about the persons its changes name, and ``about``)."""
        if self._unwritten:  # a caller's mistake, not the data's: the person would be lost
            raise RuntimeError(f"new persons never given a record: {sorted(self._unwritten)}")
        # Saved with the event (one statement where the store can): nothing reads them before.
        refreshed_persons = [p for p in (self._refresh(m) for m in sorted(self._touched)) if p is not None]
        subjects: dict[str, None] = dict.fromkeys(about)
        for change in self._changes:
            match change:
                case PersonChanged(mpi_id=mpi_id):
                    subjects[mpi_id] = None
                case LinkChanged(before=before, after=after):
                    subjects[after.mpi_id] = None
                    if before is not None:
                        subjects[before.mpi_id] = None
                case ReviewChanged(after=task):
                    subjects[task.mpi_id] = None
                    subjects[task.candidate_mpi_id] = None
                case NotDuplicateAdded(decision=decision):
                    subjects.update(dict.fromkeys(decision.pair))
                case _:
                    pass
        event = Event(
            kind=kind,
            occurred_at=self.now,
            actor=self.actor,
            changes=tuple(self._changes),
            reason=reason,
            subjects=tuple(subjects),
        )
        return replace(event, seq=self.uow.append_event(event, refreshed_persons))
