"""Shared fixtures. Database fixtures first: SQLite files and a throw-away PostgreSQL schema.

PostgreSQL tests use the server at 127.0.0.1:5432, database ``test`` (override
with ``MPI_TEST_POSTGRES_URL``). Each test run gets a schema of its own,
dropped at the end; tables are emptied between tests. When the server cannot
be reached the tests are skipped, unless ``MPI_REQUIRE_POSTGRES=1`` (CI), which
turns that into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

POSTGRES_URL = os.environ.get("MPI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

DatabaseFactory = Callable[[], str]


def _postgres_engine(url: str) -> Engine:
    return create_engine(url, connect_args={"connect_timeout": 3}, pool_pre_ping=True)


@pytest.fixture(scope="session")
def postgres_schema_url() -> Iterator[str]:
    """A URL whose connections work in a fresh schema of their own, for the whole test run."""
    try:
        admin = _postgres_engine(POSTGRES_URL)
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver or network error means "unreachable"
        message = f"PostgreSQL unreachable at {POSTGRES_URL}: {exc}"
        if os.environ.get("MPI_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    schema = f"mpi_test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def empty_postgres_tables(url: str) -> None:
    """Empty every table of the schema except Alembic's version stamp, resetting ids."""
    engine = _postgres_engine(url)
    try:
        names = [n for n in inspect(engine).get_table_names() if n != "alembic_version"]
        if names:
            with engine.begin() as connection:
                quoted = ", ".join(f'"{n}"' for n in names)
                connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mpi.db'}"


@pytest.fixture
def postgres_url(postgres_schema_url: str) -> str:
    empty_postgres_tables(postgres_schema_url)
    return postgres_schema_url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty database on each backend in turn."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture(params=BACKENDS)
def database_factory(request: pytest.FixtureRequest, tmp_path: Path) -> DatabaseFactory:
    """A maker of empty databases, for tests (like stateful ones) that need many in one test."""
    if request.param == "sqlite":
        counter = iter(range(1_000_000))
        return lambda: f"sqlite:///{tmp_path / f'mpi-{next(counter)}.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")

    def fresh() -> str:
        empty_postgres_tables(url)
        return url

    return fresh
