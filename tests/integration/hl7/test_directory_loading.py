"""`mpi serve` listens before its PDQ directory is loaded: feeds are answered meanwhile, a PDQ
query gets AR at once (it holds no worker a feed needs), and its answer once the directory has
loaded."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from mllp_listener import CHL_OID, CONFIG, MLLPConnection, er7

from mpi.hl7v2.config import parse_config
from mpi.hl7v2.parse import parse_message
from mpi.hl7v2.runtime import build_runtime, run
from mpi.service.bootstrap import bootstrap
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.held_store import HeldDirectoryLoads
from mpi.service.ports import SearchColumns, Store, UnitOfWork
from mpi.service.registry import utc_now
from mpi.service.settings import Settings

T = TypeVar("T")


def test_feeds_are_answered_and_pdq_refused_at_once_while_the_pdq_directory_loads(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'mpi.db'}", _env_file=None)  # type: ignore[call-arg]
    services = bootstrap(settings, FakeMatcher())
    store = HeldDirectoryLoads(services.store)
    store.hold.set()
    config = parse_config(tomllib.loads(CONFIG))
    runtime = build_runtime(config, settings, store, services.registry, FakeMatcher(), utc_now)
    bound: list[int] = []
    started = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def ready(port: int) -> None:
        bound.append(port)
        started.set()

    server = threading.Thread(target=lambda: loop.run_until_complete(run(runtime, stop, ready)))
    server.start()
    try:
        assert started.wait(30) and store.loading.wait(30)
        connection = MLLPConnection(bound[0])
        query = er7(
            "MSH|^~\\&|PORTAL|X|MPI|ESANTE|20240101||QBP^Q22^QBP_Q21|L-Q{n}|P|2.5\n"
            "QPD|IHE PDQ Query|T2|@PID.5.1.1^KREMER\nRCP|I"
        )
        # More PDQ queries than the server has workers, while the load is held back.
        asked = time.monotonic()
        for n in range(config.listener.workers + 2):
            refused = parse_message(connection.ask(query.replace(b"{n}", str(n).encode())))
            assert refused.segment("MSA").raw == f"MSA|AR|L-Q{n}"
            assert refused.segment("QAK").get(2) == "AR"
            assert "still loading" in refused.segment("ERR").raw
        feed = er7(
            "MSH|^~\\&|HIS|CHL|MPI|ESANTE|20240101||ADT^A04^ADT_A01|L-1|P|2.5\n"
            f"PID|||L-1^^^CHL&{CHL_OID}&ISO||Kremer^Luc||19700101|M\nPV1||N"
        )
        ack = parse_message(connection.ask(feed))
        assert ack.segment("MSA").get(1) == "AA" and not runtime.directory.loaded
        assert time.monotonic() - asked < 5  # nothing waited for the load

        store.release.set()
        deadline = time.monotonic() + 30
        while not runtime.directory.loaded:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        answer = parse_message(connection.ask(query.replace(b"{n}", b"OK")))
        assert answer.segment("MSA").raw == "MSA|AA|L-QOK"
        assert answer.segment("QAK").get(2) == "OK"
        assert answer.segment("PID").raw.split("|")[3].startswith("L-1^^^CHL")
        connection.close()
    finally:
        store.release.set()
        loop.call_soon_threadsafe(stop.set)
        server.join(30)
        loop.close()
        services.close()


class _FailingDirectoryLoad:
    """A store whose whole-directory read always fails, counting the attempts."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.attempts = 0

    def run(self, work: Callable[[UnitOfWork], T], *, write: bool = True) -> T:
        def failing(uow: UnitOfWork) -> T:
            def search_columns(batch_size: int) -> Iterator[SearchColumns]:
                self.attempts += 1
                raise RuntimeError("the registry cannot be read")

            uow.search_columns = search_columns  # type: ignore[method-assign]
            return work(uow)

        return self._store.run(failing, write=write)

    def close(self) -> None:
        self._store.close()


def test_a_failing_load_is_tried_again_less_and_less_often_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'mpi.db'}", _env_file=None)  # type: ignore[call-arg]
    services = bootstrap(settings, FakeMatcher())
    store = _FailingDirectoryLoad(services.store)
    config = parse_config(tomllib.loads(CONFIG))  # polls every 0.1 s
    runtime = build_runtime(config, settings, store, services.registry, FakeMatcher(), utc_now)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    server = threading.Thread(target=lambda: loop.run_until_complete(run(runtime, stop)))
    with caplog.at_level(logging.INFO, logger="mpi.hl7v2"):
        server.start()
        time.sleep(2.0)
        loop.call_soon_threadsafe(stop.set)
        server.join(30)
    loop.close()
    services.close()
    # Waits of 0.2, 0.4, 0.8 s after the failures: 4 attempts in 2 s, not 20.
    assert 2 <= store.attempts <= 5
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert len(tracebacks) == 1
    assert any(f"failed {store.attempts} times in a row" in r.getMessage() for r in caplog.records)
