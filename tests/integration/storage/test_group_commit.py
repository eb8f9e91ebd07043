"""Savepoints and group commit, on the in-memory fake, SQLite and PostgreSQL alike.

Several works share one transaction. When one of them is refused, the batch runs
again with each work in a savepoint of its own, so the refused one leaves no trace
while the others commit; a transaction that fails as a whole is replayed one work
at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import pytest

from mpi.domain.records import Demographics, MatriculeFlag, RecordKey
from mpi.errors import MPIError
from mpi.service.bootstrap import Services
from mpi.service.delivery import MessageKey, Receipt
from mpi.service.group_commit import GroupCommit
from mpi.service.ports import Store, UnitOfWork

T = TypeVar("T")
AT = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
ANNA = Demographics(family_name="Muller", given_names="Anna", birth_date="1980-01-02", sex="F")


class Refused(MPIError):
    """A refusal of the service: rolled back alone, in its savepoint."""


class Broken(Exception):
    """Anything else: the batch's transaction fails and each work is replayed alone."""


def add(local_id: str) -> Callable[[UnitOfWork], int]:
    def work(uow: UnitOfWork) -> int:
        record = uow.add_record(RecordKey("CHL", local_id), ANNA, MatriculeFlag.MISSING, AT, "feed")
        uow.index_record(record.record_id, 1, [f"k:{local_id}"])
        return record.record_id

    return work


def add_then_refuse(local_id: str) -> Callable[[UnitOfWork], int]:
    def work(uow: UnitOfWork) -> int:
        add(local_id)(uow)
        raise Refused(local_id)

    return work


def stored(store: Store, *local_ids: str) -> dict[str, bool]:
    def read(uow: UnitOfWork) -> dict[str, bool]:
        return {i: uow.find_record(RecordKey("CHL", i)) is not None for i in local_ids}

    return store.run(read, write=False)


class CountingStore:
    """The store, counting its transactions and savepoints; ``fail_next`` makes the next
    transaction fail as a whole."""

    def __init__(self, store: Store) -> None:
        self.inner = store
        self.transactions = 0
        self.savepoints = 0
        self.fail_next = False

    def run(self, work: Callable[[UnitOfWork], T], *, write: bool = True) -> T:
        self.transactions += 1
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("the database went away")
        return self.inner.run(lambda uow: work(_CountingSavepoints(uow, self)), write=write)

    def close(self) -> None:
        self.inner.close()


def test_a_savepoint_rolls_back_only_its_own_changes(any_services: Services) -> None:
    store = any_services.store

    def work(uow: UnitOfWork) -> list[int]:
        first = uow.savepoint(lambda: add("P1")(uow))
        with pytest.raises(Refused):
            uow.savepoint(lambda: add_then_refuse("P2")(uow))
        # The transaction goes on: a record created after the rollback gets its keys and
        # identifiers written in full, whatever id it was given.
        third = uow.savepoint(lambda: add("P3")(uow))
        uow.add_identifier(third, "matricule", "1980010212345", "1980010212345", MatriculeFlag.VALID, AT)
        return [first, third]

    first, third = store.run(work)
    assert stored(store, "P1", "P2", "P3") == {"P1": True, "P2": False, "P3": True}

    def read(uow: UnitOfWork) -> tuple[list[int], list[int], list[int]]:
        return (
            uow.records_with_keys(["k:P1", "k:P2", "k:P3"]),
            uow.records_with_identifier("matricule", "1980010212345"),
            uow.records_with_keys(["k:P2"]),
        )

    keys, identified, refused_keys = store.run(read, write=False)
    assert keys == sorted([first, third]) and identified == [third] and refused_keys == []


def test_a_savepoint_recovers_from_a_failed_statement(any_services: Services) -> None:
    """A duplicate receipt breaks its statement (on PostgreSQL, the whole transaction until rolled back)."""
    key = MessageKey("HIS", "CHL", "M1")
    store = any_services.store
    store.run(lambda uow: uow.add_receipt(Receipt(key, b"first", AT)))

    def work(uow: UnitOfWork) -> None:
        with pytest.raises(Exception):  # noqa: B017 - each driver names the integrity error its own way
            uow.savepoint(lambda: uow.add_receipt(Receipt(key, b"second", AT)))
        add("P1")(uow)

    store.run(work)
    assert stored(store, "P1") == {"P1": True}
    receipt = store.run(lambda uow: uow.find_receipt(key), write=False)
    assert receipt is not None and receipt.response == b"first"


class _CountingSavepoints:
    """A unit of work whose savepoints are counted by ``counter``."""

    def __init__(self, inner: UnitOfWork, counter: CountingStore) -> None:
        self._inner = inner
        self._counter = counter

    def savepoint(self, work: Callable[[], T]) -> T:
        self._counter.savepoints += 1
        return self._inner.savepoint(work)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def _run_in_threads(group: GroupCommit, works: dict[str, Callable[[UnitOfWork], int]]) -> dict[str, object]:
    """Submit ``works`` while a first work holds the writer slot, so that they queue up together."""
    outcomes: dict[str, object] = {}
    holding, release = threading.Event(), threading.Event()

    def first(uow: UnitOfWork) -> int:
        holding.set()
        assert release.wait(10)
        return add("FIRST")(uow)

    def submit(name: str, work: Callable[[UnitOfWork], int]) -> None:
        try:
            outcomes[name] = group.run(work)
        except Exception as error:
            outcomes[name] = error

    threads = [threading.Thread(target=submit, args=("FIRST", first))]
    threads[0].start()
    assert holding.wait(10)
    for name, work in works.items():
        threads.append(threading.Thread(target=submit, args=(name, work)))
        threads[-1].start()
    deadline = time.monotonic() + 10
    while group.waiting < len(works) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert group.waiting == len(works)
    release.set()
    for thread in threads:
        thread.join(10)
    return outcomes


def test_works_arriving_together_share_one_commit_and_fail_alone(any_services: Services) -> None:
    store = CountingStore(any_services.store)
    group = GroupCommit(store)
    outcomes = _run_in_threads(group, {"A": add("A"), "B": add_then_refuse("B"), "C": add("C")})

    # The first work alone; the three that waited for it, rolled back when B was refused; the
    # three again, each in a savepoint.
    assert (store.transactions, store.savepoints) == (3, 3)
    assert isinstance(outcomes["B"], Refused)
    assert all(isinstance(outcomes[name], int) for name in ("FIRST", "A", "C"))
    assert stored(store, "FIRST", "A", "B", "C") == {"FIRST": True, "A": True, "B": False, "C": True}


def test_works_none_of_which_is_refused_share_one_commit_without_savepoints(
    any_services: Services,
) -> None:
    store = CountingStore(any_services.store)
    group = GroupCommit(store)
    outcomes = _run_in_threads(group, {"A": add("A"), "B": add("B"), "C": add("C")})

    assert (store.transactions, store.savepoints) == (2, 0)
    assert all(isinstance(outcome, int) for outcome in outcomes.values()) and len(outcomes) == 4
    assert stored(store, "FIRST", "A", "B", "C") == dict.fromkeys(("FIRST", "A", "B", "C"), True)


def test_a_batch_whose_transaction_fails_is_replayed_one_work_at_a_time(any_services: Services) -> None:
    store = CountingStore(any_services.store)
    group = GroupCommit(store)
    holding, release = threading.Event(), threading.Event()

    def first(uow: UnitOfWork) -> int:
        holding.set()
        assert release.wait(10)
        store.fail_next = True  # the next transaction, the batch of A and B, fails as a whole
        return add("FIRST")(uow)

    outcomes: dict[str, object] = {}
    threads = [threading.Thread(target=lambda: outcomes.update(FIRST=group.run(first)))]
    threads[0].start()
    assert holding.wait(10)
    for name in ("A", "B"):
        threads.append(threading.Thread(target=lambda n=name: outcomes.update({n: group.run(add(n))})))
        threads[-1].start()
    while group.waiting < 2:
        time.sleep(0.005)
    release.set()
    for thread in threads:
        thread.join(10)

    assert store.transactions == 4  # first; the failed batch; A alone; B alone
    assert stored(store, "FIRST", "A", "B") == {"FIRST": True, "A": True, "B": True}
    assert all(isinstance(value, int) for value in outcomes.values()) and len(outcomes) == 3


def test_a_lone_work_runs_at_once_and_its_error_reaches_its_caller(any_services: Services) -> None:
    store = CountingStore(any_services.store)
    group = GroupCommit(store, writers=2)
    assert isinstance(group.run(add("A")), int)
    with pytest.raises(Refused):
        group.run(add_then_refuse("B"))
    store.fail_next = True
    with pytest.raises(ConnectionError):
        group.run(add("C"))
    assert store.transactions == 3 and group.waiting == 0
    assert stored(store, "A", "B", "C") == {"A": True, "B": False, "C": False}


def test_many_threads_each_get_their_own_answer() -> None:
    from mpi.service.fakes import InMemoryStore

    store = CountingStore(InMemoryStore())
    group = GroupCommit(store, max_batch=4)
    answers: dict[int, object] = {}

    def submit(number: int) -> None:
        work = add_then_refuse(f"R{number}") if number % 5 == 0 else add(f"R{number}")
        try:
            group.run(work)
            answers[number] = "ok"
        except Refused as error:
            answers[number] = str(error)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert answers == {n: f"R{n}" if n % 5 == 0 else "ok" for n in range(40)}
    assert store.transactions <= 40 and group.waiting == 0
    kept = stored(store, *(f"R{n}" for n in range(40)))
    assert kept == {f"R{n}": n % 5 != 0 for n in range(40)}


def test_an_unexpected_error_fails_the_batch_and_the_others_are_replayed_alone(
    any_services: Services,
) -> None:
    store = CountingStore(any_services.store)
    group = GroupCommit(store)

    def broken(uow: UnitOfWork) -> int:
        add("X")(uow)
        raise Broken("a bug, or the database")

    outcomes = _run_in_threads(group, {"A": add("A"), "X": broken, "C": add("C")})

    assert store.transactions == 5  # the first work; the failed batch; A, X and C alone
    assert isinstance(outcomes["X"], Broken)
    assert isinstance(outcomes["A"], int) and isinstance(outcomes["C"], int)
    assert stored(store, "A", "X", "C") == {"A": True, "X": False, "C": True}
