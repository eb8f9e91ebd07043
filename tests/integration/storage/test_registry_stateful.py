"""Random sequences of register, update, merge, unmerge, link, unlink and review on both databases.

After every step: each record is linked to exactly one active person, no link
points to a retired person, replaying the event log gives the stored state,
and every golden record is what survivorship computes from the person's
records. A refused request must change nothing, and an unmerge right after a
merge must restore the exact prior state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from mpi.domain.commands import (
    LinkRecord,
    MergePersons,
    RegisterRecord,
    ResolveReview,
    UnlinkRecord,
    UnmergePerson,
    UpdateRecord,
)
from mpi.domain.persons import PersonStatus
from mpi.domain.records import Demographics, RecordKey
from mpi.domain.registry_state import RegistryState
from mpi.domain.reviews import allowed_actions
from mpi.errors import Conflict
from mpi.service.audit import invariant_violations, replay
from mpi.service.bootstrap import Services, bootstrap
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.fakes import TickingClock
from mpi.service.golden import compute_golden
from mpi.service.settings import Settings

POOL = [
    Demographics(
        family_name="Weber", given_names="Jean", birth_date="1980-01-02", sex="M", national_id="1893120105732"
    ),
    Demographics(family_name="Weber", given_names="Paul", birth_date="1980-01-02", sex="M"),
    Demographics(family_name="Schmit", given_names="Anne", birth_date="1990-05-06", sex="F", postcode="1234"),
    Demographics(
        family_name="Santos",
        given_names="Maria",
        birth_date="1975-00-00",
        sex="F",
        national_id="1974091186700",
    ),
]
VARIANTS: list[Callable[[Demographics], Demographics]] = [
    lambda d: d,
    lambda d: replace(d, postcode="9999"),
    lambda d: replace(d, family_name=(d.family_name or "") + "n"),
    lambda d: replace(d, given_names="Luc"),
    lambda d: replace(d, sex="F" if d.sex == "M" else "M", birth_date="1999-09-09"),
    lambda d: replace(d, national_id="1893120105733"),  # an invalid matricule
]
SOURCES = ["RNPP", "HOSP", "LAB"]


class RegistryMachine(RuleBasedStateMachine):
    def __init__(self, make_services: Callable[[], Services]) -> None:
        super().__init__()
        self.services = make_services()
        self.keys: list[RecordKey] = []

    def teardown(self) -> None:
        self.services.close()

    # -- helpers ------------------------------------------------------------------------
    def state(self) -> RegistryState:
        return self.services.store.run(lambda uow: uow.snapshot(), write=False)

    def event_count(self) -> int:
        return len(self.services.store.run(lambda uow: uow.events(), write=False))

    def attempt(self, action: Callable[[], object]) -> bool:
        """Run a request that the state may refuse; a refusal must leave everything as it was."""
        before, events = self.state(), self.event_count()
        try:
            action()
        except Conflict:
            assert self.state() == before
            assert self.event_count() == events
            return False
        return True

    def persons(self, status: PersonStatus) -> list[str]:
        """Persons in creation order: MPI ids are random, so sorting by them would make runs unrepeatable."""
        chosen = [p for p in self.state().persons.values() if p.status is status]
        return [p.mpi_id for p in sorted(chosen, key=lambda p: p.created_at)]

    def active(self) -> list[str]:
        return self.persons(PersonStatus.ACTIVE)

    # -- rules --------------------------------------------------------------------------
    @rule(base=st.sampled_from(POOL), variant=st.sampled_from(VARIANTS), source=st.sampled_from(SOURCES))
    def register(
        self, base: Demographics, variant: Callable[[Demographics], Demographics], source: str
    ) -> None:
        key = RecordKey(source, f"r{len(self.keys)}")
        self.services.registry.register(RegisterRecord(key, variant(base)))
        self.keys.append(key)

    @precondition(lambda self: self.keys)
    @rule(data=st.data(), base=st.sampled_from(POOL), variant=st.sampled_from(VARIANTS))
    def update(
        self, data: st.DataObject, base: Demographics, variant: Callable[[Demographics], Demographics]
    ) -> None:
        key = data.draw(st.sampled_from(self.keys))
        self.services.registry.update(UpdateRecord(key, variant(base)))

    @precondition(lambda self: len(self.keys) >= 2)
    @rule(data=st.data())
    def merge(self, data: st.DataObject) -> None:
        persons = self.active()
        if len(persons) < 2:
            return
        survivor = data.draw(st.sampled_from(persons))
        retired = data.draw(st.sampled_from([p for p in persons if p != survivor]))
        self.services.lifecycle.merge(MergePersons(survivor, retired, "steward"))

    @precondition(lambda self: len(self.keys) >= 2)
    @rule(data=st.data())
    def merge_then_unmerge(self, data: st.DataObject) -> None:
        persons = self.active()
        if len(persons) < 2:
            return
        survivor = data.draw(st.sampled_from(persons))
        retired = data.draw(st.sampled_from([p for p in persons if p != survivor]))
        before = self.state()
        self.services.lifecycle.merge(MergePersons(survivor, retired, "steward"))
        self.services.lifecycle.unmerge(UnmergePerson(retired, "steward"))
        assert self.state() == before

    @rule(data=st.data())
    def unmerge(self, data: st.DataObject) -> None:
        retired = self.persons(PersonStatus.RETIRED)
        if retired:
            mpi_id = data.draw(st.sampled_from(retired))
            self.attempt(lambda: self.services.lifecycle.unmerge(UnmergePerson(mpi_id, "steward")))

    @precondition(lambda self: self.keys)
    @rule(data=st.data())
    def link(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(self.keys))
        target = data.draw(st.sampled_from(self.active()))
        self.attempt(lambda: self.services.lifecycle.link(LinkRecord(key, target, "steward")))

    @precondition(lambda self: self.keys)
    @rule(data=st.data())
    def unlink(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(self.keys))
        self.attempt(lambda: self.services.lifecycle.unlink(UnlinkRecord(key, "steward")))

    @rule(data=st.data())
    def resolve_review(self, data: st.DataObject) -> None:
        tasks = sorted(self.state().reviews.values(), key=lambda t: t.task_id)
        if not tasks:
            return
        task = data.draw(st.sampled_from(tasks))
        action = data.draw(st.sampled_from(sorted(allowed_actions(task.kind))))
        resolved = self.attempt(
            lambda: self.services.reviews.resolve(ResolveReview(task.task_id, action, "steward"))
        )
        if not task.is_pending:
            assert not resolved  # answering a task twice is always refused

    # -- invariants ---------------------------------------------------------------------
    @invariant()
    def registry_is_consistent(self) -> None:
        state = self.state()
        assert invariant_violations(state) == []
        events = self.services.store.run(lambda uow: uow.events(), write=False)
        assert replay(events) == state
        rules = self.services.settings.survivorship
        for person in state.persons.values():
            if person.status is PersonStatus.ACTIVE:
                members = [
                    state.records[rid]
                    for rid, link in sorted(state.links.items())
                    if link.mpi_id == person.mpi_id
                ]
                assert members, f"active person {person.mpi_id} has no record"
                assert person.golden == compute_golden(members, rules)


@pytest.mark.slow
def test_random_lifecycles_keep_the_registry_consistent(database_factory: Callable[[], str]) -> None:
    def make_services() -> Services:
        return bootstrap(
            Settings(database_url=database_factory(), _env_file=None),  # type: ignore[call-arg]
            FakeMatcher(),
            TickingClock(),
        )

    run_state_machine_as_test(
        lambda: RegistryMachine(make_services),
        settings=settings(
            max_examples=30,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
