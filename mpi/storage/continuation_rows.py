"""Continuations of paged query answers, for :class:`~mpi.storage.store.SqlUnitOfWork`."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.engine import RowMapping

from mpi.service.ports import Continuation
from mpi.storage import tables as t

_TABLE = t.query_continuation


class ContinuationRows:
    """The continuation part of the unit of work; the class using it provides the connection ``_c``."""

    _c: Connection

    def add_continuation(self, continuation: Continuation) -> None:
        application, facility = continuation.sender
        self._c.execute(
            insert(_TABLE),
            {
                "token": continuation.token,
                "sending_application": application,
                "sending_facility": facility,
                "query_tag": continuation.tag,
                "query": continuation.query,
                "remaining": json.dumps([[mpi_id, score] for mpi_id, score in continuation.remaining]),
                "total": continuation.total,
                "created_at": continuation.created_at,
            },
        )

    def find_continuation(self, token: str) -> Continuation | None:
        row = self._c.execute(select(_TABLE).where(_TABLE.c.token == token)).mappings().first()
        return None if row is None else _continuation_of(row)

    def take_continuation(self, token: str, request: str) -> bool:
        untaken = (_TABLE.c.token == token) & _TABLE.c.taken_by.is_(None)
        return self._c.execute(update(_TABLE).where(untaken).values(taken_by=request)).rowcount > 0

    def remove_continuations(self, sender: tuple[str, str], tag: str) -> int:
        application, facility = sender
        chosen = delete(_TABLE).where(
            _TABLE.c.sending_application == application,
            _TABLE.c.sending_facility == facility,
            _TABLE.c.query_tag == tag,
        )
        return int(self._c.execute(chosen).rowcount)

    def remove_continuations_before(self, before: datetime) -> int:
        return int(self._c.execute(delete(_TABLE).where(_TABLE.c.created_at < before)).rowcount)


def _continuation_of(row: RowMapping) -> Continuation:
    return Continuation(
        token=row["token"],
        sender=(row["sending_application"], row["sending_facility"]),
        tag=row["query_tag"],
        query=row["query"],
        remaining=tuple((str(mpi_id), float(score)) for mpi_id, score in json.loads(row["remaining"])),
        total=row["total"],
        created_at=row["created_at"],
        taken_by=row["taken_by"],
    )
