"""Training the match model: u by random sampling, m by EM over blocking passes, prior
from deterministic rules with an assumed recall (the approach Splink takes).

EM runs on *distinct level patterns* with their counts, not on pairs: a few
million pairs collapse to a few thousand patterns, so each iteration is tiny.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from mpi.matching.blocking import (
    candidate_pairs,
    prepare_rule,
    random_pairs,
    total_comparisons,
)
from mpi.matching.comparators import NULL_LEVEL, Comparator
from mpi.matching.encoding import EncodedRecords, Indices
from mpi.rules.columns import SOURCE_COLUMN
from mpi.rules.parameters import LevelParameters, TrainedParameters
from mpi.rules.schema import BlockingRule, Rules

LevelMatrix = npt.NDArray[np.int8]
PROBABILITY_FLOOR = 1e-6
LOW_PRIOR = 1e-6

Progress = Callable[[str], None]


def _no_progress(_: str) -> None:
    return None


def compute_levels(
    comparators: Sequence[Comparator], records: EncodedRecords, left: Indices, right: Indices
) -> LevelMatrix:
    out = np.empty((left.shape[0], len(comparators)), dtype=np.int8)
    for k, comparator in enumerate(comparators):
        out[:, k] = comparator.levels(records, left, right)
    return out


@dataclass
class Patterns:
    """Distinct rows of a level matrix with how often each occurs."""

    levels: LevelMatrix
    counts: npt.NDArray[np.float64]

    @classmethod
    def of(cls, levels: LevelMatrix) -> Patterns:
        if levels.shape[0] == 0:
            return cls(levels, np.zeros(0))
        radix = np.int64(int(levels.max()) + 2)
        key = np.zeros(levels.shape[0], dtype=np.int64)
        for k in range(levels.shape[1]):
            key = key * radix + (levels[:, k].astype(np.int64) + 1)
        codes, _ = pd.factorize(key, sort=False)
        counts = np.bincount(codes).astype(np.float64)
        first = np.full(counts.size, -1, dtype=np.int64)
        first[codes[::-1]] = np.arange(codes.size - 1, -1, -1)
        return cls(levels[first], counts)


def _normalise(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    floored = np.maximum(np.asarray(values, dtype=np.float64), PROBABILITY_FLOOR)
    return np.asarray(floored / floored.sum(), dtype=np.float64)


def level_frequencies(
    levels: LevelMatrix, n_levels: Sequence[int], weights: npt.NDArray[np.float64] | None = None
) -> list[npt.NDArray[np.float64]]:
    """Share of each level per comparison among non-null values (floored, normalised)."""
    out = []
    for k, size in enumerate(n_levels):
        column = levels[:, k]
        mask = column != NULL_LEVEL
        w = None if weights is None else weights[mask]
        counts = np.bincount(column[mask].astype(np.int64), weights=w, minlength=size).astype(np.float64)
        out.append(_normalise(counts) if counts.sum() > 0 else np.full(size, 1.0 / size))
    return out


def exact_u(records: EncodedRecords, comparator: Comparator) -> float | None:
    """Probability that two random records agree exactly: sum of squared value shares.

    Exact for high-cardinality columns where random sampling would see too few
    coincidences to estimate it.
    """
    column = comparator.exact_column
    if column is None or column not in records.strings:
        return None
    freq = records.strings[column].frequencies()
    value = float((freq**2).sum())
    return value if value > 0 else None


def _initial_m(size: int) -> npt.NDArray[np.float64]:
    # Strong agreement likely, each weaker level less so, disagreement rare.
    raw = np.array([0.5**k for k in range(size)], dtype=np.float64)
    raw[-1] = 0.02
    return _normalise(raw)


@dataclass
class EMResult:
    m: list[npt.NDArray[np.float64]]
    proportion: float
    iterations: int
    converged: bool


def expectation_maximisation(
    patterns: Patterns,
    m_start: Sequence[npt.NDArray[np.float64]],
    u: Sequence[npt.NDArray[np.float64]],
    active: Sequence[bool],
    *,
    proportion: float = 0.1,
    max_iterations: int = 40,
    tolerance: float = 1e-4,
) -> EMResult:
    """Estimate m (and the match share ``proportion``) with u held fixed."""
    levels = patterns.levels
    counts = patterns.counts
    m = [mk.copy() for mk in m_start]
    log_u = np.zeros(levels.shape[0])
    for k, uk in enumerate(u):
        if active[k]:
            column = levels[:, k]
            log_u += np.where(column == NULL_LEVEL, 0.0, np.log(uk[np.maximum(column, 0)]))
    converged = False
    iteration = 0
    for iteration in range(1, max_iterations + 1):  # noqa: B007 - the count is reported
        log_m = np.zeros(levels.shape[0])
        for k, mk in enumerate(m):
            if active[k]:
                column = levels[:, k]
                log_m += np.where(column == NULL_LEVEL, 0.0, np.log(mk[np.maximum(column, 0)]))
        log_odds = math.log(proportion) - math.log1p(-proportion) + log_m - log_u
        posterior = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700, 700)))
        weighted = posterior * counts
        new_proportion = float(np.clip(weighted.sum() / counts.sum(), 1e-9, 1 - 1e-9))
        change = abs(new_proportion - proportion)
        new_m = list(m)
        for k, mk in enumerate(m):
            if not active[k]:
                continue
            column = levels[:, k]
            mask = column != NULL_LEVEL
            sums = np.bincount(
                column[mask].astype(np.int64), weights=weighted[mask], minlength=mk.size
            ).astype(np.float64)
            if sums.sum() > 0:
                new_m[k] = _normalise(sums)
                change = max(change, float(np.abs(new_m[k] - mk).max()))
        m, proportion = new_m, new_proportion
        if change < tolerance:
            converged = True
            break
    return EMResult(m, proportion, iteration, converged)


@dataclass
class TrainingReport:
    prior: float
    deterministic_pairs: int
    em_passes: list[dict[str, object]] = field(default_factory=list)
    u_pairs: int = 0
    warnings: list[str] = field(default_factory=list)


def _sample_rule_pairs(
    records: EncodedRecords,
    rule: BlockingRule,
    max_block_size: int,
    max_pairs: int,
    *,
    link_only: bool,
    rng: np.random.Generator,
) -> tuple[Indices, Indices]:
    prepared = prepare_rule(records, rule, max_block_size)
    expected = int((prepared.sizes * (prepared.sizes - 1) // 2).sum())
    share = 1.0 if expected <= max_pairs else max_pairs / expected
    lefts, rights = [], []
    for _, left, right in candidate_pairs(records, [prepared], link_only=link_only):
        if share < 1.0:
            keep = rng.random(left.shape[0]) < share
            left, right = left[keep], right[keep]
        lefts.append(left)
        rights.append(right)
    if not lefts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(lefts), np.concatenate(rights)


def _sources(columns: Sequence[str]) -> set[str]:
    return {SOURCE_COLUMN.get(c, c) for c in columns}


def estimate_prior(
    records: EncodedRecords, rules: Rules, *, link_only: bool
) -> tuple[float, int, list[str]]:
    prepared = [
        prepare_rule(records, rule, rules.blocking.max_block_size)
        for rule in rules.training.deterministic_rules
        if all(records.has(k) for k in rule.keys)
    ]
    found = sum(left.size for _, left, _ in candidate_pairs(records, prepared, link_only=link_only))
    total = max(total_comparisons(records, link_only=link_only), 1)
    warnings: list[str] = []
    if found == 0:
        prior = min(0.5, max(records.n, 1) * 0.1 / total)
        warnings.append(
            "no pair satisfies a deterministic rule; the prior probability of a match is a guess "
            f"({prior:.3g}): train with --truth-column or on more data"
        )
    else:
        prior = min(0.5, found / rules.training.deterministic_recall / total)
    return prior, int(found), warnings


def train_unsupervised(
    comparators: Sequence[Comparator],
    records: EncodedRecords,
    rules: Rules,
    *,
    link_only: bool,
    progress: Progress = _no_progress,
) -> tuple[TrainedParameters, TrainingReport]:
    training = rules.training
    rng = np.random.default_rng(training.seed)
    n_levels = [len(c.labels) for c in comparators]

    progress("estimating u from random pairs")
    # Sampling more pairs than exist only repeats them: small files get a small sample.
    sample = min(training.u_sample_pairs, max(total_comparisons(records, link_only=link_only) * 2, 1000))
    left, right = random_pairs(records, sample, link_only=link_only, seed=training.seed)
    random_levels = compute_levels(comparators, records, left, right)
    u = level_frequencies(random_levels, n_levels)
    for k, comparator in enumerate(comparators):
        agreement = exact_u(records, comparator)
        if agreement is not None and n_levels[k] > 1:
            rest = u[k][1:] / u[k][1:].sum() * (1.0 - agreement)
            u[k] = _normalise(np.r_[agreement, rest])

    progress("estimating the prior from deterministic rules")
    prior, deterministic_pairs, warnings = estimate_prior(records, rules, link_only=link_only)
    report = TrainingReport(prior=prior, deterministic_pairs=deterministic_pairs, u_pairs=int(left.size))
    report.warnings.extend(warnings)

    estimates: list[list[npt.NDArray[np.float64]]] = [[] for _ in comparators]
    for rule in training.em_blocking:
        if not all(records.has(k) for k in rule.keys):
            report.em_passes.append({"rule": rule.name, "skipped": "a key column is missing"})
            continue
        progress(f"EM pass blocked on {rule.name}")
        blocked = _sources(rule.keys)
        active = [not (_sources(c.required) & blocked) for c in comparators]
        pl, pr = _sample_rule_pairs(
            records,
            rule,
            rules.blocking.max_block_size,
            training.em_max_pairs,
            link_only=link_only,
            rng=rng,
        )
        if pl.size == 0:
            report.em_passes.append({"rule": rule.name, "skipped": "no pairs"})
            continue
        patterns = Patterns.of(compute_levels(comparators, records, pl, pr))
        result = expectation_maximisation(
            patterns,
            [_initial_m(s) for s in n_levels],
            u,
            active,
            max_iterations=training.em_max_iterations,
            tolerance=training.em_tolerance,
        )
        report.em_passes.append(
            {
                "rule": rule.name,
                "pairs": int(pl.size),
                "patterns": int(patterns.counts.size),
                "iterations": result.iterations,
                "converged": result.converged,
                "match_share": round(result.proportion, 6),
            }
        )
        if not result.converged:
            report.warnings.append(
                f"EM blocked on {rule.name} did not converge in {result.iterations} iterations"
            )
        for k, is_active in enumerate(active):
            if is_active:
                estimates[k].append(result.m[k])

    m: list[npt.NDArray[np.float64]] = []
    for k, comparator in enumerate(comparators):
        if estimates[k]:
            m.append(_normalise(np.mean(estimates[k], axis=0)))
        else:
            report.warnings.append(
                f"no EM pass estimated m for comparison {comparator.name!r} (every pass was blocked on "
                "its columns or found no pairs); a neutral starting value is used"
            )
            m.append(_initial_m(n_levels[k]))
    params = _assemble(comparators, rules, m, u, prior, "em", records.n, report)
    return params, report


def train_supervised(
    comparators: Sequence[Comparator],
    records: EncodedRecords,
    rules: Rules,
    truth: npt.NDArray[np.int64],
    *,
    link_only: bool,
    progress: Progress = _no_progress,
) -> tuple[TrainedParameters, TrainingReport]:
    """m and u counted from labelled pairs: true pairs from the truth, non-matches at random."""
    n_levels = [len(c.labels) for c in comparators]
    progress("counting levels of true matches")
    keyed = np.flatnonzero(truth >= 0)
    order = keyed[np.argsort(truth[keyed], kind="stable")]
    sorted_truth = truth[order]
    starts = np.flatnonzero(np.r_[True, sorted_truth[1:] != sorted_truth[:-1]]) if order.size else order
    sizes = np.diff(np.r_[starts, order.size])
    from mpi.matching.blocking import _within_block_pairs

    lefts, rights = [], []
    for left, right in _within_block_pairs(order, starts.astype(np.int64), sizes.astype(np.int64), 2_000_000):
        if link_only:
            keep = records.file_index[left] != records.file_index[right]
            left, right = left[keep], right[keep]
        lefts.append(left)
        rights.append(right)
    true_l = np.concatenate(lefts) if lefts else np.zeros(0, dtype=np.int64)
    true_r = np.concatenate(rights) if rights else np.zeros(0, dtype=np.int64)
    m = level_frequencies(compute_levels(comparators, records, true_l, true_r), n_levels)

    progress("counting levels of random non-matches")
    left, right = random_pairs(
        records, rules.training.u_sample_pairs, link_only=link_only, seed=rules.training.seed
    )
    non_match = truth[left] != truth[right]
    non_match |= truth[left] < 0
    u = level_frequencies(compute_levels(comparators, records, left[non_match], right[non_match]), n_levels)
    total = max(total_comparisons(records, link_only=link_only), 1)
    prior = float(np.clip(true_l.size / total, 1e-12, 0.5))
    report = TrainingReport(prior=prior, deterministic_pairs=int(true_l.size), u_pairs=int(non_match.sum()))
    params = _assemble(comparators, rules, m, u, prior, "supervised", records.n, report)
    return params, report


def _assemble(
    comparators: Sequence[Comparator],
    rules: Rules,
    m: Sequence[npt.NDArray[np.float64]],
    u: Sequence[npt.NDArray[np.float64]],
    prior: float,
    method: str,
    n_records: int,
    report: TrainingReport,
) -> TrainedParameters:
    if prior < LOW_PRIOR:
        report.warnings.append(
            f"the prior probability of a match is very low ({prior:.3g}): links need strong evidence"
        )
    for k, comparator in enumerate(comparators):
        mk = m[k]
        if mk.size > 2 and mk[0] < mk[1:-1].max():
            weaker = comparator.labels[1 + int(np.argmax(mk[1:-1]))]
            report.warnings.append(
                f"{comparator.name}: m of level 'exact' ({mk[0]:.3f}) is lower than that of the fuzzier "
                f"level '{weaker}' ({mk[1:-1].max():.3f})"
            )
    comparisons = {
        c.name: LevelParameters(
            labels=c.labels,
            m=tuple(float(x) for x in _normalise(m[k])),
            u=tuple(float(x) for x in _normalise(u[k])),
        )
        for k, c in enumerate(comparators)
    }
    return TrainedParameters(
        rules_name=rules.model.name,
        rules_version=rules.model.version,
        method=method,
        prior=float(np.clip(prior, 1e-15, 0.5)),
        comparisons=comparisons,
        trained_on_records=n_records,
        warnings=tuple(report.warnings),
    )
