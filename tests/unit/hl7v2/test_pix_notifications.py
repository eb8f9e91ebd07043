"""PIX update notifications (ITI-10): what is announced to whom, and delivery with retries."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from hl7_harness import CHL_OID, CONFIG, LAB_OID, MATRICULE, Harness, make_harness, msh

from mpi.hl7v2.config import parse_config
from mpi.hl7v2.framing import Frame, MLLPDecoder, frame
from mpi.hl7v2.notify import Notifier
from mpi.hl7v2.parse import parse_message
from mpi.service.delivery import OutboundStatus


def feed(mpi: Harness, sender: str, control: str, pid: str) -> None:
    mpi.send(f"{msh(sender, 'ADT^A04^ADT_A01', control)}\n{pid}")


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
    answers = [b"AR", b"AA"]
    received: list[bytes] = []

    async def consumer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = MLLPDecoder(1_000_000)
        while data := await reader.read(65536):
            for event in decoder.feed(data):
                if isinstance(event, Frame):
                    received.append(event.payload)
                    control = parse_message(event.payload).msh.control_id
                    code = answers.pop(0) if answers else b"AA"
                    ack = b"MSH|^~\\&|XDS|ESANTE|MPI|ESANTE|20240101||ACK^A31^ACK|1|P|2.5\rMSA|" + code
                    writer.write(frame(ack + b"|" + control.encode() + b"\r"))
                    await writer.drain()
        writer.close()

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
