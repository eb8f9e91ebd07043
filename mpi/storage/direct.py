"""The online hot path's statements, run on the driver's cursor rather than through SQLAlchemy's.

SQLAlchemy's ``Connection.execute`` costs more than the driver call it makes:
measured on a primary-key lookup, 135 µs against 65 µs for psycopg on
PostgreSQL and 25 against 7 µs for sqlite3, and a registration runs seven to
nine statements. Here each statement is compiled once per dialect by SQLAlchemy
itself (the same SQL text, bind parameters and type processing: UTC datetimes,
SQLite's booleans and dates), and each call only binds, executes and converts
the rows. What SQLAlchemy must render per call (an expanding ``IN`` list) goes
through ``Connection.execute`` as before, as do the statements off the hot path.

A driver error is raised as SQLAlchemy's ``DBAPIError`` (the store's retry on a
deadlock or a locked SQLite database depends on it), and a lost connection is
invalidated so that the pool replaces it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, cast

from sqlalchemy import Connection
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement, TextClause
from sqlalchemy.types import ARRAY, Boolean, Integer, String, TypeEngine

Processor = Callable[[Any], Any]
T = TypeVar("T")
_MAX_COMPILED = 1000  # statements kept compiled; far more than the hot path has
_CURSOR = "mpi_direct_cursor"  # key of the kept cursor in the pooled connection's info


@dataclass
class _Compiled:
    sql: str
    construct: Callable[[Mapping[str, Any]], dict[str, Any]]
    positions: tuple[str, ...] | None  # the parameters' order, for a positional paramstyle
    binds: tuple[tuple[str, Processor], ...]
    columns: tuple[str, ...] | None  # None: taken from the cursor at the first run (a text statement)
    types: tuple[TypeEngine[Any], ...]
    # Set at the first run: a result processor may depend on the driver's column type.
    results: tuple[Processor | None, ...] | None = None


def _compile(statement: Executable, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled | None:
    """``statement`` compiled for ``dialect`` and parameters named ``keys`` (an ``INSERT`` or
    ``UPDATE`` without explicit values sets those columns); ``None`` if SQLAlchemy must do work
    at each execution (render an expanding ``IN`` list, compute a column default)."""
    element = cast(ClauseElement, statement)
    compiled = cast(SQLCompiler, element.compile(dialect=dialect, column_keys=list(keys)))
    if any(bind.expanding for bind in compiled.binds.values()):
        return None
    if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
        return None  # a column default computed in Python at each execution: SQLAlchemy's job
    binds = tuple(
        (name, processor)
        for name, bind in compiled.binds.items()
        if (processor := _bind_processor(bind.type, dialect)) is not None
    )
    columns: tuple[str, ...] | None = None
    types: tuple[TypeEngine[Any], ...] = ()
    if not isinstance(statement, TextClause):
        exported = list(statement.exported_columns)  # type: ignore[attr-defined]
        columns = tuple(str(column.key) for column in exported)
        types = tuple(column.type.dialect_impl(dialect) for column in exported)
    positions = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
    construct = cast(Callable[[Mapping[str, Any]], dict[str, Any]], compiled.construct_params)
    return _Compiled(compiled.string, construct, positions, binds, columns, types)


def _bind_processor(kind: TypeEngine[Any], dialect: Dialect) -> Processor | None:
    """SQLAlchemy's conversion of a bound value, and on PostgreSQL a list for an array of
    numbers, booleans or text written as the array's text form: the server parses it (the
    statement casts the parameter to its array type) at a fraction of the cost of the driver's
    array adapter, which is Python code looking up each element's adapter (20-30 µs an array,
    and a registration binds about ten)."""
    own = kind.dialect_impl(dialect).bind_processor(dialect)
    if dialect.name != "postgresql" or not isinstance(kind, ARRAY) or (kind.dimensions or 1) != 1:
        return own
    element = _element_text(kind.item_type)
    if element is None:
        return own

    def array_text(values: Any) -> Any:
        if own is not None:
            values = own(values)
        if values is None:
            return None
        return "{" + ",".join("NULL" if v is None else element(v) for v in values) + "}"

    return array_text


def _element_text(item_type: TypeEngine[Any]) -> Callable[[Any], str] | None:
    """How one element is written in an array's text form (``None``: a type left to the driver)."""
    if isinstance(item_type, Boolean):
        return lambda value: "t" if _of_type(value, bool) else "f"
    if isinstance(item_type, Integer):
        return lambda value: int.__repr__(_of_type(value, int))
    if isinstance(item_type, String):
        # Quoted, so that commas, braces, blanks and the word NULL stay text; a str subclass (an
        # enumeration's member) as the text it holds, as the driver would send it.
        return lambda value: (
            '"' + str.__str__(_of_type(value, str)).replace("\\", "\\\\").replace('"', '\\"') + '"'
        )
    return None


def _of_type(value: Any, kind: type[T]) -> T:
    """``value``, refused unless of ``kind``: a value of another type would be written wrong."""
    if not isinstance(value, kind):
        raise TypeError(f"an array of {kind.__name__} holds {type(value).__name__} {value!r}")
    return value


class DirectResult:
    """The rows of one statement, with the part of SQLAlchemy's ``Result`` the store uses."""

    def __init__(self, columns: tuple[str, ...], rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._columns = columns
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._rows)

    def all(self) -> list[tuple[Any, ...]]:
        return self._rows

    def one(self) -> tuple[Any, ...]:
        if not self._rows:
            raise NoResultFound("no row was found when one was required")
        if len(self._rows) > 1:
            raise MultipleResultsFound("multiple rows were found when exactly one was required")
        return self._rows[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def mappings(self) -> DirectMappings:
        return DirectMappings([dict(zip(self._columns, row, strict=True)) for row in self._rows])


class DirectMappings:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self._rows = rows

    def all(self) -> list[dict[str, Any]]:
        return self._rows

    def first(self) -> dict[str, Any] | None:
        return self._rows[0] if self._rows else None


class DirectStatements:
    """Runs statements on ``connection``'s driver connection, inside its current transaction."""

    # Per dialect class, statement and parameter names: statements are module constants.
    _cache: ClassVar[dict[tuple[type, int, tuple[str, ...]], tuple[Executable, _Compiled | None]]] = {}

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._dialect = connection.dialect

    def execute(self, statement: Executable, params: Mapping[str, Any]) -> DirectResult:
        names = tuple(params)
        key = (type(self._dialect), id(statement), names)
        cached = self._cache.get(key)
        if cached is None or cached[0] is not statement:
            if len(self._cache) >= _MAX_COMPILED:  # only module-level statements come here
                self._cache.clear()
            cached = self._cache[key] = (statement, _compile(statement, self._dialect, names))
        compiled = cached[1]
        if compiled is None:
            result = self._connection.execute(statement, dict(params))
            columns = tuple(result.keys()) if result.returns_rows else ()
            rows = [tuple(row) for row in result.all()] if result.returns_rows else []
            return DirectResult(columns, rows, result.rowcount)
        values = compiled.construct(params)
        for name, processor in compiled.binds:
            values[name] = processor(values[name])
        bound: Sequence[Any] | dict[str, Any] = (
            values if compiled.positions is None else [values[name] for name in compiled.positions]
        )
        return self._run(compiled, bound)

    def _run(self, compiled: _Compiled, bound: Sequence[Any] | dict[str, Any]) -> DirectResult:
        # The connection's own transaction is begun (SQLite: BEGIN IMMEDIATE) before a
        # statement runs; the driver connection then runs inside it.
        self._connection.get_transaction() or self._connection.begin()
        pooled = self._connection.connection
        driver = pooled.dbapi_connection
        assert driver is not None
        # One cursor per driver connection, kept with the pooled connection: a driver caches its
        # parameter adapters per cursor (psycopg: 7-22 µs a statement saved by keeping them).
        kept = pooled.info.get(_CURSOR)
        if kept is None or kept[0] is not driver:
            kept = pooled.info[_CURSOR] = (driver, driver.cursor())
        cursor = kept[1]
        try:
            cursor.execute(compiled.sql, bound)
            columns, processors = compiled.columns, compiled.results
            if columns is not None and processors is not None:
                # Known since its first run: a statement with columns returns rows. Reading the
                # cursor's description again would build its column objects at every call.
                rows = cursor.fetchall() if columns else []
            else:
                description = cursor.description
                rows = cursor.fetchall() if description is not None else []
                if columns is None:  # a text statement: its columns are known from now on
                    columns = compiled.columns = tuple(str(column[0]) for column in description or ())
                if processors is None:
                    processors = compiled.results = self._result_processors(compiled, description)
            rowcount = cursor.rowcount
        except self._dialect.loaded_dbapi.Error as error:
            lost = self._dialect.is_disconnect(error, driver, cursor)
            if lost:
                self._connection.invalidate(error)
            raise DBAPIError.instance(
                compiled.sql,
                None,
                error,
                self._dialect.loaded_dbapi.Error,
                hide_parameters=True,
                dialect=self._dialect,
                connection_invalidated=lost,
            ) from error
        if rows and processors:
            rows = [
                tuple(value if p is None else p(value) for p, value in zip(processors, row, strict=True))
                for row in rows
            ]
        return DirectResult(columns, cast(list[tuple[Any, ...]], rows), rowcount)

    def _result_processors(self, compiled: _Compiled, description: Any) -> tuple[Processor | None, ...]:
        """Per column, SQLAlchemy's conversion of the driver's value; empty when none converts."""
        described = list(description or ())
        processors = tuple(
            kind.result_processor(self._dialect, column[1])
            for kind, column in zip(compiled.types, described, strict=False)
        )
        if not any(p is not None for p in processors):
            return ()
        # A column the statement does not type (none today) is passed through as the driver gives it.
        return processors + (None,) * (len(described) - len(processors))
