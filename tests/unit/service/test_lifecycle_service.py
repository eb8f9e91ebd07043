"""merge, unmerge, link, unlink, not-a-duplicate, review resolution: results, history and refusals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from mpi.domain.commands import (
    LinkRecord,
    MarkNotDuplicate,
    MergePersons,
    RegisterRecord,
    ResolveReview,
    UnlinkRecord,
    UnmergePerson,
    UpdateRecord,
    ValidateIdentity,
)
from mpi.domain.events import EventKind
from mpi.domain.mpi_id import BODY_LENGTH, new_mpi_id
from mpi.domain.persons import LinkProvenance, PersonStatus, TrustStatus
from mpi.domain.records import Demographics, RecordKey
from mpi.domain.registry_state import RegistryState
from mpi.domain.reviews import ReviewAction, ReviewKind, ReviewStatus
from mpi.errors import Conflict, MPIError, NotFound
from mpi.service.audit import verify
from mpi.service.bootstrap import Services

JEAN = Demographics(
    family_name="Weber", given_names="Jean", birth_date="1980-01-02", sex="M", postcode="1234"
)
ANNE = Demographics(family_name="Schmit", given_names="Anne", birth_date="1990-05-06", sex="F")


def register(services: Services, authority: str, local_id: str, demographics: Demographics) -> str:
    return services.registry.register(RegisterRecord(RecordKey(authority, local_id), demographics)).mpi_id


def snapshot(services: Services) -> RegistryState:
    return services.store.run(lambda uow: uow.snapshot(), write=False)


def assert_refused_without_change(
    services: Services, error: type[MPIError], action: Callable[[], object], match: str
) -> None:
    before = snapshot(services)
    events_before = len(services.store.run(lambda uow: uow.events(), write=False))
    with pytest.raises(error, match=match):
        action()
    assert snapshot(services) == before
    assert len(services.store.run(lambda uow: uow.events(), write=False)) == events_before


@pytest.fixture
def two_people(services: Services) -> tuple[str, str]:
    jean = register(services, "HOSP", "1", JEAN)
    register(services, "LAB", "1", replace(JEAN, postcode=None))
    anne = register(services, "HOSP", "2", ANNE)
    return jean, anne


def test_merge_moves_links_retires_the_other_and_records_one_event(
    services: Services, two_people: tuple[str, str]
) -> None:
    jean, anne = two_people
    event = services.lifecycle.merge(MergePersons(jean, anne, "alice", "same patient, checked"))

    assert event.kind is EventKind.PERSONS_MERGED and event.actor == "alice"
    survivor = services.persons.show(jean)
    retired = services.persons.show(anne)
    assert len(survivor.records) == 3
    assert all(
        r.link.provenance is LinkProvenance.MANUAL for r in survivor.records if r.record.key.local_id == "2"
    )
    assert retired.person.status is PersonStatus.RETIRED and retired.person.replaced_by == jean
    assert retired.current_mpi_id == jean and retired.records == ()
    assert [e.kind for e in survivor.history][-1] is EventKind.PERSONS_MERGED
    assert verify(services.store).ok


def test_unmerge_right_after_merge_restores_the_exact_prior_state(
    services: Services, two_people: tuple[str, str]
) -> None:
    jean, anne = two_people
    register(services, "LAB", "9", replace(ANNE, family_name="Schmitt"))  # a review task touching Anne
    before = snapshot(services)

    services.lifecycle.merge(MergePersons(jean, anne, "alice"))
    services.lifecycle.unmerge(UnmergePerson(anne, "bob", "wrong merge"))

    assert snapshot(services) == before
    kinds = [e.kind for e in services.persons.show(anne).history]
    assert kinds[-2:] == [EventKind.PERSONS_MERGED, EventKind.PERSONS_UNMERGED]


def test_unmerge_keeps_record_updates_made_since_the_merge(
    services: Services, two_people: tuple[str, str]
) -> None:
    jean, anne = two_people
    services.lifecycle.merge(MergePersons(jean, anne, "alice"))
    services.registry.update(UpdateRecord(RecordKey("HOSP", "2"), replace(ANNE, postcode="5555")))

    services.lifecycle.unmerge(UnmergePerson(anne, "bob"))

    restored = services.persons.show(anne)
    assert restored.person.status is PersonStatus.ACTIVE
    assert [r.record.key.local_id for r in restored.records] == ["2"]
    assert restored.records[0].record.version == 2
    assert restored.person.golden.postcode == "5555"
    assert restored.records[0].link.provenance is LinkProvenance.AUTO  # the pre-merge link, as it was
    assert len(services.persons.show(jean).records) == 2
    assert verify(services.store).ok


def test_refused_merges_change_nothing(services: Services, two_people: tuple[str, str]) -> None:
    jean, anne = two_people
    assert_refused_without_change(
        services, Conflict, lambda: services.lifecycle.merge(MergePersons(jean, jean, "alice")), "into itself"
    )
    unknown = new_mpi_id()
    assert_refused_without_change(
        services, NotFound, lambda: services.lifecycle.merge(MergePersons(jean, unknown, "alice")), unknown
    )
    typo = jean[:BODY_LENGTH] + ("0" if jean[-1] != "0" else "1")
    assert_refused_without_change(
        services,
        NotFound,
        lambda: services.lifecycle.merge(MergePersons(typo, anne, "alice")),
        "check character",
    )
    services.lifecycle.merge(MergePersons(jean, anne, "alice"))
    assert_refused_without_change(
        services, Conflict, lambda: services.lifecycle.merge(MergePersons(anne, jean, "alice")), "retired"
    )


def test_an_unmerge_takes_the_tasks_raised_since_back_to_the_person_they_are_about(
    services: Services,
) -> None:
    anne = register(services, "HOSP", "a", ANNE)
    jean = register(services, "HOSP", "b", JEAN)
    services.lifecycle.merge(MergePersons(anne, jean, "alice", "a wrong merge"))
    webber = register(services, "LAB", "x", replace(JEAN, family_name="Webber"))
    (task,) = services.reviews.list()
    assert (task.mpi_id, task.candidate_mpi_id) == (webber, anne)  # judged on Jean's record, held by Anne

    services.lifecycle.unmerge(UnmergePerson(jean, "bob", "not the same patient"))

    (task,) = services.reviews.list()
    assert (task.mpi_id, task.candidate_mpi_id) == (webber, jean)
    flagged = services.persons.show(jean).person.flags
    assert flagged == services.persons.show(webber).person.flags != frozenset()
    assert services.persons.show(anne).person.flags == frozenset()
    services.reviews.resolve(ResolveReview(task.task_id, ReviewAction.MERGE, "carol"))
    assert services.persons.show(webber).person.replaced_by == jean  # never into Anne
    assert verify(services.store).ok


def test_an_unmerge_gives_back_a_validation_the_merge_took_even_after_later_updates(
    services: Services,
) -> None:
    jean = register(services, "HOSP", "1", JEAN)
    johann = register(
        services,
        "RNPP",
        "9",
        Demographics(family_name="Weber", given_names="Johann", birth_date="1980-01-02", sex="M"),
    )
    services.lifecycle.validate_identity(ValidateIdentity(jean, "alice", "passport seen"))
    validated = services.persons.show(jean).person
    services.lifecycle.merge(MergePersons(jean, johann, "alice", "a wrong merge"))
    assert not services.persons.show(jean).person.document_checked  # the names changed
    services.registry.update(UpdateRecord(RecordKey("HOSP", "1"), replace(JEAN, phone="+352 123456")))

    services.lifecycle.unmerge(UnmergePerson(johann, "bob"))

    person = services.persons.show(jean).person
    assert (person.trust, person.document_checked) == (validated.trust, True)
    assert person.golden == replace(validated.golden, phone="+352 123456")
    assert verify(services.store).ok


def test_refused_unmerges_change_nothing(services: Services, two_people: tuple[str, str]) -> None:
    jean, anne = two_people
    assert_refused_without_change(
        services, Conflict, lambda: services.lifecycle.unmerge(UnmergePerson(jean, "bob")), "no merge to undo"
    )
    third = register(
        services,
        "HOSP",
        "3",
        Demographics(family_name="Muller", given_names="Eva", birth_date="2001-02-03", sex="F"),
    )
    services.lifecycle.merge(MergePersons(jean, anne, "alice"))
    services.lifecycle.merge(MergePersons(third, jean, "alice"))
    assert_refused_without_change(
        services,
        Conflict,
        lambda: services.lifecycle.unmerge(UnmergePerson(anne, "bob")),
        "unmerge that first",
    )
    services.lifecycle.unmerge(UnmergePerson(jean, "bob"))
    services.lifecycle.unmerge(UnmergePerson(anne, "bob"))
    assert {len(services.persons.show(p).records) for p in (jean, anne, third)} == {1, 2}
    assert verify(services.store).ok


def test_manual_link_is_sticky_and_an_emptied_person_is_retired(
    services: Services, two_people: tuple[str, str]
) -> None:
    jean, anne = two_people
    services.lifecycle.link(LinkRecord(RecordKey("HOSP", "2"), jean, "alice", "same ID card"))

    record = services.persons.record(RecordKey("HOSP", "2"))
    assert (record.link.mpi_id, record.link.provenance, record.link.actor) == (
        jean,
        LinkProvenance.MANUAL,
        "alice",
    )
    emptied = services.persons.show(anne).person
    assert emptied.status is PersonStatus.RETIRED and emptied.replaced_by == jean

    services.registry.update(UpdateRecord(RecordKey("HOSP", "2"), replace(ANNE, given_names="Annette")))
    assert services.persons.record(RecordKey("HOSP", "2")).link.mpi_id == jean
    assert services.reviews.list() == []
    assert_refused_without_change(
        services,
        Conflict,
        lambda: services.lifecycle.link(LinkRecord(RecordKey("HOSP", "2"), jean, "alice")),
        "already linked",
    )
    assert_refused_without_change(
        services,
        Conflict,
        lambda: services.lifecycle.unmerge(UnmergePerson(anne, "bob")),
        "not retired by a merge",
    )


def test_unlink_gives_the_record_its_own_person_and_keeps_them_apart(
    services: Services, two_people: tuple[str, str]
) -> None:
    jean, _ = two_people
    services.lifecycle.unlink(UnlinkRecord(RecordKey("LAB", "1"), "alice", "different patient"))

    moved = services.persons.record(RecordKey("LAB", "1")).link
    assert moved.mpi_id != jean and moved.provenance is LinkProvenance.MANUAL
    state = snapshot(services)
    assert tuple(sorted((jean, moved.mpi_id))) in state.not_duplicates

    services.registry.update(UpdateRecord(RecordKey("HOSP", "1"), replace(JEAN, postcode="4321")))
    assert services.reviews.list() == []  # the pair the steward split is not proposed again
    assert_refused_without_change(
        services,
        Conflict,
        lambda: services.lifecycle.unlink(UnlinkRecord(RecordKey("LAB", "1"), "alice")),
        "only record",
    )
    assert_refused_without_change(
        services,
        NotFound,
        lambda: services.lifecycle.unlink(UnlinkRecord(RecordKey("LAB", "404"), "alice")),
        "no source record",
    )


def test_mark_not_duplicate_closes_pending_tasks_of_the_pair(services: Services) -> None:
    jean = register(services, "HOSP", "1", JEAN)
    webber = register(services, "HOSP", "2", replace(JEAN, family_name="Webber"))
    services.lifecycle.mark_not_duplicate(MarkNotDuplicate(jean, webber, "alice", "father and son"))

    (task,) = services.reviews.list(statuses=[ReviewStatus.RESOLVED])
    assert task.resolution is ReviewAction.NOT_A_DUPLICATE and task.resolved_by == "alice"
    assert_refused_without_change(
        services,
        Conflict,
        lambda: services.lifecycle.mark_not_duplicate(MarkNotDuplicate(webber, jean, "bob")),
        "already marked",
    )


def test_a_merge_never_puts_a_pair_judged_not_duplicate_back_before_a_reviewer(services: Services) -> None:
    x = register(services, "HOSP", "x", JEAN)
    a = register(services, "HOSP", "a", replace(JEAN, family_name="Webbe"))
    services.lifecycle.mark_not_duplicate(MarkNotDuplicate(x, a, "alice", "twins"))
    b = register(services, "HOSP", "b", replace(JEAN, family_name="Webber"))
    assert {frozenset((t.mpi_id, t.candidate_mpi_id)) for t in services.reviews.list()} == {
        frozenset((b, x)),
        frozenset((b, a)),
    }

    services.lifecycle.merge(MergePersons(a, b, "alice"))  # b's task with x would now pair a with x

    assert services.reviews.list() == []
    assert services.persons.show(x).person.flags == frozenset()
    assert verify(services.store).ok


def test_resolving_a_review_task_by_merge_and_twice(services: Services) -> None:
    jean = register(services, "HOSP", "1", JEAN)
    webber = register(services, "HOSP", "2", replace(JEAN, family_name="Webber"))
    (task,) = services.reviews.list()

    services.reviews.resolve(ResolveReview(task.task_id, ReviewAction.DEFER, "alice"))
    assert services.reviews.get(task.task_id).status is ReviewStatus.DEFERRED
    services.reviews.resolve(ResolveReview(task.task_id, ReviewAction.MERGE, "alice", "same person"))

    assert services.persons.show(webber).person.replaced_by == jean  # the older person survives
    assert services.persons.show(jean).person.flags == frozenset()
    assert_refused_without_change(
        services,
        Conflict,
        lambda: services.reviews.resolve(ResolveReview(task.task_id, ReviewAction.NOT_A_DUPLICATE, "bob")),
        "already resolved",
    )
    assert_refused_without_change(
        services,
        NotFound,
        lambda: services.reviews.resolve(ResolveReview(999, ReviewAction.MERGE, "bob")),
        "no review task",
    )


def test_a_merge_answering_a_review_task_is_undone_like_any_merge(services: Services) -> None:
    """A reviewer's wrong MERGE must not be the one merge that cannot be taken back."""
    jean = register(services, "HOSP", "1", JEAN)
    webber = register(services, "HOSP", "2", replace(JEAN, family_name="Webber"))
    (task,) = services.reviews.list()
    before = snapshot(services)
    services.reviews.resolve(ResolveReview(task.task_id, ReviewAction.MERGE, "alice", "same person"))
    assert services.persons.show(webber).person.replaced_by == jean

    services.lifecycle.unmerge(UnmergePerson(webber, "bob", "twins, not one person"))

    assert snapshot(services) == before  # both persons, their records, and the task pending again
    assert [t.task_id for t in services.reviews.list()] == [task.task_id]
    assert verify(services.store).ok


def test_a_record_mismatch_is_answered_by_confirming_or_unlinking(services: Services) -> None:
    jean = register(services, "HOSP", "1", JEAN)
    register(services, "LAB", "1", JEAN)
    services.registry.update(UpdateRecord(RecordKey("LAB", "1"), ANNE))
    (task,) = services.reviews.list()
    assert task.kind is ReviewKind.RECORD_MISMATCH

    assert_refused_without_change(
        services,
        Conflict,
        lambda: services.reviews.resolve(ResolveReview(task.task_id, ReviewAction.MERGE, "alice")),
        "answered with one of",
    )
    services.reviews.resolve(ResolveReview(task.task_id, ReviewAction.UNLINK_RECORD, "alice"))

    moved = services.persons.record(RecordKey("LAB", "1")).link
    assert moved.mpi_id != jean
    assert services.persons.show(moved.mpi_id).person.golden.family_name == "Schmit"
    assert verify(services.store).ok


@pytest.mark.parametrize("by_hand", ["link elsewhere", "link here", "unlink"])
def test_a_record_mismatch_is_answered_by_moving_the_record_by_hand(services: Services, by_hand: str) -> None:
    """Otherwise the task could never be answered (its record has moved) and would stay pending
    for ever."""
    jean = register(services, "HOSP", "1", JEAN)
    register(services, "LAB", "1", JEAN)
    anne = register(services, "HOSP", "2", ANNE)
    services.registry.update(UpdateRecord(RecordKey("LAB", "1"), ANNE))
    (task,) = [t for t in services.reviews.list() if t.kind is ReviewKind.RECORD_MISMATCH]

    if by_hand == "unlink":
        services.lifecycle.unlink(UnlinkRecord(RecordKey("LAB", "1"), "alice", "not Jean"))
    else:
        target = anne if by_hand == "link elsewhere" else jean
        services.lifecycle.link(LinkRecord(RecordKey("LAB", "1"), target, "alice", "checked"))

    answered = services.reviews.get(task.task_id)
    assert answered.status is ReviewStatus.RESOLVED and answered.resolved_by == "alice"
    expected = ReviewAction.CONFIRM_LINK if by_hand == "link here" else ReviewAction.UNLINK_RECORD
    assert answered.resolution is expected
    assert ReviewKind.RECORD_MISMATCH not in {t.kind for t in services.reviews.list()}
    assert verify(services.store).ok


def test_pair_tasks_follow_a_record_moved_by_hand(services: Services) -> None:
    """A task is judged on two records: when a steward moves one, the task is about the persons
    that now hold them (or answered, when the move put the two records together)."""
    jean = register(services, "HOSP", "1", JEAN)
    webber = register(services, "HOSP", "2", replace(JEAN, family_name="Webber"))
    assert register(services, "LAB", "2", replace(JEAN, family_name="Webber", postcode=None)) == webber
    (task,) = services.reviews.list()
    hosp_2 = services.persons.record(RecordKey("HOSP", "2")).record.record_id
    assert (task.record_id, task.mpi_id, task.candidate_mpi_id) == (hosp_2, webber, jean)

    services.lifecycle.unlink(UnlinkRecord(RecordKey("HOSP", "2"), "alice", "a registration mix-up"))
    alone = services.persons.record(RecordKey("HOSP", "2")).link.mpi_id
    (moved,) = services.reviews.list()
    assert (moved.task_id, moved.mpi_id, moved.candidate_mpi_id) == (task.task_id, alone, jean)

    services.lifecycle.link(LinkRecord(RecordKey("HOSP", "2"), jean, "alice", "same ID card"))
    assert services.reviews.list() == []  # the steward put the two records together
    assert services.reviews.get(task.task_id).resolution is ReviewAction.CONFIRM_LINK
    assert services.persons.show(jean).person.flags == frozenset()
    assert verify(services.store).ok


def test_identity_validation_and_strict_trait_change(services: Services) -> None:
    jean = register(services, "RNPP", "1", replace(JEAN, national_id="1893120105732"))
    assert services.persons.show(jean).person.trust is TrustStatus.RETRIEVED

    services.lifecycle.validate_identity(ValidateIdentity(jean, "alice", "passport seen"))
    assert services.persons.show(jean).person.trust is TrustStatus.QUALIFIED

    services.registry.update(
        UpdateRecord(
            RecordKey("RNPP", "1"), replace(JEAN, national_id="1893120105732", birth_date="1980-01-03")
        )
    )
    person = services.persons.show(jean).person
    assert person.trust is TrustStatus.RETRIEVED and not person.document_checked
