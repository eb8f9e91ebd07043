"""The one-read cross-reference look-up, the same on the in-memory fake, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from mpi.domain.mpi_id import new_mpi_id
from mpi.domain.persons import Link, LinkProvenance, Person, PersonStatus, TrustStatus
from mpi.domain.records import Demographics, MatriculeFlag, RecordKey
from mpi.service.bootstrap import Services
from mpi.service.ports import UnitOfWork

AT = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
ANNA = Demographics(family_name="Muller", given_names="Anna", birth_date="1980-01-02", sex="F")


def test_a_local_id_leads_to_its_person_and_the_records_in_use(any_services: Services) -> None:
    anna, other = new_mpi_id(), new_mpi_id()

    def write(uow: UnitOfWork) -> dict[str, int]:
        ids = {}
        for mpi_id in (anna, other):
            uow.add_person(Person(mpi_id, PersonStatus.ACTIVE, TrustStatus.PROVISIONAL, ANNA, AT))
        for local_id, mpi_id in (("A", anna), ("B", anna), ("RETIRED", anna), ("C", other)):
            record = uow.add_record(RecordKey("CHL", local_id), ANNA, MatriculeFlag.MISSING, AT, "feed")
            uow.save_link(Link(record.record_id, mpi_id, LinkProvenance.AUTO, AT, "feed"))
            ids[local_id] = record.record_id
        uow.add_record(RecordKey("CHL", "UNLINKED"), ANNA, MatriculeFlag.MISSING, AT, "feed")
        uow.supersede_record(ids["RETIRED"], ids["A"], AT, "feed")  # the source merged it into A
        return ids

    ids = any_services.store.run(write)

    def read(local_id: str) -> tuple[str, list[int]] | None:
        found = any_services.store.run(
            lambda uow: uow.person_by_record(RecordKey("CHL", local_id)), write=False
        )
        return None if found is None else (found[0].mpi_id, [r.record_id for r in found[1]])

    assert read("B") == (anna, [ids["A"], ids["B"]])
    assert read("C") == (other, [ids["C"]])
    assert read("RETIRED") is None and read("UNLINKED") is None and read("NOBODY") is None
