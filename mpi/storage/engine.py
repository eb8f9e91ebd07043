"""Database engines: SQLite (a file in WAL mode, no server) or PostgreSQL (psycopg 3), by URL.

How connections are set up, and what keeps them cheap per transaction: SQLite's
pragmas and a background WAL checkpointer, PostgreSQL's pings of idle pooled
connections only.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError

WRITE_OPTION = "mpi_write"  # execution option: this transaction writes (SQLite: BEGIN IMMEDIATE)
_SYNCHRONOUS_COMMIT = {"on", "off", "local", "remote_write", "remote_apply"}
_SQLITE_SYNCHRONOUS = {"full", "normal"}


def create_sql_engine(
    url: str,
    *,
    pool_size: int = 5,
    busy_timeout_ms: int = 30_000,
    sqlite_cache_mb: int = 128,
    sqlite_synchronous: str = "full",
    echo: bool = False,
    synchronous_commit: str = "on",
) -> Engine:
    """An engine for ``url``; SQLite files get WAL mode, foreign keys and ``BEGIN IMMEDIATE`` writes."""
    if url.startswith("sqlite"):
        if sqlite_synchronous not in _SQLITE_SYNCHRONOUS:
            raise ValueError(f"sqlite_synchronous must be one of {sorted(_SQLITE_SYNCHRONOUS)}")
        engine = create_engine(url, echo=echo, connect_args={"timeout": busy_timeout_ms / 1000})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's begin event below issue BEGIN, instead of pysqlite guessing.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit (and so an HL7 acknowledgement) waits for the log to reach the disk.
            cursor.execute(f"PRAGMA synchronous={sqlite_synchronous.upper()}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute(f"PRAGMA cache_size=-{int(sqlite_cache_mb) * 1024}")  # negative: KiB
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            # A writer takes the write lock up front: two deferred transactions that both
            # read and then write would otherwise deadlock, and one would fail at commit.
            immediate = connection.get_execution_options().get(WRITE_OPTION, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if synchronous_commit not in _SYNCHRONOUS_COMMIT:
        raise ValueError(f"synchronous_commit must be one of {sorted(_SYNCHRONOUS_COMMIT)}")
    engine = create_engine(url, echo=echo, pool_size=pool_size)
    _ping_after_idle(engine)

    @event.listens_for(engine, "connect")
    def _on_pg_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            # psycopg prepares a statement on the server once it has run a few times; a prepared
            # statement then keeps one generic plan instead of planning again at each call. The
            # candidate query took longer to plan (1.4 ms) than to run (0.3 ms) at 1M records.
            cursor.execute("SET plan_cache_mode TO force_generic_plan")
            # A generic plan estimates a range over a bound parameter at a fixed share of the
            # table: over a few million events the look-back at the log's holes passed the JIT's
            # cost threshold and compiled for 100 ms at each run, to read a handful of rows.
            cursor.execute("SET jit TO off")
            if synchronous_commit != "on":
                # Trades the last few hundred milliseconds of commits on a server crash (never
                # consistency) for not waiting on a disk flush at every registration.
                cursor.execute(f"SET synchronous_commit TO {synchronous_commit}")
        dbapi_connection.commit()

    return engine


# A pooled connection idle for longer than this is pinged before use (one round trip).
IDLE_PING_SECONDS = 5.0


def _ping_after_idle(engine: Engine) -> None:
    """Check a pooled PostgreSQL connection before use only when it has been idle for a while.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: a round trip per
    transaction, a tenth of a millisecond on every registration. A connection in
    steady use has just proved itself; one that sat idle may have been dropped by a
    server restart or a firewall, and is replaced when its ping fails.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_connection.rollback()
        except Exception as exc:
            raise DisconnectionError("a pooled connection failed its ping; reconnecting") from exc


log = logging.getLogger("mpi.storage")


class WalCheckpointer:
    """Copies a SQLite write-ahead log into the database file from a background thread.

    SQLite's automatic checkpoint runs inside whichever commit crosses 1,000 WAL
    pages: with ~20 pages a registration, one registration in fifty paid for
    copying them and syncing the file (the p99 of online registration). Here the
    store's connections turn it off and this thread runs a PASSIVE checkpoint,
    which never waits for readers or writers, twice a second.
    """

    def __init__(self, engine: Engine, interval_seconds: float = 0.5) -> None:
        self._engine = engine
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-wal-checkpoint", daemon=True)
        self._thread.start()

    def checkpoint(self) -> None:
        connection = self._engine.raw_connection()
        try:
            connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # type: ignore[union-attr]
        finally:
            connection.close()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.checkpoint()
            except Exception as exc:  # the next round retries; a commit never depends on it
                log.warning("WAL checkpoint failed: %s", type(exc).__name__)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self.checkpoint()
        except Exception as exc:  # a store that never opened (no such folder) has nothing to copy
            log.info(
                "final WAL checkpoint failed (the log stays for the next opening): %s", type(exc).__name__
            )


def is_sqlite_file(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")
