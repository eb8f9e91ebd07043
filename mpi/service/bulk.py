"""Bulk loading: a whole batch, already clustered by the matching engine, into an empty registry.

Registering a million records one by one costs a million transactions; here
the batch engine decides the clusters (the same kernel and model as online
matching), and the records, identifiers, blocking keys, persons, links and
events are written many rows per statement. Every person still gets its own
``records.loaded`` event carrying its records, identifiers, golden record and
links, so history and replay work exactly as for records registered online.
Review-band pairs between clusters become review tasks at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from mpi.domain.commands import SYSTEM_ACTOR
from mpi.domain.events import (
    Change,
    Event,
    EventKind,
    IdentifierChanged,
    LinkChanged,
    PersonChanged,
    RecordChanged,
)
from mpi.domain.mpi_id import new_mpi_id
from mpi.domain.persons import Link, LinkProvenance, Person, PersonStatus, TrustStatus
from mpi.domain.records import Demographics, RecordIdentifier, RecordKey, SourceRecord
from mpi.domain.reviews import ReviewKind
from mpi.domain.scores import PairScore
from mpi.errors import Conflict, InputError
from mpi.service.evidence import Probe, make_probes
from mpi.service.golden import SurvivorshipRules, refreshed
from mpi.service.operations import MATRICULE_SYSTEM, Operation, judge_matricule
from mpi.service.ports import Matcher, Store, UnitOfWork


@dataclass(frozen=True)
class BulkRecord:
    key: RecordKey
    demographics: Demographics
    cluster: int  # records with the same cluster become one person
    score: float | None = None  # the match probability that joined it to its cluster


@dataclass(frozen=True)
class BulkReview:
    """A review-band pair of the batch, by position in the loaded records."""

    record: int
    candidate: int
    score: PairScore


@dataclass(frozen=True)
class LoadSummary:
    records: int
    persons: int
    review_tasks: int


@dataclass(frozen=True)
class _Loaded:
    record_id: int
    mpi_id: str


def _clusters_in_chunks(records: Sequence[BulkRecord], per_transaction: int) -> list[list[list[int]]]:
    """Positions grouped by cluster (in order of first appearance), clusters grouped into chunks."""
    members: dict[int, list[int]] = {}
    seen: set[RecordKey] = set()
    for position, record in enumerate(records):
        if record.key in seen:
            raise InputError("bulk load", f"source record {record.key} appears twice; load it once")
        seen.add(record.key)
        members.setdefault(record.cluster, []).append(position)
    chunks: list[list[list[int]]] = [[]]
    size = 0
    for cluster in members.values():
        if size and size + len(cluster) > per_transaction:
            chunks.append([])
            size = 0
        chunks[-1].append(cluster)
        size += len(cluster)
    return [chunk for chunk in chunks if chunk]


class BulkLoader:
    def __init__(
        self,
        store: Store,
        matcher: Callable[[], Matcher],
        rules: SurvivorshipRules,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._matcher = matcher
        self._rules = rules
        self._clock = clock

    def load(
        self,
        records: Sequence[BulkRecord],
        reviews: Sequence[BulkReview] = (),
        *,
        actor: str = SYSTEM_ACTOR,
        per_transaction: int = 20_000,
        progress: Callable[[int], None] | None = None,
    ) -> LoadSummary:
        """Load ``records`` into an empty registry (``Conflict`` otherwise), one person per cluster."""
        if self._store.run(lambda uow: uow.count_records(), write=False):
            raise Conflict(
                "a bulk load needs an empty registry; register into an existing one record by record"
            )
        matcher = self._matcher()
        loaded: dict[int, _Loaded] = {}
        persons = 0
        for chunk in _clusters_in_chunks(records, per_transaction):
            positions = [p for cluster in chunk for p in cluster]
            probes = make_probes(matcher, [records[p].demographics for p in positions])
            probe_of = dict(zip(positions, probes, strict=True))

            def work(
                uow: UnitOfWork, chunk: list[list[int]] = chunk, probe_of: dict[int, Probe] = probe_of
            ) -> dict[int, _Loaded]:
                return self._write_chunk(uow, matcher.model_version, actor, records, chunk, probe_of)

            loaded.update(self._store.run(work))
            persons += len(chunk)
            if progress is not None:
                progress(len(positions))
        tasks = self._raise_reviews(reviews, loaded, actor, per_transaction)
        return LoadSummary(records=len(loaded), persons=persons, review_tasks=tasks)

    def _write_chunk(
        self,
        uow: UnitOfWork,
        model_version: str,
        actor: str,
        records: Sequence[BulkRecord],
        chunk: list[list[int]],
        probe_of: dict[int, Probe],
    ) -> dict[int, _Loaded]:
        now = self._clock()
        positions = [p for cluster in chunk for p in cluster]
        stored = uow.add_records(
            [(records[p].key, records[p].demographics, probe_of[p].matricule_flag) for p in positions],
            now,
            actor,
        )
        record_at = dict(zip(positions, stored, strict=True))
        wanted = []
        for p in positions:
            raw = records[p].demographics.national_id
            if raw is not None:
                normalised, flag = judge_matricule(raw)
                value = normalised or raw.strip()
                wanted.append(
                    RecordIdentifier(0, record_at[p].record_id, MATRICULE_SYSTEM, value, raw, flag, True, now)
                )
        identifiers = {i.record_id: i for i in uow.add_identifiers(wanted)}
        uow.add_blocking_keys(
            [(record_at[p].record_id, key) for p in positions for key in probe_of[p].blocking_keys]
        )
        persons: list[Person] = []
        links: list[Link] = []
        events: list[Event] = []
        loaded: dict[int, _Loaded] = {}
        for cluster in chunk:
            members: list[SourceRecord] = [record_at[p] for p in cluster]
            blank = Person(new_mpi_id(), PersonStatus.ACTIVE, TrustStatus.PROVISIONAL, Demographics(), now)
            person = refreshed(blank, members, self._rules)
            changes: list[Change] = [RecordChanged(m) for m in members]
            changes.extend(
                IdentifierChanged(identifiers[m.record_id].identifier_id, None, identifiers[m.record_id])
                for m in members
                if m.record_id in identifiers
            )
            changes.append(PersonChanged(person.mpi_id, None, person))
            for p, member in zip(cluster, members, strict=True):
                link = Link(
                    member.record_id,
                    person.mpi_id,
                    LinkProvenance.AUTO,
                    now,
                    actor,
                    records[p].score,
                    model_version,
                    "clustered by the batch load",
                )
                links.append(link)
                changes.append(LinkChanged(member.record_id, None, link))
                loaded[p] = _Loaded(member.record_id, person.mpi_id)
            persons.append(person)
            events.append(
                Event(EventKind.RECORDS_LOADED, now, actor, tuple(changes), subjects=(person.mpi_id,))
            )
        uow.add_persons(persons)
        uow.add_links(links)
        uow.append_events(events)
        return loaded

    def _raise_reviews(
        self, reviews: Sequence[BulkReview], loaded: dict[int, _Loaded], actor: str, per_transaction: int
    ) -> int:
        """One task per pair of persons, with the evidence of its best-scoring record pair."""
        best: dict[tuple[str, str], BulkReview] = {}
        for review in reviews:
            a, b = loaded[review.record].mpi_id, loaded[review.candidate].mpi_id
            if a == b:
                continue
            pair = (a, b) if a < b else (b, a)
            current = best.get(pair)
            if current is None or review.score.match_probability > current.score.match_probability:
                best[pair] = review
        ordered = list(best.values())
        raised = 0
        for start in range(0, len(ordered), per_transaction):
            batch = ordered[start : start + per_transaction]

            def work(uow: UnitOfWork, batch: list[BulkReview] = batch) -> int:
                op = Operation(uow, self._rules, self._clock(), actor)
                count = 0
                for review in batch:
                    probe, candidate = loaded[review.record], loaded[review.candidate]
                    task = op.raise_review(
                        ReviewKind.POTENTIAL_DUPLICATE,
                        probe.record_id,
                        probe.mpi_id,
                        candidate.mpi_id,
                        candidate.record_id,
                        review.score.match_probability,
                        review.score.match_weight,
                        review.score.comparisons,
                    )
                    count += task is not None
                op.finish(EventKind.REVIEWS_RAISED, "review-band pairs of the batch load")
                return count

            raised += self._store.run(work)
        return raised
