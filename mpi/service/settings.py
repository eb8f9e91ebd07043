"""Settings of the MPI service, from flags, ``MPI_*`` environment variables and ``.env``.

Nothing here runs at import: :func:`load_settings` builds and validates the
settings when a command or server starts, and refuses values that would
silently do the wrong thing (an unknown database driver, an in-memory SQLite
database that every connection would see empty).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mpi.errors import InputError
from mpi.service.golden import SurvivorshipRules

DEFAULT_DATABASE_URL = "sqlite:///mpi.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MPI_",
        env_file=".env",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
    )

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="sqlite:///PATH (WAL mode) or postgresql+psycopg://USER@HOST:PORT/DB",
    )
    rules: Path | None = Field(None, description="Matching rules file; the packaged default when unset.")
    default_domain: str = Field(
        "default", min_length=1, description="Assigning authority of batch rows that carry no source column."
    )
    auto_migrate: bool = Field(True, description="Bring the schema up to date when the service starts.")
    sqlite_busy_timeout_ms: int = Field(30_000, ge=0)
    sqlite_cache_mb: int = Field(
        128,
        ge=2,
        description="SQLite page cache per connection. A registration reads a few dozen candidate rows "
        "scattered over the file; with the 2 MB default most of them are read again at every call.",
    )
    sqlite_synchronous: Literal["full", "normal"] = Field(
        "full",
        description="SQLite synchronous pragma. 'full' flushes the write-ahead log to disk at every commit, "
        "so what was acknowledged survives a power loss; 'normal' flushes only at checkpoints: a power "
        "loss or OS crash may then undo the last commits (never consistency).",
    )
    pool_size: int = Field(5, ge=1)
    max_attempts: int = Field(20, ge=1, description="Tries of a transaction lost to a concurrent one.")
    postgres_synchronous_commit: Literal["on", "off", "local", "remote_write", "remote_apply"] = Field(
        "on",
        description="PostgreSQL synchronous_commit for mpi's sessions. 'off' stops waiting for a disk flush "
        "at each commit: a server crash may lose the last moments of commits, never consistency.",
    )
    echo_sql: bool = False
    survivorship: SurvivorshipRules = Field(default_factory=SurvivorshipRules)

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, url: str) -> str:
        url = url.strip()
        if url.startswith(("postgresql://", "postgres://")):
            # psycopg 3 is the one PostgreSQL driver mpi ships with.
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        if url.startswith("postgresql+psycopg://"):
            return url
        if url.startswith("sqlite:///"):
            path = _sqlite_path(url)
            if not path or path == ":memory:":
                raise ValueError("an in-memory SQLite database is lost between connections; name a file")
            return url
        raise ValueError("use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DATABASE")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database file (``None`` for PostgreSQL)."""
        if not self.is_sqlite:
            return None
        return Path(_sqlite_path(self.database_url))


def _sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///PATH[?options]`` URL, as written."""
    return url.removeprefix("sqlite:///").split("?", 1)[0]


def load_settings(**overrides: Any) -> Settings:
    """Settings from ``overrides`` (command-line flags), the environment and ``.env``, validated.

    Overrides whose value is ``None`` are left out, so unset flags fall back to
    the environment.
    """
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
        raise InputError("settings (flags, MPI_* environment, .env)", problems) from exc
