"""One contract, three stores: the in-memory fake, SQLite and PostgreSQL must behave the same."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from mpi.domain.commands import MergePersons, RegisterRecord, UnmergePerson, UpdateRecord
from mpi.domain.events import Event, EventKind, LinkChanged, PersonChanged
from mpi.domain.mpi_id import new_mpi_id
from mpi.domain.persons import Link, LinkProvenance, Person, PersonFlag, PersonStatus, TrustStatus
from mpi.domain.records import Demographics, MatriculeFlag, RecordIdentifier, RecordKey, SourceRecord
from mpi.domain.reviews import NotDuplicate, ReviewKind, ReviewStatus, ReviewTask, person_pair
from mpi.domain.scores import ComparisonOutcome
from mpi.errors import Conflict
from mpi.service.audit import verify
from mpi.service.bootstrap import Services
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.ports import NewIdentifier, NewLink, RecordIndex, UnitOfWork
from mpi.service.registry import FormCoverage

AT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
JOAO = Demographics(
    family_name="Ferreira dos Santos",
    given_names="João Maria",
    birth_date="1975-00-00",
    sex="M",
    city="Esch-sur-Alzette",
    email="joão@example.org",
)


class Boom(Exception):
    pass


def person(mpi_id: str | None = None, **changes: object) -> Person:
    base = Person(mpi_id or new_mpi_id(), PersonStatus.ACTIVE, TrustStatus.PROVISIONAL, JOAO, AT)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_records_keep_every_version_and_round_trip_exactly(any_services: Services) -> None:
    key = RecordKey("HÔPITAL", "ÄÖ-1")

    def write(uow: UnitOfWork) -> int:
        record = uow.add_record(key, JOAO, MatriculeFlag.MISSING, AT, "feed")
        uow.add_record_version(
            replace(record, version=2, demographics=replace(JOAO, city=None), updated_at=AT), "clerk"
        )
        return record.record_id

    record_id = any_services.store.run(write)

    def read(uow: UnitOfWork) -> None:
        found = uow.find_record(key)
        assert found is not None and found.record_id == record_id and found.version == 2
        assert found.demographics == replace(JOAO, city=None) and found.updated_at == AT
        versions = uow.record_versions(record_id)
        assert [(v.version, v.actor, v.demographics.city) for v in versions] == [
            (1, "feed", "Esch-sur-Alzette"),
            (2, "clerk", None),
        ]
        assert uow.get_records([record_id, 999_999]) == {record_id: found}
        assert uow.find_record(RecordKey("HÔPITAL", "other")) is None
        assert uow.count_records() == 1

    any_services.store.run(read, write=False)


def test_a_failed_unit_of_work_leaves_nothing_behind(any_services: Services) -> None:
    def fail(uow: UnitOfWork) -> None:
        uow.add_record(RecordKey("A", "1"), JOAO, MatriculeFlag.MISSING, AT, "feed")
        uow.add_person(person())
        raise Boom

    with pytest.raises(Boom):
        any_services.store.run(fail)
    assert any_services.store.run(lambda uow: uow.snapshot(), write=False).records == {}


def test_blocking_keys_are_replaced_and_found(any_services: Services) -> None:
    def write(uow: UnitOfWork) -> tuple[int, int]:
        a = uow.add_record(RecordKey("A", "1"), JOAO, MatriculeFlag.MISSING, AT, "feed").record_id
        b = uow.add_record(RecordKey("A", "2"), JOAO, MatriculeFlag.MISSING, AT, "feed").record_id
        uow.index_record(a, 1, ["k1", "k2"])
        uow.index_record(b, 1, ["k2", "k3"])
        uow.index_record(a, 1, ["k2", "k4"])
        uow.lock_keys(["k2", "k4"])
        return a, b

    a, b = any_services.store.run(write)

    def read(uow: UnitOfWork) -> None:
        assert uow.records_with_keys(["k1"]) == []
        assert uow.records_with_keys(["k2"]) == sorted([a, b])
        assert uow.records_with_keys(["k3", "k4", "missing"]) == sorted([a, b])
        assert uow.records_with_keys([f"k{i}" for i in range(2000)]) == sorted([a, b])

    any_services.store.run(read, write=False)


def test_identifiers_keep_history_and_only_active_ones_are_found(any_services: Services) -> None:
    def write(uow: UnitOfWork) -> None:
        record_id = uow.add_record(RecordKey("A", "1"), JOAO, MatriculeFlag.VALID, AT, "feed").record_id
        old = uow.add_identifier(
            record_id, "nid", "1893120105732", "1893 1201 05732", MatriculeFlag.VALID, AT
        )
        new = uow.add_identifier(record_id, "nid", "2015123101725", "2015123101725", MatriculeFlag.VALID, AT)
        uow.save_identifier(replace(old, active=False, replaced_by=new.identifier_id))
        assert uow.active_identifiers(record_id) == [new]
        assert uow.records_with_identifier("nid", "1893120105732") == []
        assert uow.records_with_identifier("nid", "2015123101725") == [record_id]

    any_services.store.run(write)


def test_persons_links_reviews_and_decisions_round_trip(any_services: Services) -> None:
    first = person(
        flags=frozenset({PersonFlag.POTENTIAL_DUPLICATE, PersonFlag.POTENTIAL_COLLISION}),
        document_checked=True,
        trust=TrustStatus.VALIDATED,
    )
    second = person()

    def write(uow: UnitOfWork) -> ReviewTask:
        record_id = uow.add_record(RecordKey("A", "1"), JOAO, MatriculeFlag.MISSING, AT, "feed").record_id
        uow.add_person(first)
        uow.add_person(second)
        uow.save_person(replace(second, status=PersonStatus.RETIRED, replaced_by=first.mpi_id))
        link = Link(record_id, second.mpi_id, LinkProvenance.AUTO, AT, "feed", 0.1 + 0.2, "m-1", "best")
        uow.save_link(link)
        uow.save_link(replace(link, mpi_id=first.mpi_id, provenance=LinkProvenance.MANUAL, score=None))
        task = uow.add_review(
            ReviewTask(
                0,
                ReviewKind.POTENTIAL_DUPLICATE,
                ReviewStatus.OPEN,
                record_id,
                first.mpi_id,
                second.mpi_id,
                record_id,
                1 / 3,
                -2.5,
                (ComparisonOutcome("family_name", "jaro≥0.9", 1 / 7),),
                AT,
            )
        )
        uow.add_not_duplicate(NotDuplicate(person_pair(first.mpi_id, second.mpi_id), AT, "alice", "twins"))
        return task

    task = any_services.store.run(write)

    def read(uow: UnitOfWork) -> None:
        assert uow.get_person(first.mpi_id) == first
        assert uow.lock_persons([second.mpi_id, "missing"]) == {
            second.mpi_id: replace(second, status=PersonStatus.RETIRED, replaced_by=first.mpi_id)
        }
        assert uow.get_persons([second.mpi_id, "missing", first.mpi_id]) == {
            first.mpi_id: first,
            second.mpi_id: replace(second, status=PersonStatus.RETIRED, replaced_by=first.mpi_id),
        }
        (link,) = uow.links_of_person(first.mpi_id)
        assert (link.provenance, link.score, link.linked_at) == (LinkProvenance.MANUAL, None, AT)
        assert uow.links_of_person(second.mpi_id) == []
        assert uow.get_review(task.task_id) == task
        assert uow.pending_reviews_of_persons([second.mpi_id]) == [task]  # as the candidate
        assert uow.pending_reviews_of_persons([first.mpi_id]) == [task]  # as the task's person
        assert uow.pending_reviews_of_persons([first.mpi_id, second.mpi_id, "missing"]) == [task]
        assert uow.pending_reviews_of_persons(["missing"]) == []
        assert uow.not_duplicate_partners(second.mpi_id) == {first.mpi_id}

    any_services.store.run(read, write=False)


def test_review_lists_filter_order_and_page(any_services: Services) -> None:
    a, b = person(), person()

    def write(uow: UnitOfWork) -> list[int]:
        record_id = uow.add_record(RecordKey("A", "1"), JOAO, MatriculeFlag.MISSING, AT, "feed").record_id
        uow.add_person(a)
        uow.add_person(b)
        ids = []
        for status in (ReviewStatus.OPEN, ReviewStatus.RESOLVED, ReviewStatus.DEFERRED, ReviewStatus.OPEN):
            task = uow.add_review(
                ReviewTask(
                    0,
                    ReviewKind.POTENTIAL_DUPLICATE,
                    ReviewStatus.OPEN,
                    record_id,
                    a.mpi_id,
                    b.mpi_id,
                    None,
                    0.5,
                    0.0,
                    (),
                    AT,
                )
            )
            uow.save_review(replace(task, status=status))
            ids.append(task.task_id)
        return ids

    ids = any_services.store.run(write)

    def listed(statuses: list[ReviewStatus], limit: int, offset: int = 0) -> list[int]:
        return [
            t.task_id
            for t in any_services.store.run(
                lambda uow: uow.list_reviews(statuses, limit, offset), write=False
            )
        ]

    assert listed([ReviewStatus.OPEN, ReviewStatus.DEFERRED], 10) == [ids[0], ids[2], ids[3]]
    assert listed([ReviewStatus.OPEN, ReviewStatus.DEFERRED], 1, 1) == [ids[2]]
    assert listed([ReviewStatus.RESOLVED], 10) == [ids[1]]

    def pending(mpi_ids: list[str]) -> list[int]:
        tasks = any_services.store.run(lambda uow: uow.pending_reviews_of_persons(mpi_ids), write=False)
        return [t.task_id for t in tasks]

    # Open and deferred tasks wait for a reviewer; a resolved one does not, for one person or several.
    assert (
        pending([a.mpi_id])
        == pending([b.mpi_id])
        == pending([b.mpi_id, a.mpi_id])
        == [ids[0], ids[2], ids[3]]
    )


def test_events_append_in_order_and_round_trip(any_services: Services) -> None:
    first, second = person(), person()
    link = Link(1, first.mpi_id, LinkProvenance.AUTO, AT, "feed", 0.987654321, "m")
    events = [
        Event(
            EventKind.RECORD_REGISTERED,
            AT,
            "feed",
            (PersonChanged(first.mpi_id, None, first), LinkChanged(1, None, link)),
            subjects=(first.mpi_id,),
        ),
        Event(
            EventKind.PERSONS_MERGED, AT, "alice", (), reason="same", subjects=(second.mpi_id, first.mpi_id)
        ),
    ]
    seqs = any_services.store.run(lambda uow: [uow.append_event(e) for e in events])
    assert seqs[1] > seqs[0]

    def read(uow: UnitOfWork) -> None:
        stored = uow.events()
        assert stored == [replace(e, seq=s) for e, s in zip(events, seqs, strict=True)]
        assert uow.events(after=seqs[0]) == stored[1:]
        assert uow.events(limit=1) == stored[:1]
        assert uow.events_about(second.mpi_id) == stored[1:]
        # Spans of sequence numbers, both ends included, in any order: events in order, once.
        assert uow.events_in([(seqs[1], seqs[1] + 5), (seqs[0] - 3, seqs[0])]) == stored
        assert uow.events_in([(seqs[0], seqs[1]), (seqs[1], seqs[1])]) == stored
        assert uow.events_in([(seqs[1] + 1, seqs[1] + 10)]) == []
        assert uow.events_in([]) == []
        assert uow.events_in([(seqs[1], seqs[1]), (seqs[0], seqs[0])], limit=1) == stored[:1]

    any_services.store.run(read, write=False)


def test_export_rows_cover_every_record_in_batches(any_services: Services) -> None:
    for i in range(7):
        any_services.registry.register(
            RegisterRecord(RecordKey("HOSP", f"r{i}"), replace(JOAO, given_names=f"G{i}"))
        )
    batches: list[int] = []
    rows = []

    def sink(batch: list) -> None:  # type: ignore[type-arg]
        batches.append(len(batch))
        rows.extend(batch)

    assert any_services.registry.export(sink, batch_size=3) == 7
    assert batches == [3, 3, 1]
    assert [r.local_id for r in rows] == [f"r{i}" for i in range(7)]
    assert {r.link_type for r in rows} == {"AUTO"} and all(r.source == "HOSP" for r in rows)


def test_the_service_scenario_replays_and_unmerges_exactly(any_services: Services) -> None:
    registry, lifecycle = any_services.registry, any_services.lifecycle
    a = registry.register(RegisterRecord(RecordKey("HOSP", "1"), JOAO)).mpi_id
    registry.register(RegisterRecord(RecordKey("LAB", "1"), replace(JOAO, city=None)))
    b = registry.register(
        RegisterRecord(RecordKey("HOSP", "2"), replace(JOAO, given_names="Maria", sex="F"))
    ).mpi_id
    registry.update(UpdateRecord(RecordKey("HOSP", "1"), replace(JOAO, national_id="1893120105732")))
    before = any_services.store.run(lambda uow: uow.snapshot(), write=False)

    lifecycle.merge(MergePersons(a, b, "alice"))
    with pytest.raises(Conflict):
        lifecycle.merge(MergePersons(b, a, "alice"))
    lifecycle.unmerge(UnmergePerson(b, "bob"))

    assert any_services.store.run(lambda uow: uow.snapshot(), write=False) == before
    result = verify(any_services.store)
    assert result.ok and result.events == 6


def test_a_candidate_comes_with_the_form_stored_for_its_current_version(any_services: Services) -> None:
    owner = person()

    def write(uow: UnitOfWork) -> int:
        uow.add_person(owner)
        record = uow.add_record(RecordKey("A", "1"), JOAO, MatriculeFlag.MISSING, AT, "feed")
        uow.save_link(Link(record.record_id, owner.mpi_id, LinkProvenance.AUTO, AT, "feed"))
        uow.index_record(record.record_id, 1, ["k-a"], "form of v1")
        return record.record_id

    record_id = any_services.store.run(write)

    def read(keys: list[str]) -> list[tuple[str | None, str | None]]:
        def work(uow: UnitOfWork) -> list[tuple[str | None, str | None]]:
            found = uow.candidate_records(keys)
            assert [(c.record_id, c.mpi_id) for c in found] == [(record_id, owner.mpi_id)]
            # The record itself is read only when there is no form to score it from.
            return [(c.form, c.record.demographics.given_names if c.record else None) for c in found]

        return any_services.store.run(work, write=False)

    assert read(["k-a"]) == [("form of v1", None)]
    # Beyond one statement's parameters the candidates are read by id: with their forms too.
    assert read(["k-a", *(f"k-{n}" for n in range(1000))]) == [("form of v1", None)]

    def new_version(uow: UnitOfWork) -> None:
        current = uow.get_records([record_id])[record_id]
        changed = replace(current, version=2, demographics=replace(JOAO, given_names="X"))
        uow.add_record_version(changed, "feed")

    any_services.store.run(new_version)
    assert read(["k-a"]) == [(None, "X")]  # the form of version 1 does not describe version 2
    any_services.store.run(lambda uow: uow.index_record(record_id, 2, ["k-a"], "form of v2"))
    assert read(["k-a"]) == [("form of v2", None)]
    any_services.store.run(lambda uow: uow.index_record(record_id, 2, ["k-a"], None))
    assert read(["k-a"]) == [(None, "X")]

    def version_with_form(version: int, given: str) -> None:
        # As an update does: the new version and its form in one transaction.
        def work(uow: UnitOfWork) -> None:
            current = uow.get_records([record_id])[record_id]
            uow.add_record_version(
                replace(current, version=version, demographics=replace(JOAO, given_names=given)), "feed"
            )
            uow.index_record(record_id, version, ["k-a"], f"form of v{version}")

        any_services.store.run(work)

    version_with_form(3, "Y")  # the record had no form row
    assert read(["k-a"]) == [("form of v3", None)]
    version_with_form(4, "Z")  # it had one, of the version before
    assert read(["k-a"]) == [("form of v4", None)]

    def renamed(uow: UnitOfWork) -> None:
        current = uow.get_records([record_id])[record_id]
        uow.rename_record(record_id, RecordKey("A", "1-renamed"))
        uow.add_record_version(
            replace(current, key=RecordKey("A", "1-renamed"), version=5), "feed", same_demographics=True
        )

    any_services.store.run(renamed)
    # A new key, the same demographics: the form still describes the record, now version 5.
    assert read(["k-a"]) == [("form of v4", None)]
    any_services.store.run(lambda uow: uow.index_record(record_id, 5, ["k-a"], "form of v5"))
    assert read(["k-a"]) == [("form of v5", None)]


def test_candidates_say_which_carry_the_identifier_asked_for_with_their_sex_and_birth_date(
    any_services: Services,
) -> None:
    owner = person()

    def write(uow: UnitOfWork) -> list[int]:
        uow.add_person(owner)
        ids = []
        for i in range(3):
            record = uow.add_record(RecordKey("A", str(i)), JOAO, MatriculeFlag.MISSING, AT, "feed")
            uow.save_link(Link(record.record_id, owner.mpi_id, LinkProvenance.AUTO, AT, "feed"))
            ids.append(record.record_id)
        uow.index_record(ids[0], 1, ["k-a"], "form")
        uow.index_record(ids[1], 1, ["k-a"])
        uow.add_identifier(ids[1], "nid", "1893120105732", "1893120105732", MatriculeFlag.VALID, AT)
        uow.add_identifier(ids[2], "nid", "1893120105732", "1893120105732", MatriculeFlag.VALID, AT)
        return ids

    ids = any_services.store.run(write)

    def read(keys: list[str]) -> list[tuple[int, bool, tuple[str | None, str | None] | None]]:
        return any_services.store.run(
            lambda uow: [
                (c.record_id, c.has_identifier, c.holder_traits)
                for c in uow.candidate_records(keys, ("nid", "1893120105732"))
            ],
            write=False,
        )

    traits = (JOAO.sex, JOAO.birth_date)
    assert JOAO.sex and JOAO.birth_date
    expected = [(ids[0], False, None), (ids[1], True, traits), (ids[2], True, traits)]
    assert read(["k-a"]) == expected
    assert read(["k-a", *(f"k-{n}" for n in range(1000))]) == expected


def test_a_new_record_is_stored_with_its_identifier_keys_form_and_link_in_one_call(
    any_services: Services,
) -> None:
    owner = person()
    nid = NewIdentifier("nid", "1893120105732", " 1893 1201 05732", MatriculeFlag.VALID)
    auto = NewLink(owner.mpi_id, LinkProvenance.AUTO, 0.97, "m1", "best candidate")

    def write(uow: UnitOfWork) -> tuple[int, int, int | None]:
        uow.add_person(owner)
        first, added, _ = uow.add_indexed_record(
            RecordKey("A", "1"),
            JOAO,
            MatriculeFlag.VALID,
            AT,
            "feed",
            nid,
            RecordIndex(["k-a", "k-b"], "f1"),
            auto,
        )
        second, none, _ = uow.add_indexed_record(
            RecordKey("A", "2"), JOAO, MatriculeFlag.MISSING, AT, "feed", None, RecordIndex(["k-b"], None)
        )
        assert none is None and added is not None
        assert (added.record_id, added.system, added.value, added.raw, added.active) == (
            first.record_id,
            "nid",
            "1893120105732",
            " 1893 1201 05732",
            True,
        )
        # A record stored without its link is linked afterwards.
        uow.save_link(Link(second.record_id, owner.mpi_id, LinkProvenance.MANUAL, AT, "feed"))
        # Later writes of the same transaction see what the one call stored.
        assert uow.links_of_person(owner.mpi_id) == [
            auto.of(first.record_id, AT, "feed"),
            Link(second.record_id, owner.mpi_id, LinkProvenance.MANUAL, AT, "feed"),
        ]
        assert uow.active_identifiers(first.record_id) == [added]
        assert uow.active_identifiers(second.record_id) == []
        return first.record_id, second.record_id, added.identifier_id

    first, second, identifier_id = any_services.store.run(write)

    def read(uow: UnitOfWork) -> object:
        found = uow.candidate_records(["k-b"], ("nid", "1893120105732"))
        return (
            [(c.record_id, c.mpi_id, c.form, c.record is None, c.has_identifier) for c in found],
            uow.records_with_keys(["k-a"]),
            [i.identifier_id for i in uow.active_identifiers(first)],
            uow.find_record(RecordKey("A", "2")),
            uow.get_links([first]),
        )

    candidates, with_a, identifiers, stored, links = any_services.store.run(read, write=False)
    assert links == {first: auto.of(first, AT, "feed")}
    assert candidates == [(first, owner.mpi_id, "f1", True, True), (second, owner.mpi_id, None, False, False)]
    assert with_a == [first] and identifiers == [identifier_id]
    assert stored is not None and stored.record_id == second and stored.demographics == JOAO


def _two_persons_three_records(uow: UnitOfWork, owner: Person, other: Person) -> list[int]:
    """Records A/0 and A/2 linked to ``owner``, A/1 to ``other``; their ids in that order."""
    uow.add_person(owner)
    uow.add_person(other)
    ids = []
    for i, mpi_id in enumerate([owner.mpi_id, other.mpi_id, owner.mpi_id]):
        record = uow.add_record(
            RecordKey("A", str(i)), replace(JOAO, given_names=f"G{i}"), MatriculeFlag.MISSING, AT, "feed"
        )
        uow.save_link(Link(record.record_id, mpi_id, LinkProvenance.AUTO, AT, "feed"))
        ids.append(record.record_id)
    return ids


def _add_record_b1(
    uow: UnitOfWork, link: NewLink, **options: Any
) -> tuple[SourceRecord, RecordIdentifier | None, list[SourceRecord] | None]:
    """Record B/1 (JOAO, no identifier, one key and a form), linked by ``link``."""
    return uow.add_indexed_record(
        RecordKey("B", "1"),
        JOAO,
        MatriculeFlag.MISSING,
        AT,
        "feed",
        None,
        RecordIndex(["k"], "f"),
        link,
        **options,
    )


def test_a_new_linked_record_comes_back_with_its_persons_current_records(any_services: Services) -> None:
    owner, other = person(), person()
    auto = NewLink(owner.mpi_id, LinkProvenance.AUTO, 0.97, "m1", "best candidate")

    def write(uow: UnitOfWork) -> tuple[list[SourceRecord] | None, list[SourceRecord], list[int]]:
        ids = _two_persons_three_records(uow, owner, other)
        uow.supersede_record(ids[0], ids[2], AT, "feed")  # no longer one of the person's records
        new, _, members = _add_record_b1(uow, auto, members=True)
        read_after = uow.records_of_person(owner.mpi_id)
        assert uow.current_records_by_person([owner.mpi_id])[owner.mpi_id] == read_after
        return members, read_after, [ids[2], new.record_id]

    members, read_after, expected = any_services.store.run(write)
    assert members is not None and [r.record_id for r in members] == expected
    assert members == read_after


def test_a_new_person_is_stored_with_its_first_record(any_services: Services) -> None:
    newcomer = person()
    auto = NewLink(newcomer.mpi_id, LinkProvenance.AUTO, None, "m1", "no candidate above the link threshold")

    def write(uow: UnitOfWork) -> int:
        record, _, members = _add_record_b1(uow, auto, new_person=newcomer)
        assert members is None  # not asked for
        # Written by the same call: later statements of the transaction see both.
        assert uow.get_person(newcomer.mpi_id) == newcomer
        assert uow.links_of_person(newcomer.mpi_id) == [auto.of(record.record_id, AT, "feed")]
        return record.record_id

    record_id = any_services.store.run(write)
    stored = any_services.store.run(lambda uow: (uow.get_person(newcomer.mpi_id), uow.get_links([record_id])))
    assert stored == (newcomer, {record_id: auto.of(record_id, AT, "feed")})


def test_records_are_read_with_their_person(any_services: Services) -> None:
    owner, other = person(), person()

    def write(uow: UnitOfWork) -> list[int]:
        ids = _two_persons_three_records(uow, owner, other)
        uow.index_record(ids[0], 1, ["k-a"])
        uow.index_record(ids[1], 1, ["k-a", "k-b"])
        uow.index_record(ids[2], 1, ["k-c"])
        uow.add_identifier(ids[0], "nid", "1893120105732", "1893120105732", MatriculeFlag.VALID, AT)
        return ids

    ids = any_services.store.run(write)

    def read(uow: UnitOfWork) -> None:
        assert [r.record_id for r in uow.records_of_person(owner.mpi_id)] == [ids[0], ids[2]]
        assert uow.records_of_person(new_mpi_id()) == []
        unknown = new_mpi_id()
        # Several persons' current records in one read, as one read per person gives them.
        assert uow.current_records_by_person([other.mpi_id, unknown, owner.mpi_id, other.mpi_id]) == {
            other.mpi_id: uow.records_of_person(other.mpi_id),
            unknown: [],
            owner.mpi_id: uow.records_of_person(owner.mpi_id),
        }
        assert [(c.record_id, c.mpi_id) for c in uow.candidate_records(["k-b", "k-a"])] == [
            (ids[0], owner.mpi_id),
            (ids[1], other.mpi_id),
        ]
        assert [c.record_id for c in uow.candidate_records(["k-c"], ("nid", "1893120105732"))] == [
            ids[0],
            ids[2],
        ]
        assert uow.candidate_records([], None) == []
        # A registration's reads once its keys are locked: the record of its key, if any, else
        # its candidates (with the identifier holders' traits).
        assert uow.record_and_candidates(RecordKey("A", "new"), ["k-c"], ("nid", "1893120105732")) == (
            None,
            uow.candidate_records(["k-c"], ("nid", "1893120105732")),
        )
        assert uow.record_and_candidates(RecordKey("A", "new"), []) == (None, [])
        # More keys than one statement binds (a record with a very long list of keys): the same.
        many = ["k-c", *(f"absent-{i}" for i in range(1_000))]
        few = uow.candidate_records(["k-c"], ("nid", "1893120105732"))
        assert uow.candidate_records(many, ("nid", "1893120105732")) == few
        assert uow.record_and_candidates(RecordKey("A", "new"), many, ("nid", "1893120105732")) == (None, few)
        assert [c.has_identifier for c in few] == [True, False]
        existing, candidates = uow.record_and_candidates(RecordKey("A", "1"), ["k-a", "k-b"])
        assert existing is not None and existing.record_id == ids[1] and candidates == []
        linked = uow.linked_records([ids[2], ids[0], ids[1], 999_999])
        assert [(r.record_id, r.demographics.given_names, m) for r, m in linked] == [
            (ids[0], "G0", owner.mpi_id),
            (ids[1], "G1", other.mpi_id),
            (ids[2], "G2", owner.mpi_id),
        ]

    any_services.store.run(read, write=False)


def test_reindex_gives_every_record_its_keys_and_form_again(any_services: Services) -> None:
    registry = any_services.registry
    anna = replace(JOAO, given_names="Anna", sex="F", birth_date="1990-05-06", national_id=None)
    keys = [RecordKey("A", str(n)) for n in range(5)]
    registered = [
        registry.register(RegisterRecord(key, anna if n % 2 else JOAO, "feed")) for n, key in enumerate(keys)
    ]
    before = any_services.store.run(lambda uow: (uow.snapshot(), uow.events()), write=False)

    # A registry indexed by an older mpi: records without forms, found through other keys.
    def forget(uow: UnitOfWork) -> None:
        for result in registered:
            uow.index_record(result.record_id, result.version, ["stale"], None)

    assert registry.form_coverage() == FormCoverage(records=5, with_form=5, current=True)
    any_services.store.run(forget)
    assert registry.search(anna) == []
    assert registry.form_coverage() == FormCoverage(records=5, with_form=0, current=True)
    assert registry.form_coverage().needs_reindex
    seen: list[int] = []
    assert registry.reindex(batch_size=2, progress=seen.append) == 5
    assert not registry.form_coverage().needs_reindex
    assert seen == [2, 2, 1]
    hits = registry.search(anna)
    assert [h.mpi_id for h in hits][:1] == [registered[1].mpi_id]

    def candidates(keys: list[str]) -> list[tuple[int, bool]]:
        return any_services.store.run(
            lambda uow: [(c.record_id, c.form is not None) for c in uow.candidate_records(keys)], write=False
        )

    assert candidates(["stale"]) == []  # the stale keys are gone
    anna_keys = FakeMatcher().blocking_keys([anna])[0]
    assert candidates(anna_keys) == [(r.record_id, True) for r in registered[1::2]]
    # The index is not registry state: nothing else changed, and no event was written.
    assert any_services.store.run(lambda uow: (uow.snapshot(), uow.events()), write=False) == before


def test_search_columns_give_every_record_in_use_with_its_person_in_batches(any_services: Services) -> None:
    owner, other = person(), person()
    anna = Demographics(
        family_name="Weber", birth_name="Muller", given_names="Anna", sex="F", postcode="L-1234"
    )

    def write(uow: UnitOfWork) -> list[int]:
        uow.add_person(owner)
        uow.add_person(other)
        ids = []
        for i, (demographics, mpi_id) in enumerate(
            [(JOAO, owner.mpi_id), (anna, other.mpi_id), (JOAO, owner.mpi_id), (anna, other.mpi_id)]
        ):
            record = uow.add_record(RecordKey("A", str(i)), demographics, MatriculeFlag.MISSING, AT, "feed")
            if i < 3:  # the last one is not linked (yet): not in use
                uow.save_link(Link(record.record_id, mpi_id, LinkProvenance.AUTO, AT, "feed"))
            ids.append(record.record_id)
        uow.supersede_record(ids[2], ids[0], AT, "feed")  # retired by its source's merge
        return ids

    ids = any_services.store.run(write)

    def read(uow: UnitOfWork) -> None:
        batches = list(uow.search_columns(1))
        assert [b.record_ids for b in batches] == [[ids[0]], [ids[1]]]
        (together,) = list(uow.search_columns(10))
        assert together.record_ids == [ids[0], ids[1]]
        assert together.mpi_ids == [owner.mpi_id, other.mpi_id]
        assert together.traits == {
            "family_name": ["Ferreira dos Santos", "Weber"],
            "birth_name": [None, "Muller"],
            "given_names": ["João Maria", "Anna"],
            "birth_date": ["1975-00-00", None],
            "sex": ["M", "F"],
            "postcode": [None, "L-1234"],
            "city": ["Esch-sur-Alzette", None],
        }

    any_services.store.run(read, write=False)
