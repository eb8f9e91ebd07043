"""Register, update and search: the online matching use cases.

register: standardise, fetch candidates through the blocking-key index, score
with the matcher, then link to the best person above the link threshold or
create a person; candidates in the review band become review tasks.
update: store the new version and re-evaluate an AUTO link; a record that no
longer fits its person raises a review task and is never moved silently.
search: ranked persons with per-comparison weights; registers nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from mpi.domain.access import AccessAction
from mpi.domain.commands import RegisterRecord, UpdateRecord
from mpi.domain.events import EventKind
from mpi.domain.limits import check_record
from mpi.domain.persons import Link, LinkProvenance, Person
from mpi.domain.records import Demographics, MatriculeFlag, RecordKey, SourceRecord
from mpi.domain.reviews import ReviewKind
from mpi.domain.scores import ComparisonOutcome, Decision
from mpi.service.access import Viewer
from mpi.service.evidence import PersonEvidence, Probe, gather, make_probe, make_probes, searched_identifier
from mpi.service.golden import SurvivorshipRules
from mpi.service.operations import Operation
from mpi.service.ports import Candidate, LinkRow, Matcher, NewLink, RecordIndex, Store, UnitOfWork

Clock = Callable[[], datetime]
Outcome = Literal["created", "linked", "updated", "unchanged"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def record_lock_key(key: RecordKey) -> str:
    """What a writer of the record with ``key`` locks (see ``UnitOfWork.lock_keys``)."""
    return f"rec:{key}"


@dataclass(frozen=True)
class RegistrationResult:
    record_id: int
    version: int
    mpi_id: str
    outcome: Outcome  # created: a new person; linked: an existing person; updated/unchanged: a known record
    score: float | None
    matricule: MatriculeFlag
    review_task_ids: tuple[int, ...]
    event_seq: int | None


@dataclass(frozen=True)
class FormCoverage:
    """How much of the registry the matcher can score from stored forms."""

    records: int
    with_form: int  # records with a stored form (whatever standardiser wrote it)
    current: bool  # the oldest and newest forms were written by this standardiser (it reads no other)

    @property
    def needs_reindex(self) -> bool:
        """Most records are standardised afresh at every match: ``mpi db reindex`` would help.

        A few records never have a form (a refused birth date, say): below one in a hundred
        missing, the cost is not worth a warning."""
        return self.records > 0 and (not self.current or self.with_form < 0.99 * self.records)


@dataclass(frozen=True)
class SearchHit:
    mpi_id: str
    match_probability: float
    match_weight: float
    decision: Decision | Literal["collision"]
    comparisons: tuple[ComparisonOutcome, ...]
    best_record_id: int
    golden: Demographics


class Registry:
    """The online MPI: one transaction per command, through the store's units of work."""

    def __init__(
        self,
        store: Store,
        matcher: Callable[[], Matcher],
        rules: SurvivorshipRules,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._matcher = matcher
        self._rules = rules
        self._clock = clock

    # -- commands -------------------------------------------------------------------
    def register(self, command: RegisterRecord) -> RegistrationResult:
        """Register a source record; a record the source already sent is updated instead."""
        check_record(command.key, command.demographics)
        matcher = self._matcher()
        probe = make_probe(matcher, command.demographics)
        return self._store.run(lambda uow: self._register(uow, matcher, probe, command))

    def upsert(
        self, key: RecordKey, demographics_of: Callable[[SourceRecord | None], Demographics], actor: str
    ) -> RegistrationResult:
        """Register the record of ``key``, or store a new version of it, with the demographics
        ``demographics_of`` gives from its current version (``None``: no such record yet).

        The current version is read under the record's lock, so changes applied to it by two
        callers at once are applied one after the other, never both to the same old version.
        ``demographics_of`` may raise to refuse the change; it may run more than once.
        """
        matcher = self._matcher()

        def work(uow: UnitOfWork) -> RegistrationResult:
            uow.lock_keys([record_lock_key(key)])
            current = uow.find_record(key)
            demographics = demographics_of(current)
            check_record(key, demographics)
            probe = make_probe(matcher, demographics)
            if current is None or demographics != current.demographics:
                uow.lock_keys(probe.lock_keys)  # as register does: see _register
            return self._register_found(
                uow, matcher, probe, RegisterRecord(key, demographics, actor), current
            )

        return self._store.run(work)

    def register_many(
        self,
        commands: Sequence[RegisterRecord],
        *,
        per_transaction: int = 500,
        progress: Callable[[int], None] | None = None,
    ) -> list[RegistrationResult]:
        """Register records in order, ``per_transaction`` to a transaction.

        Each record sees the ones before it, exactly as if they had been
        registered one by one; grouping only saves commits.
        """
        for command in commands:
            check_record(command.key, command.demographics)
        matcher = self._matcher()
        results: list[RegistrationResult] = []
        for start in range(0, len(commands), per_transaction):
            chunk = commands[start : start + per_transaction]
            probes = make_probes(matcher, [c.demographics for c in chunk])

            def work(
                uow: UnitOfWork, chunk: Sequence[RegisterRecord] = chunk, probes: list[Probe] = probes
            ) -> list[RegistrationResult]:
                return [self._register(uow, matcher, p, c) for p, c in zip(probes, chunk, strict=True)]

            results.extend(self._store.run(work))
            if progress is not None:
                progress(len(chunk))
        return results

    def update(self, command: UpdateRecord) -> RegistrationResult:
        """Store a new version of a known record (``NotFound`` for an unknown one)."""
        check_record(command.key, command.demographics)
        matcher = self._matcher()
        probe = make_probe(matcher, command.demographics)

        def work(uow: UnitOfWork) -> RegistrationResult:
            op = Operation(uow, self._rules, self._clock(), command.actor)
            uow.lock_keys([record_lock_key(command.key), *probe.lock_keys])
            current = op.record(command.key)
            return self._update(op, matcher, probe, current, command.demographics)

        return self._store.run(work)

    def search(
        self, demographics: Demographics, limit: int = 10, viewer: Viewer | None = None
    ) -> list[SearchHit]:
        """Persons ranked by how well they match ``demographics``; nothing is registered (but the
        search is recorded in the access audit trail for ``viewer``)."""
        matcher = self._matcher()
        probe = make_probe(matcher, demographics)

        def work(uow: UnitOfWork) -> list[SearchHit]:
            evidence = gather(uow, matcher, probe)[:limit]
            persons = uow.get_persons([e.mpi_id for e in evidence])  # one read, not one per hit
            if viewer is not None:
                given = "; ".join(f"{k}={v}" for k, v in demographics.as_dict().items() if v is not None)
                shown = [e.mpi_id for e in evidence]
                viewer.record(uow, self._clock(), AccessAction.PERSONS_SEARCHED, shown, given)
            return [_hit(e, persons.get(e.mpi_id)) for e in evidence]

        return self._store.run(work, write=viewer is not None)

    def reindex(self, *, batch_size: int = 2_000, progress: Callable[[int], None] | None = None) -> int:
        """Compute every record's blocking keys and stored form again, a batch per transaction.

        For a registry written before stored forms existed, or after the matching rules or the
        standardiser's data changed: until then its records are standardised at every match
        (a form of other rules is never read) and found through the keys they were given.
        The index is not registry state, so no event is written. Returns the records indexed.
        """
        matcher = self._matcher()
        done, after = 0, 0
        while True:

            def work(uow: UnitOfWork, after: int = after) -> list[int]:
                records = uow.records_after(after, batch_size)
                probes = make_probes(matcher, [r.demographics for r in records])
                for record, probe in zip(records, probes, strict=True):
                    uow.index_record(record.record_id, record.version, probe.blocking_keys, probe.form)
                return [r.record_id for r in records]

            indexed = self._store.run(work)
            if not indexed:
                return done
            done, after = done + len(indexed), indexed[-1]
            if progress is not None:
                progress(len(indexed))

    # -- reads ----------------------------------------------------------------------
    def export(
        self, sink: Callable[[list[LinkRow]], None], batch_size: int = 10_000, viewer: Viewer | None = None
    ) -> int:
        """Hand every record with its person to ``sink``, in batches, from one consistent read
        (recorded in the access audit trail for ``viewer`` before the first row is read)."""
        if viewer is not None:

            def record(uow: UnitOfWork) -> None:
                count = uow.count_records()
                viewer.record(uow, self._clock(), AccessAction.REGISTRY_EXPORTED, (), "every record", count)

            self._store.run(record)

        def work(uow: UnitOfWork) -> int:
            written = 0
            for batch in uow.link_rows(batch_size):
                sink(batch)
                written += len(batch)
            return written

        return self._store.run(work, write=False)

    def count_records(self) -> int:
        return self._store.run(lambda uow: uow.count_records(), write=False)

    def form_coverage(self) -> FormCoverage:
        def read(uow: UnitOfWork) -> FormCoverage:
            # The oldest and newest forms stand for the rest: an upgrade leaves the old records'
            # forms stale while new ones are current, and a reindex goes from oldest to newest.
            with_form, samples = uow.form_coverage()
            current = all(self._matcher().form_is_current(form) for form in samples)
            return FormCoverage(uow.count_records(), with_form, current)

        return self._store.run(read, write=False)

    # -- the decisions --------------------------------------------------------------
    def _register(
        self, uow: UnitOfWork, matcher: Matcher, probe: Probe, command: RegisterRecord
    ) -> RegistrationResult:
        # Racing registrations of one person wait here for each other, so the later
        # one finds the earlier one among its candidates (see UnitOfWork.lock_keys).
        uow.lock_keys([record_lock_key(command.key), *probe.lock_keys])
        existing, candidates = uow.record_and_candidates(
            command.key, probe.blocking_keys, searched_identifier(probe)
        )
        return self._register_found(uow, matcher, probe, command, existing, candidates)

    def _register_found(
        self,
        uow: UnitOfWork,
        matcher: Matcher,
        probe: Probe,
        command: RegisterRecord,
        existing: SourceRecord | None,
        candidates: Sequence[Candidate] | None = None,
    ) -> RegistrationResult:
        """Register, with the record's key and the probe's keys locked and the record read (and,
        for a new record, maybe its ``candidates``)."""
        op = Operation(uow, self._rules, self._clock(), command.actor)
        if existing is not None:
            return self._update(op, matcher, probe, existing, command.demographics)

        evidence = gather(uow, matcher, probe, candidates=candidates)
        targets = [e for e in evidence if e.decision == "link"]
        # Every person this registration may write (the one it links to, those it raises tasks
        # on) locked at once, in one order: a merge of two of them, which locks them in the same
        # order, waits for it or it for the merge, and the two never deadlock.
        op.lock_all(_involved(evidence))
        # Locked, following a merge that committed meanwhile to its survivor.
        target = op.lock_active_successor(targets[0].mpi_id) if targets else None
        if target is not None:
            mpi_id, best = target.mpi_id, targets[0]
            link_to = NewLink(
                mpi_id,
                LinkProvenance.AUTO,
                score=best.score.match_probability,
                model_version=matcher.model_version,
                reason="best candidate above the link threshold",
            )
            outcome: Outcome = "linked"
        else:
            mpi_id = op.new_person(with_first_record=True).mpi_id
            link_to = NewLink(
                mpi_id,
                LinkProvenance.AUTO,
                model_version=matcher.model_version,
                reason="no candidate above the link threshold",
            )
            outcome = "created"
        index = RecordIndex(probe.blocking_keys, probe.form)
        record = op.add_record(command.key, command.demographics, probe.matricule_flag, index, link_to)
        others = [e for e in evidence if e.mpi_id != (target.mpi_id if target else None)]
        tasks = _raise_reviews(op, record.record_id, mpi_id, others)
        event = op.finish(EventKind.RECORD_REGISTERED)
        return RegistrationResult(
            record.record_id,
            record.version,
            mpi_id,
            outcome,
            link_to.score,
            record.matricule,
            tasks,
            event.seq,
        )

    def _update(
        self, op: Operation, matcher: Matcher, probe: Probe, current: SourceRecord, demographics: Demographics
    ) -> RegistrationResult:
        if demographics == current.demographics:  # nothing to write, so nothing to lock
            link = op.link_of(current.record_id)
            return RegistrationResult(
                current.record_id,
                current.version,
                link.mpi_id,
                "unchanged",
                link.score,
                current.matricule,
                (),
                None,
            )
        # The evidence is gathered before any person is locked, so that the record's person and
        # every person it may be put before a reviewer with are locked at once, in one order, as
        # a merge locks its two: locking its own person first and the others later could
        # deadlock with a merge of two of them.
        seen = op.link_of(current.record_id)
        evidence = _evidence_if_auto(op, matcher, probe, seen, current.record_id)
        involved = _involved(evidence)
        link = op.lock_link(current.record_id, also=involved, read=seen)
        if link != seen or not all(op.person(mpi_id).is_active for mpi_id in involved):
            # A link or merge committed meanwhile: judge again on what the locks now hold still.
            evidence = _evidence_if_auto(op, matcher, probe, link, current.record_id)
            op.lock_all(_involved(evidence))
        record = op.add_version(current, demographics, probe.matricule_flag)
        op.uow.index_record(record.record_id, record.version, probe.blocking_keys, probe.form)
        op.touch(link.mpi_id)
        tasks: tuple[int, ...] = ()
        if link.provenance is LinkProvenance.AUTO:
            own = next((e for e in evidence if e.mpi_id == link.mpi_id), None)
            others = [e for e in evidence if e.mpi_id != link.mpi_id]
            tasks = _raise_reviews(op, record.record_id, link.mpi_id, others)
            has_company = len(op.uow.links_of_person(link.mpi_id)) > 1
            if has_company and (own is None or own.decision != "link"):
                mismatch = op.raise_review(
                    ReviewKind.RECORD_MISMATCH,
                    record.record_id,
                    link.mpi_id,
                    link.mpi_id,
                    own.record_id if own else None,
                    own.score.match_probability if own else 0.0,
                    own.score.match_weight if own else 0.0,
                    own.score.comparisons if own else (),
                )
                if mismatch is not None:
                    tasks = (*tasks, mismatch.task_id)
        event = op.finish(EventKind.RECORD_UPDATED)
        return RegistrationResult(
            record.record_id,
            record.version,
            link.mpi_id,
            "updated",
            link.score,
            record.matricule,
            tasks,
            event.seq,
        )


def _evidence_if_auto(
    op: Operation, matcher: Matcher, probe: Probe, link: Link, record_id: int
) -> list[PersonEvidence]:
    """What the other records say of an automatically linked record (a manual link is kept as
    a human made it, whatever they say)."""
    if link.provenance is not LinkProvenance.AUTO:
        return []
    return gather(op.uow, matcher, probe, exclude=record_id)


def _involved(evidence: Sequence[PersonEvidence]) -> list[str]:
    """The persons a decision on this evidence may write to (link or review)."""
    return sorted({e.mpi_id for e in evidence if e.decision != "none"})


def _raise_reviews(
    op: Operation, record_id: int, mpi_id: str, others: Sequence[PersonEvidence]
) -> tuple[int, ...]:
    raised = []
    for evidence in others:
        if evidence.decision is None:
            kind = ReviewKind.POTENTIAL_COLLISION
        elif evidence.decision in ("link", "review"):
            kind = ReviewKind.POTENTIAL_DUPLICATE
        else:
            continue
        task = op.raise_review(
            kind,
            record_id,
            mpi_id,
            evidence.mpi_id,
            evidence.record_id,
            evidence.score.match_probability,
            evidence.score.match_weight,
            evidence.score.comparisons,
        )
        if task is not None:
            raised.append(task.task_id)
    return tuple(raised)


def _hit(evidence: PersonEvidence, person: Person | None) -> SearchHit:
    return SearchHit(
        mpi_id=evidence.mpi_id,
        match_probability=evidence.score.match_probability,
        match_weight=evidence.score.match_weight,
        decision=evidence.decision if evidence.decision is not None else "collision",
        comparisons=evidence.score.comparisons,
        best_record_id=evidence.record_id,
        golden=person.golden if person is not None else Demographics(),
    )
