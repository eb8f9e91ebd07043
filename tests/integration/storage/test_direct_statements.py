"""Statements run on the driver's cursor give what SQLAlchemy's execute gives, errors included."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.base import Executable

from mpi.domain.commands import RegisterRecord
from mpi.domain.records import Demographics, RecordKey
from mpi.service.bootstrap import bootstrap
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.fakes import TickingClock
from mpi.service.settings import Settings
from mpi.storage import statements as q
from mpi.storage.direct import DirectStatements

ANNA = Demographics(family_name="Muller", given_names="Anna", birth_date="1980-01-02", sex="F", city="Esch")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    settings = Settings(database_url=database_url, _env_file=None)  # type: ignore[call-arg]
    services = bootstrap(settings, FakeMatcher(), TickingClock())
    try:
        services.registry.register(RegisterRecord(RecordKey("CHL", "1"), ANNA, "feed"))
        services.registry.register(RegisterRecord(RecordKey("LAB", "9"), ANNA, "feed"))
        yield services.store.engine
    finally:
        services.close()


def _both(
    connection: Connection, statement: Executable, params: dict[str, Any]
) -> tuple[list[Any], list[Any]]:
    """The rows of ``statement`` through SQLAlchemy, then through the driver's cursor."""
    through_sqlalchemy = [dict(row) for row in connection.execute(statement, params).mappings().all()]
    direct = DirectStatements(connection).execute(statement, params).mappings().all()
    return through_sqlalchemy, direct


def test_rows_and_their_types_are_those_of_sqlalchemy(engine: Engine) -> None:
    with engine.connect() as connection, connection.begin():
        records, direct_records = _both(connection, q.FIND_RECORD, {"authority": "CHL", "local_id": "1"})
        assert direct_records == records and len(records) == 1
        updated_at = direct_records[0]["updated_at"]
        assert isinstance(updated_at, datetime) and updated_at.utcoffset() == UTC.utcoffset(None)

        mpi_id = (
            connection.execute(q.LINKS_BY_RECORD, {"ids": [records[0]["record_id"]]})
            .mappings()
            .one()["mpi_id"]
        )
        persons, direct_persons = _both(connection, q.PERSON, {"mpi_id": mpi_id})
        assert direct_persons == persons
        links, direct_links = _both(connection, q.LINKS_OF_PERSON, {"mpi_id": mpi_id})
        assert direct_links == links and len(links) == 2
        assert all(isinstance(link["linked_at"], datetime) for link in direct_links)


def test_a_statement_rendered_per_call_goes_through_sqlalchemy(engine: Engine) -> None:
    with engine.connect() as connection, connection.begin():
        ids = [row[0] for row in connection.exec_driver_sql("SELECT record_id FROM source_record")]
        records, direct_records = _both(connection, q.RECORDS_BY_ID, {"ids": ids})
        assert direct_records == records and len(records) == 2


def test_a_driver_error_is_raised_as_sqlalchemy_error_and_the_transaction_ends(engine: Engine) -> None:
    with engine.connect() as connection:
        with pytest.raises(IntegrityError) as raised, connection.begin():
            mpi_id = connection.exec_driver_sql("SELECT mpi_id FROM person").scalar_one()
            direct = DirectStatements(connection)
            row = direct.execute(q.PERSON, {"mpi_id": mpi_id}).mappings().first()
            assert row is not None
            direct.execute(q.INSERT_PERSON, row)  # the same id again
        assert raised.value.orig is not None  # the driver's error, for the store's retry decision
        with connection.begin():  # the connection is still usable
            assert connection.exec_driver_sql("SELECT count(*) FROM person").scalar_one() == 1


def test_a_column_default_computed_in_python_is_still_applied() -> None:
    metadata = MetaData()
    table = Table(
        "noted",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("by", String, default=lambda: "mpi"),
    )
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.connect() as connection, connection.begin():
        DirectStatements(connection).execute(insert(table), {"id": 1})
        assert connection.execute(select(table.c.by)).scalar_one() == "mpi"


@pytest.mark.postgres
def test_arrays_reach_postgresql_exactly_as_given(postgres_url: str) -> None:
    # Written in the array's text form, not adapted element by element by the driver: every
    # character that means something in that form must come through as text.
    text_values = ['a "b"', "c\\d", "NULL", "", "x,y{}", " lead ", "Müller-Ørsted", None, '\\"', "'"]
    numbers = [-(2**63), 0, 7, 2**63 - 1, None]
    flags = [True, False, None]
    statement = select(
        bindparam("texts", type_=ARRAY(String)).label("texts"),
        bindparam("numbers", type_=ARRAY(BigInteger)).label("numbers"),
        bindparam("flags", type_=ARRAY(Boolean)).label("flags"),
        bindparam("none", type_=ARRAY(String)).label("none"),
        bindparam("empty", type_=ARRAY(String)).label("empty"),
    )
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as connection, connection.begin():
            params = {"texts": text_values, "numbers": numbers, "flags": flags, "none": None, "empty": []}
            through_sqlalchemy, direct = _both(connection, statement, params)
    finally:
        engine.dispose()
    assert direct == through_sqlalchemy
    assert direct == [{"texts": text_values, "numbers": numbers, "flags": flags, "none": None, "empty": []}]


# The older (str, Enum) mixin on purpose: its str() is "_Code.QUOTED", not its value (a StrEnum's is).
class _Code(str, enum.Enum):  # noqa: UP042
    QUOTED = 'say "a"'


@pytest.mark.postgres
def test_an_array_element_is_sent_as_its_value_or_refused(postgres_url: str) -> None:
    statement = select(bindparam("values", type_=ARRAY(String)).label("values"))
    numbers = select(bindparam("values", type_=ARRAY(BigInteger)).label("values"))
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as connection, connection.begin():
            direct = DirectStatements(connection)
            # An enumeration's member is the text it holds, as the driver would send it.
            assert direct.execute(statement, {"values": [_Code.QUOTED]}).all() == [(['say "a"'],)]
            # A value that is not of the array's type would be written wrong: refused.
            with pytest.raises(TypeError, match="float"):
                direct.execute(numbers, {"values": [1.9]})
    finally:
        engine.dispose()
