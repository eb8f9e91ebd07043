"""``mpi serve``: the listener, the HL7 application and the notifier, wired and run until a signal.

:func:`build_runtime` wires the pieces over the MPI services; :func:`run`
serves until its ``stop`` event is set (by SIGTERM/SIGINT in :func:`serve`),
then shuts down gracefully.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from mpi.hl7v2.application import HL7Application
from mpi.hl7v2.config import HL7Config
from mpi.hl7v2.notify import Notifier, compose_notifications
from mpi.hl7v2.pdq import PdqQuery
from mpi.hl7v2.pix import PixQuery
from mpi.hl7v2.retries import Failures, first_of
from mpi.hl7v2.server import MLLPServer, install_stop_signals
from mpi.service.access import DeferredAccessLog
from mpi.service.continuations import Continuations
from mpi.service.crossrefs import CrossReferences
from mpi.service.directory import PersonDirectory
from mpi.service.feed import Feed
from mpi.service.outbox import Backoff, Outbox
from mpi.service.ports import Matcher, Store
from mpi.service.registry import Registry
from mpi.service.settings import Settings

_RECEIPT_PRUNE_SECONDS = 3600.0
_RECEIPT_BATCH = 5000
log = logging.getLogger("mpi.hl7v2")


@dataclass(frozen=True)
class Runtime:
    config: HL7Config
    application: HL7Application
    directory: PersonDirectory
    outbox: Outbox | None  # None when no consumer is configured
    access_log: DeferredAccessLog  # PIX and PDQ queries, written in batches
    feed: Feed


def build_runtime(
    config: HL7Config,
    settings: Settings,
    store: Store,
    registry: Registry,
    matcher: Matcher,
    clock: Callable[[], datetime],
    *,
    sends_notifications: bool = True,
) -> Runtime:
    """The pieces of one server process; ``sends_notifications`` False: this process sends no PIX
    update notifications (another process of the same server does)."""
    crossrefs = CrossReferences(store)
    directory = PersonDirectory(store, matcher, loads_in_background=True)
    access_log = DeferredAccessLog(store)
    continuations = Continuations(store, timedelta(seconds=config.queries.continuation_ttl_seconds), clock)
    pdq = PdqQuery(config, crossrefs, directory, continuations, matcher, clock, audit=access_log.record)
    pix = PixQuery(config, crossrefs, clock, audit=access_log.record)
    feed = Feed(settings, store, matcher, clock, writers=config.listener.writers)
    application = HL7Application(config, feed, pix, pdq, clock)
    outbox = None
    if config.consumers and sends_notifications:
        notifications = config.notifications
        outbox = Outbox(
            store,
            compose_notifications(config, clock),
            clock=clock,
            backoff=Backoff(
                timedelta(seconds=notifications.retry_initial_seconds),
                timedelta(seconds=notifications.retry_max_seconds),
            ),
            gap_grace=timedelta(seconds=notifications.gap_grace_seconds),
        )
    return Runtime(config, application, directory, outbox, access_log, feed)


async def run(
    runtime: Runtime,
    stop: asyncio.Event,
    ready: Callable[[int], None] | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve until ``stop`` is set, then finish in-flight messages and close; on ``sock`` (a
    listening socket shared with other processes) rather than the configured address if given."""
    listener = runtime.config.listener
    executor = ThreadPoolExecutor(max_workers=listener.workers, thread_name_prefix="mpi-hl7")
    loop = asyncio.get_running_loop()
    runtime.access_log.start()
    background: list[asyncio.Task[None]] = []
    try:
        # The PDQ directory loads in the background (seconds per million records): feeds and PIX
        # are served meanwhile, a PDQ query gets AR (send it again) until it has loaded.
        background.append(asyncio.create_task(runtime_directory_refresher(runtime, executor, stop)))
        background.append(asyncio.create_task(receipt_pruner(runtime, executor, stop)))
        if runtime.outbox is not None:
            # Before the first message: a first run starts the outbox's cursor at the end of the log.
            await loop.run_in_executor(executor, runtime.outbox.collect)
        server = MLLPServer(
            listener, runtime.application.handle, runtime.application.refuse_unparsable, executor
        )
        await server.start(sock)
        if runtime.outbox is not None:
            notifier = Notifier(runtime.config, runtime.outbox, executor)
            background.append(asyncio.create_task(notifier.run(stop)))
        log.info("listening for MLLP on %s:%d", listener.host, server.port)
        if ready is not None:
            ready(server.port)
        await stop.wait()
        log.info("stopping: finishing the messages in progress")
        await server.stop()
        await asyncio.gather(*background, return_exceptions=True)
    finally:
        for task in background:  # only still running when the server failed to start
            task.cancel()
        executor.shutdown(wait=True)
        try:
            runtime.access_log.close()  # every answered query is in the trail before the process ends
        except Exception:
            log.exception("the last queries could not be written to the access audit trail")
    log.info("stopped")


async def runtime_directory_refresher(
    runtime: Runtime, executor: ThreadPoolExecutor, stop: asyncio.Event
) -> None:
    """Keep the PDQ directory current with changes made by every process, not only this one.

    A failing refresh (the first one is a load of the whole registry) is tried again after a
    wait that doubles each time, up to a minute; its traceback is logged once, the failures
    after it in one line each."""
    loop = asyncio.get_running_loop()
    interval = runtime.config.notifications.poll_interval_seconds
    directory = runtime.directory
    failures = Failures(log, "refreshing the PDQ directory")
    while not stop.is_set():
        try:
            if directory.loaded:
                await loop.run_in_executor(executor, directory.refresh)
            else:
                started = time.perf_counter()
                log.info("loading the PDQ directory")
                await loop.run_in_executor(executor, directory.refresh)
                took = time.perf_counter() - started
                log.info("PDQ directory loaded: %d records in %.1f s", len(directory), took)
            failures.cleared()
        except Exception as error:
            failures.record(error)
        await first_of(stop, timeout=failures.wait(interval))


async def receipt_pruner(runtime: Runtime, executor: ThreadPoolExecutor, stop: asyncio.Event) -> None:
    """Delete the answers to messages older than the retention, at start-up and then hourly: the
    table of receipts would otherwise grow with every message ever received."""
    loop = asyncio.get_running_loop()
    retention = timedelta(days=runtime.config.listener.receipt_retention_days)
    forget = runtime.feed.forget_receipts
    while not stop.is_set():
        forgotten = 0
        try:
            # A batch at a time, so that a stop (and the messages) never wait for a large backlog.
            while not stop.is_set():
                deleted = await loop.run_in_executor(executor, forget, retention, _RECEIPT_BATCH)
                forgotten += deleted
                if deleted < _RECEIPT_BATCH:
                    break
        except Exception:
            log.exception("deleting old message receipts failed; trying again later")
        if forgotten:
            log.info("forgot the answers to %d messages received over %s ago", forgotten, retention)
        await first_of(stop, timeout=_RECEIPT_PRUNE_SECONDS)


def serve(
    runtime: Runtime, ready: Callable[[int], None] | None = None, sock: socket.socket | None = None
) -> None:
    """Run until SIGTERM or SIGINT."""

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await run(runtime, stop, ready, sock)

    asyncio.run(main())
