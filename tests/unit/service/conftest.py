"""The service wired to the in-memory store and the deterministic fake matcher."""

from __future__ import annotations

import pytest

from mpi.service.bootstrap import Services, wire
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.fakes import InMemoryStore, TickingClock
from mpi.service.settings import Settings


@pytest.fixture
def services() -> Services:
    settings = Settings(database_url="sqlite:///unused.db", _env_file=None)  # type: ignore[call-arg]
    return wire(settings, InMemoryStore(), FakeMatcher(), TickingClock())
