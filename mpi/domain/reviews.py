"""Review tasks: potential duplicates and collisions put before a human."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from mpi.domain.scores import ComparisonOutcome


class ReviewKind(enum.StrEnum):
    POTENTIAL_DUPLICATE = "potential_duplicate"  # two persons that may be one
    POTENTIAL_COLLISION = "potential_collision"  # one matricule, conflicting strict traits
    RECORD_MISMATCH = "record_mismatch"  # an updated record no longer fits its person


class ReviewStatus(enum.StrEnum):
    OPEN = "open"
    DEFERRED = "deferred"  # still to be decided, put aside by a reviewer
    RESOLVED = "resolved"


class ReviewAction(enum.StrEnum):
    MERGE = "merge"  # the two persons are one: merge the candidate into the record's person
    NOT_A_DUPLICATE = "not_a_duplicate"  # two different persons: never propose the pair again
    CONFIRM_LINK = "confirm_link"  # the record does belong to its person: make the link MANUAL
    UNLINK_RECORD = "unlink_record"  # the record is someone else: give it a person of its own
    DEFER = "defer"


PAIR_ACTIONS = frozenset({ReviewAction.MERGE, ReviewAction.NOT_A_DUPLICATE, ReviewAction.DEFER})
MISMATCH_ACTIONS = frozenset({ReviewAction.CONFIRM_LINK, ReviewAction.UNLINK_RECORD, ReviewAction.DEFER})


def allowed_actions(kind: ReviewKind) -> frozenset[ReviewAction]:
    return MISMATCH_ACTIONS if kind is ReviewKind.RECORD_MISMATCH else PAIR_ACTIONS


@dataclass(frozen=True)
class ReviewTask:
    """A candidate pair in the review band, with the evidence a reviewer needs.

    ``mpi_id`` is the person of ``record_id`` when the task was raised;
    ``candidate_mpi_id`` the other person (the same one for a record mismatch).
    """

    task_id: int
    kind: ReviewKind
    status: ReviewStatus
    record_id: int
    mpi_id: str
    candidate_mpi_id: str
    candidate_record_id: int | None
    match_probability: float
    match_weight: float
    comparisons: tuple[ComparisonOutcome, ...]
    created_at: datetime
    resolution: ReviewAction | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    note: str | None = None

    @property
    def is_pending(self) -> bool:
        return self.status is not ReviewStatus.RESOLVED


def person_pair(first: str, second: str) -> tuple[str, str]:
    """An unordered pair of MPI ids in canonical order."""
    return (first, second) if first <= second else (second, first)


@dataclass(frozen=True)
class NotDuplicate:
    """A human decision that two persons are different people."""

    pair: tuple[str, str]
    decided_at: datetime
    actor: str
    reason: str | None = None
