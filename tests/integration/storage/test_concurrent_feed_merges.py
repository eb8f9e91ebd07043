"""Two feed connections merge, or merge and update, the same patients at the same moment.

A source that merged two local ids (ADT^A40) may send the merge twice, crossed, from two
interfaces; or an update of the retired id may cross the merge. Serially, the second
merge finds its surviving id already merged away and is refused, and an update of a
merged-away id is refused. At the same moment the outcome must be one of those serial
ones: one merge applied, one refused, never two persons each retired into the other
(every record would be left on a retired person) and never an update lost silently.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mpi.domain.persons import PersonStatus
from mpi.domain.records import RecordKey, SourceRecord
from mpi.errors import MPIError
from mpi.service.audit import verify
from mpi.service.bootstrap import Services, bootstrap
from mpi.service.delivery import MessageKey
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.feed import DemographicChanges, Feed, FeedResult, FeedTransaction
from mpi.service.ports import Store, UnitOfWork
from mpi.service.settings import Settings

FIRST, SECOND = RecordKey("CHL", "P-1"), RecordKey("CHL", "P-2")
ANNA = {"family_name": "Muller", "given_names": "Anna", "birth_date": "1980-01-02", "sex": "F"}
PAUL = {"family_name": "Schmit", "given_names": "Paul", "birth_date": "1955-07-30", "sex": "M"}


class _SlowReads:
    """A unit of work whose record reads take a while: what a feed reads stays read for longer
    before it writes, which is where a missing lock would let the other feed slip in."""

    def __init__(self, inner: UnitOfWork) -> None:
        self._inner = inner

    def find_record(self, key: RecordKey) -> SourceRecord | None:
        found = self._inner.find_record(key)
        time.sleep(0.05)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class SlowStore:
    def __init__(self, inner: Store) -> None:
        self._inner = inner

    def run(self, work: Callable[[Any], Any], *, write: bool = True) -> Any:
        return self._inner.run(lambda uow: work(_SlowReads(uow)), write=write)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def servers(database_url: str) -> Iterator[list[tuple[Services, Feed]]]:
    """Two servers on one fresh registry, each with its feed."""
    made = []
    try:
        for migrate in (True, False):
            settings = Settings(database_url=database_url, auto_migrate=migrate, _env_file=None)  # type: ignore[call-arg]
            services = bootstrap(settings, FakeMatcher())
            made.append((services, Feed(settings, SlowStore(services.store), FakeMatcher())))
        yield made
    finally:
        for services, _ in made:
            services.close()


def send(feed: Feed, control_id: str, change: Callable[[FeedTransaction], object]) -> None:
    feed.apply(MessageKey("HIS", "CHL", control_id), "feed", change, lambda _: b"ACK")


def register(feed: Feed, key: RecordKey, changes: DemographicChanges, control_id: str) -> None:
    send(feed, control_id, lambda transaction: transaction.upsert(key, changes))


def race(*changes: Callable[[], object]) -> list[str]:
    """Run the changes at once; what each did, in order: "applied" or "refused"."""
    start = threading.Barrier(len(changes))
    outcomes: dict[int, str] = {}
    errors: list[BaseException] = []

    def run(position: int, change: Callable[[], object]) -> None:
        try:
            start.wait()
            change()
            outcomes[position] = "applied"
        except MPIError:  # what the HL7 adapter answers with AE
            outcomes[position] = "refused"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=item) for item in enumerate(changes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return [outcomes[position] for position in range(len(changes))]


def merge(feed: Feed, survivor: RecordKey, retired: RecordKey, control_id: str) -> Callable[[], object]:
    def change(transaction: FeedTransaction) -> FeedResult:
        return transaction.merge(survivor, retired, "A40")

    return lambda: send(feed, control_id, change)


def persons_of(services: Services) -> tuple[dict[str, str], dict[str, tuple[PersonStatus, str | None]]]:
    """Each record's person, and each person's status and successor."""

    def read(uow: UnitOfWork) -> tuple[dict[str, str], dict[str, tuple[PersonStatus, str | None]]]:
        records = {key.local_id: uow.find_record(key) for key in (FIRST, SECOND)}
        links = uow.get_links([r.record_id for r in records.values() if r is not None])
        linked = {local_id: links[r.record_id].mpi_id for local_id, r in records.items() if r is not None}
        persons = {mpi_id: uow.get_person(mpi_id) for mpi_id in set(linked.values())}
        return linked, {m: (p.status, p.replaced_by) for m, p in persons.items() if p is not None}

    result: tuple[dict[str, str], dict[str, tuple[PersonStatus, str | None]]] = services.store.run(
        read, write=False
    )
    return result


@pytest.mark.slow
def test_crossed_merges_of_two_patients_apply_one_and_refuse_the_other(
    servers: list[tuple[Services, Feed]],
) -> None:
    (services, feed), (_, other) = servers
    register(feed, FIRST, ANNA, "r1")
    register(feed, SECOND, PAUL, "r2")
    linked, _ = persons_of(services)
    assert linked["P-1"] != linked["P-2"]

    outcomes = race(merge(feed, FIRST, SECOND, "m1"), merge(other, SECOND, FIRST, "m2"))

    assert sorted(outcomes) == ["applied", "refused"]
    after, persons = persons_of(services)
    # Both records on one active person; the other person retired into it, not the reverse too.
    assert after["P-1"] == after["P-2"]
    assert persons == {after["P-1"]: (PersonStatus.ACTIVE, None)}
    retired = ({linked["P-1"], linked["P-2"]} - {after["P-1"]}).pop()
    gone = services.store.run(lambda uow: uow.get_person(retired), write=False)
    assert gone is not None and (gone.status, gone.replaced_by) == (PersonStatus.RETIRED, after["P-1"])
    checked = verify(services.store)
    assert checked.violations == () and checked.replay_matches


@pytest.mark.slow
def test_an_update_crossing_the_merge_of_its_id_is_applied_before_it_or_refused(
    servers: list[tuple[Services, Feed]],
) -> None:
    (services, feed), (_, other) = servers
    register(feed, FIRST, ANNA, "r1")
    register(feed, SECOND, {**ANNA, "birth_date": "1980-01-03"}, "r2")

    def update(transaction: FeedTransaction) -> object:
        return transaction.upsert(SECOND, {"street": "Rue Neuve"})

    merged, updated = race(merge(feed, FIRST, SECOND, "m1"), lambda: send(other, "u1", update))

    assert merged == "applied"
    record = services.store.run(lambda uow: uow.find_record(SECOND), write=False)
    assert record is not None
    # Applied (to the record before its merge) or refused: never accepted and then lost.
    assert (record.demographics.street == "Rue Neuve") == (updated == "applied")
    after, persons = persons_of(services)
    assert after["P-1"] == after["P-2"] and persons == {after["P-1"]: (PersonStatus.ACTIVE, None)}
    checked = verify(services.store)
    assert checked.violations == () and checked.replay_matches
