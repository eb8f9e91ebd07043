"""An HL7 application over the in-memory MPI, and helpers to send it messages and read answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from mpi.hl7v2.application import HL7Application
from mpi.hl7v2.config import HL7Config, parse_config
from mpi.hl7v2.message import Message
from mpi.hl7v2.notify import compose_notifications
from mpi.hl7v2.parse import parse_message
from mpi.hl7v2.pdq import PdqQuery
from mpi.hl7v2.pix import PixQuery
from mpi.service.bootstrap import Services, wire
from mpi.service.continuations import Continuations
from mpi.service.crossrefs import CrossReferences
from mpi.service.directory import PersonDirectory
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.fakes import InMemoryStore, TickingClock
from mpi.service.feed import Feed
from mpi.service.outbox import Outbox
from mpi.service.ports import Store
from mpi.service.settings import Settings

CHL_OID = "1.3.182.3.1.1.1.2"
LAB_OID = "1.3.182.3.1.1.7.2"
MATRICULE = "1982080285657"  # valid: Luhn and Verhoeff over the first 11 digits

CONFIG: dict[str, Any] = {
    "identity": {"application": "MPI", "facility": "ESANTE"},
    "domain": [
        {"namespace": "CHL", "universal_id": CHL_OID, "universal_id_type": "ISO"},
        {"namespace": "LABO", "universal_id": LAB_OID, "universal_id_type": "ISO"},
        {"namespace": "GP"},
        {
            "namespace": "LUX",
            "universal_id": "1.3.182.4.4",
            "universal_id_type": "ISO",
            "kind": "matricule",
            "identifier_type": "NI",
        },
        {"namespace": "MPI", "universal_id": "1.3.182.2.4.2", "universal_id_type": "ISO", "kind": "mpi"},
    ],
    "sender": [
        {"application": "HIS", "facility": "CHL", "domains": ["CHL"]},
        {"application": "LIS", "facility": "*", "domains": ["LABO"]},
        {"application": "GPSOFT", "facility": "*", "domains": ["GP"]},
        {"application": "PORTAL", "facility": "*"},
    ],
    "consumer": [
        {
            "name": "registry",
            "host": "127.0.0.1",
            "port": 1,
            "application": "XDS",
            "facility": "ESANTE",
            "domains": ["CHL", "LABO", "LUX"],
        }
    ],
    "queries": {"default_limit": 10},
}


@dataclass
class Harness:
    config: HL7Config
    services: Services
    application: HL7Application
    directory: PersonDirectory
    outbox: Outbox
    clock: TickingClock

    def send(self, text: str) -> Message:
        """Send ER7 text (segments on lines) and parse the answer."""
        answer = self.send_bytes(text.strip().replace("\n", "\r").encode("utf-8") + b"\r")
        return parse_message(answer)

    def send_bytes(self, payload: bytes) -> bytes:
        self.directory.refresh()
        return self.application.handle(payload)

    def events(self) -> int:
        return len(self.services.store.run(lambda uow: uow.events(), write=False))


def make_harness(config: dict[str, Any] | None = None) -> Harness:
    hl7_config = parse_config(config or CONFIG)
    settings = Settings(database_url="sqlite:///unused.db", _env_file=None)  # type: ignore[call-arg]
    store = InMemoryStore()
    clock = TickingClock()
    matcher = FakeMatcher()
    services = wire(settings, store, matcher, clock)
    application, directory = _application(hl7_config, settings, store, matcher, clock)
    outbox = Outbox(store, compose_notifications(hl7_config, clock), clock=clock)
    return Harness(hl7_config, services, application, directory, outbox, clock)


def another_process(harness: Harness) -> Harness:
    """A second application over the same store, sharing nothing else with the first: as another
    worker of ``mpi serve --processes N`` would."""
    services, clock = harness.services, harness.clock
    application, directory = _application(
        harness.config, services.settings, services.store, FakeMatcher(), clock
    )
    outbox = Outbox(services.store, compose_notifications(harness.config, clock), clock=clock)
    return Harness(harness.config, services, application, directory, outbox, clock)


def _application(
    hl7_config: HL7Config, settings: Settings, store: Store, matcher: FakeMatcher, clock: TickingClock
) -> tuple[HL7Application, PersonDirectory]:
    crossrefs = CrossReferences(store)
    directory = PersonDirectory(store, matcher)
    ttl = timedelta(seconds=hl7_config.queries.continuation_ttl_seconds)
    application = HL7Application(
        hl7_config,
        Feed(settings, store, matcher, clock),
        PixQuery(hl7_config, crossrefs, clock),
        PdqQuery(hl7_config, crossrefs, directory, Continuations(store, ttl, clock), matcher, clock),
        clock,
    )
    return application, directory


def msh(
    sender: str = "HIS|CHL", kind: str = "ADT^A04^ADT_A01", control: str = "C1", version: str = "2.5"
) -> str:
    return f"MSH|^~\\&|{sender}|MPI|ESANTE|20240312101500||{kind}|{control}|P|{version}"


def segments(message: Message) -> list[str]:
    return [segment.raw for segment in message.segments]


def named(message: Message, name: str) -> list[str]:
    return [segment.raw for segment in message.segments if segment.name == name]
