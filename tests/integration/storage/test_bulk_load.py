"""Loading a clustered batch in bulk gives the registry that registering one by one would."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from mpi.domain.commands import RegisterRecord
from mpi.domain.events import EventKind
from mpi.domain.persons import PersonFlag, TrustStatus
from mpi.domain.records import Demographics, MatriculeFlag, RecordKey
from mpi.domain.registry_state import RegistryState
from mpi.domain.reviews import ReviewKind
from mpi.domain.scores import ComparisonOutcome, PairScore
from mpi.errors import Conflict, InputError
from mpi.service.audit import verify
from mpi.service.bootstrap import Services, wire
from mpi.service.bulk import BulkRecord, BulkReview
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.fakes import InMemoryStore, TickingClock
from mpi.service.settings import Settings

JEAN = Demographics(
    family_name="Weber", given_names="Jean", birth_date="1980-01-02", sex="M", national_id="1893120105732"
)
ROWS = [
    (RecordKey("RNPP", "1"), JEAN),
    (RecordKey("HOSP", "1"), replace(JEAN, national_id="18931201057", postcode="1234")),
    (RecordKey("LAB", "1"), replace(JEAN, family_name="Webber", national_id=None)),
    (
        RecordKey("HOSP", "2"),
        Demographics(
            family_name="Schmit", given_names="Anne", birth_date="1990-05-06", national_id="1893120105733"
        ),
    ),
]
REVIEW = PairScore(0.41, 5.5, "review", (ComparisonOutcome("family_name", "else", -3.0),))


def partition(state: RegistryState) -> list[list[str]]:
    groups: dict[str, list[str]] = {}
    for record_id, link in sorted(state.links.items()):
        groups.setdefault(link.mpi_id, []).append(str(state.records[record_id].key))
    return sorted(groups.values())


def goldens(state: RegistryState) -> list[Demographics]:
    return sorted((p.golden for p in state.persons.values()), key=lambda g: g.family_name or "")


def registered_one_by_one(rows: Sequence[tuple[RecordKey, Demographics]]) -> RegistryState:
    """The registry that registering ``rows`` one by one gives (in memory)."""
    serial = wire(
        Settings(database_url="sqlite:///unused.db", _env_file=None),  # type: ignore[call-arg]
        InMemoryStore(),
        FakeMatcher(),
        TickingClock(),
    )
    for key, demographics in rows:
        serial.registry.register(RegisterRecord(key, demographics))
    return serial.store.run(lambda uow: uow.snapshot(), write=False)


def test_bulk_load_matches_one_by_one_registration(any_services: Services) -> None:
    summary = any_services.loader.load(
        [BulkRecord(key, d, cluster) for (key, d), cluster in zip(ROWS, [7, 7, 8, 9], strict=True)],
        [BulkReview(2, 0, REVIEW)],
        batch_size=2,
    )
    assert (summary.records, summary.persons, summary.review_tasks) == (4, 3, 1)

    loaded = any_services.store.run(lambda uow: uow.snapshot(), write=False)
    expected = registered_one_by_one(ROWS)
    assert partition(loaded) == partition(expected)
    assert goldens(loaded) == goldens(expected)
    assert sorted((i.value, i.status) for i in loaded.identifiers.values()) == sorted(
        (i.value, i.status) for i in expected.identifiers.values()
    )
    assert [t.kind for t in loaded.reviews.values()] == [ReviewKind.POTENTIAL_DUPLICATE]
    flagged = [p for p in loaded.persons.values() if PersonFlag.POTENTIAL_DUPLICATE in p.flags]
    assert len(flagged) == 2
    assert {p.trust for p in loaded.persons.values()} == {TrustStatus.RETRIEVED, TrustStatus.PROVISIONAL}
    assert {r.matricule for r in loaded.records.values()} == {
        MatriculeFlag.VALID,
        MatriculeFlag.UPGRADED,
        MatriculeFlag.MISSING,
        MatriculeFlag.INVALID,
    }
    assert verify(any_services.store).ok


def test_each_loaded_person_has_its_own_history_and_is_found_online(any_services: Services) -> None:
    any_services.loader.load([BulkRecord(key, d, i) for i, (key, d) in enumerate(ROWS)])
    hit = any_services.registry.search(JEAN)[0]
    history = any_services.persons.show(hit.mpi_id).history
    assert [e.kind for e in history] == [EventKind.RECORDS_LOADED]
    again = any_services.registry.register(RegisterRecord(RecordKey("CNS", "9"), JEAN))
    assert again.outcome == "linked" and again.mpi_id == hit.mpi_id


def test_bulk_load_refuses_a_used_registry_and_repeated_records(any_services: Services) -> None:
    with pytest.raises(InputError, match="appears twice"):
        any_services.loader.load([BulkRecord(ROWS[0][0], JEAN, 1), BulkRecord(ROWS[0][0], JEAN, 2)])
    any_services.registry.register(RegisterRecord(RecordKey("X", "1"), JEAN))
    with pytest.raises(Conflict, match="empty registry"):
        any_services.loader.load([BulkRecord(ROWS[1][0], JEAN, 1)])


# Two people the registry office gave one matricule: neither sex nor birth date agree.
WEBER_M = Demographics(
    family_name="Weber", given_names="Jean", birth_date="1974-09-11", sex="M", national_id="1974091186700"
)
WEBER_F = replace(WEBER_M, given_names="Jeanne", birth_date="1975-03-04", sex="F")
COLLISION = PairScore(0.2, -2.0, "review", (ComparisonOutcome("birth_date", "else", -5.0),))


def task_pairs(state: RegistryState) -> list[tuple[ReviewKind, list[list[str]]]]:
    """Each task's kind and its two persons, as the keys of their records."""
    keys: dict[str, list[str]] = {}
    for record_id, link in sorted(state.links.items()):
        keys.setdefault(link.mpi_id, []).append(str(state.records[record_id].key))
    return sorted(
        (task.kind, sorted([keys[task.mpi_id], keys[task.candidate_mpi_id]]))
        for task in state.reviews.values()
    )


def person_flags(state: RegistryState) -> list[tuple[list[str], list[str]]]:
    keys: dict[str, list[str]] = {}
    for record_id, link in sorted(state.links.items()):
        keys.setdefault(link.mpi_id, []).append(str(state.records[record_id].key))
    return sorted((keys[p.mpi_id], sorted(p.flags)) for p in state.persons.values() if p.flags)


def test_bulk_load_raises_the_collisions_and_duplicates_of_one_by_one_registration(
    any_services: Services,
) -> None:
    rows = [*ROWS, (RecordKey("RNPP", "2"), WEBER_M), (RecordKey("HOSP", "3"), WEBER_F)]
    summary = any_services.loader.load(
        [BulkRecord(key, d, cluster) for (key, d), cluster in zip(rows, [7, 7, 8, 9, 10, 11], strict=True)],
        [BulkReview(2, 0, REVIEW), BulkReview(5, 4, COLLISION, ReviewKind.POTENTIAL_COLLISION)],
        batch_size=2,
    )
    assert (summary.records, summary.persons, summary.review_tasks) == (6, 5, 2)

    loaded = any_services.store.run(lambda uow: uow.snapshot(), write=False)
    expected = registered_one_by_one(rows)
    assert partition(loaded) == partition(expected)
    assert task_pairs(loaded) == task_pairs(expected)
    assert [kind for kind, _ in task_pairs(loaded)] == [
        ReviewKind.POTENTIAL_COLLISION,
        ReviewKind.POTENTIAL_DUPLICATE,
    ]
    assert person_flags(loaded) == person_flags(expected)
    assert verify(any_services.store).ok


def test_a_person_with_both_kinds_of_task_is_flagged_in_the_event_of_each(any_services: Services) -> None:
    rows = [(RecordKey("RNPP", "2"), WEBER_M), (RecordKey("HOSP", "3"), WEBER_F), *ROWS[2:3]]
    # One task an event: the man's person gets its duplicate flag, then its collision flag.
    any_services.loader.load(
        [BulkRecord(key, d, i) for i, (key, d) in enumerate(rows)],
        [
            BulkReview(2, 0, REVIEW),
            BulkReview(1, 0, REVIEW),  # the same two persons: the collision below wins
            BulkReview(0, 1, COLLISION, ReviewKind.POTENTIAL_COLLISION),
        ],
        batch_size=1,
    )
    state = any_services.store.run(lambda uow: uow.snapshot(), write=False)
    assert task_pairs(state) == [
        (ReviewKind.POTENTIAL_COLLISION, [["HOSP|3"], ["RNPP|2"]]),
        (ReviewKind.POTENTIAL_DUPLICATE, [["LAB|1"], ["RNPP|2"]]),
    ]
    assert person_flags(state) == [
        (["HOSP|3"], [PersonFlag.POTENTIAL_COLLISION]),
        (["LAB|1"], [PersonFlag.POTENTIAL_DUPLICATE]),
        (["RNPP|2"], [PersonFlag.POTENTIAL_COLLISION, PersonFlag.POTENTIAL_DUPLICATE]),
    ]
    raised = any_services.store.run(lambda uow: uow.events(), write=False)
    assert [e.kind for e in raised].count(EventKind.REVIEWS_RAISED) == 2
    assert verify(any_services.store).ok
