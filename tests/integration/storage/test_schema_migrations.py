"""The packaged Alembic migrations build exactly the schema the code uses, on both databases."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from mpi.domain.events import Event, EventKind
from mpi.service.bootstrap import upgrade_database
from mpi.service.settings import Settings
from mpi.storage import engine as engine_module
from mpi.storage import migrations
from mpi.storage.engine import create_sql_engine
from mpi.storage.store import SqlStore
from mpi.storage.tables import metadata


def test_migrations_match_the_table_definitions(database_url: str) -> None:
    settings = Settings(database_url=database_url, _env_file=None)  # type: ignore[call-arg]
    engine = create_sql_engine(database_url)
    try:
        migrations.downgrade(engine, "base")  # the PostgreSQL schema is shared by the test run
        before, after = upgrade_database(settings)
        assert before is None and after == migrations.head_revision()

        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
        assert upgrade_database(settings) == (after, after)  # a second upgrade is a no-op

        migrations.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_sqlite_databases_use_write_ahead_logging(sqlite_url: str) -> None:
    engine = create_sql_engine(sqlite_url)
    try:
        migrations.upgrade(engine)
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
            assert connection.execute(text("PRAGMA cache_size")).scalar_one() == -128 * 1024  # KiB
            # An acknowledged commit survives a power loss: the log is flushed at each commit.
            assert connection.execute(text("PRAGMA synchronous")).scalar_one() == 2  # FULL
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_sessions_take_the_configured_synchronous_commit(postgres_url: str) -> None:
    for setting in ("off", "on"):
        engine = create_sql_engine(postgres_url, synchronous_commit=setting)
        try:
            with engine.connect() as connection:
                assert connection.execute(text("SHOW synchronous_commit")).scalar_one() == setting
        finally:
            engine.dispose()


@pytest.mark.postgres
def test_postgres_sessions_plan_once_and_never_compile_queries(postgres_url: str) -> None:
    # Generic plans spare the candidate query its planning at each registration; with them the
    # JIT would compile for 100 ms a look-back at the event log that reads a handful of rows.
    engine = create_sql_engine(postgres_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SHOW plan_cache_mode")).scalar_one() == "force_generic_plan"
            assert connection.execute(text("SHOW jit")).scalar_one() == "off"
    finally:
        engine.dispose()


def test_sqlite_commits_leave_checkpoints_to_the_store_s_background_thread(sqlite_url: str) -> None:
    store = SqlStore(create_sql_engine(sqlite_url))
    try:
        migrations.upgrade(store.engine)
        for n in range(300):  # well past the 1,000 WAL pages at which a commit would checkpoint
            store.run(lambda uow, n=n: uow.append_event(_event(n)))
        with store.engine.connect() as connection:
            assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 0
        time.sleep(1.5)  # three rounds of the checkpointer
        with store.engine.connect() as connection:
            busy, logged, copied = connection.execute(text("PRAGMA wal_checkpoint(PASSIVE)")).one()
        assert busy == 0 and logged == copied  # nothing was left for this checkpoint to copy
    finally:
        store.close()


def _event(n: int) -> Event:
    return Event(
        kind=EventKind.RECORD_REGISTERED,
        occurred_at=datetime.now(UTC),
        actor="test",
        changes=(),
        reason="x" * 20_000,  # several pages a commit
        subjects=(f"P{n}",),
    )


@pytest.mark.postgres
def test_a_postgres_connection_dropped_while_idle_in_the_pool_is_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 0.0)
    engine = create_sql_engine(postgres_url, pool_size=1)
    admin = create_sql_engine(postgres_url, pool_size=1)
    try:
        with engine.connect() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with admin.connect() as connection:  # a server restart or a firewall, as the pool sees it
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        time.sleep(0.2)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        engine.dispose()
        admin.dispose()
