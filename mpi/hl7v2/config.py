"""The configuration of the HL7 v2 listener: a TOML file, validated when ``mpi serve`` starts.

It says where to listen (and whether with TLS), which assigning authorities
(domains) exist and how HL7 names them, which sending applications may talk to
the MPI and which domains each may feed (one source per domain), and which
consumers receive PIX update notifications (ITI-10) for which domains.
``mpi/hl7v2/example-config.toml`` documents every key.

Nothing is read at import: :func:`load_config` reads and validates a file and
refuses it with one :class:`~mpi.errors.InputError` naming the file and every
bad key.
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mpi.errors import InputError
from mpi.hl7v2.header import HierarchicDesignator

ANY_DOMAIN = "*"
ANY_FACILITY = "*"
MATRICULE_OID = "1.3.182.4.4"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Strict):
    certificate: Path = Field(description="PEM certificate chain of the listener.")
    private_key: Path = Field(description="PEM private key of the certificate.")
    client_ca: Path | None = Field(
        None, description="PEM bundle of CAs; when set, every client must present a certificate they signed."
    )


class ListenerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(2575, ge=0, le=65535)
    max_message_bytes: int = Field(1_048_576, ge=1024, description="Larger messages are answered AR.")
    idle_timeout_seconds: float = Field(300.0, gt=0, description="A silent connection is closed after this.")
    max_connections: int = Field(256, ge=1)
    workers: int = Field(4, ge=1, le=64, description="Threads applying messages to the database.")
    writers: int = Field(
        1,
        ge=1,
        le=64,
        description="Transactions of messages committed at once per process (messages arriving "
        "meanwhile share the next one). 2 gives PostgreSQL a little more throughput and a longer "
        "ACK tail; SQLite always commits one at a time.",
    )
    processes: int = Field(
        1, ge=1, le=64, description="Server processes sharing the listening socket (see mpi.hl7v2.processes)."
    )
    shutdown_grace_seconds: float = Field(30.0, gt=0, description="How long in-flight messages may finish.")
    receipt_retention_days: float = Field(
        30.0,
        gt=0,
        description="How long the answer to each received message is kept: a message resent within "
        "it gets that answer and is not applied again; resent later, it is applied again.",
    )
    tls: TlsConfig | None = None


class ApplicationConfig(_Strict):
    """How the MPI names itself in MSH-3/MSH-4 of what it sends."""

    application: str = Field("MPI", min_length=1)
    facility: str = Field("MPI", min_length=1)
    processing_ids: tuple[str, ...] = Field(
        ("P", "T"), min_length=1, description="MSH-11 values accepted; others are answered AR 202."
    )


class DomainKind(enum.StrEnum):
    LOCAL = "local"  # local ids assigned by one source (a hospital, a lab, a GP system)
    MATRICULE = "matricule"  # the national identification number, a demographic trait of every record
    MPI = "mpi"  # the MPI's own person ids


class DomainConfig(_Strict):
    """An assigning authority: how the registry names it, and how HL7 does (CX-4, an HD)."""

    authority: str = Field(
        min_length=1,
        max_length=100,
        description="Its name in the registry: the `source` of its records (defaults to namespace).",
    )
    namespace: str = Field("", max_length=100, description="HD-1, namespace id.")
    universal_id: str = Field("", max_length=200, description="HD-2, universal id (an OID).")
    universal_id_type: str = Field("", max_length=20, description="HD-3, e.g. ISO.")
    kind: DomainKind = DomainKind.LOCAL
    identifier_type: str = Field("PI", description="CX-5 written in answers (PI, NI, ...).")

    @model_validator(mode="before")
    @classmethod
    def _authority_defaults_to_namespace(cls, data: Any) -> Any:
        if isinstance(data, dict) and "authority" not in data and data.get("namespace"):
            return {**data, "authority": data["namespace"]}
        return data

    @model_validator(mode="after")
    def _named_in_hl7(self) -> DomainConfig:
        if not self.namespace and not self.universal_id:
            raise ValueError("a domain needs a namespace, a universal_id, or both")
        if bool(self.universal_id) != bool(self.universal_id_type):
            raise ValueError("universal_id and universal_id_type go together")
        return self

    @property
    def designator(self) -> HierarchicDesignator:
        return HierarchicDesignator(self.namespace, self.universal_id, self.universal_id_type)

    def matches(self, namespace: str, universal_id: str, universal_id_type: str) -> bool:
        """True when an HD names this domain: every part given must agree, and one must be given."""
        if not namespace and not universal_id:
            return False
        if namespace and namespace != self.namespace:
            return False
        return not universal_id or (
            universal_id == self.universal_id
            and (not universal_id_type or universal_id_type.upper() == self.universal_id_type.upper())
        )


class SenderConfig(_Strict):
    """A sending application (MSH-3) at a facility (MSH-4) allowed to talk to the MPI."""

    application: str = Field(min_length=1)
    facility: str = Field(ANY_FACILITY, min_length=1, description='"*" accepts any facility.')
    domains: tuple[str, ...] = Field(
        (), description="Authorities it may feed; empty: it may only query (PIX, PDQ)."
    )

    def allows(self, sender: HierarchicDesignator, facility: HierarchicDesignator) -> bool:
        return sender.namespace_id == self.application and self.facility in (
            ANY_FACILITY,
            facility.namespace_id,
        )


class ConsumerConfig(_Strict):
    """A PIX consumer that receives ITI-10 notifications for its domains."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    host: str
    port: int = Field(ge=1, le=65535)
    application: str = Field(min_length=1, description="MSH-5 of the notifications.")
    facility: str = Field(min_length=1, description="MSH-6 of the notifications.")
    domains: tuple[str, ...] = Field(min_length=1, description='Authorities of interest, or ["*"].')
    timeout_seconds: float = Field(10.0, gt=0, description="How long to wait for the ACK.")
    tls: bool = False

    def wants(self, authority: str) -> bool:
        return ANY_DOMAIN in self.domains or authority in self.domains


class NotificationConfig(_Strict):
    poll_interval_seconds: float = Field(0.5, gt=0, description="How often new changes are looked for.")
    retry_initial_seconds: float = Field(2.0, gt=0)
    retry_max_seconds: float = Field(600.0, gt=0)
    gap_grace_seconds: float = Field(
        120.0,
        gt=0,
        description="How long a hole in the event sequence is read again, as a transaction still to commit.",
    )


class QueryConfig(_Strict):
    default_limit: int = Field(100, ge=1, description="Hits per response when RCP-2 gives no limit.")
    max_limit: int = Field(1000, ge=1)
    continuation_ttl_seconds: float = Field(600.0, gt=0, description="How long a DSC pointer stays valid.")
    min_confidence: float = Field(0.0, ge=0.0, le=1.0, description="PDQ hits below this are not returned.")


class HL7Config(_Strict):
    listener: ListenerConfig = Field(default_factory=ListenerConfig)
    identity: ApplicationConfig = Field(default_factory=ApplicationConfig)
    domains: tuple[DomainConfig, ...] = Field(alias="domain", min_length=1)
    senders: tuple[SenderConfig, ...] = Field((), alias="sender")
    consumers: tuple[ConsumerConfig, ...] = Field((), alias="consumer")
    notifications: NotificationConfig = Field(default_factory=NotificationConfig)
    queries: QueryConfig = Field(default_factory=QueryConfig)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _consistent(self) -> HL7Config:
        _unique("domain.authority", (d.authority for d in self.domains))
        _unique("domain.namespace", (d.namespace for d in self.domains if d.namespace))
        _unique(
            "domain.universal_id",
            ((d.universal_id, d.universal_id_type.upper()) for d in self.domains if d.universal_id),
        )
        for kind in (DomainKind.MATRICULE, DomainKind.MPI):
            if sum(d.kind is kind for d in self.domains) > 1:
                raise ValueError(f"at most one domain may be of kind {kind.value!r}")
        known = {d.authority: d for d in self.domains}
        fed_by: dict[str, str] = {}
        for sender in self.senders:
            who = f"{sender.application}/{sender.facility}"
            for authority in sender.domains:
                domain = known.get(authority)
                if domain is None:
                    raise ValueError(f"sender {who} feeds unknown domain {authority!r}")
                if domain.kind is DomainKind.MPI:
                    raise ValueError(f"sender {who} cannot feed the MPI's own domain {authority!r}")
                if authority in fed_by:
                    raise ValueError(
                        f"domain {authority!r} is fed by {fed_by[authority]} and {who}: one source per domain"
                    )
                fed_by[authority] = who
        _unique("sender", (f"{s.application}/{s.facility}" for s in self.senders))
        _unique("consumer.name", (c.name for c in self.consumers))
        for consumer in self.consumers:
            for authority in consumer.domains:
                if authority != ANY_DOMAIN and authority not in known:
                    raise ValueError(f"consumer {consumer.name} wants unknown domain {authority!r}")
        if self.queries.default_limit > self.queries.max_limit:
            raise ValueError("queries.default_limit is larger than queries.max_limit")
        return self

    # -- look-ups ---------------------------------------------------------------------
    def domain(self, authority: str) -> DomainConfig | None:
        return next((d for d in self.domains if d.authority == authority), None)

    def domain_named(self, namespace: str, universal_id: str, universal_id_type: str) -> DomainConfig | None:
        """The domain an HD (CX-4, QPD-4) names, or ``None``."""
        return next((d for d in self.domains if d.matches(namespace, universal_id, universal_id_type)), None)

    def domain_of_kind(self, kind: DomainKind) -> DomainConfig | None:
        return next((d for d in self.domains if d.kind is kind), None)

    def sender(
        self, application: HierarchicDesignator, facility: HierarchicDesignator
    ) -> SenderConfig | None:
        """The sender entry allowing MSH-3/MSH-4 (an exact facility before a wildcard one)."""
        allowed = [s for s in self.senders if s.allows(application, facility)]
        allowed.sort(key=lambda s: s.facility == ANY_FACILITY)
        return allowed[0] if allowed else None


def _unique(what: str, values: Iterable[object]) -> None:
    seen: set[object] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} appears twice")
        seen.add(value)


def parse_config(data: dict[str, Any], source: str = "configuration") -> HL7Config:
    """Validate a configuration already read; errors name ``source`` and each bad key."""
    try:
        return HL7Config.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_key(error['loc']) or 'top level'}: {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        raise InputError(source, problems) from None


def load_config(path: Path) -> HL7Config:
    """Read and validate a TOML configuration file (``mpi serve --config``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(str(path), f"cannot read the configuration: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(str(path), "the configuration is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(path), f"not valid TOML: {exc}") from None
    config = parse_config(data, str(path))
    tls = config.listener.tls
    if tls is not None:
        base = path.parent
        resolved = {
            "certificate": _beside(base, tls.certificate),
            "private_key": _beside(base, tls.private_key),
            "client_ca": _beside(base, tls.client_ca) if tls.client_ca is not None else None,
        }
        for key, file in resolved.items():
            if file is not None and not file.is_file():
                raise InputError(str(path), f"listener.tls.{key}: no such file {file}")
        listener = config.listener.model_copy(update={"tls": TlsConfig(**resolved)})
        config = config.model_copy(update={"listener": listener})
    return config


def _beside(base: Path, file: Path) -> Path:
    """Relative paths in the file are relative to the file, not to where mpi was started."""
    return file if file.is_absolute() else base / file


def _key(location: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in location:
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
        else:
            parts.append(part)
    return ".".join(parts)
