"""Identity lifecycle by hand: merge, unmerge, link, unlink, not-a-duplicate, identity validation.

Each use case is one transaction that appends one event. Validation happens
before the first write, so a refused request (``NotFound``, ``Conflict``)
changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from mpi.domain.commands import (
    LinkRecord,
    MarkNotDuplicate,
    MergePersons,
    UnlinkRecord,
    UnmergePerson,
    ValidateIdentity,
)
from mpi.domain.events import Event, EventKind, LinkChanged, PersonChanged, ReviewChanged
from mpi.domain.mpi_id import normalise_mpi_id
from mpi.domain.persons import LinkProvenance, PersonStatus
from mpi.domain.reviews import ReviewAction, ReviewKind, ReviewTask
from mpi.errors import Conflict
from mpi.service.golden import SurvivorshipRules
from mpi.service.operations import Operation
from mpi.service.ports import Store, UnitOfWork


def merge_in(op: Operation, survivor: str, retired: str, reason: str | None) -> None:
    """Move every link of ``retired`` to ``survivor`` and retire it (both checked by the caller)."""
    note = reason or f"merged into {survivor}"
    for link in op.uow.links_of_person(retired):
        op.link(
            link.record_id,
            survivor,
            LinkProvenance.MANUAL,
            before=link,
            score=link.score,
            model_version=link.model_version,
            reason=note,
        )
    before = op.person(retired)
    op.save_person(before, replace(before, status=PersonStatus.RETIRED, replaced_by=survivor))
    op.transfer_reviews(retired, survivor, note)


class Lifecycle:
    def __init__(self, store: Store, rules: SurvivorshipRules, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._rules = rules
        self._clock = clock

    def _run(self, actor: str, work: Callable[[Operation], Event]) -> Event:
        return self._store.run(lambda uow: work(Operation(uow, self._rules, self._clock(), actor)))

    def merge(self, command: MergePersons) -> Event:
        survivor, retired = normalise_mpi_id(command.survivor), normalise_mpi_id(command.retired)

        def work(op: Operation) -> Event:
            if survivor == retired:
                op.person(survivor)
                raise Conflict(f"cannot merge person {survivor} into itself")
            op.lock_active(sorted((survivor, retired)))
            merge_in(op, survivor, retired, command.reason)
            return op.finish(EventKind.PERSONS_MERGED, command.reason)

        return self._run(command.actor, work)

    def unmerge(self, command: UnmergePerson) -> Event:
        """Undo the merge that retired a person: its links, its state and that of its survivor
        come back as they were, except where they were changed since; record updates stay."""
        retired_id = normalise_mpi_id(command.mpi_id)

        def work(op: Operation) -> Event:
            op.person(retired_id)  # an unknown id is not found, before anything is locked
            # Read again under the lock: an unmerge of the same person committed meanwhile has
            # made it active, and there is then nothing left to undo.
            retired = op.lock(retired_id) or op.person(retired_id)
            if retired.is_active:
                raise Conflict(f"person {retired_id} is active: there is no merge to undo")
            merge = _retiring_event(op.uow, retired_id)
            # A review task answered by a merge is a merge too, and as reversible: undoing it
            # puts the task back before a reviewer, as it was.
            if merge is None or merge.kind not in _MERGES:
                raise Conflict(f"person {retired_id} was not retired by a merge; link its records instead")
            survivor_id = retired.replaced_by or ""
            survivor = op.lock(survivor_id) or op.person(survivor_id)
            if not survivor.is_active:
                raise Conflict(
                    f"the survivor {survivor_id} was itself merged into {survivor.replaced_by} since; "
                    "unmerge that first"
                )
            # Newest first, so an entity changed twice by the merge ends at its first 'before'.
            for change in reversed(merge.changes):
                match change:
                    case PersonChanged(mpi_id=mpi_id, before=before, after=after) if before is not None:
                        current = op.person(mpi_id)
                        if mpi_id == retired_id or current == after:
                            op.save_person(current, before)
                        elif current.document_checked == after.document_checked:
                            # Changed since (a record update, a task): its golden record is
                            # recomputed below, but a validation the merge undid comes back if
                            # the strict traits return to those the document was checked against.
                            op.save_person(
                                current,
                                replace(
                                    current, document_checked=before.document_checked, golden=before.golden
                                ),
                            )
                    case LinkChanged(record_id=record_id, before=before, after=after) if before is not None:
                        current_link = op.link_of(record_id)
                        if current_link == after:
                            op.set_link(current_link, before)
                    case ReviewChanged(task_id=task_id, before=before, after=after) if before is not None:
                        current_task = op.uow.get_review(task_id)
                        if current_task == after:
                            op.save_review(after, before)
                    case _:
                        pass
            # Tasks raised since the merge judged records the survivor then held: each follows
            # its records back, or a reviewer would be asked about the wrong person (and a merge
            # answering it would make an overlay).
            for task in op.uow.pending_reviews_of_persons([survivor_id, retired_id]):
                if task.created_at > merge.occurred_at:
                    op.save_review(task, _following_its_records(op, task))
            # Records moved by hand since the merge stay where they were put; if that leaves
            # either person empty, there is no identity left to restore (and the transaction
            # is rolled back, changing nothing).
            for mpi_id in (retired_id, survivor_id):
                op.touch(mpi_id, flags=True)  # tasks may have been answered since the merge
                if not op.uow.links_of_person(mpi_id):
                    raise Conflict(
                        f"unmerging would leave person {mpi_id} without records: they were moved since "
                        "the merge; link them back by hand instead"
                    )
            return op.finish(EventKind.PERSONS_UNMERGED, command.reason)

        return self._run(command.actor, work)

    def link(self, command: LinkRecord) -> Event:
        """Attach a record to a person by hand. A person left without records is retired
        with the target as its successor, as in a merge."""
        target = normalise_mpi_id(command.mpi_id)

        def work(op: Operation) -> Event:
            record = op.record(command.key)
            op.active_person(target)
            current = op.lock_link(record.record_id, also=(target,))
            op.lock_active(sorted({target, current.mpi_id}))  # both locked now: checks they are active
            if current.mpi_id == target and current.provenance is LinkProvenance.MANUAL:
                raise Conflict(f"record {command.key} is already linked by hand to {target}")
            op.link(record.record_id, target, LinkProvenance.MANUAL, before=current, reason=command.reason)
            # Put where it belongs by hand: whether it fitted its person is answered.
            kept = current.mpi_id == target
            action = ReviewAction.CONFIRM_LINK if kept else ReviewAction.UNLINK_RECORD
            answer_record_mismatches(op, record.record_id, current.mpi_id, action, command.reason)
            follow_moved_record(op, record.record_id, current.mpi_id, command.reason)
            if current.mpi_id != target and not op.uow.links_of_person(current.mpi_id):
                merge_in(op, target, current.mpi_id, command.reason or f"its last record moved to {target}")
            return op.finish(EventKind.RECORD_LINKED, command.reason)

        return self._run(command.actor, work)

    def unlink(self, command: UnlinkRecord) -> Event:
        """Detach a record from its person; it gets a person of its own, and the two persons
        are marked as not duplicates so re-matching never joins them again."""

        def work(op: Operation) -> Event:
            record = op.record(command.key)
            current = op.lock_link(record.record_id)  # its person's records stay as counted here
            if len(op.uow.links_of_person(current.mpi_id)) == 1:
                raise Conflict(
                    f"record {command.key} is the only record of person {current.mpi_id}; there is nothing "
                    "to unlink it from"
                )
            person = op.new_person()
            op.link(
                record.record_id,
                person.mpi_id,
                LinkProvenance.MANUAL,
                before=current,
                reason=command.reason or f"unlinked from {current.mpi_id}",
            )
            op.add_not_duplicate(current.mpi_id, person.mpi_id, command.reason)
            answer_record_mismatches(
                op, record.record_id, current.mpi_id, ReviewAction.UNLINK_RECORD, command.reason
            )
            follow_moved_record(op, record.record_id, current.mpi_id, command.reason)
            return op.finish(EventKind.RECORD_UNLINKED, command.reason)

        return self._run(command.actor, work)

    def mark_not_duplicate(self, command: MarkNotDuplicate) -> Event:
        first, second = normalise_mpi_id(command.first), normalise_mpi_id(command.second)

        def work(op: Operation) -> Event:
            if first == second:
                op.person(first)
                raise Conflict(f"a person cannot be a duplicate of itself ({first})")
            op.lock_active(sorted((first, second)))
            if second in op.uow.not_duplicate_partners(first):
                raise Conflict(f"persons {first} and {second} are already marked as not duplicates")
            close_pair_reviews(op, first, second, command.reason)
            op.add_not_duplicate(first, second, command.reason)
            return op.finish(EventKind.PERSONS_NOT_DUPLICATE, command.reason)

        return self._run(command.actor, work)

    def validate_identity(self, command: ValidateIdentity) -> Event:
        mpi_id = normalise_mpi_id(command.mpi_id)

        def work(op: Operation) -> Event:
            person = op.lock_active([mpi_id])[mpi_id]
            if person.document_checked:
                raise Conflict(f"the identity of {mpi_id} is already validated")
            op.save_person(person, replace(person, document_checked=True))
            return op.finish(EventKind.IDENTITY_VALIDATED, command.reason)

        return self._run(command.actor, work)


def close_pair_reviews(op: Operation, first: str, second: str, note: str | None) -> None:
    """Answer every pending task about the pair as not-a-duplicate."""
    for task in op.uow.pending_reviews_of_persons([first]):
        if task.kind is not ReviewKind.RECORD_MISMATCH and {task.mpi_id, task.candidate_mpi_id} == {
            first,
            second,
        }:
            op.close_review(task, ReviewAction.NOT_A_DUPLICATE, note)


def answer_record_mismatches(
    op: Operation, record_id: int, mpi_id: str, action: ReviewAction, note: str | None
) -> None:
    """Answer the pending record-mismatch tasks of a record of ``mpi_id`` with ``action``: once
    the record is linked or unlinked by hand, they could be answered no other way."""
    for task in op.uow.pending_reviews_of_persons([mpi_id]):
        if task.kind is ReviewKind.RECORD_MISMATCH and task.record_id == record_id:
            op.close_review(task, action, note)


def follow_moved_record(op: Operation, record_id: int, left: str, note: str | None) -> None:
    """The pending pair tasks judged on a record moved by hand away from ``left`` follow it to
    its person (answered when the move put the task's two records together)."""
    for task in op.uow.pending_reviews_of_persons([left]):
        if task.kind is not ReviewKind.RECORD_MISMATCH and record_id in (
            task.record_id,
            task.candidate_record_id,
        ):
            mine, theirs = _holders(op, task)
            op.repoint_review(
                task,
                mine,
                theirs,
                together=ReviewAction.CONFIRM_LINK,
                note=note or "its record was linked by hand",
            )


def _following_its_records(op: Operation, task: ReviewTask) -> ReviewTask:
    """``task`` pointing at the persons its records are now linked to (unchanged if that would
    pair a person with itself where two persons are meant)."""
    mine, theirs = _holders(op, task)
    if task.kind is ReviewKind.RECORD_MISMATCH:
        return replace(task, mpi_id=mine, candidate_mpi_id=mine)
    return task if mine == theirs else replace(task, mpi_id=mine, candidate_mpi_id=theirs)


def _holders(op: Operation, task: ReviewTask) -> tuple[str, str]:
    """The persons that now hold the task's record and its candidate (the candidate person as
    raised when the task names no candidate record)."""
    theirs = task.candidate_mpi_id
    if task.candidate_record_id is not None:
        theirs = op.link_of(task.candidate_record_id).mpi_id
    return op.link_of(task.record_id).mpi_id, theirs


_MERGES = frozenset({EventKind.PERSONS_MERGED, EventKind.REVIEW_RESOLVED})


def _retiring_event(uow: UnitOfWork, mpi_id: str) -> Event | None:
    """The latest event that retired ``mpi_id``."""
    for event in reversed(uow.events_about(mpi_id)):
        for change in event.changes:
            if (
                isinstance(change, PersonChanged)
                and change.mpi_id == mpi_id
                and change.after.status is PersonStatus.RETIRED
                and (change.before is None or change.before.status is PersonStatus.ACTIVE)
            ):
                return event
    return None
