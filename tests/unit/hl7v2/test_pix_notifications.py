"""PIX update notifications (ITI-10): what is announced to whom, and delivery with retries."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from hl7_harness import CHL_OID, CONFIG, LAB_OID, MATRICULE, Harness, make_harness, msh

from mpi.domain.commands import LinkRecord, MergePersons, UnlinkRecord, UnmergePerson
from mpi.domain.records import RecordKey
from mpi.hl7v2.config import parse_config
from mpi.hl7v2.framing import Frame, MLLPDecoder, frame
from mpi.hl7v2.notify import Notifier
from mpi.hl7v2.parse import parse_message
from mpi.service.crossrefs import CrossReferences
from mpi.service.delivery import OutboundStatus


def feed(mpi: Harness, sender: str, control: str, pid: str) -> None:
    mpi.send(f"{msh(sender, 'ADT^A04^ADT_A01', control)}\n{pid}")


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def acknowledging_consumer(received: list[bytes], answers: list[bytes] | None = None) -> Handler:
    """An MLLP consumer that keeps each message it receives and answers it with the next of
    ``answers`` (AA once they run out)."""
    codes = list(answers or [])

    async def consumer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = MLLPDecoder(1_000_000)
        while data := await reader.read(65536):
            for event in decoder.feed(data):
                if isinstance(event, Frame):
                    received.append(event.payload)
                    control = parse_message(event.payload).msh.control_id
                    code = codes.pop(0) if codes else b"AA"
                    ack = b"MSH|^~\\&|XDS|ESANTE|MPI|ESANTE|20240101||ACK^A31^ACK|1|P|2.5\rMSA|" + code
                    writer.write(frame(ack + b"|" + control.encode() + b"\r"))
                    await writer.drain()
        writer.close()

    return consumer


def outbound(mpi: Harness) -> list[tuple[str, str, OutboundStatus]]:
    store = mpi.services.store
    rows = store.run(lambda uow: uow.pending_outbound(100), write=False)
    return [(m.consumer, m.identifiers, m.status) for m in rows]


def test_a_person_is_announced_once_it_has_identifiers_in_two_wanted_domains() -> None:
    mpi = make_harness()
    mpi.outbox.collect()  # the first run starts from the end of the log
    feed(mpi, "HIS|CHL", "H1", "PID|||A-1^^^CHL||Weber^Jean||19820802|M")
    mpi.outbox.collect()
    assert outbound(mpi) == []  # one domain only: nothing to cross-reference
    feed(mpi, "LIS|X", "L1", f"PID|||L-1^^^LABO~{MATRICULE}^^^LUX||Weber^Jean||19820802|M")
    mpi.outbox.collect()
    assert outbound(mpi) == [
        ("registry", f"CHL|A-1\nLABO|L-1\nLUX|{MATRICULE}", OutboundStatus.PENDING),
    ]
    message = parse_message(
        mpi.services.store.run(lambda uow: uow.pending_outbound(1), write=False)[0].payload
    )
    assert [s.raw for s in message.segments[1:]] == [
        message.segments[1].raw,  # EVN with the time of the change
        f"PID|||A-1^^^CHL&{CHL_OID}&ISO^PI~L-1^^^LABO&{LAB_OID}&ISO^PI"
        f"~{MATRICULE}^^^LUX&1.3.182.4.4&ISO^NI|| ",
        "PV1||N",
    ]
    assert message.msh.message_type == ("ADT", "A31", "ADT_A05")
    feed(mpi, "HIS|CHL", "H2", "PID|||A-1^^^CHL||Weber^Jean||19820802|M|||^^Esch")  # same identifiers
    mpi.outbox.collect()
    assert len(outbound(mpi)) == 1


def test_notifications_are_delivered_in_order_with_retries_until_acknowledged() -> None:
    received: list[bytes] = []
    consumer = acknowledging_consumer(received, [b"AR", b"AA"])

    async def scenario() -> None:
        server = await asyncio.start_server(consumer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        config = {**CONFIG, "consumer": [{**CONFIG["consumer"][0], "port": port}]}
        config["notifications"] = {"retry_initial_seconds": 0.01}
        mpi = make_harness(config)
        mpi.outbox.collect()
        feed(mpi, "HIS|CHL", "H1", "PID|||A-1^^^CHL||Weber^Jean||19820802|M")
        feed(mpi, "LIS|X", "L1", "PID|||L-1^^^LABO||Weber^Jean||19820802|M")
        notifier = Notifier(parse_config(config), mpi.outbox, ThreadPoolExecutor(2))
        assert await notifier.step() == 0  # answered AR: kept, retried later
        rows = mpi.services.store.run(lambda uow: uow.pending_outbound(10), write=False)
        assert [(m.attempts, m.last_error) for m in rows] == [(1, "answered AR")]
        rows_ready = False
        for _ in range(200):
            if mpi.outbox.due():
                rows_ready = True
                break
            await asyncio.sleep(0.01)
        assert rows_ready
        assert await notifier.step() == 1
        assert mpi.services.store.run(lambda uow: uow.pending_outbound(10), write=False) == []
        server.close()
        await server.wait_closed()

    asyncio.run(scenario())
    assert len(received) == 2 and received[0] == received[1]  # the same message, resent


def test_an_unreachable_consumer_keeps_the_message_pending() -> None:
    mpi = make_harness()  # its consumer listens on port 1: nobody there
    mpi.outbox.collect()
    feed(mpi, "HIS|CHL", "H1", "PID|||A-1^^^CHL||Weber^Jean||19820802|M")
    feed(mpi, "LIS|X", "L1", "PID|||L-1^^^LABO||Weber^Jean||19820802|M")
    notifier = Notifier(mpi.config, mpi.outbox, ThreadPoolExecutor(2))
    assert asyncio.run(notifier.step()) == 0
    rows = mpi.services.store.run(lambda uow: uow.pending_outbound(10), write=False)
    assert len(rows) == 1 and rows[0].attempts == 1 and rows[0].status is OutboundStatus.PENDING
    assert rows[0].next_attempt_at > rows[0].created_at


# -- which persons are announced when cross-references change (ITI-10) ---------------------
# A second consumer follows CHL and GP only: none of these persons ever has identifiers in two
# of its domains, so it is never told anything (nor is a withdrawal owed to it).
TWO_CONSUMERS: dict[str, Any] = {
    **CONFIG,
    "consumer": [*CONFIG["consumer"], {**CONFIG["consumer"][0], "name": "gp", "domains": ["CHL", "GP"]}],
}

Announced = list[tuple[str, str, list[str]]]


def collect(mpi: Harness) -> Announced:
    """Collect the new changes; the A31s they add: consumer, person, PID-3 as ``id^^^namespace``."""
    store = mpi.services.store
    before = {m.message_id for m in store.run(lambda uow: uow.pending_outbound(1000), write=False)}
    mpi.outbox.collect()
    rows = store.run(lambda uow: uow.pending_outbound(1000), write=False)
    return [(m.consumer, m.mpi_id, _pid3(m.payload)) for m in rows if m.message_id not in before]


def _pid3(payload: bytes) -> list[str]:
    pid = parse_message(payload).find_segment("PID")
    assert pid is not None
    found = []
    for repetition in pid.field(3).raw.split("~"):
        components = repetition.split("^")
        found.append(f"{components[0]}^^^{components[3].split('&')[0]}")
    return found


def person_of(mpi: Harness, authority: str, local_id: str) -> str:
    found = CrossReferences(mpi.services.store).by_record(RecordKey(authority, local_id))
    assert found is not None
    return found.mpi_id


def two_announced_persons() -> tuple[Harness, str, str]:
    """p1 = {A-1, L-1} and p2 = {A-2, L-2}, both announced to the registry."""
    mpi = make_harness(TWO_CONSUMERS)
    mpi.outbox.collect()
    feed(mpi, "HIS|CHL", "C1", "PID|||A-1^^^CHL||Weber^Jean||19820802|M")
    feed(mpi, "LIS|X", "L1", "PID|||L-1^^^LABO||Weber^Jean||19820802|M")
    feed(mpi, "HIS|CHL", "C2", "PID|||A-2^^^CHL||Kremer^Paul||19600505|M")
    feed(mpi, "LIS|X", "L2", "PID|||L-2^^^LABO||Kremer^Paul||19600505|M")
    p1, p2 = person_of(mpi, "CHL", "A-1"), person_of(mpi, "CHL", "A-2")
    assert p1 != p2
    assert collect(mpi) == [
        ("registry", p1, ["A-1^^^CHL", "L-1^^^LABO"]),
        ("registry", p2, ["A-2^^^CHL", "L-2^^^LABO"]),
    ]
    return mpi, p1, p2


def test_an_unmerge_announces_the_restored_person_again() -> None:
    mpi, p1, p2 = two_announced_persons()
    mpi.services.lifecycle.merge(MergePersons(p1, p2, "steward"))
    assert collect(mpi) == [("registry", p1, ["A-1^^^CHL", "A-2^^^CHL", "L-1^^^LABO", "L-2^^^LABO"])]
    mpi.services.lifecycle.unmerge(UnmergePerson(p2, "steward"))
    # p2's identifiers are as when it was last announced, but the consumer was told since
    # that they belong with A-1: it must hear that they do not any more.
    assert sorted(collect(mpi)) == sorted(
        [("registry", p1, ["A-1^^^CHL", "L-1^^^LABO"]), ("registry", p2, ["A-2^^^CHL", "L-2^^^LABO"])]
    )
    assert collect(mpi) == []


def test_a_record_linked_away_and_back_announces_both_persons_each_time() -> None:
    mpi, p1, p2 = two_announced_persons()
    mpi.services.lifecycle.link(LinkRecord(RecordKey("LABO", "L-1"), p2, "steward"))
    assert sorted(collect(mpi)) == sorted(
        [
            ("registry", p1, ["A-1^^^CHL"]),  # left with one domain: the link to L-1 is gone
            ("registry", p2, ["A-2^^^CHL", "L-1^^^LABO", "L-2^^^LABO"]),
        ]
    )
    mpi.services.lifecycle.link(LinkRecord(RecordKey("LABO", "L-1"), p1, "steward"))
    assert sorted(collect(mpi)) == sorted(
        [("registry", p1, ["A-1^^^CHL", "L-1^^^LABO"]), ("registry", p2, ["A-2^^^CHL", "L-2^^^LABO"])]
    )


def test_an_unlink_announces_the_persons_left_with_one_domain() -> None:
    mpi, p1, _ = two_announced_persons()
    mpi.services.lifecycle.unlink(UnlinkRecord(RecordKey("LABO", "L-1"), "steward"))
    split_off = person_of(mpi, "LABO", "L-1")
    assert person_of(mpi, "CHL", "A-1") == p1 and split_off != p1
    assert sorted(collect(mpi)) == sorted(
        [("registry", p1, ["A-1^^^CHL"]), ("registry", split_off, ["L-1^^^LABO"])]
    )
    # Told once: a later change of the same person that leaves its identifiers alone is silent.
    feed(mpi, "HIS|CHL", "C3", "PID|||A-1^^^CHL||Weber^Jean||19820802|M|||^^Esch")
    assert collect(mpi) == []


def test_an_a24_announces_the_person_a_record_left() -> None:
    mpi, p1, p2 = two_announced_persons()
    answer = mpi.send(f"{msh('HIS|CHL', 'ADT^A24^ADT_A24', 'K1')}\nEVN|A24\nPID|||A-1^^^CHL\nPID|||A-2^^^CHL")
    assert answer.find_segment("MSA") is not None and answer.get("MSA-1") == "AA"
    assert person_of(mpi, "CHL", "A-2") == p1 and person_of(mpi, "LABO", "L-2") == p2
    assert sorted(collect(mpi)) == sorted(
        [
            ("registry", p1, ["A-1^^^CHL", "A-2^^^CHL", "L-1^^^LABO"]),
            ("registry", p2, ["L-2^^^LABO"]),  # A-2 is no longer cross-referenced with L-2
        ]
    )


def test_each_consumer_hears_only_of_cross_references_in_its_domains() -> None:
    mpi = make_harness(TWO_CONSUMERS)
    mpi.outbox.collect()
    feed(mpi, "HIS|CHL", "C1", "PID|||A-1^^^CHL||Weber^Jean||19820802|M")
    assert collect(mpi) == []
    feed(mpi, "GPSOFT|X", "G1", "PID|||G-1^^^GP||Weber^Jean||19820802|M")
    p1 = person_of(mpi, "CHL", "A-1")
    assert person_of(mpi, "GP", "G-1") == p1
    assert collect(mpi) == [("gp", p1, ["A-1^^^CHL", "G-1^^^GP"])]  # one registry domain only
    mpi.services.lifecycle.unlink(UnlinkRecord(RecordKey("GP", "G-1"), "steward"))
    split_off = person_of(mpi, "GP", "G-1")
    assert sorted(collect(mpi)) == sorted([("gp", p1, ["A-1^^^CHL"]), ("gp", split_off, ["G-1^^^GP"])])


def test_a_silent_consumer_holds_back_its_own_messages_only() -> None:
    """Each consumer is served by a loop of its own: one that never answers waits out its
    timeout while the other receives message after message, without a pause between them."""
    received: list[bytes] = []
    persons = 20

    answering = acknowledging_consumer(received)

    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(65536):
            pass  # reads everything, answers nothing
        writer.close()

    async def scenario() -> None:
        fast = await asyncio.start_server(answering, "127.0.0.1", 0)
        mute = await asyncio.start_server(silent, "127.0.0.1", 0)
        base = {**CONFIG["consumer"][0], "domains": ["CHL", "LABO"], "timeout_seconds": 60}
        config: dict[str, Any] = {
            **CONFIG,
            "consumer": [
                {**base, "name": "mute", "port": mute.sockets[0].getsockname()[1]},
                {**base, "name": "gp", "port": fast.sockets[0].getsockname()[1]},
            ],
        }
        mpi = make_harness(config)
        mpi.outbox.collect()
        for n in range(persons):
            feed(mpi, "HIS|CHL", f"H{n}", f"PID|||A-{n}^^^CHL||Name{n}^Jean||19820802|M")
            feed(mpi, "LIS|X", f"L{n}", f"PID|||L-{n}^^^LABO||Name{n}^Jean||19820802|M")
        stop = asyncio.Event()
        notifier = Notifier(parse_config(config), mpi.outbox, ThreadPoolExecutor(4))
        running = asyncio.create_task(notifier.run(stop))
        for _ in range(300):  # up to 30 s, half the silent consumer's timeout
            if len(received) == persons:
                break
            await asyncio.sleep(0.1)
        assert len(received) == persons
        stop.set()
        for writer in held:  # the silent consumer hangs up: its exchange ends, the notifier stops
            writer.close()
        await asyncio.wait_for(running, 10)
        mute.close()
        fast.close()

    asyncio.run(scenario())


def test_a_message_the_consumer_refused_does_not_count_as_told() -> None:
    """AE/CE: the consumer did not take in what the message said. The next change concerning the
    person announces its cross-references again, though they are the same."""
    mpi, p1, _ = two_announced_persons()
    store = mpi.services.store
    refused = next(m for m in store.run(lambda uow: uow.pending_outbound(10), write=False) if m.mpi_id == p1)
    mpi.outbox.failed(refused, "answered AE")
    feed(mpi, "HIS|CHL", "C3", "PID|||A-1^^^CHL||Weber^Jean||19820802|M|||Rue Haute 1^^Luxembourg")
    assert collect(mpi) == [("registry", p1, ["A-1^^^CHL", "L-1^^^LABO"])]


def test_messages_to_a_consumer_no_longer_configured_wait_for_it(caplog: pytest.LogCaptureFixture) -> None:
    """A consumer left out of the configuration (by mistake, or for a while) loses nothing."""
    mpi = make_harness()
    mpi.outbox.collect()
    feed(mpi, "HIS|CHL", "H1", "PID|||A-1^^^CHL||Weber^Jean||19820802|M")
    feed(mpi, "LIS|X", "L1", "PID|||L-1^^^LABO||Weber^Jean||19820802|M")
    without_it = parse_config({**CONFIG, "consumer": [{**CONFIG["consumer"][0], "name": "gp"}]})
    notifier = Notifier(without_it, mpi.outbox, ThreadPoolExecutor(2))
    with caplog.at_level(logging.WARNING, logger="mpi.hl7v2.notify"):
        asyncio.run(notifier.step())
        asyncio.run(notifier.step())
    assert outbound(mpi)[0][0] == "registry" and outbound(mpi)[0][2] is OutboundStatus.PENDING
    assert [r.getMessage() for r in caplog.records] == [
        "notifications wait for consumer registry, which is not configured: they are kept and sent "
        "if it is configured again"
    ]


def test_a_message_still_not_taken_after_ten_tries_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A consumer answering AR for ever (or down for hours) is retried without end: every tenth
    try is logged as a warning, for whoever watches the log."""
    received: list[bytes] = []

    async def scenario() -> list[tuple[int, str]]:
        server = await asyncio.start_server(acknowledging_consumer(received, [b"AR"] * 10), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        config = {**CONFIG, "consumer": [{**CONFIG["consumer"][0], "port": port}]}
        mpi = make_harness(config)
        mpi.outbox.collect()
        feed(mpi, "HIS|CHL", "H1", "PID|||A-1^^^CHL||Weber^Jean||19820802|M")
        feed(mpi, "LIS|X", "L1", "PID|||L-1^^^LABO||Weber^Jean||19820802|M")
        mpi.outbox.collect()
        notifier = Notifier(parse_config(config), mpi.outbox, ThreadPoolExecutor(2))
        store = mpi.services.store
        logged = []
        for attempts in (3, 9):  # tries made before this one
            pending = store.run(lambda uow: uow.pending_outbound(1), write=False)[0]
            due_now = replace(pending, attempts=attempts, next_attempt_at=pending.created_at)
            store.run(lambda uow, m=due_now: uow.save_outbound(m))
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="mpi.hl7v2.notify"):
                await notifier.step()
            logged += [(r.levelno, r.getMessage()) for r in caplog.records if "so far" in r.getMessage()]
        server.close()
        return logged

    (first_level, first), (tenth_level, tenth) = asyncio.run(scenario())
    assert first_level == logging.INFO and "answered AR; 4 tries so far" in first
    assert tenth_level == logging.WARNING and "answered AR; 10 tries so far" in tenth
