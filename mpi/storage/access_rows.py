"""Rows of the access audit trail, for :class:`~mpi.storage.store.SqlUnitOfWork`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, insert, select

from mpi.domain.access import Access, AccessAction, AccessChannel
from mpi.storage import tables as t


class AccessRows:
    """The audit part of the unit of work; the class using it provides the connection ``_c``."""

    _c: Connection

    def add_accesses(self, accesses: Sequence[Access]) -> None:
        subjects = []
        for access in accesses:
            access_id = self._c.execute(
                insert(t.access_log).returning(t.access_log.c.access_id),
                {
                    "accessed_at": access.at,
                    "actor": access.actor,
                    "channel": access.channel.value,
                    "action": access.action.value,
                    "criteria": access.criteria,
                    "results": access.results,
                },
            ).scalar_one()
            subjects += [{"access_id": access_id, "mpi_id": s} for s in dict.fromkeys(access.subjects)]
        if subjects:
            self._c.execute(insert(t.access_subject), subjects)

    def accesses(
        self, *, mpi_id: str | None = None, actor: str | None = None, before: int | None = None, limit: int
    ) -> list[Access]:
        log = t.access_log
        query = select(log).order_by(log.c.access_id.desc()).limit(limit)
        if mpi_id is not None:
            shown = select(t.access_subject.c.access_id).where(t.access_subject.c.mpi_id == mpi_id)
            query = query.where(log.c.access_id.in_(shown))
        if actor is not None:
            query = query.where(log.c.actor == actor)
        if before is not None:
            query = query.where(log.c.access_id < before)
        rows = self._c.execute(query).mappings().all()
        ids = [row["access_id"] for row in rows]
        subjects: dict[int, list[str]] = {i: [] for i in ids}
        if ids:
            listed = select(t.access_subject).where(t.access_subject.c.access_id.in_(ids))
            for row in self._c.execute(listed.order_by(t.access_subject.c.mpi_id)).mappings():
                subjects[row["access_id"]].append(row["mpi_id"])
        return [
            Access(
                at=row["accessed_at"],
                actor=row["actor"],
                channel=AccessChannel(row["channel"]),
                action=AccessAction(row["action"]),
                subjects=tuple(subjects[row["access_id"]]),
                criteria=row["criteria"],
                results=row["results"],
                access_id=row["access_id"],
            )
            for row in rows
        ]
