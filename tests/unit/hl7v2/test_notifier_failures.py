"""The notifier and the receipt pruner when the database fails or the server stops: no log
flood, no busy loop, no new exchange after a stop, no stop waiting for a backlog."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from hl7_harness import CONFIG, make_harness, msh

from mpi.hl7v2.config import parse_config
from mpi.hl7v2.notify import Notifier
from mpi.hl7v2.runtime import receipt_pruner


class DatabaseDown:
    """An outbox whose every call fails, counted."""

    def __init__(self) -> None:
        self.calls = 0

    def _fail(self, *args: Any) -> Any:
        self.calls += 1
        raise ConnectionError("the database is unreachable")

    collect = head = due = _fail


def test_with_the_database_down_each_loop_logs_one_traceback_and_waits_longer_each_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumers = [{**CONFIG["consumer"][0], "name": name} for name in ("registry", "gp", "lab")]
    config = parse_config({**CONFIG, "consumer": consumers, "notifications": {"poll_interval_seconds": 0.05}})
    outbox = DatabaseDown()

    async def scenario() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(Notifier(config, outbox, ThreadPoolExecutor(2)).run(stop))  # type: ignore[arg-type]
        await asyncio.sleep(2.0)
        stop.set()
        await asyncio.wait_for(running, 5)

    with caplog.at_level(logging.INFO, logger="mpi.hl7v2.notify"):
        asyncio.run(scenario())
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 4  # the collector's and each consumer's first failure
    # Waits of 0.1, 0.2, 0.4, 0.8 s...: a handful of tries per loop in 2 s, not one per 0.05 s.
    assert outbox.calls <= 4 * 7


def test_a_loop_stopped_while_reading_its_next_message_starts_no_exchange() -> None:
    connections: list[int] = []

    async def consumer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.close()

    async def scenario() -> None:
        server = await asyncio.start_server(consumer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        config: dict[str, Any] = {**CONFIG, "consumer": [{**CONFIG["consumer"][0], "port": port}]}
        mpi = make_harness(config)
        mpi.outbox.collect()
        for sender, control, pid in (("HIS|CHL", "H1", "A-1^^^CHL"), ("LIS|X", "L1", "L-1^^^LABO")):
            mpi.send(f"{msh(sender, 'ADT^A04^ADT_A01', control)}\nPID|||{pid}||Weber^Jean||19820802|M")
        mpi.outbox.collect()
        reading, release = threading.Event(), threading.Event()
        head = mpi.outbox.head

        def slow_head(name: str) -> Any:
            reading.set()
            release.wait(5)
            return head(name)

        mpi.outbox.head = slow_head  # type: ignore[method-assign]
        stop = asyncio.Event()
        running = asyncio.create_task(
            Notifier(parse_config(config), mpi.outbox, ThreadPoolExecutor(2)).run(stop)
        )
        while not reading.is_set():
            await asyncio.sleep(0.01)
        stop.set()  # while the loop reads its next message
        release.set()
        await asyncio.wait_for(running, 5)
        server.close()
        assert connections == []

    asyncio.run(scenario())


def test_the_receipt_pruner_stops_between_batches() -> None:
    """A large backlog of old receipts (every database upgraded to receipt retention has one) is
    deleted a batch at a time: a stop waits for one batch, not for the backlog."""
    batches: list[int] = []
    stop = asyncio.Event()

    def forget_receipts(older_than: timedelta, batch: int) -> int:
        batches.append(batch)
        if len(batches) == 3:
            loop.call_soon_threadsafe(stop.set)
        return batch  # there is always more

    runtime = SimpleNamespace(
        feed=SimpleNamespace(forget_receipts=forget_receipts),
        config=parse_config(CONFIG),
    )
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(receipt_pruner(runtime, ThreadPoolExecutor(1), stop), 5))  # type: ignore[arg-type]
    finally:
        loop.close()
    assert 3 <= len(batches) <= 4
