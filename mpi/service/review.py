"""Review tasks: listing them and answering them (merge, not-a-duplicate, defer, and for a
record that no longer fits its person, confirm or unlink)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from mpi.domain.access import AccessAction
from mpi.domain.commands import ResolveReview
from mpi.domain.events import Event, EventKind
from mpi.domain.mpi_id import normalise_mpi_id
from mpi.domain.persons import LinkProvenance
from mpi.domain.records import RecordKey
from mpi.domain.reviews import ReviewAction, ReviewStatus, ReviewTask, allowed_actions
from mpi.errors import Conflict, NotFound
from mpi.service.access import Viewer
from mpi.service.golden import SurvivorshipRules
from mpi.service.lifecycle import close_pair_reviews, merge_in
from mpi.service.operations import Operation
from mpi.service.ports import Store, UnitOfWork

PENDING = (ReviewStatus.OPEN, ReviewStatus.DEFERRED)


class Reviews:
    def __init__(self, store: Store, rules: SurvivorshipRules, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._rules = rules
        self._clock = clock

    def list(
        self,
        statuses: Sequence[ReviewStatus] = PENDING,
        limit: int = 50,
        offset: int = 0,
        viewer: Viewer | None = None,
    ) -> list[ReviewTask]:
        """Tasks with one of ``statuses``, oldest first (an access to their persons for ``viewer``)."""

        def work(uow: UnitOfWork) -> list[ReviewTask]:
            tasks = uow.list_reviews(statuses, limit, offset)
            if viewer is not None:
                persons = [m for task in tasks for m in (task.mpi_id, task.candidate_mpi_id)]
                criteria = f"statuses={','.join(sorted(statuses))} offset={offset} limit={limit}"
                viewer.record(uow, self._clock(), AccessAction.REVIEWS_LISTED, persons, criteria, len(tasks))
            return tasks

        return self._store.run(work, write=viewer is not None)

    def record_keys(self, tasks: Sequence[ReviewTask]) -> dict[int, RecordKey]:
        """The source keys of the records the tasks are about (what a reviewer looks them up by)."""
        ids = sorted({i for t in tasks for i in (t.record_id, t.candidate_record_id) if i is not None})
        records = self._store.run(lambda uow: uow.get_records(ids), write=False) if ids else {}
        return {record_id: record.key for record_id, record in records.items()}

    def get(self, task_id: int) -> ReviewTask:
        def work(uow: UnitOfWork) -> ReviewTask:
            task = uow.get_review(task_id)
            if task is None:
                raise NotFound(f"no review task {task_id}")
            return task

        return self._store.run(work, write=False)

    def resolve(self, command: ResolveReview) -> Event:
        def work(uow: UnitOfWork) -> Event:
            op = Operation(uow, self._rules, self._clock(), command.actor)
            task = uow.get_review(command.task_id)
            if task is None:
                raise NotFound(f"no review task {command.task_id}")
            # Whatever changes a task locks one of its persons at least: read under their locks,
            # a resolution (or a merge moving the task) committed meanwhile is seen here.
            op.lock_all(sorted({task.mpi_id, task.candidate_mpi_id}))
            task = uow.get_review(command.task_id) or task
            if task.status is ReviewStatus.RESOLVED:
                raise Conflict(
                    f"review task {task.task_id} was already resolved ({task.resolution}) by "
                    f"{task.resolved_by} at {task.resolved_at:%Y-%m-%d %H:%M:%S}"
                )
            if command.action not in allowed_actions(task.kind):
                allowed = ", ".join(sorted(allowed_actions(task.kind)))
                raise Conflict(f"a {task.kind} task is answered with one of: {allowed}")
            if command.action is ReviewAction.DEFER:
                if task.status is ReviewStatus.DEFERRED:
                    raise Conflict(f"review task {task.task_id} is already deferred")
                op.close_review(task, ReviewAction.DEFER, command.reason)
                return op.finish(EventKind.REVIEW_DEFERRED, command.reason)
            _ANSWERS[command.action](op, task, command)
            return op.finish(EventKind.REVIEW_RESOLVED, command.reason)

        return self._store.run(work)


def _merge(op: Operation, task: ReviewTask, command: ResolveReview) -> None:
    pair = sorted((task.mpi_id, task.candidate_mpi_id))
    persons = op.lock_active(pair)
    if command.survivor is not None:
        survivor = normalise_mpi_id(command.survivor)
        if survivor not in persons:
            raise Conflict(f"the survivor must be one of the task's persons: {' or '.join(pair)}")
    else:
        survivor = min(persons.values(), key=lambda p: (p.created_at, p.mpi_id)).mpi_id
    retired = pair[1] if survivor == pair[0] else pair[0]
    op.close_review(task, ReviewAction.MERGE, command.reason)
    merge_in(op, survivor, retired, command.reason)


def _not_a_duplicate(op: Operation, task: ReviewTask, command: ResolveReview) -> None:
    op.lock_active(sorted((task.mpi_id, task.candidate_mpi_id)))
    close_pair_reviews(op, task.mpi_id, task.candidate_mpi_id, command.reason)
    op.add_not_duplicate(task.mpi_id, task.candidate_mpi_id, command.reason)


def _current_link(op: Operation, task: ReviewTask) -> tuple[int, str]:
    link = op.link_of(task.record_id)
    if link.mpi_id != task.mpi_id:
        raise Conflict(f"record {task.record_id} has moved to {link.mpi_id} since the task was raised")
    return link.record_id, link.mpi_id


def _confirm_link(op: Operation, task: ReviewTask, command: ResolveReview) -> None:
    record_id, mpi_id = _current_link(op, task)
    op.lock_active([mpi_id])
    before = op.link_of(record_id)
    op.close_review(task, ReviewAction.CONFIRM_LINK, command.reason)
    op.link(
        record_id,
        mpi_id,
        LinkProvenance.MANUAL,
        before=before,
        score=before.score,
        model_version=before.model_version,
        reason=command.reason or "confirmed by review",
    )


def _unlink_record(op: Operation, task: ReviewTask, command: ResolveReview) -> None:
    record_id, mpi_id = _current_link(op, task)
    if len(op.uow.links_of_person(mpi_id)) == 1:
        raise Conflict(f"record {record_id} is the only record of person {mpi_id}; nothing to unlink it from")
    op.lock_active([mpi_id])
    before = op.link_of(record_id)
    op.close_review(task, ReviewAction.UNLINK_RECORD, command.reason)
    person = op.new_person()
    op.link(
        record_id,
        person.mpi_id,
        LinkProvenance.MANUAL,
        before=before,
        reason=command.reason or f"unlinked from {mpi_id} by review",
    )
    op.add_not_duplicate(mpi_id, person.mpi_id, command.reason)


_ANSWERS: dict[ReviewAction, Callable[[Operation, ReviewTask, ResolveReview], None]] = {
    ReviewAction.MERGE: _merge,
    ReviewAction.NOT_A_DUPLICATE: _not_a_duplicate,
    ReviewAction.CONFIRM_LINK: _confirm_link,
    ReviewAction.UNLINK_RECORD: _unlink_record,
}
