"""The store's bulk path: indexes and references put back as migrated, broken references refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from mpi.domain.persons import Link, LinkProvenance
from mpi.domain.records import Demographics, MatriculeFlag, RecordKey
from mpi.service.bootstrap import Services, bootstrap
from mpi.service.bulk import BulkRecord
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.fakes import TickingClock
from mpi.service.ports import UnitOfWork
from mpi.service.settings import Settings
from mpi.storage.bulk_indexes import LOADED_TABLES
from mpi.storage.store import SqlStore

ANNE = Demographics(family_name="Schmit", given_names="Anne", birth_date="1990-05-06", postcode="1234")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_services(request: pytest.FixtureRequest) -> Iterator[Services]:
    url: str = request.getfixturevalue(f"{request.param}_url")
    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    services = bootstrap(settings, FakeMatcher(), TickingClock())
    try:
        yield services
    finally:
        services.close()


def schema(services: Services) -> dict[str, Any]:
    store = services.store
    assert isinstance(store, SqlStore)
    inspector = inspect(store.engine)
    return {
        table: (
            sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table)
            ),
            sorted(
                (
                    f["name"],
                    tuple(f["constrained_columns"]),
                    f["referred_table"],
                    tuple(f["referred_columns"]),
                )
                for f in inspector.get_foreign_keys(table)
            ),
            inspector.get_pk_constraint(table)["constrained_columns"],
            sorted(str(u["column_names"]) for u in inspector.get_unique_constraints(table)),
        )
        for table in LOADED_TABLES
    }


def rows(n: int) -> list[BulkRecord]:
    return [BulkRecord(RecordKey("HOSP", str(i)), ANNE, cluster=i // 3) for i in range(n)]


def test_a_load_leaves_indexes_and_references_as_migrated(sql_services: Services) -> None:
    migrated = schema(sql_services)
    summary = sql_services.loader.load(rows(30), batch_size=7)
    assert (summary.records, summary.persons) == (30, 10)
    assert schema(sql_services) == migrated
    # The keys are indexed: an online registration finds the loaded person.
    hits = sql_services.registry.search(ANNE)
    assert len(hits) == 10


def test_a_load_that_breaks_a_reference_writes_nothing(sql_services: Services) -> None:
    migrated = schema(sql_services)
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def broken_load(uow: UnitOfWork) -> None:
        uow.begin_bulk_load()
        [record] = uow.add_records([(RecordKey("HOSP", "1"), ANNE, MatriculeFlag.MISSING)], at, "loader")
        uow.add_links([Link(record.record_id, "NOBODY0000000", LinkProvenance.AUTO, at, "loader")])
        uow.finish_bulk_load()

    # SQLite: the check after the load; PostgreSQL: the foreign key put back.
    with pytest.raises(IntegrityError, match=r"names no row of person|violates foreign key constraint"):
        sql_services.store.run(broken_load)
    assert sql_services.registry.count_records() == 0
    assert schema(sql_services) == migrated


def test_references_are_checked_again_after_a_load(sql_services: Services) -> None:
    sql_services.loader.load(rows(3))
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def unchecked_link(uow: UnitOfWork) -> None:
        [record] = uow.add_records([(RecordKey("LAB", "1"), ANNE, MatriculeFlag.MISSING)], at, "x")
        uow.add_links([Link(record.record_id, "NOBODY0000000", LinkProvenance.AUTO, at, "x")])

    with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
        sql_services.store.run(unchecked_link)
    assert sql_services.registry.count_records() == 3


@pytest.mark.postgres
def test_a_postgres_load_leaves_planner_statistics_for_the_candidate_query(postgres_url: str) -> None:
    settings = Settings(database_url=postgres_url, _env_file=None)  # type: ignore[call-arg]
    services = bootstrap(settings, FakeMatcher(), TickingClock())
    try:
        services.loader.load(rows(30), batch_size=7)
        store = services.store
        assert isinstance(store, SqlStore)
        with store.engine.connect() as connection:
            analysed = set(
                connection.scalars(
                    text("SELECT DISTINCT tablename FROM pg_stats WHERE schemaname = current_schema()")
                )
            )
        assert {"source_record", "blocking_key", "link", "person"} <= analysed
    finally:
        services.close()
