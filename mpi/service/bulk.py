"""Bulk loading: a whole batch, already clustered by the matching engine, into an empty registry.

Registering a million records one by one costs a million transactions; here
the batch engine decides the clusters (the same kernel and model as online
matching), and the records, identifiers, blocking keys, persons, links, review
tasks and events are written many rows per statement, in one transaction: a
load that fails leaves the registry empty, ready for the same command again.

What is written is what registering the records one by one would leave, and
the log says so in the same terms: every person gets its own ``records.loaded``
event (its records, identifiers, links and the person as created), and the
pairs between clusters to review become review tasks in ``reviews.raised``
events that also flag their persons, as the online path does: a potential
duplicate for a review-band pair, a potential collision for two records that
share a valid matricule but neither sex nor birth date (a clustering that
registers as one by one never puts those in one person: see
:mod:`mpi.batch.load_job`). The work that online registration does one record
at a time is done here for all of them at once: matricules are checked as one
column, golden records chosen with sorts over every record
(:func:`mpi.service.golden.golden_columns`), and the blocking keys handed to
the store in one call, so it can build its index once.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import numpy.typing as npt

from mpi.domain.commands import SYSTEM_ACTOR
from mpi.domain.events import (
    Change,
    Event,
    EventKind,
    IdentifierChanged,
    LinkChanged,
    PersonChanged,
    RecordChanged,
    ReviewChanged,
)
from mpi.domain.identifiers import MatriculeStatus, classify_matricules
from mpi.domain.mpi_id import new_mpi_id
from mpi.domain.persons import Link, LinkProvenance, Person, PersonFlag, PersonStatus, TrustStatus
from mpi.domain.records import DEMOGRAPHIC_FIELDS, Demographics, MatriculeFlag, RecordIdentifier, RecordKey
from mpi.domain.reviews import ReviewKind, ReviewStatus, ReviewTask
from mpi.domain.scores import PairScore
from mpi.errors import Conflict, InputError
from mpi.service.evidence import for_matching
from mpi.service.golden import MemberColumns, SurvivorshipRules, golden_columns
from mpi.service.operations import FLAG_OF_KIND, MATRICULE_SYSTEM
from mpi.service.ports import Matcher, Store, UnitOfWork

LINK_REASON = "clustered by the batch load"
REVIEWS_REASON = "review-band pairs and matricule collisions of the batch load"
# A person's history decodes every event about it: review events of a thousand tasks stay small.
REVIEWS_PER_EVENT = 1_000
_FLAG_OF_STATUS = {int(status): MatriculeFlag[status.name] for status in MatriculeStatus}
_demographics_of = operator.attrgetter(*DEMOGRAPHIC_FIELDS)
# The kinds a bulk load raises, and which of them a pair of persons gets when it has both.
_PAIR_KINDS = {ReviewKind.POTENTIAL_DUPLICATE: 0, ReviewKind.POTENTIAL_COLLISION: 1}
# The keys of the records at these positions of the load, as Matcher.blocking_keys gives them.
KeysOf = Callable[[Sequence[int]], list[list[str]]]
FormsOf = Callable[[Sequence[int]], list[str | None]]


@dataclass(frozen=True)
class BulkRecord:
    key: RecordKey
    demographics: Demographics
    cluster: int  # records with the same cluster become one person
    score: float | None = None  # the match probability that joined it to its cluster


@dataclass(frozen=True)
class BulkReview:
    """A pair of the batch to review, by position in the loaded records."""

    record: int
    candidate: int
    score: PairScore
    kind: ReviewKind = ReviewKind.POTENTIAL_DUPLICATE  # or POTENTIAL_COLLISION


@dataclass(frozen=True)
class LoadSummary:
    records: int
    persons: int
    review_tasks: int


@dataclass
class _Plan:
    """Everything about the load that does not depend on ids the store assigns."""

    batches: list[list[list[int]]]  # positions, by person (in order of first appearance), by batch
    person_of: npt.NDArray[np.int64]  # per position
    mpi_ids: list[str]  # per person
    goldens: list[Demographics]  # per person
    retrieved: npt.NDArray[np.bool_]  # per person
    flags: list[MatriculeFlag]  # per position
    checked: list[str | None]  # per position: the valid 13-digit matricule


def _batches(records: Sequence[BulkRecord], batch_size: int) -> list[list[list[int]]]:
    """Positions grouped by cluster (in order of first appearance), clusters grouped into batches."""
    members: dict[int, list[int]] = {}
    seen: set[RecordKey] = set()
    for position, record in enumerate(records):
        if record.key in seen:
            raise InputError("bulk load", f"source record {record.key} appears twice; load it once")
        seen.add(record.key)
        members.setdefault(record.cluster, []).append(position)
    batches: list[list[list[int]]] = [[]]
    size = 0
    for cluster in members.values():
        if size and size + len(cluster) > batch_size:
            batches.append([])
            size = 0
        batches[-1].append(cluster)
        size += len(cluster)
    return [batch for batch in batches if batch]


def _plan(records: Sequence[BulkRecord], batch_size: int, rules: SurvivorshipRules) -> _Plan:
    batches = _batches(records, batch_size)
    n = len(records)
    raw = np.array([r.demographics.national_id for r in records], dtype=object)
    checked, status = classify_matricules(raw)
    person_of = np.empty(n, dtype=np.int64)
    persons = 0
    for batch in batches:
        for cluster in batch:
            person_of[cluster] = persons
            persons += 1
    values = [_demographics_of(r.demographics) for r in records]
    demographics = (
        {
            name: np.array(column, dtype=object)
            for name, column in zip(DEMOGRAPHIC_FIELDS, zip(*values, strict=True), strict=True)
        }
        if values
        else {name: np.array([], dtype=object) for name in DEMOGRAPHIC_FIELDS}
    )
    demographics["national_id"] = checked
    # Within a person every record has the same instant (one batch) and ids in position order:
    # positions stand in for both in the survivorship order.
    members = MemberColumns(
        person=person_of,
        record_id=np.arange(n, dtype=np.int64),
        authority=[r.key.authority for r in records],
        updated_at=np.zeros(n, dtype=np.float64),
        valid_matricule=np.isin(status, (MatriculeStatus.VALID, MatriculeStatus.UPGRADED)),
        demographics=demographics,
    )
    chosen, retrieved = golden_columns(members, persons, rules)
    goldens = [Demographics(*values) for values in zip(*(chosen[f] for f in DEMOGRAPHIC_FIELDS), strict=True)]
    return _Plan(
        batches=batches,
        person_of=person_of,
        mpi_ids=[new_mpi_id() for _ in range(persons)],
        goldens=goldens,
        retrieved=retrieved,
        flags=[_FLAG_OF_STATUS[s] for s in status.tolist()],
        checked=checked.tolist(),
    )


def _best_pairs(reviews: Sequence[BulkReview], person_of: npt.NDArray[np.int64]) -> list[BulkReview]:
    """One review per pair of persons, in order of first appearance: a collision if any of their
    record pairs is one (online, one conflicting record makes its person a collision), with its
    best-scoring record pair of that kind."""
    best: dict[tuple[int, int], BulkReview] = {}
    for review in reviews:
        if review.kind not in _PAIR_KINDS:
            raise ValueError(f"a bulk load raises no {review.kind} task")
        a, b = int(person_of[review.record]), int(person_of[review.candidate])
        if a == b:
            continue
        pair = (a, b) if a < b else (b, a)
        current = best.get(pair)
        if current is None or (_PAIR_KINDS[review.kind], review.score.match_probability) > (
            _PAIR_KINDS[current.kind],
            current.score.match_probability,
        ):
            best[pair] = review
    return list(best.values())


def _flags(pairs: Sequence[BulkReview], person_of: npt.NDArray[np.int64]) -> dict[int, frozenset[PersonFlag]]:
    """The flags the review tasks give their persons, by person (only those with a task)."""
    flags: dict[int, set[PersonFlag]] = {}
    for review in pairs:
        for p in (review.record, review.candidate):
            flags.setdefault(int(person_of[p]), set()).add(FLAG_OF_KIND[review.kind])
    return {index: frozenset(found) for index, found in flags.items()}


def _key_batches(
    plan: _Plan, keys_of: KeysOf, record_ids: list[int], report: Callable[[int], None]
) -> Iterator[list[tuple[int, str]]]:
    """The ``(record_id, key)`` pairs of every record, batch by batch, each key once per record."""
    for batch in plan.batches:
        positions = [p for cluster in batch for p in cluster]
        yield [
            (record_ids[p], key)
            for p, keys in zip(positions, keys_of(positions), strict=True)
            for key in dict.fromkeys(keys)
        ]
        report(len(positions) // 2)


def _form_rows(plan: _Plan, forms_of: FormsOf, record_ids: list[int]) -> Iterator[tuple[int, str]]:
    """``(record_id, form)`` of every record that has a form, in the order the records were written."""
    for batch in plan.batches:
        positions = [p for cluster in batch for p in cluster]
        for p, form in zip(positions, forms_of(positions), strict=True):
            if form is not None:
                yield record_ids[p], form


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
        batch_size: int = 20_000,
        progress: Callable[[int], None] | None = None,
        blocking_keys: KeysOf | None = None,
        forms: FormsOf | None = None,
    ) -> LoadSummary:
        """Load ``records`` into an empty registry (``Conflict`` otherwise), one person per cluster.

        ``blocking_keys`` gives the keys of records by position, when the caller has them
        cheaper than the matcher (the batch engine has standardised every row already); they
        must be the keys ``Matcher.blocking_keys`` gives; ``forms`` likewise gives the records'
        stored forms, which must be those of ``Matcher.forms``. ``progress`` hears of every record
        twice: once written, once indexed.
        """
        if self._store.run(lambda uow: uow.count_records(), write=False):
            raise Conflict(
                "a bulk load needs an empty registry; register into an existing one record by record"
            )
        plan = _plan(records, batch_size, self._rules)
        matcher = self._matcher()
        keys_of = blocking_keys or self._matcher_keys(matcher, records, plan)
        forms_of = forms or self._matcher_forms(matcher, records, plan)
        pairs = _best_pairs(reviews, plan.person_of)
        flagged = _flags(pairs, plan.person_of)
        report = progress or (lambda _: None)

        def work(uow: UnitOfWork) -> LoadSummary:
            uow.begin_bulk_load()
            record_ids = np.zeros(len(records), dtype=np.int64)
            as_loaded: dict[int, Person] = {}  # the persons to flag, as first written
            for batch in plan.batches:
                written = self._write_batch(
                    uow, matcher.model_version, actor, records, plan, batch, flagged, as_loaded
                )
                positions = [p for cluster in batch for p in cluster]
                record_ids[positions] = written
                report(len(positions) - len(positions) // 2)
            uow.add_blocking_keys(_key_batches(plan, keys_of, record_ids.tolist(), report))
            uow.add_forms(_form_rows(plan, forms_of, record_ids.tolist()))
            per_event = min(batch_size, REVIEWS_PER_EVENT)
            tasks = self._raise_reviews(uow, pairs, plan, record_ids, as_loaded, actor, per_event)
            uow.finish_bulk_load()
            return LoadSummary(records=len(records), persons=len(plan.mpi_ids), review_tasks=tasks)

        return self._store.run(work)

    @staticmethod
    def _matcher_keys(matcher: Matcher, records: Sequence[BulkRecord], plan: _Plan) -> KeysOf:
        def keys_of(positions: Sequence[int]) -> list[list[str]]:
            return matcher.blocking_keys(
                [for_matching(records[p].demographics, plan.checked[p]) for p in positions]
            )

        return keys_of

    @staticmethod
    def _matcher_forms(matcher: Matcher, records: Sequence[BulkRecord], plan: _Plan) -> FormsOf:
        def forms_of(positions: Sequence[int]) -> list[str | None]:
            return matcher.forms([for_matching(records[p].demographics, plan.checked[p]) for p in positions])

        return forms_of

    def _write_batch(
        self,
        uow: UnitOfWork,
        model_version: str,
        actor: str,
        records: Sequence[BulkRecord],
        plan: _Plan,
        batch: list[list[int]],
        flagged: dict[int, frozenset[PersonFlag]],
        as_loaded: dict[int, Person],
    ) -> list[int]:
        """Records, identifiers, persons, links and one event per person; the records' new ids."""
        now = self._clock()
        positions = [p for cluster in batch for p in cluster]
        stored = uow.add_records(
            [(records[p].key, records[p].demographics, plan.flags[p]) for p in positions], now, actor
        )
        record_at = dict(zip(positions, stored, strict=True))
        wanted = []
        for p in positions:
            raw = records[p].demographics.national_id
            if raw is not None:
                value = plan.checked[p] or raw.strip()
                wanted.append(
                    RecordIdentifier(
                        0, record_at[p].record_id, MATRICULE_SYSTEM, value, raw, plan.flags[p], True, now
                    )
                )
        identifiers = {i.record_id: i for i in uow.add_identifiers(wanted)}
        persons: list[Person] = []
        links: list[Link] = []
        events: list[Event] = []
        for cluster in batch:
            index = int(plan.person_of[cluster[0]])
            trust = TrustStatus.RETRIEVED if plan.retrieved[index] else TrustStatus.PROVISIONAL
            person = Person(plan.mpi_ids[index], PersonStatus.ACTIVE, trust, plan.goldens[index], now)
            members = [record_at[p] for p in cluster]
            changes: list[Change] = [RecordChanged(m) for m in members]
            changes.extend(
                IdentifierChanged(identifiers[m.record_id].identifier_id, None, identifiers[m.record_id])
                for m in members
                if m.record_id in identifiers
            )
            # Its flag comes with its review tasks, in their event; the row is written once.
            changes.append(PersonChanged(person.mpi_id, None, person))
            if index in flagged:
                as_loaded[index] = person
                person = replace(person, flags=flagged[index])
            for p, member in zip(cluster, members, strict=True):
                link = Link(
                    member.record_id,
                    person.mpi_id,
                    LinkProvenance.AUTO,
                    now,
                    actor,
                    records[p].score,
                    model_version,
                    LINK_REASON,
                )
                links.append(link)
                changes.append(LinkChanged(member.record_id, None, link))
            persons.append(person)
            events.append(
                Event(EventKind.RECORDS_LOADED, now, actor, tuple(changes), subjects=(person.mpi_id,))
            )
        uow.add_persons(persons)
        uow.add_links(links)
        uow.append_events(events)
        return [record.record_id for record in stored]

    def _raise_reviews(
        self,
        uow: UnitOfWork,
        pairs: list[BulkReview],
        plan: _Plan,
        record_ids: npt.NDArray[np.int64],
        as_loaded: dict[int, Person],
        actor: str,
        batch_size: int,
    ) -> int:
        """One task per pair of persons, with the evidence of its best-scoring record pair, and one
        event per batch of tasks, as :meth:`Operation.raise_review` and ``finish`` would log them:
        a person's flags change in the event of the first task that gives it each of them."""
        flags: dict[int, frozenset[PersonFlag]] = {}  # per person, as the events so far leave them
        raised = 0
        for start in range(0, len(pairs), batch_size):
            now = self._clock()
            batch = pairs[start : start + batch_size]
            tasks = uow.add_reviews(
                [
                    ReviewTask(
                        task_id=0,
                        kind=review.kind,
                        status=ReviewStatus.OPEN,
                        record_id=int(record_ids[review.record]),
                        mpi_id=plan.mpi_ids[plan.person_of[review.record]],
                        candidate_mpi_id=plan.mpi_ids[plan.person_of[review.candidate]],
                        candidate_record_id=int(record_ids[review.candidate]),
                        match_probability=review.score.match_probability,
                        match_weight=review.score.match_weight,
                        comparisons=review.score.comparisons,
                        created_at=now,
                    )
                    for review in batch
                ]
            )
            changes: list[Change] = [ReviewChanged(task.task_id, None, task) for task in tasks]
            after = {
                index: flags.get(index, frozenset()) | added
                for index, added in _flags(batch, plan.person_of).items()
            }
            for index in sorted(after, key=lambda i: plan.mpi_ids[i]):
                if after[index] != flags.get(index):
                    before = replace(as_loaded[index], flags=flags.get(index, frozenset()))
                    changes.append(PersonChanged(before.mpi_id, before, replace(before, flags=after[index])))
                    flags[index] = after[index]
            subjects = dict.fromkeys(m for task in tasks for m in (task.mpi_id, task.candidate_mpi_id))
            uow.append_events(
                [Event(EventKind.REVIEWS_RAISED, now, actor, tuple(changes), REVIEWS_REASON, tuple(subjects))]
            )
            raised += len(tasks)
        return raised
