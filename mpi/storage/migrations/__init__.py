"""Alembic migrations of the mpi schema, shipped inside the package.

``script_location = mpi.storage:migrations`` finds them from an installed
package, so ``mpi db upgrade`` (or :func:`upgrade`) works without a checkout.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import DatabaseError

from mpi.errors import DatabaseUnavailable

SCRIPT_LOCATION = "mpi.storage:migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@contextmanager
def _reachable(engine: Engine) -> Iterator[None]:
    """Turn a failure to connect into one message naming the database (password masked)."""
    try:
        yield
    except DatabaseError as exc:  # unreachable (OperationalError), or no database at all
        # The first line of the driver's message says why (refused, unknown host, bad password).
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        where = engine.url.render_as_string(hide_password=True)
        raise DatabaseUnavailable(f"cannot use the database {where}: {reason}") from exc


def current_revision(engine: Engine) -> str | None:
    with _reachable(engine), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema of ``engine``'s database up to ``revision``."""
    config = alembic_config()
    with _reachable(engine), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema of ``engine``'s database back to ``revision`` (``base`` drops every table)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
