"""PIX update notifications (IHE ITI-10): ADT^A31^ADT_A05 to each consumer, from the durable outbox.

:func:`compose_notifications` is the outbox's composer: for a person whose
cross-references changed it writes, per consumer, an A31 whose PID-3 lists the
person's identifiers in the consumer's domains, PID-5 a single space and PV1-2
``N`` (ITI TF-2 3.10.4.1.2). A person with identifiers in two or more of those
domains is cross-referenced; one with fewer is announced only to withdraw a
cross-reference the consumer was told of (the outbox decides, and drops an
announcement that tells the consumer nothing new).

:class:`Notifier` delivers: it moves new events into the outbox, then sends
each consumer's oldest pending message over MLLP and files the outcome: AA/CA
delivered, AE/CE failed for good (resending an erroneous message unchanged
cannot help), anything else (AR, no answer, no connection) retried with
exponential back-off. Each consumer is served by a loop of its own, in order,
the next message as soon as the one before is answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from mpi.errors import HL7Error
from mpi.hl7v2.config import ConsumerConfig, HL7Config
from mpi.hl7v2.encode import Components, encode_message, encode_segment, format_timestamp
from mpi.hl7v2.framing import Frame, MLLPDecoder, frame
from mpi.hl7v2.parse import parse_message
from mpi.hl7v2.pix import QualifiedIdentifier, identifier_list, qualified_identifiers
from mpi.hl7v2.respond import new_control_id
from mpi.hl7v2.retries import Failures, first_of
from mpi.service.crossrefs import PersonIdentifiers
from mpi.service.delivery import OutboundMessage
from mpi.service.outbox import Composer, Notification, Outbox

log = logging.getLogger("mpi.hl7v2.notify")

_MAX_ACK_BYTES = 1_048_576
_COLLECT_BATCH = 500
_ATTEMPTS_BETWEEN_WARNINGS = 10
# Messages waiting for a consumer no longer configured are looked for this often (a query over
# every pending message).
_UNCONFIGURED_CHECK_SECONDS = 600.0


def compose_notifications(config: HL7Config, clock: Callable[[], datetime]) -> Composer:
    def compose(person: PersonIdentifiers, event_seq: int) -> list[Notification]:
        identifiers = qualified_identifiers(person, config)
        notes = []
        for consumer in config.consumers:
            wanted = [i for i in identifiers if consumer.wants(i.domain.authority)]
            if not wanted:
                continue
            # ITI TF-2 3.10.4.1.1: the manager notifies a consumer "when there is a change in a
            # set of cross-referenced patient identifiers for any of the patient identifiers
            # belonging to Patient Identifier Domains of interest to the consumer"; what it sends
            # lists identifiers cross-referenced in two or more domains (design notes,
            # INTEROP.md: only persons with identifiers in 2+ domains). A person left with one
            # domain after being announced with more is such a change: it is announced with
            # what is left, so the consumer drops the old cross-reference. One never announced
            # with others is not (the outbox decides: see mpi.service.outbox).
            cross_referenced = len({i.domain.authority for i in wanted}) >= 2
            announced = "\n".join(sorted(f"{i.domain.authority}|{i.value}" for i in wanted))
            payload = _a31(config, consumer, wanted, clock())
            notes.append(Notification(consumer.name, announced, payload, cross_referenced))
        return notes

    return compose


def _a31(
    config: HL7Config, consumer: ConsumerConfig, identifiers: list[QualifiedIdentifier], now: datetime
) -> bytes:
    stamp = format_timestamp(now)
    segments = [
        encode_segment(
            "MSH",
            {
                3: config.identity.application,
                4: config.identity.facility,
                5: consumer.application,
                6: consumer.facility,
                7: stamp,
                9: Components("ADT", "A31", "ADT_A05"),
                10: new_control_id(),
                11: "P",
                12: "2.5",
                18: "UNICODE UTF-8",
            },
        ),
        encode_segment("EVN", {1: "A31", 2: stamp}),
        encode_segment("PID", {3: identifier_list(identifiers), 5: " "}),
        encode_segment("PV1", {2: "N"}),
    ]
    return encode_message(segments, "utf-8")


def acknowledgement_code(payload: bytes) -> str:
    """MSA-1 of an acknowledgement, ``""`` when the reply is no readable ACK."""
    try:
        reply = parse_message(payload)
    except HL7Error:
        return ""
    msa = reply.find_segment("MSA")
    return msa.get(1).strip().upper() if msa is not None else ""


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    REFUSED = "refused"  # for good: the consumer said the message is in error
    RETRY_LATER = "retry later"


class Notifier:
    def __init__(self, config: HL7Config, outbox: Outbox, executor: ThreadPoolExecutor) -> None:
        self._config = config
        self._outbox = outbox
        self._executor = executor
        self._consumers = {c.name: c for c in config.consumers}
        self._unconfigured: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Collect changes every poll interval, and deliver to each consumer in a loop of its own:
        its next message as soon as the one before is answered. A slow, silent or unreachable
        consumer holds back its own messages only. Once ``stop`` is set, each loop finishes the
        exchange it is in and starts no other (an exchange cut short is sent again: at least
        once). A failing round (the database down) is tried again after a wait that doubles up
        to a minute, its traceback logged once."""
        interval = self._config.notifications.poll_interval_seconds
        news = {name: asyncio.Event() for name in self._consumers}
        loops = [asyncio.create_task(self._serve(name, news[name], stop)) for name in self._consumers]
        failures = Failures(log, "collecting notifications")
        unconfigured_checked = -math.inf
        try:
            while not stop.is_set():
                try:
                    await self._collect()
                    if time.monotonic() - unconfigured_checked >= _UNCONFIGURED_CHECK_SECONDS:
                        await self._note_unconfigured()  # reads every pending head: now and then
                        unconfigured_checked = time.monotonic()
                    failures.cleared()
                except Exception as error:
                    failures.record(error)
                for event in news.values():
                    event.set()
                await first_of(stop, timeout=failures.wait(interval))
        except asyncio.CancelledError:
            for task in loops:
                task.cancel()
            raise
        finally:
            await asyncio.gather(*loops, return_exceptions=True)

    async def _serve(self, name: str, news: asyncio.Event, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        interval = self._config.notifications.poll_interval_seconds
        failures = Failures(log, f"delivering notifications to {name}")
        while not stop.is_set():
            news.clear()
            try:
                head = await loop.run_in_executor(self._executor, self._outbox.head, name)
                failures.cleared()
                if head is not None and not stop.is_set():  # stopped meanwhile: no new exchange
                    outcome = await self._deliver(head)
                    if outcome is not Outcome.RETRY_LATER:
                        continue  # the next one at once
            except Exception as error:
                failures.record(error)
                await first_of(stop, timeout=failures.wait(interval))
                continue
            # Nothing due (or a retry not due yet): wait for the next collection.
            await first_of(stop, news)

    async def step(self) -> int:
        """Collect new changes and try each consumer's next message once; returns how many went out."""
        await self._collect()
        await self._note_unconfigured()
        loop = asyncio.get_running_loop()
        due = await loop.run_in_executor(self._executor, self._outbox.due)
        outcomes = await asyncio.gather(*(self._deliver(m) for m in due if m.consumer in self._consumers))
        return sum(outcome is Outcome.DELIVERED for outcome in outcomes)

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while (
            await loop.run_in_executor(self._executor, self._outbox.collect, _COLLECT_BATCH) == _COLLECT_BATCH
        ):
            pass

    async def _note_unconfigured(self) -> None:
        """Messages to a consumer no longer configured stay pending (sent if it is configured
        again; a configuration edited by mistake loses nothing); said once per consumer."""
        loop = asyncio.get_running_loop()
        due = await loop.run_in_executor(self._executor, self._outbox.due)
        for message in due:
            if message.consumer not in self._consumers and message.consumer not in self._unconfigured:
                self._unconfigured.add(message.consumer)
                log.warning(
                    "notifications wait for consumer %s, which is not configured: they are kept "
                    "and sent if it is configured again",
                    message.consumer,
                )

    async def _deliver(self, message: OutboundMessage) -> Outcome:
        """One attempt at ``message`` (its consumer configured), its outcome filed."""
        loop = asyncio.get_running_loop()
        consumer = self._consumers[message.consumer]
        try:
            code = await asyncio.wait_for(self._exchange(consumer, message.payload), consumer.timeout_seconds)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            error = f"no acknowledgement from {consumer.host}:{consumer.port}: {exc or type(exc).__name__}"
            return await self._retry_later(message, error)
        if code in ("AA", "CA"):
            await loop.run_in_executor(self._executor, self._outbox.delivered, message)
            return Outcome.DELIVERED
        if code in ("AE", "CE"):
            log.warning("notification %d refused by %s with %s", message.message_id, consumer.name, code)
            await loop.run_in_executor(self._executor, self._outbox.failed, message, f"answered {code}")
            return Outcome.REFUSED
        return await self._retry_later(message, f"answered {code or 'something that is no acknowledgement'}")

    async def _retry_later(self, message: OutboundMessage, error: str) -> Outcome:
        loop = asyncio.get_running_loop()
        later = await loop.run_in_executor(self._executor, self._outbox.retry_later, message, error)
        # Every try is logged; a message still not taken after many (a consumer down for hours,
        # or answering AR for ever) is a warning, again every so many tries, for whoever watches.
        level = logging.WARNING if later.attempts % _ATTEMPTS_BETWEEN_WARNINGS == 0 else logging.INFO
        log.log(
            level,
            "notification %d to %s: %s; %d tries so far, next at %s",
            message.message_id,
            message.consumer,
            error,
            later.attempts,
            later.next_attempt_at,
        )
        return Outcome.RETRY_LATER

    async def _exchange(self, consumer: ConsumerConfig, payload: bytes) -> str:
        context = ssl.create_default_context() if consumer.tls else None
        reader, writer = await asyncio.open_connection(consumer.host, consumer.port, ssl=context)
        try:
            writer.write(frame(payload))
            await writer.drain()
            decoder = MLLPDecoder(_MAX_ACK_BYTES)
            while True:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionResetError("the consumer closed the connection without answering")
                for event in decoder.feed(data):
                    if isinstance(event, Frame):
                        return acknowledgement_code(event.payload)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
