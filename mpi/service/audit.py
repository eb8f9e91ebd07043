"""Reading the event log: person history, replay, and the invariants the log must keep true."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mpi.domain.events import Event
from mpi.domain.persons import PersonStatus
from mpi.domain.registry_state import RegistryState
from mpi.service.operations import FLAG_OF_KIND
from mpi.service.ports import Store, UnitOfWork


def replay(events: Iterable[Event]) -> RegistryState:
    """The registry rebuilt from nothing but its event log."""
    return RegistryState.replayed(events)


def invariant_violations(state: RegistryState) -> list[str]:
    """Broken invariants of ``state``, in words; empty when the registry is consistent.

    Every record is linked to exactly one person, which is active; an active person has a
    record; a retired person names an existing successor; an active person's flags are those of
    its pending review tasks; a version history has no gap.
    """
    problems: list[str] = []
    for record_id in state.records:
        link = state.links.get(record_id)
        if link is None:
            problems.append(f"record {record_id} has no link")
            continue
        person = state.persons.get(link.mpi_id)
        if person is None:
            problems.append(f"record {record_id} is linked to unknown person {link.mpi_id}")
        elif person.status is not PersonStatus.ACTIVE:
            problems.append(f"record {record_id} is linked to retired person {link.mpi_id}")
    problems.extend(f"link of unknown record {rid}" for rid in state.links if rid not in state.records)
    linked = {link.mpi_id for link in state.links.values()}
    for person in state.persons.values():
        if person.status is PersonStatus.ACTIVE and person.mpi_id not in linked:
            problems.append(f"active person {person.mpi_id} has no record")
        if person.status is PersonStatus.RETIRED and person.replaced_by not in state.persons:
            problems.append(f"retired person {person.mpi_id} names unknown successor {person.replaced_by}")
        if person.status is PersonStatus.ACTIVE and person.replaced_by is not None:
            problems.append(f"active person {person.mpi_id} has a successor")
    for person in state.persons.values():
        if person.status is PersonStatus.ACTIVE:
            expected = {
                FLAG_OF_KIND[task.kind]
                for task in state.reviews.values()
                if task.is_pending and person.mpi_id in (task.mpi_id, task.candidate_mpi_id)
            }
            if person.flags != expected:
                problems.append(
                    f"person {person.mpi_id} has flags {sorted(person.flags)}, tasks say {sorted(expected)}"
                )
    for record_id, record in state.records.items():
        numbers = [v.version for v in state.versions.get(record_id, [])]
        if numbers != list(range(1, record.version + 1)):
            problems.append(f"record {record_id} has versions {numbers}, current {record.version}")
    return problems


@dataclass(frozen=True)
class Verification:
    """The outcome of checking a store against its own event log."""

    events: int
    violations: tuple[str, ...]
    replay_matches: bool

    @property
    def ok(self) -> bool:
        return self.replay_matches and not self.violations


def verify(store: Store) -> Verification:
    """Check the invariants and that replaying the log gives the stored state."""

    def check(uow: UnitOfWork) -> Verification:
        events = uow.events()
        current = uow.snapshot()
        return Verification(
            events=len(events),
            violations=tuple(invariant_violations(current)),
            replay_matches=replay(events) == current,
        )

    return store.run(check, write=False)
