"""Which source records each person has: the skeleton of the record table.

Each person is registered in some sources (national register, hospitals, labs,
one general practice) and, within a source, may be registered again by mistake:
the number of records per (person, source) is geometric, so a source's expected
share of duplicate records equals its ``duplicate_rate``. Persons are laid out
one after another until exactly ``n_rows`` records exist.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mpi.errors import MPIError
from mpi.synthetic.config import SourceProfile
from mpi.synthetic.text import BoolArray, IntArray, TextArray, blank, digits


@dataclass(frozen=True)
class RecordPlan:
    """Row-level skeleton: which person and source each record belongs to."""

    person: IntArray  # person index of each row
    source: IntArray  # index into the sources of each row
    first: BoolArray  # the person's first record, usually the national register's
    repeat: BoolArray  # a further record of the person in the same source (a duplicate)
    cross_border: BoolArray  # per person

    @property
    def n_persons(self) -> int:
        return len(self.cross_border)

    def reordered(self, order: IntArray) -> RecordPlan:
        """The same records in another row order."""
        return RecordPlan(
            person=self.person[order],
            source=self.source[order],
            first=self.first[order],
            repeat=self.repeat[order],
            cross_border=self.cross_border,
        )


def _coverage(sources: Sequence[SourceProfile], cross_border: BoolArray) -> npt.NDArray[np.float64]:
    resident = np.array([s.coverage for s in sources])
    commuter = np.array([s.cross_border_coverage for s in sources])
    return np.where(cross_border[:, None], commuter[None, :], resident[None, :])


def _expected_records_per_person(sources: Sequence[SourceProfile], cross_border_share: float) -> float:
    mean = 0.0
    for share, flag in ((1.0 - cross_border_share, False), (cross_border_share, True)):
        coverage = _coverage(sources, np.array([flag]))[0]
        repeats = 1.0 / (1.0 - np.array([s.duplicate_rate for s in sources]))
        mean += share * max(float((coverage * repeats).sum()), 1.0)
    return mean


def _draw_counts(
    rng: np.random.Generator, n_persons: int, sources: Sequence[SourceProfile], cross_border_share: float
) -> tuple[IntArray, BoolArray]:
    cross_border = rng.random(n_persons) < cross_border_share
    coverage = _coverage(sources, cross_border)
    registered = rng.random(coverage.shape) < coverage
    groups = np.array([s.group for s in sources])
    for group in sorted(set(groups.tolist()) - {""}):
        members = np.flatnonzero(groups == group)
        cumulative = np.cumsum(coverage[:, members], axis=1)
        if (cumulative[:, -1] > 1.0 + 1e-9).any():
            raise MPIError(f"sources of group {group!r} cover more than every person")
        chosen = (rng.random(n_persons)[:, None] >= cumulative).sum(axis=1)
        registered[:, members] = chosen[:, None] == np.arange(len(members))[None, :]
    # Everyone is known somewhere: the unregistered join one source, drawn by coverage.
    nowhere = np.flatnonzero(~registered.any(axis=1))
    cumulative = np.cumsum(coverage[nowhere], axis=1)
    drawn = rng.random(len(nowhere)) * cumulative[:, -1]
    registered[nowhere, np.minimum((drawn[:, None] >= cumulative).sum(axis=1), len(sources) - 1)] = True
    stay = 1.0 - np.array([s.duplicate_rate for s in sources])
    counts = np.where(registered, rng.geometric(np.broadcast_to(stay, coverage.shape)), 0)
    return counts.astype(np.int64), cross_border


def plan_records(
    rng: np.random.Generator, n_rows: int, sources: Sequence[SourceProfile], cross_border_share: float
) -> RecordPlan:
    """Exactly ``n_rows`` records over as many persons as they need."""
    if n_rows < 1:
        raise MPIError("n_rows must be at least 1")
    if not sources:
        raise MPIError("at least one source is needed")
    if len({s.name for s in sources}) != len(sources):
        raise MPIError("source names must be unique")
    n_persons = math.ceil(n_rows / _expected_records_per_person(sources, cross_border_share) * 1.1) + 10
    while True:
        counts, cross_border = _draw_counts(rng, n_persons, sources, cross_border_share)
        if counts.sum() >= n_rows:
            break
        n_persons = math.ceil(n_persons * 1.25) + 10

    per_person = counts.sum(axis=1)
    last = int(np.searchsorted(np.cumsum(per_person), n_rows))
    counts, cross_border = counts[: last + 1], cross_border[: last + 1]
    # The last person keeps only as many records as are still needed, earliest sources first.
    keep = n_rows - int(per_person[:last].sum())
    before = np.cumsum(counts[last]) - counts[last]
    counts[last] = np.clip(keep - before, 0, counts[last])

    flat = counts.ravel()
    n_sources = len(sources)
    person = np.repeat(np.repeat(np.arange(last + 1), n_sources), flat)
    source = np.repeat(np.tile(np.arange(n_sources), last + 1), flat)
    starts = np.repeat(np.cumsum(flat) - flat, flat)
    repeat = np.arange(n_rows) - starts > 0
    first = np.ones(n_rows, dtype=bool)
    first[1:] = person[1:] != person[:-1]
    return RecordPlan(person=person, source=source, first=first, repeat=repeat, cross_border=cross_border)


def local_ids(rng: np.random.Generator, source: IntArray, sources: Sequence[SourceProfile]) -> TextArray:
    """Identifiers unique within each source, in the source's own scheme (prefix + digits)."""
    result = blank(len(source))
    for index, profile in enumerate(sources):
        rows = np.flatnonzero(source == index)
        if rows.size == 0:
            continue
        width = max(profile.local_id_digits, len(str(rows.size)) + 1)
        lowest = 10 ** (width - 1)
        # Distinct slots spread over the number range, so ids look issued over years, not 1, 2, 3.
        stride = (9 * lowest) // rows.size
        numbers = lowest + rng.permutation(rows.size) * stride + rng.integers(0, stride, rows.size)
        result[rows] = np.strings.add(profile.local_id_prefix, digits(numbers, width))
    return result
