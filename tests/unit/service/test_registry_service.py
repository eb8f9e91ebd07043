"""register / update / search against the in-memory store and the fake matcher."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mpi.domain.commands import LinkRecord, RegisterRecord, ResolveReview, UpdateRecord
from mpi.domain.identifiers import MatriculeStatus, check_matricule, complete_matricule
from mpi.domain.persons import LinkProvenance, PersonFlag
from mpi.domain.records import Demographics, MatriculeFlag, RecordKey, SourceRecord
from mpi.domain.reviews import ReviewAction, ReviewKind, ReviewStatus
from mpi.domain.scores import ComparisonOutcome, PairScore
from mpi.errors import NotFound
from mpi.service.audit import verify
from mpi.service.bootstrap import Services, wire
from mpi.service.evidence import matchable_records
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.fakes import InMemoryStore, TickingClock
from mpi.service.operations import MATRICULE_SYSTEM
from mpi.service.ports import UnitOfWork
from mpi.service.registry import FormCoverage, RegistrationResult
from mpi.service.settings import Settings

JEAN = Demographics(
    family_name="Weber", given_names="Jean Pierre", birth_date="1980-01-02", sex="M", postcode="1234"
)
ANNE = Demographics(family_name="Schmit", given_names="Anne", birth_date="1990-05-06", sex="F")
VALID = "1893120105732"
OTHER_VALID = "2015123101725"


def services_settings() -> Settings:
    return Settings(database_url="sqlite:///unused.db", _env_file=None)  # type: ignore[call-arg]


def register(
    services: Services, local_id: str, demographics: Demographics, authority: str = "HOSP"
) -> RegistrationResult:
    return services.registry.register(RegisterRecord(RecordKey(authority, local_id), demographics))


def test_first_record_creates_a_person_and_a_matching_one_links_to_it(services: Services) -> None:
    first = register(services, "1", JEAN)
    second = register(services, "2", replace(JEAN, postcode=None), authority="LAB")

    assert first.outcome == "created"
    assert second.outcome == "linked"
    assert second.mpi_id == first.mpi_id
    view = services.persons.show(first.mpi_id)
    link = next(r.link for r in view.records if r.record.record_id == second.record_id)
    assert link.provenance is LinkProvenance.AUTO
    assert link.model_version == "fake-1"
    assert link.score == second.score and second.score is not None and second.score > 0.5


def test_review_band_candidate_gets_a_new_person_and_a_review_task(services: Services) -> None:
    first = register(services, "1", JEAN)
    second = register(services, "2", replace(JEAN, family_name="Webber"))

    assert second.outcome == "created"
    assert second.mpi_id != first.mpi_id
    (task,) = services.reviews.list()
    assert task.task_id in second.review_task_ids
    assert task.kind is ReviewKind.POTENTIAL_DUPLICATE
    assert {task.mpi_id, task.candidate_mpi_id} == {first.mpi_id, second.mpi_id}
    assert {c.name: c.level for c in task.comparisons}["family_name"] == "else"
    for mpi_id in (first.mpi_id, second.mpi_id):
        assert PersonFlag.POTENTIAL_DUPLICATE in services.persons.show(mpi_id).person.flags


def test_not_a_duplicate_pair_is_never_proposed_again(services: Services) -> None:
    first = register(services, "1", JEAN)
    second = register(services, "2", replace(JEAN, family_name="Webber"))
    (task,) = services.reviews.list()
    services.reviews.resolve(ResolveReview(task.task_id, ReviewAction.NOT_A_DUPLICATE, "alice", "twins"))

    again = register(services, "3", replace(JEAN, family_name="Webber", postcode=None))

    assert again.mpi_id == second.mpi_id  # links to its own person...
    assert services.reviews.list() == []  # ...and the ruled-out pair with the first stays quiet
    assert PersonFlag.POTENTIAL_DUPLICATE not in services.persons.show(first.mpi_id).person.flags


def test_registering_a_known_record_stores_a_new_version(services: Services) -> None:
    first = register(services, "1", JEAN)
    same = register(services, "1", JEAN)
    moved = register(services, "1", replace(JEAN, postcode="9999"))

    assert same.outcome == "unchanged" and same.event_seq is None
    assert moved.outcome == "updated" and moved.version == 2 and moved.mpi_id == first.mpi_id
    view = services.persons.record(RecordKey("HOSP", "1"))
    assert [v.demographics.postcode for v in view.versions] == ["1234", "9999"]
    assert services.persons.show(first.mpi_id).person.golden.postcode == "9999"


def test_update_of_an_unknown_record_is_not_found(services: Services) -> None:
    with pytest.raises(NotFound):
        services.registry.update(UpdateRecord(RecordKey("HOSP", "nope"), JEAN))


def test_update_that_no_longer_fits_raises_a_task_and_never_moves_the_record(services: Services) -> None:
    first = register(services, "1", JEAN)
    register(services, "2", JEAN, authority="LAB")
    other = register(services, "3", ANNE)

    result = services.registry.update(UpdateRecord(RecordKey("LAB", "2"), ANNE))

    assert result.outcome == "updated"
    assert result.mpi_id == first.mpi_id
    assert services.persons.record(RecordKey("LAB", "2")).link.mpi_id == first.mpi_id  # not moved
    kinds = {t.kind: t for t in services.reviews.list()}
    assert set(kinds) == {ReviewKind.RECORD_MISMATCH, ReviewKind.POTENTIAL_DUPLICATE}
    assert kinds[ReviewKind.RECORD_MISMATCH].mpi_id == first.mpi_id
    assert kinds[ReviewKind.POTENTIAL_DUPLICATE].candidate_mpi_id == other.mpi_id


def test_update_of_a_manual_link_is_not_re_evaluated(services: Services) -> None:
    first = register(services, "1", JEAN)
    register(services, "2", JEAN, authority="LAB")

    services.lifecycle.link(LinkRecord(RecordKey("LAB", "2"), first.mpi_id, "alice", "checked the ID card"))
    services.registry.update(UpdateRecord(RecordKey("LAB", "2"), replace(JEAN, given_names="Paul")))

    assert services.reviews.list() == []
    record = services.persons.record(RecordKey("LAB", "2"))
    assert record.link.provenance is LinkProvenance.MANUAL and record.link.mpi_id == first.mpi_id


def test_search_ranks_persons_and_registers_nothing(services: Services) -> None:
    jean = register(services, "1", JEAN)
    webber = register(services, "2", replace(JEAN, family_name="Webber", postcode="1111"))
    events_before = len(services.store.run(lambda uow: uow.events(), write=False))

    hits = services.registry.search(
        Demographics(family_name="Weber", given_names="Jean", birth_date="1980-01-02")
    )

    assert [h.mpi_id for h in hits] == [jean.mpi_id, webber.mpi_id]
    assert hits[0].match_probability > hits[1].match_probability
    assert hits[0].decision == "link" and hits[1].decision == "review"
    assert {c.name for c in hits[0].comparisons} >= {"family_name", "birth_date"}
    assert hits[0].golden.family_name == "Weber"
    assert services.registry.count_records() == 2
    assert len(services.store.run(lambda uow: uow.events(), write=False)) == events_before


def test_same_valid_matricule_with_compatible_traits_links_despite_other_names(services: Services) -> None:
    first = register(services, "1", replace(JEAN, national_id=VALID))
    second = register(
        services,
        "2",
        Demographics(
            family_name="Ferreira", given_names="Joao", birth_date="1980-01-02", sex="M", national_id=VALID
        ),
        authority="CNS",
    )
    assert second.outcome == "linked" and second.mpi_id == first.mpi_id


def test_a_legacy_eleven_digit_matricule_matches_its_thirteen_digit_form(services: Services) -> None:
    first = register(services, "1", replace(JEAN, national_id=VALID))
    second = register(
        services,
        "2",
        Demographics(
            family_name="Other", given_names="Name", birth_date="1980-01-02", sex="M", national_id=VALID[:11]
        ),
        authority="CNS",
    )
    assert second.matricule is MatriculeFlag.UPGRADED
    assert second.mpi_id == first.mpi_id


class AlwaysLink:
    """A matcher that is sure of everything, to show the matricule rule overrides it."""

    model_version = "always"

    def blocking_keys(self, records: Sequence[Demographics]) -> list[list[str]]:
        return [["all"] for _ in records]

    def forms(self, records: Sequence[Demographics]) -> list[str | None]:
        return [None] * len(records)

    def keys_and_forms(self, records: Sequence[Demographics]) -> tuple[list[list[str]], list[str | None]]:
        return self.blocking_keys(records), self.forms(records)

    def form_is_current(self, form: str) -> bool:
        return False

    def score(self, probe: Demographics | str, candidates: Sequence[Demographics | str]) -> list[PairScore]:
        return [
            PairScore(0.999, 20.0, "link", (ComparisonOutcome("all", "exact", 20.0),)) for _ in candidates
        ]


def test_same_matricule_with_conflicting_strict_traits_is_a_collision_never_a_link() -> None:
    settings = services_settings()
    services = wire(settings, InMemoryStore(), AlwaysLink(), TickingClock())
    first = register(services, "1", replace(JEAN, national_id=VALID))

    second = register(services, "2", replace(JEAN, national_id=VALID, sex="F", birth_date="1981-03-04"))

    assert second.outcome == "created" and second.mpi_id != first.mpi_id
    (task,) = services.reviews.list()
    assert task.kind is ReviewKind.POTENTIAL_COLLISION
    assert PersonFlag.POTENTIAL_COLLISION in services.persons.show(first.mpi_id).person.flags


def test_invalid_matricule_is_flagged_kept_and_never_matched_on(services: Services) -> None:
    invalid = "1893120105733"
    first = register(
        services,
        "1",
        Demographics(
            family_name="Kieffer", given_names="Luc", birth_date="1970-07-07", sex="M", national_id=invalid
        ),
    )
    second = register(
        services,
        "2",
        Demographics(
            family_name="Hoffmann", given_names="Marc", birth_date="1970-07-07", sex="M", national_id=invalid
        ),
    )

    assert first.matricule is MatriculeFlag.INVALID
    assert second.mpi_id != first.mpi_id
    view = services.persons.record(RecordKey("HOSP", "1"))
    (identifier,) = view.identifiers
    assert (identifier.system, identifier.value, identifier.status) == (
        MATRICULE_SYSTEM,
        invalid,
        MatriculeFlag.INVALID,
    )
    assert services.persons.show(first.mpi_id).person.golden.national_id is None
    hits = services.registry.search(
        Demographics(family_name="Kieffer", given_names="Luc", birth_date="1970-07-07", national_id=invalid)
    )
    assert {c.name: c.level for c in hits[0].comparisons}["national_id"] == "null"


def test_a_changed_matricule_keeps_its_history(services: Services) -> None:
    register(services, "1", replace(JEAN, national_id=VALID))
    services.registry.update(UpdateRecord(RecordKey("HOSP", "1"), replace(JEAN, national_id=OTHER_VALID)))

    state = services.store.run(lambda uow: uow.snapshot(), write=False)
    old, new = sorted(state.identifiers.values(), key=lambda i: i.identifier_id)
    assert (old.value, old.active, old.replaced_by) == (VALID, False, new.identifier_id)
    assert (new.value, new.active) == (OTHER_VALID, True)
    found = services.store.run(lambda uow: uow.records_with_identifier(MATRICULE_SYSTEM, VALID), write=False)
    assert found == []


def test_register_many_gives_the_same_persons_as_one_by_one(services: Services) -> None:
    rows = [
        ("1", JEAN),
        ("2", replace(JEAN, postcode=None)),
        ("3", replace(JEAN, family_name="Webber")),
        ("4", ANNE),
        ("5", replace(ANNE, sex=None)),
    ]
    commands = [RegisterRecord(RecordKey("HOSP", local_id), d) for local_id, d in rows]
    batched = services.registry.register_many(commands, per_transaction=2)

    settings = services_settings()
    single = wire(settings, InMemoryStore(), FakeMatcher(), TickingClock())
    one_by_one = [single.registry.register(c) for c in commands]

    def partition(results: list[RegistrationResult]) -> list[int]:
        first_seen: dict[str, int] = {}
        return [first_seen.setdefault(r.mpi_id, len(first_seen)) for r in results]

    assert partition(batched) == partition(one_by_one) == [0, 0, 1, 2, 2]
    assert [r.review_task_ids != () for r in batched] == [r.review_task_ids != () for r in one_by_one]
    assert verify(services.store).ok


def test_the_event_log_replays_to_the_stored_state(services: Services) -> None:
    register(services, "1", JEAN)
    register(services, "2", replace(JEAN, family_name="Webber"))
    services.registry.update(UpdateRecord(RecordKey("HOSP", "1"), replace(JEAN, national_id=VALID)))
    (task,) = [t for t in services.reviews.list() if t.status is ReviewStatus.OPEN]
    services.reviews.resolve(ResolveReview(task.task_id, ReviewAction.MERGE, "alice"))

    result = verify(services.store)
    assert result.ok and result.events == 4


@given(
    st.integers(1900, 2025),
    st.integers(0, 12),
    st.integers(0, 28),
    st.integers(0, 999),
    st.sampled_from(["", " ", "\t", "."]),
)
def test_a_stored_valid_matricule_is_read_as_the_check_would_normalise_it(
    year: int, month: int, day: int, order: int, separator: str
) -> None:
    # Candidates whose valid number is already 13 digits skip the second check: it must not matter.
    number = complete_matricule(f"{year:04d}{month:02d}{day:02d}{order:03d}")
    raw = f"{number[:4]}{separator}{number[4:]}"
    normalised, status = check_matricule(raw)
    assume(status is MatriculeStatus.VALID)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    record = SourceRecord(1, RecordKey("A", "1"), 1, Demographics(national_id=raw), MatriculeFlag.VALID, at)
    views, matricules = matchable_records([record])
    assert matricules == [normalised] == [number]
    assert views[0].national_id == number


@pytest.mark.parametrize(
    ("coverage", "warn"),
    [
        (FormCoverage(records=0, with_form=0, current=True), False),  # an empty registry
        (FormCoverage(records=1000, with_form=995, current=True), False),  # a few refused dates
        (FormCoverage(records=1000, with_form=980, current=True), True),
        (FormCoverage(records=1000, with_form=0, current=True), True),  # written by an older mpi
        (FormCoverage(records=1000, with_form=1000, current=False), True),  # another standardiser
    ],
)
def test_a_reindex_is_advised_when_many_records_would_be_standardised_at_every_match(
    coverage: FormCoverage, warn: bool
) -> None:
    assert coverage.needs_reindex is warn


def test_forms_of_another_standardiser_do_not_count_as_current() -> None:
    services = wire(
        Settings(database_url="sqlite:///unused.db", _env_file=None), InMemoryStore(), FakeMatcher()
    )  # type: ignore[call-arg]
    for n, name in enumerate(("Weber", "Schmit", "Muller"), start=1):
        services.registry.register(RegisterRecord(RecordKey("A", str(n)), Demographics(family_name=name)))
    assert services.registry.form_coverage() == FormCoverage(records=3, with_form=3, current=True)

    def restamp(record_id: int) -> Callable[[UnitOfWork], None]:
        return lambda uow: uow.index_record(record_id, 1, ["k"], "written by another version")

    # After an upgrade, records registered since have current forms; the older ones do not.
    services.store.run(restamp(1))
    assert services.registry.form_coverage() == FormCoverage(records=3, with_form=3, current=False)
    services.registry.reindex()
    services.store.run(restamp(3))  # a reindex that stopped before the newest records
    assert services.registry.form_coverage() == FormCoverage(records=3, with_form=3, current=False)
