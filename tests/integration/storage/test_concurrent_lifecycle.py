"""Stewards (or feeds) changing the same person's links at the same moment, from several connections.

Each change must see the state the other left: two unlinks of a person's two
records may not both succeed (the person would be left active with no record); a
record moved by hand leaves its old person retired only if that person really has
no record left; a review raised on a person being merged ends up on the survivor;
a task answered twice at once is answered once, and the second steward is told; so is a
merge undone twice at once; two updates of one person's records both reach its golden record.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import pytest
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext

from mpi.domain.commands import (
    LinkRecord,
    MergePersons,
    RegisterRecord,
    ResolveReview,
    UnlinkRecord,
    UnmergePerson,
    UpdateRecord,
)
from mpi.domain.events import EventKind
from mpi.domain.persons import PersonStatus
from mpi.domain.records import Demographics, RecordKey
from mpi.domain.reviews import ReviewAction
from mpi.domain.scores import PairScore
from mpi.errors import Conflict
from mpi.service.audit import verify
from mpi.service.bootstrap import Services, bootstrap
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.golden import SurvivorshipRules, compute_golden
from mpi.service.settings import Settings

PERSONS = 12


def connect(url: str, migrate: bool) -> Services:
    settings = Settings(database_url=url, auto_migrate=migrate, _env_file=None)  # type: ignore[call-arg]
    return bootstrap(settings, FakeMatcher())


@pytest.fixture
def two(database_url: str) -> Iterator[tuple[Services, Services]]:
    """Two connections (two servers, or two stewards' sessions) to one fresh registry."""
    one, other = connect(database_url, migrate=True), connect(database_url, migrate=False)
    try:
        yield one, other
    finally:
        one.close()
        other.close()


def identity(n: int) -> Demographics:
    birth_date = f"19{50 + n}-03-04"
    return Demographics(family_name=f"Weber{n:02d}", given_names="Anne", birth_date=birth_date, sex="F")


def race(first: Callable[[], object], second: Callable[[], object]) -> list[str]:
    """Run both at once; what each did: "ok" or "conflict"."""
    start = threading.Barrier(2)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def run(change: Callable[[], object]) -> None:
        try:
            start.wait()
            change()
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(change,)) for change in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return sorted(outcomes)


@pytest.mark.slow
def test_simultaneous_link_changes_see_each_other(two: tuple[Services, Services]) -> None:
    one, other = two
    persons = []
    for n in range(PERSONS):
        for source in ("HOSP", "LAB"):
            result = one.registry.register(RegisterRecord(RecordKey(source, f"p{n}"), identity(n)))
        persons.append(result.mpi_id)
    assert len(set(persons)) == PERSONS  # each person has its two records

    for n in range(PERSONS):
        # The person's two records unlinked at once: one goes through, the other finds the
        # person with a single record left, which there is nothing to unlink from.
        assert race(
            lambda n=n: one.lifecycle.unlink(UnlinkRecord(RecordKey("HOSP", f"p{n}"), "steward-1")),
            lambda n=n: other.lifecycle.unlink(UnlinkRecord(RecordKey("LAB", f"p{n}"), "steward-2")),
        ) == ["conflict", "ok"]
    checked = verify(one.store)
    assert checked.violations == () and checked.replay_matches

    for n in range(PERSONS):
        # Each of the two records of person n moved by hand onto the other's person at once.
        hosp = one.registry.register(RegisterRecord(RecordKey("HOSP", f"p{n}"), identity(n))).mpi_id
        lab = one.registry.register(RegisterRecord(RecordKey("LAB", f"p{n}"), identity(n))).mpi_id
        hosp_key, lab_key = RecordKey("HOSP", f"p{n}"), RecordKey("LAB", f"p{n}")
        race(
            lambda key=hosp_key, to=lab: one.lifecycle.link(LinkRecord(key, to, "steward-1")),
            lambda key=lab_key, to=hosp: other.lifecycle.link(LinkRecord(key, to, "steward-2")),
        )
    checked = verify(one.store)
    assert checked.violations == () and checked.replay_matches


@pytest.mark.slow
def test_a_review_raised_during_a_merge_follows_the_merge(two: tuple[Services, Services]) -> None:
    """A registration in the review band of a person that a steward merges at that moment.

    Writing back the person as it read it before the merge committed would make the retired
    person active again, without records; its task must end up on the survivor."""
    one, other = two
    for n in range(PERSONS):
        candidate = one.registry.register(RegisterRecord(RecordKey("HOSP", f"q{n}"), identity(n))).mpi_id
        stranger = replace(identity(n), family_name=f"Schmit{n:02d}", birth_date="1981-01-01")
        survivor = one.registry.register(RegisterRecord(RecordKey("LAB", f"r{n}"), stranger)).mpi_id
        # Same family name and birth date, another given name: the review band, not a link.
        probe = replace(identity(n), given_names="Zoe")
        race(
            lambda n=n, probe=probe: one.registry.register(RegisterRecord(RecordKey("GP", f"g{n}"), probe)),
            lambda s=survivor, c=candidate: other.lifecycle.merge(MergePersons(s, c, "steward")),
        )
    checked = verify(one.store)
    assert checked.violations == () and checked.replay_matches
    state = one.store.run(lambda uow: uow.snapshot(), write=False)
    retired = {p.mpi_id for p in state.persons.values() if p.status is PersonStatus.RETIRED}
    assert len(retired) == PERSONS
    pending = [t for t in state.reviews.values() if t.is_pending]
    assert pending and not [t for t in pending if {t.mpi_id, t.candidate_mpi_id} & retired]


@pytest.mark.slow
def test_two_stewards_answering_one_task_at_once(two: tuple[Services, Services]) -> None:
    """The second answer finds the task answered: a clear conflict, and nothing changed twice."""
    one, other = two
    for n in range(PERSONS):
        one.registry.register(RegisterRecord(RecordKey("HOSP", f"q{n}"), identity(n)))
        probe = replace(identity(n), given_names="Zoe")  # the review band
        (task_id,) = one.registry.register(RegisterRecord(RecordKey("GP", f"g{n}"), probe)).review_task_ids
        answers = [
            lambda services=services, steward=steward, task_id=task_id: services.reviews.resolve(
                ResolveReview(task_id, ReviewAction.NOT_A_DUPLICATE, steward)
            )
            for services, steward in ((one, "steward-1"), (other, "steward-2"))
        ]
        assert race(*answers) == ["conflict", "ok"]
    events = one.store.run(lambda uow: uow.events(), write=False)
    assert sum(e.kind is EventKind.REVIEW_RESOLVED for e in events) == PERSONS
    checked = verify(one.store)
    assert checked.violations == () and checked.replay_matches


@pytest.mark.slow
def test_one_merge_undone_twice_at_once(two: tuple[Services, Services]) -> None:
    """The second unmerge finds the person active again: a clear conflict, and one event."""
    one, other = two
    for n in range(PERSONS):
        first = one.registry.register(RegisterRecord(RecordKey("HOSP", f"p{n}"), identity(n))).mpi_id
        stranger = replace(identity(n), family_name=f"Schmit{n:02d}", birth_date="1981-01-01")
        second = one.registry.register(RegisterRecord(RecordKey("LAB", f"r{n}"), stranger)).mpi_id
        one.lifecycle.merge(MergePersons(first, second, "steward"))
        assert race(
            lambda mpi_id=second: one.lifecycle.unmerge(UnmergePerson(mpi_id, "steward-1")),
            lambda mpi_id=second: other.lifecycle.unmerge(UnmergePerson(mpi_id, "steward-2")),
        ) == ["conflict", "ok"]
    events = one.store.run(lambda uow: uow.events(), write=False)
    assert sum(e.kind is EventKind.PERSONS_UNMERGED for e in events) == PERSONS
    checked = verify(one.store)
    assert checked.violations == () and checked.replay_matches


@pytest.mark.slow
def test_simultaneous_updates_of_two_records_of_one_person_both_reach_its_golden_record(
    two: tuple[Services, Services],
) -> None:
    """Each update recomputes the person's golden record from its records as the other left them.

    The two records share no blocking key (a steward linked them), so nothing but the person's
    lock orders the two updates."""
    one, other = two
    for n in range(PERSONS):
        hosp, lab = RecordKey("HOSP", f"p{n}"), RecordKey("LAB", f"p{n}")
        alias = Demographics(family_name=f"Alias{n:02d}", given_names="Bea", birth_date="1930-12-12", sex="F")
        person = one.registry.register(RegisterRecord(hosp, identity(n))).mpi_id
        one.registry.register(RegisterRecord(lab, alias))
        one.lifecycle.link(LinkRecord(lab, person, "steward"))
        race(
            lambda key=hosp, n=n: one.registry.update(
                UpdateRecord(key, replace(identity(n), street="Rue A"))
            ),
            lambda key=lab, was=alias: other.registry.update(UpdateRecord(key, replace(was, phone="+352 1"))),
        )
    state = one.store.run(lambda uow: uow.snapshot(), write=False)
    rules = SurvivorshipRules()
    for person in state.persons.values():
        if person.status is PersonStatus.ACTIVE:
            linked = [state.records[k.record_id] for k in state.links.values() if k.mpi_id == person.mpi_id]
            assert len(linked) == 2
            assert person.golden == compute_golden(linked, rules)


class _SlowScoring(FakeMatcher):
    """Says when it starts scoring, then takes its time: an update is caught mid-way."""

    def __init__(self) -> None:
        super().__init__()
        self.scoring = threading.Event()

    def score(
        self, given_probe: Demographics | str, candidates: Sequence[Demographics | str]
    ) -> list[PairScore]:
        self.scoring.set()
        time.sleep(0.5)
        return super().score(given_probe, candidates)


@pytest.mark.slow
def test_an_update_crossing_a_merge_of_its_person_never_deadlocks(database_url: str) -> None:
    """An update of a record that now resembles another person, while a steward merges the two.

    The update writes to its own person and raises a review on the other; the merge locks both,
    in order. Had the update locked its own person before the other, the two could each hold
    the person the other waits for (the database would then abort one and it would start over,
    a second later); they must simply take turns."""
    slow = _SlowScoring()
    settings = Settings(database_url=database_url, _env_file=None)  # type: ignore[call-arg]
    updater, steward = bootstrap(settings, slow), connect(database_url, migrate=False)
    deadlocks: list[BaseException] = []

    def record_deadlock(context: ExceptionContext) -> None:
        if getattr(context.original_exception, "sqlstate", None) == "40P01":  # deadlock_detected
            deadlocks.append(context.original_exception)

    try:
        for services in (updater, steward):
            event.listen(services.store.engine, "handle_error", record_deadlock)  # type: ignore[attr-defined]
        first = steward.registry.register(RegisterRecord(RecordKey("CHL", "1"), identity(1)))
        second = steward.registry.register(RegisterRecord(RecordKey("CHL", "2"), identity(2)))
        # The record updated is the one of the later person in lock order: it holds that person
        # while it asks for the earlier one, which the merge takes first.
        _, (key, _) = sorted(
            [(RecordKey("CHL", "1"), first.mpi_id), (RecordKey("CHL", "2"), second.mpi_id)],
            key=lambda pair: pair[1],
        )
        resembling = identity(1) if key.local_id == "2" else identity(2)
        slow.scoring.clear()

        def update() -> object:
            return updater.registry.update(UpdateRecord(key, resembling))

        def merge() -> object:
            assert slow.scoring.wait(30)
            return steward.lifecycle.merge(MergePersons(first.mpi_id, second.mpi_id, "steward"))

        assert race(update, merge) == ["ok", "ok"]
        assert deadlocks == []
        checked = verify(steward.store)
        assert checked.violations == () and checked.replay_matches
    finally:
        updater.close()
        steward.close()
