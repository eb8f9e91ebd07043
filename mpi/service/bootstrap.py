"""The one composition root: settings in, wired services out.

Only this module imports :mod:`mpi.storage`; everything else in the service
reaches the database through the Protocols of :mod:`mpi.service.ports`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, cast, runtime_checkable

from mpi.domain.records import Demographics
from mpi.domain.scores import PairScore
from mpi.errors import MPIError
from mpi.service.bulk import BulkLoader
from mpi.service.lifecycle import Lifecycle
from mpi.service.ports import Matcher, Store
from mpi.service.registry import Clock, Registry, utc_now
from mpi.service.review import Reviews
from mpi.service.settings import Settings
from mpi.service.views import AccessTrail, Persons
from mpi.storage import migrations
from mpi.storage.engine import create_sql_engine
from mpi.storage.store import SqlStore

ENGINE_MATCHER_MODULE = "mpi.service.engine_matcher"


class SchemaOutdated(MPIError):
    """The database schema is older than this version of mpi and may not be migrated automatically."""


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store
    registry: Registry
    lifecycle: Lifecycle
    reviews: Reviews
    persons: Persons
    access_trail: AccessTrail
    loader: BulkLoader

    def close(self) -> None:
        self.store.close()


@runtime_checkable
class _MatcherShape(Protocol):
    model_version: str

    def score(self, probe: Demographics, candidates: Sequence[Demographics]) -> list[PairScore]: ...


def _engine_matcher(settings: Settings) -> Matcher:
    """The production matcher, built from the rules file of the settings (imported only when needed)."""
    module = importlib.import_module(ENGINE_MATCHER_MODULE)
    return cast(Matcher, module.load_matcher(settings))


def _cached(factory: Callable[[], Matcher]) -> Callable[[], Matcher]:
    built: list[Matcher] = []

    def get() -> Matcher:
        if not built:
            built.append(factory())
        return built[0]

    return get


def open_store(settings: Settings) -> SqlStore:
    engine = create_sql_engine(
        settings.database_url,
        pool_size=settings.pool_size,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        sqlite_cache_mb=settings.sqlite_cache_mb,
        sqlite_synchronous=settings.sqlite_synchronous,
        echo=settings.echo_sql,
        synchronous_commit=settings.postgres_synchronous_commit,
    )
    return SqlStore(engine, max_attempts=settings.max_attempts)


def upgrade_database(settings: Settings) -> tuple[str | None, str | None]:
    """Migrate the database of ``settings`` to the newest schema; returns (before, after) revisions."""
    store = open_store(settings)
    try:
        before = migrations.current_revision(store.engine)
        migrations.upgrade(store.engine)
        return before, migrations.current_revision(store.engine)
    finally:
        store.close()


def bootstrap(
    settings: Settings,
    matcher: Matcher | Callable[[], Matcher] | None = None,
    clock: Clock = utc_now,
) -> Services:
    """Wire the services for ``settings``. The matcher is built on first use, so commands
    that never match (merge, review, export) never load a model."""
    store = open_store(settings)
    try:
        if settings.auto_migrate:
            migrations.upgrade(store.engine)
        elif (current := migrations.current_revision(store.engine)) != migrations.head_revision():
            raise SchemaOutdated(
                f"the database schema is at revision {current}, this mpi needs "
                f"{migrations.head_revision()}: run `mpi db upgrade`"
            )
    except BaseException:
        store.close()
        raise
    return wire(settings, store, matcher, clock)


def wire(
    settings: Settings,
    store: Store,
    matcher: Matcher | Callable[[], Matcher] | None = None,
    clock: Clock = utc_now,
) -> Services:
    """Services over a given store (the SQL one from :func:`bootstrap`, or an in-memory fake)."""
    if matcher is None:
        get_matcher = _cached(lambda: _engine_matcher(settings))
    elif isinstance(matcher, _MatcherShape):
        fixed: Matcher = matcher
        get_matcher = lambda: fixed  # noqa: E731
    else:
        get_matcher = _cached(matcher)
    rules = settings.survivorship
    return Services(
        settings=settings,
        store=store,
        registry=Registry(store, get_matcher, rules, clock),
        lifecycle=Lifecycle(store, rules, clock),
        reviews=Reviews(store, rules, clock),
        persons=Persons(store, clock),
        access_trail=AccessTrail(store),
        loader=BulkLoader(store, get_matcher, rules, clock),
    )
