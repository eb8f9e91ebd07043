"""Review tasks and not-a-duplicate decisions, for :class:`~mpi.storage.store.SqlUnitOfWork`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import Connection, select

from mpi.domain.reviews import NotDuplicate, ReviewStatus, ReviewTask
from mpi.storage import statements as q
from mpi.storage import tables as t
from mpi.storage.direct import DirectStatements


class ReviewRows:
    """The review rows of the unit of work; the class using it provides the connection ``_c``."""

    _c: Connection
    _direct: DirectStatements

    def add_review(self, task: ReviewTask) -> ReviewTask:
        task_id = self._direct.execute(q.INSERT_REVIEW, t.review_values(task)).scalar_one()
        return replace(task, task_id=task_id)

    def get_review(self, task_id: int) -> ReviewTask | None:
        row = self._c.execute(q.REVIEW, {"task_id": task_id}).mappings().first()
        return None if row is None else t.review_of(row)

    def save_review(self, task: ReviewTask) -> None:
        self._c.execute(q.UPDATE_REVIEW, {"b_task_id": task.task_id, **t.review_values(task)})

    def pending_reviews_of_persons(self, mpi_ids: Sequence[str]) -> list[ReviewTask]:
        wanted = sorted(set(mpi_ids))
        if len(wanted) == 1:
            rows = self._direct.execute(q.PENDING_REVIEWS_OF_PERSON, {"mpi_id": wanted[0]}).mappings().all()
            return [t.review_of(row) for row in rows]
        found: dict[int, ReviewTask] = {}
        for chunk in q.chunks(wanted):
            params = {"ids": list(chunk), "cids": list(chunk)}
            found.update(
                (row["task_id"], t.review_of(row))
                for row in self._direct.execute(q.PENDING_REVIEWS, params).mappings().all()
            )
        return [found[task_id] for task_id in sorted(found)]

    def list_reviews(self, statuses: Sequence[ReviewStatus], limit: int, offset: int = 0) -> list[ReviewTask]:
        table = t.review_task
        query = (
            select(table)
            .where(table.c.status.in_([s.value for s in statuses]))
            .order_by(table.c.task_id)
            .limit(limit)
            .offset(offset)
        )
        return [t.review_of(row) for row in self._c.execute(query).mappings()]

    def add_not_duplicate(self, decision: NotDuplicate) -> None:
        self._c.execute(
            q.INSERT_NOT_DUPLICATE,
            {
                "person_a": decision.pair[0],
                "person_b": decision.pair[1],
                "decided_at": decision.decided_at,
                "actor": decision.actor,
                "reason": decision.reason,
            },
        )

    def not_duplicate_partners(self, mpi_id: str) -> set[str]:
        rows = self._direct.execute(q.NOT_DUPLICATE_PAIRS, {"mpi_id": mpi_id})
        return {b if a == mpi_id else a for a, b in rows}
