"""Cross-references: every identifier under which the MPI knows a person.

A person is known by its MPI id, by the local id of each of its source records
(a record key: an assigning authority and a local id) and by the valid
matricules those records carry. A record may also carry the patient account
number its source gave it (HL7 PID-18), a search key only: it is no
cross-reference, and PIX never returns it. Local ids a source retired by merging them into
another (ADT^A40) are left out: the source no longer uses them.

PIX queries (ITI-9), PIX update notifications (ITI-10) and PDQ answers read
cross-references through this module only, so all three say the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mpi.domain.mpi_id import is_valid_mpi_id, normalise_mpi_id
from mpi.domain.records import Demographics, MatriculeFlag, RecordKey, SourceRecord
from mpi.service.operations import MATRICULE_SYSTEM, judge_matricule
from mpi.service.ports import Store, UnitOfWork

_VALID_MATRICULES = (MatriculeFlag.VALID, MatriculeFlag.UPGRADED)
_ACCOUNT_SYSTEM = "account:"


def account_system(authority: str) -> str:
    """The identifier system of the account numbers a source assigns (one per assigning authority)."""
    return _ACCOUNT_SYSTEM + authority


@dataclass(frozen=True)
class PersonIdentifiers:
    mpi_id: str
    records: tuple[RecordKey, ...]  # current local ids, by authority then local id
    matricules: tuple[str, ...]  # valid 13-digit matricules of its records, sorted

    def canonical(self) -> str:
        """One line of text that is equal for two equal sets of identifiers."""
        parts = [f"mpi={self.mpi_id}"]
        parts += [f"rec={key.authority}|{key.local_id}" for key in self.records]
        parts += [f"nid={value}" for value in self.matricules]
        return "\n".join(parts)


@dataclass(frozen=True)
class PersonProfile:
    identifiers: PersonIdentifiers
    golden: Demographics


def identifiers_of(uow: UnitOfWork, mpi_ids: Sequence[str]) -> dict[str, PersonIdentifiers]:
    """The identifiers of each existing, active person of ``mpi_ids`` (in two reads, however many)."""
    return {mpi_id: profile.identifiers for mpi_id, profile in _profiles(uow, mpi_ids).items()}


def _profiles(uow: UnitOfWork, mpi_ids: Sequence[str]) -> dict[str, PersonProfile]:
    wanted = list(dict.fromkeys(mpi_ids))
    persons = uow.get_persons(wanted)
    active = [mpi_id for mpi_id in wanted if (p := persons.get(mpi_id)) and p.is_active]
    current = uow.current_records_by_person(active) if active else {}
    return {
        mpi_id: PersonProfile(_identifiers(mpi_id, current[mpi_id]), persons[mpi_id].golden)
        for mpi_id in active
    }


def _identifiers(mpi_id: str, current: Sequence[SourceRecord]) -> PersonIdentifiers:
    return PersonIdentifiers(
        mpi_id=mpi_id,
        records=tuple(sorted((r.key for r in current), key=lambda k: (k.authority, k.local_id))),
        matricules=tuple(sorted({m for m in map(_valid_matricule, current) if m is not None})),
    )


def _valid_matricule(record: SourceRecord) -> str | None:
    if record.matricule not in _VALID_MATRICULES:
        return None
    return judge_matricule(record.demographics.national_id)[0]


def current_person(uow: UnitOfWork, mpi_id: str) -> str | None:
    """The active person an MPI id leads to (following merges), or ``None``."""
    wanted = normalise_mpi_id(mpi_id)
    if not is_valid_mpi_id(wanted):
        return None
    seen: set[str] = set()
    person = uow.get_person(wanted)
    while person is not None and not person.is_active and person.replaced_by not in seen:
        seen.add(person.mpi_id)
        person = uow.get_person(person.replaced_by) if person.replaced_by else None
    return person.mpi_id if person is not None and person.is_active else None


class CrossReferences:
    """Read-only look-ups of persons by any of their identifiers."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def by_record(self, key: RecordKey) -> PersonIdentifiers | None:
        """The person a current local id belongs to; ``None`` if unknown or retired by its source."""

        def work(uow: UnitOfWork) -> PersonIdentifiers | None:
            found = uow.person_by_record(key)
            if found is None or not found[0].is_active:
                return None
            person, current = found
            return _identifiers(person.mpi_id, current)

        return self._store.run(work, write=False)

    def by_matricule(self, raw: str) -> list[PersonIdentifiers]:
        """Every person whose records carry this valid matricule (more than one is a collision)."""
        value, _ = judge_matricule(raw)
        if value is None:
            return []

        def work(uow: UnitOfWork) -> list[PersonIdentifiers]:
            persons = _persons_of_records(uow, uow.records_with_identifier(MATRICULE_SYSTEM, value))
            return list(identifiers_of(uow, persons).values())

        return self._store.run(work, write=False)

    def by_account(self, authorities: Sequence[str], value: str) -> list[str]:
        """The active persons whose records carry account number ``value`` of one of ``authorities``."""

        def work(uow: UnitOfWork) -> list[str]:
            record_ids = sorted(
                {r for a in authorities for r in uow.records_with_identifier(account_system(a), value)}
            )
            return _persons_of_records(uow, record_ids)

        return self._store.run(work, write=False)

    def by_person(self, mpi_id: str) -> PersonIdentifiers | None:
        """A person by MPI id; a merged person's id leads to the person it was merged into."""

        def work(uow: UnitOfWork) -> PersonIdentifiers | None:
            current = current_person(uow, mpi_id)
            return None if current is None else identifiers_of(uow, [current]).get(current)

        return self._store.run(work, write=False)

    def of_persons(self, mpi_ids: Sequence[str]) -> dict[str, PersonIdentifiers]:
        return self._store.run(lambda uow: identifiers_of(uow, mpi_ids), write=False)

    def profiles(self, mpi_ids: Sequence[str]) -> dict[str, PersonProfile]:
        """Identifiers and golden record of each active person of ``mpi_ids``, in one read."""

        return self._store.run(lambda uow: _profiles(uow, mpi_ids), write=False)


def _persons_of_records(uow: UnitOfWork, record_ids: Sequence[int]) -> list[str]:
    """The active persons of those records still in use: a local id its source merged into
    another (ADT^A40) no longer speaks for anyone."""
    retired = uow.superseded_records(record_ids)
    linked = uow.linked_records([r for r in record_ids if r not in retired])
    persons = uow.get_persons(sorted({mpi_id for _, mpi_id in linked}))
    return [mpi_id for mpi_id, person in sorted(persons.items()) if person.is_active]
