"""The seams of the service: the matcher it scores with and the store it keeps state in.

The service only ever talks to these Protocols. ``mpi.service.bootstrap`` wires
the real classes (the SQL store of ``mpi.storage``, the engine matcher); tests
wire the stand-ins of ``mpi.service.fakes`` (store) and ``mpi.service.fake_matcher``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol, TypeVar

from mpi.domain.access import Access
from mpi.domain.events import Event
from mpi.domain.persons import Link, LinkProvenance, Person
from mpi.domain.records import (
    Demographics,
    MatriculeFlag,
    RecordIdentifier,
    RecordKey,
    RecordVersion,
    SourceRecord,
)
from mpi.domain.registry_state import RegistryState
from mpi.domain.reviews import NotDuplicate, ReviewStatus, ReviewTask
from mpi.domain.scores import ComparisonOutcome, Decision, PairScore
from mpi.service.delivery import MessageKey, OutboundMessage, Receipt

__all__ = [
    "Candidate",
    "ComparisonOutcome",
    "Continuation",
    "Decision",
    "Demographics",
    "LinkRow",
    "Matcher",
    "PairScore",
    "Store",
    "UnitOfWork",
]

T = TypeVar("T")


class Matcher(Protocol):
    """The matching kernel as the online MPI sees it."""

    model_version: str

    def blocking_keys(self, records: Sequence[Demographics]) -> list[list[str]]:
        """Per record, the key of every blocking rule it has (``"dob_surname_dm:1980-01-02|SMT"``)."""
        ...

    def forms(self, records: Sequence[Demographics]) -> list[str | None]:
        """Per record, the standardised form the store keeps beside it (opaque text), or ``None``
        for a record that must be standardised afresh whenever it is scored."""
        ...

    def keys_and_forms(self, records: Sequence[Demographics]) -> tuple[list[list[str]], list[str | None]]:
        """``blocking_keys`` and ``forms`` of the same records, standardising them once."""
        ...

    def form_is_current(self, form: str) -> bool:
        """Whether ``form`` was written under the matcher's current standardisation."""
        ...

    def score(self, probe: Demographics | str, candidates: Sequence[Demographics | str]) -> list[PairScore]:
        """One score per candidate, in the candidates' order. The probe and each candidate are
        their (matchable) demographics, or their current form: then they are not standardised again."""
        ...


class Candidate(NamedTuple):
    """A stored record that shares a blocking key (or the identifier asked for) with a probe.

    A named tuple: a registration makes dozens, and a tuple is made several times faster than
    a frozen dataclass."""

    record_id: int
    mpi_id: str  # the person it is linked to
    form: str | None  # the stored form of its current version, if it has one
    record: SourceRecord | None  # the record itself, read only when it has no form
    # (sex, birth date) as stored, of a record carrying the identifier the probe was searched
    # with (``None`` for the others): they decide whether a shared matricule links or collides.
    holder_traits: tuple[str | None, str | None] | None = None

    @property
    def has_identifier(self) -> bool:
        return self.holder_traits is not None


@dataclass(frozen=True)
class NewIdentifier:
    """An identifier to store with a new record (see ``UnitOfWork.add_indexed_record``)."""

    system: str
    value: str
    raw: str
    status: MatriculeFlag


@dataclass(frozen=True)
class NewLink:
    """The link to store with a new record (see ``UnitOfWork.add_indexed_record``)."""

    mpi_id: str
    provenance: LinkProvenance
    score: float | None = None
    model_version: str | None = None
    reason: str | None = None

    def of(self, record_id: int, at: datetime, actor: str) -> Link:
        """The link as stored for the record ``record_id``, made at ``at`` by ``actor``."""
        return Link(
            record_id, self.mpi_id, self.provenance, at, actor, self.score, self.model_version, self.reason
        )


@dataclass(frozen=True)
class RecordIndex:
    """What the blocking-key index holds of a record: its keys and its stored form, if any."""

    blocking_keys: Sequence[str]
    form: str | None


@dataclass(frozen=True)
class LinkRow:
    """One line of an export: a source record and the person it is linked to."""

    source: str
    local_id: str
    record_id: int
    mpi_id: str
    link_type: str
    score: float | None


# The traits a demographics search looks at (the keys of ``SearchColumns.traits``).
SEARCHED_FIELDS = ("family_name", "birth_name", "given_names", "birth_date", "sex", "postcode", "city")


@dataclass(frozen=True)
class SearchColumns:
    """Records in use with their person and searchable traits, column by column: entry ``i``
    of every list is one record. ``traits`` holds one list per name of ``SEARCHED_FIELDS``."""

    record_ids: list[int]
    mpi_ids: list[str]
    traits: dict[str, list[str | None]]


@dataclass(frozen=True)
class Continuation:
    """The rest of a paged query's answer, kept until its consumer asks for the next page (PDQ's
    DSC continuation pointer): in the store, so that any server process can serve it."""

    token: str  # the pointer handed to the consumer
    sender: tuple[str, str]  # (application, facility) of the consumer it was given to
    tag: str  # the query tag it was given for (QPD-2): a cancellation names it
    query: str  # the query as received (the QPD segment): the next page must repeat it
    remaining: tuple[tuple[str, float], ...]  # (MPI id, confidence) of the hits not yet shown
    total: int  # hits of the whole answer
    created_at: datetime
    taken_by: str | None = None  # the request (MSH-10) that took the next page, once taken


class UnitOfWork(Protocol):
    """Everything one transaction may read or write. Obtained only through :meth:`Store.run`."""

    # -- source records -------------------------------------------------------------
    def find_record(self, key: RecordKey) -> SourceRecord | None: ...

    def get_records(self, record_ids: Sequence[int]) -> dict[int, SourceRecord]: ...

    def records_after(self, record_id: int, limit: int) -> list[SourceRecord]:
        """Up to ``limit`` records with a larger id, by id, locked against change until commit."""
        ...

    def add_record(
        self, key: RecordKey, demographics: Demographics, matricule: MatriculeFlag, at: datetime, actor: str
    ) -> SourceRecord:
        """Store version 1 of a new record and return it with its assigned id."""
        ...

    def add_indexed_record(
        self,
        key: RecordKey,
        demographics: Demographics,
        matricule: MatriculeFlag,
        at: datetime,
        actor: str,
        identifier: NewIdentifier | None,
        index: RecordIndex,
        link: NewLink | None = None,
        *,
        members: bool = False,
        new_person: Person | None = None,
    ) -> tuple[SourceRecord, RecordIdentifier | None, list[SourceRecord] | None]:
        """Store version 1 of a new record with its first identifier (if any), its blocking keys,
        its stored form and its link (if any: ``link.of(record_id, at, actor)``); return the record
        and the identifier with their assigned ids, and with ``members`` (and a link) the current
        records of the person it is linked to, the new one included, as ``records_of_person``
        gives them (read in the same round trip where the store can). ``new_person``, the person
        ``link`` points to, is stored first (``add_person``: a person created with its first
        record, in the same round trip where the store can)."""
        ...

    def add_record_version(
        self, record: SourceRecord, actor: str, *, same_demographics: bool = False
    ) -> None:
        """Store ``record`` (whose ``version`` is one more than the current) as the new head; the
        record's stored form, which described the previous version, is dropped, unless
        ``same_demographics`` says the new version only changes the key (it then describes it too)."""
        ...

    def record_versions(self, record_id: int) -> list[RecordVersion]: ...

    # -- identifiers ----------------------------------------------------------------
    def active_identifiers(self, record_id: int) -> list[RecordIdentifier]: ...

    def add_identifier(
        self,
        record_id: int,
        system: str,
        value: str,
        raw: str,
        status: MatriculeFlag,
        at: datetime,
    ) -> RecordIdentifier: ...

    def save_identifier(self, identifier: RecordIdentifier) -> None: ...

    def records_with_identifier(self, system: str, value: str) -> list[int]:
        """Records whose *active* identifier of ``system`` is ``value``."""
        ...

    # -- blocking-key index ---------------------------------------------------------
    def lock_keys(self, keys: Sequence[str]) -> None:
        """Hold the keys until commit, so racing registrations of one person run one after another."""
        ...

    def index_record(
        self, record_id: int, version: int, keys: Sequence[str], form: str | None = None
    ) -> None:
        """Make ``keys`` the record's blocking keys and ``form`` the stored form of its ``version``.

        A form is only ever read back with the version it was stored for: a record given a new
        version without a new form is standardised afresh when scored."""
        ...

    def records_with_keys(self, keys: Sequence[str]) -> list[int]: ...

    def candidate_records(
        self, keys: Sequence[str], identifier: tuple[str, str] | None = None
    ) -> list[Candidate]:
        """Records sharing a blocking key, or the active ``(system, value)`` identifier, by record
        id: a probe's candidates, each with its person and its stored form; the record itself is
        read only for those without a form."""
        ...

    def record_and_candidates(
        self, key: RecordKey, keys: Sequence[str], identifier: tuple[str, str] | None = None
    ) -> tuple[SourceRecord | None, list[Candidate]]:
        """The record of ``key`` if there is one (its candidates are then not read: ``[]``), else
        no record and ``candidate_records(keys, identifier)``: the reads of a registration once
        its keys are locked (one round trip where the store can)."""
        ...

    # -- persons and links ----------------------------------------------------------
    def get_person(self, mpi_id: str) -> Person | None: ...

    def get_persons(self, mpi_ids: Sequence[str]) -> dict[str, Person]:
        """Several persons in one read (missing ids are left out)."""
        ...

    def lock_persons(self, mpi_ids: Sequence[str]) -> dict[str, Person]:
        """Read and lock persons against concurrent change until commit (missing ids are left out)."""
        ...

    def add_person(self, person: Person) -> None: ...

    def save_person(self, person: Person) -> None: ...

    def get_links(self, record_ids: Sequence[int]) -> dict[int, Link]: ...

    def links_of_person(self, mpi_id: str) -> list[Link]: ...

    def records_of_persons(self, mpi_ids: Sequence[str]) -> list[int]:
        """The ids of the records linked to any of ``mpi_ids``, sorted."""
        ...

    def records_of_person(self, mpi_id: str) -> list[SourceRecord]:
        """The current versions of the records linked to ``mpi_id``, by record id, without those
        their source superseded (``supersede_record``)."""
        ...

    def current_records_by_person(self, mpi_ids: Sequence[str]) -> dict[str, list[SourceRecord]]:
        """``records_of_person`` of each of ``mpi_ids`` (empty for an unknown id), in one read."""
        ...

    def linked_records(self, record_ids: Sequence[int]) -> list[tuple[SourceRecord, str]]:
        """Each existing record of ``record_ids`` with the MPI id it is linked to, by record id."""
        ...

    def save_link(self, link: Link) -> None:
        """Insert or replace the link of ``link.record_id``."""
        ...

    # -- review tasks ---------------------------------------------------------------
    def add_review(self, task: ReviewTask) -> ReviewTask:
        """Store a new task (its ``task_id`` is ignored) and return it with its assigned id."""
        ...

    def get_review(self, task_id: int) -> ReviewTask | None: ...

    def save_review(self, task: ReviewTask) -> None: ...

    def pending_reviews_of_persons(self, mpi_ids: Sequence[str]) -> list[ReviewTask]: ...

    def list_reviews(
        self, statuses: Sequence[ReviewStatus], limit: int, offset: int = 0
    ) -> list[ReviewTask]: ...

    def add_not_duplicate(self, decision: NotDuplicate) -> None: ...

    def not_duplicate_partners(self, mpi_id: str) -> set[str]: ...

    # -- event log ------------------------------------------------------------------
    def append_event(self, event: Event, persons: Sequence[Person] = ()) -> int:
        """Save ``persons`` (already stored, changed by the operation), append ``event`` and
        return its sequence number."""
        ...

    def events(self, after: int = 0, limit: int | None = None) -> list[Event]: ...

    def events_in(self, spans: Sequence[tuple[int, int]], limit: int | None = None) -> list[Event]:
        """The events whose sequence number lies in one of ``spans`` (first, last; both
        included), in order, the first ``limit`` of them: a reader's look back at holes it left
        in the log."""
        ...

    def events_about(self, mpi_id: str) -> list[Event]: ...

    # -- bulk writes (loading a batch into an empty registry) -----------------------
    def begin_bulk_load(self) -> None:
        """The first call of a unit of work that loads an empty registry with the methods below:
        a store may then check references and build secondary indexes once, at the end."""
        ...

    def finish_bulk_load(self) -> None:
        """The last call of that unit of work; raises if a deferred check fails."""
        ...

    def add_records(
        self, rows: Sequence[tuple[RecordKey, Demographics, MatriculeFlag]], at: datetime, actor: str
    ) -> list[SourceRecord]:
        """Store version 1 of many new records; returns them with their ids, in order."""
        ...

    def add_identifiers(self, identifiers: Sequence[RecordIdentifier]) -> list[RecordIdentifier]:
        """Store new identifiers (their ``identifier_id`` is ignored); returns them with ids, in order."""
        ...

    def add_blocking_keys(self, batches: Iterable[Sequence[tuple[int, str]]]) -> None:
        """Index ``(record_id, key)`` pairs of records that have no keys yet, all in one call, batch
        by batch: a store may stage them and build its index once, from sorted rows."""
        ...

    def add_forms(self, rows: Iterable[tuple[int, str]]) -> None:
        """Store ``(record_id, form)`` of version 1 of records that have no form yet."""
        ...

    def add_persons(self, persons: Sequence[Person]) -> None: ...

    def add_links(self, links: Sequence[Link]) -> None:
        """Link records that have no link yet."""
        ...

    def add_reviews(self, tasks: Sequence[ReviewTask]) -> list[ReviewTask]:
        """Store new tasks (their ``task_id`` is ignored); returns them with ids, in order."""
        ...

    def append_events(self, events: Sequence[Event]) -> list[int]: ...

    # -- whole-registry reads -------------------------------------------------------
    def link_rows(self, batch_size: int) -> Iterator[list[LinkRow]]: ...

    def search_columns(self, batch_size: int) -> Iterator[SearchColumns]:
        """Every record in use (linked, and not superseded by its source's merge) with its
        person and searchable traits, by record id, ``batch_size`` records at a time."""
        ...

    def count_records(self) -> int: ...

    def form_coverage(self) -> tuple[int, tuple[str, ...]]:
        """How many records have a stored form, and the forms of the oldest and the newest record
        that have one (none if no record has)."""
        ...

    def snapshot(self) -> RegistryState:
        """Every record, version, identifier, person, link, task and decision: for verification."""
        ...

    # -- superseded records (a source merged one of its local ids into another) ----
    def supersede_record(self, record_id: int, replaced_by: int, at: datetime, actor: str) -> None: ...

    def superseded_records(self, record_ids: Sequence[int]) -> dict[int, int]:
        """For each of ``record_ids`` its source retired, the record that replaced it."""
        ...

    # -- at-least-once messaging: receipts in, outbox out ---------------------------
    def find_receipt(self, key: MessageKey) -> Receipt | None: ...

    def add_receipt(self, receipt: Receipt) -> None: ...

    def forget_receipts(self, before: datetime, limit: int) -> int:
        """Delete the ``limit`` oldest receipts received before ``before`` (and any received at the
        same instant as the last of them); how many."""
        ...

    def last_event_seq(self) -> int:
        """The sequence number of the newest event (0 for an empty log)."""
        ...

    def event_cursor(self, name: str) -> int | None:
        """How far the reader ``name`` has processed the event log; ``None`` before its first run."""
        ...

    def set_event_cursor(self, name: str, seq: int) -> None: ...

    def add_outbound(self, messages: Sequence[OutboundMessage]) -> None:
        """Store new messages (their ``message_id`` is ignored)."""
        ...

    def pending_outbound(self, limit: int) -> list[OutboundMessage]:
        """Pending messages, oldest first."""
        ...

    def pending_head(self, consumer: str) -> OutboundMessage | None:
        """``consumer``'s oldest pending message, if any."""
        ...

    def pending_heads(self) -> list[OutboundMessage]:
        """The oldest pending message of each consumer that has one, oldest first."""
        ...

    def save_outbound(self, message: OutboundMessage) -> None: ...

    def last_announced(self, consumer: str, mpi_ids: Sequence[str]) -> dict[str, str]:
        """Per person, the ``identifiers`` of the newest message to ``consumer`` about it that the
        consumer did not refuse (pending or delivered)."""
        ...

    def rename_record(self, record_id: int, key: RecordKey) -> None:
        """Give a record the local id its source corrected (the caller stores a new version too)."""
        ...

    # -- the access audit trail ------------------------------------------------------
    def add_accesses(self, accesses: Sequence[Access]) -> None:
        """Append reads of patient data to the audit trail (their ``access_id`` is ignored)."""
        ...

    def accesses(
        self, *, mpi_id: str | None = None, actor: str | None = None, before: int | None = None, limit: int
    ) -> list[Access]:
        """Recorded accesses, newest first: those that showed ``mpi_id``, those by ``actor`` (both
        when both are given), with an ``access_id`` below ``before`` (to page on)."""
        ...

    # -- continuations of paged queries --------------------------------------------
    def add_continuation(self, continuation: Continuation) -> None: ...

    def find_continuation(self, token: str) -> Continuation | None: ...

    def take_continuation(self, token: str, request: str) -> bool:
        """Mark one taken by ``request``; ``False`` when it was not there or already taken (a
        concurrent transaction took it first)."""
        ...

    def remove_continuations(self, sender: tuple[str, str], tag: str) -> int:
        """Delete those given to ``sender`` for the query ``tag``; returns how many."""
        ...

    def remove_continuations_before(self, before: datetime) -> int:
        """Delete those created before ``before`` (expired ones); returns how many."""
        ...

    # -- several commands in one transaction ----------------------------------------
    def savepoint(self, work: Callable[[], T]) -> T:
        """Run ``work`` (which uses this unit of work) so that if it raises, only its own changes
        are rolled back; the exception propagates and the transaction stays usable."""
        ...

    def person_by_record(self, key: RecordKey) -> tuple[Person, list[SourceRecord]] | None:
        """The person a local id in use is linked to, with the person's records in use (by record
        id; those their source retired by merging are left out), in as few reads as the store can;
        ``None`` if the local id is unknown, retired or linked to no person."""
        ...


class Store(Protocol):
    """Runs units of work as transactions."""

    def run(self, work: Callable[[UnitOfWork], T], *, write: bool = True) -> T:
        """Run ``work`` in one transaction and commit it, or roll back if it raises.

        A transaction lost to a concurrent one (a deadlock, a serialisation
        failure, a busy database) is retried from the start, so ``work`` must
        have no effect outside the unit of work.
        """
        ...

    def close(self) -> None: ...
