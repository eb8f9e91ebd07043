"""Services over each store: the in-memory fake, SQLite and PostgreSQL, for the contract suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mpi.service.bootstrap import Services, bootstrap, wire
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.fakes import InMemoryStore, TickingClock
from mpi.service.settings import Settings


def settings_for(url: str) -> Settings:
    return Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_services(request: pytest.FixtureRequest) -> Iterator[Services]:
    if request.param == "memory":
        services = wire(settings_for("sqlite:///unused.db"), InMemoryStore(), FakeMatcher(), TickingClock())
    else:
        url: str = request.getfixturevalue(f"{request.param}_url")
        services = bootstrap(settings_for(url), FakeMatcher(), TickingClock())
    try:
        yield services
    finally:
        services.close()
