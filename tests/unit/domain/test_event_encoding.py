"""Event changes as stored text: the general JSON form and the compact form of a loaded person."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mpi.domain.events import (
    Change,
    IdentifierChanged,
    LinkChanged,
    PersonChanged,
    RecordChanged,
    decode_changes,
    encode_changes,
)
from mpi.domain.persons import Link, LinkProvenance, Person, PersonFlag, PersonStatus, TrustStatus
from mpi.domain.records import Demographics, MatriculeFlag, RecordIdentifier, RecordKey, SourceRecord

AT = datetime(2026, 11, 22, 6, 43, 18, 123456, tzinfo=UTC)
SYSTEM = "urn:oid:1.3.182.4.4"


def loaded_person(at: datetime = AT) -> tuple[Change, ...]:
    """What a bulk load logs for one person of three records, two of them with a matricule."""
    records = [
        SourceRecord(
            10 + i,
            RecordKey("HOSP", f"P{i}"),
            1,
            Demographics(family_name="Weber", given_names="Jeañ", birth_date="1980-01-02", national_id=nid),
            flag,
            at,
        )
        for i, (nid, flag) in enumerate(
            [
                ("1893120105732", MatriculeFlag.VALID),
                (None, MatriculeFlag.MISSING),
                ("12", MatriculeFlag.INVALID),
            ]
        )
    ]
    identifiers = [
        RecordIdentifier(100, 10, SYSTEM, "1893120105732", "1893120105732", MatriculeFlag.VALID, True, at),
        RecordIdentifier(101, 12, SYSTEM, "12", "12", MatriculeFlag.INVALID, True, at),
    ]
    person = Person(
        "0123456789ABX",
        PersonStatus.ACTIVE,
        TrustStatus.RETRIEVED,
        Demographics(family_name="Weber", national_id="1893120105732"),
        at,
        flags=frozenset({PersonFlag.POTENTIAL_DUPLICATE}),
    )
    links = [
        Link(r.record_id, person.mpi_id, LinkProvenance.AUTO, at, "loader", score, "v1/em", "batch")
        for r, score in zip(records, [0.98, None, 1.0], strict=True)
    ]
    return (
        *(RecordChanged(r) for r in records),
        *(IdentifierChanged(i.identifier_id, None, i) for i in identifiers),
        PersonChanged(person.mpi_id, None, person),
        *(LinkChanged(link.record_id, None, link) for link in links),
    )


def test_a_loaded_person_round_trips_through_the_compact_form() -> None:
    changes = loaded_person()
    compact = encode_changes(changes, compact=True)
    general = encode_changes(changes)
    assert compact.startswith("{") and general.startswith("[")
    assert len(compact) * 2 < len(general)
    assert decode_changes(compact) == changes
    assert decode_changes(compact.encode("utf-8")) == changes
    assert decode_changes(general) == changes


def mutated(changes: tuple[Change, ...], index: int, change: Change) -> tuple[Change, ...]:
    return (*changes[:index], change, *changes[index + 1 :])


def other_shapes() -> list[tuple[Change, ...]]:
    changes = loaded_person()
    person_change = changes[5]
    assert isinstance(person_change, PersonChanged)
    link = changes[6]
    assert isinstance(link, LinkChanged)
    identifier = changes[3]
    assert isinstance(identifier, IdentifierChanged)
    other_zone = AT.astimezone(timezone(timedelta(hours=1)))
    return [
        # a person that existed before
        mutated(changes, 5, replace(person_change, before=person_change.after)),
        # a link to another person, or another actor, or at another instant
        mutated(changes, 6, replace(link, after=replace(link.after, mpi_id="OTHER"))),
        mutated(changes, 6, replace(link, after=replace(link.after, actor="someone"))),
        mutated(changes, 6, replace(link, after=replace(link.after, linked_at=AT + timedelta(seconds=1)))),
        # the same instant written in another zone would come back in UTC
        mutated(changes, 6, replace(link, after=replace(link.after, linked_at=other_zone))),
        # identifiers out of record order, or two for one record
        (*changes[:3], changes[4], changes[3], *changes[5:]),
        (*changes[:4], identifier, *changes[4:]),
        # links out of record order, or a missing link
        (*changes[:6], changes[7], changes[6], changes[8]),
        changes[:-1],
        # no records, or no person
        changes[3:],
        changes[:5],
    ]


@pytest.mark.parametrize("changes", other_shapes())
def test_any_other_changes_keep_the_general_form(changes: tuple[Change, ...]) -> None:
    text = encode_changes(changes, compact=True)
    assert text.startswith("[")
    assert decode_changes(text) == changes


def test_an_unknown_compact_form_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown compact event form"):
        decode_changes('{"loaded": 99}')
