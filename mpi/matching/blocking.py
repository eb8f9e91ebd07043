"""Blocking: candidate pairs from a union of rules, each pair produced once, in chunks.

A rule is a list of key columns; records agreeing on all of them (none missing)
form a block. Pairs inside a block are generated with index arithmetic (no
Python loop over blocks), in chunks of bounded size so memory does not grow
with the number of candidate pairs. A pair already produced by an earlier rule
is dropped by checking the earlier rules' keys, so nothing has to remember the
pairs seen. Blocks larger than the cap are skipped with a warning naming them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from mpi.matching.encoding import EncodedRecords, Indices
from mpi.rules.schema import BlockingRule

Keys = npt.NDArray[np.int64]
DEFAULT_CHUNK_PAIRS = 2_000_000


def rule_keys(records: EncodedRecords, rule: BlockingRule) -> Keys:
    """One block id per record for ``rule`` (-1 when a key part is missing)."""
    key = np.zeros(records.n, dtype=np.int64)
    missing = np.zeros(records.n, dtype=bool)
    for column in rule.keys:
        part = records.key_codes(column)
        missing |= part < 0
        combined = (key << 32) | (part & 0xFFFFFFFF)
        codes, _ = pd.factorize(combined, sort=False)
        key = codes.astype(np.int64)
    key[missing] = -1
    return key


@dataclass(frozen=True)
class OversizedBlock:
    rule: str
    key: str
    size: int


@dataclass
class RuleStats:
    name: str
    pairs: int = 0
    # Pairs within its blocks gone through so far, kept or not (made by an earlier rule, or
    # in one file when linking): what progress is counted in, as only these are known ahead.
    examined: int = 0
    blocks: int = 0
    largest_blocks: list[tuple[str, int]] = field(default_factory=list)
    skipped_blocks: list[OversizedBlock] = field(default_factory=list)
    skipped_over_budget: int | None = None  # the pairs the rule would have made, when over max_pairs


@dataclass
class PreparedRule:
    rule: BlockingRule
    keys: Keys  # -1 where missing or in a skipped block
    order: Indices  # record indices sorted by key, keyed records only
    starts: Indices  # start offset of each block within ``order``
    sizes: Indices
    stats: RuleStats


def _describe_key(records: EncodedRecords, rule: BlockingRule, record: int) -> str:
    from mpi.matching.encoding import UNORDERED_PAIRS

    parts = []
    for column in rule.keys:
        if column in UNORDERED_PAIRS:
            for source in UNORDERED_PAIRS[column]:
                col = records.strings[source]
                parts.append(str(col.vocab[col.codes[record]]))
        elif column in records.strings:
            col = records.strings[column]
            parts.append(str(col.vocab[col.codes[record]]))
        else:
            parts.append(str(int(records.integers[column][record])))
    return "|".join(parts)


def prepare_rule(
    records: EncodedRecords, rule: BlockingRule, max_block_size: int, largest: int = 5
) -> PreparedRule:
    keys = rule_keys(records, rule)
    keyed = np.flatnonzero(keys >= 0)
    order = keyed[np.argsort(keys[keyed], kind="stable")]
    sorted_keys = keys[order]
    if order.size:
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]).astype(np.int64)
    else:
        starts = np.zeros(0, dtype=np.int64)
    sizes = np.diff(np.r_[starts, order.size]).astype(np.int64)
    stats = RuleStats(name=rule.name, blocks=int((sizes > 1).sum()))
    top = np.argsort(-sizes, kind="stable")[:largest]
    stats.largest_blocks = [
        (_describe_key(records, rule, int(order[starts[b]])), int(sizes[b])) for b in top if sizes[b] > 1
    ]
    oversized = np.flatnonzero(sizes > max_block_size)
    if oversized.size:
        for b in oversized:
            stats.skipped_blocks.append(
                OversizedBlock(rule.name, _describe_key(records, rule, int(order[starts[b]])), int(sizes[b]))
            )
            keys[order[starts[b] : starts[b] + sizes[b]]] = -1
        keep = sizes <= max_block_size
        member_keep = np.repeat(keep, sizes)
        order = order[member_keep]
        sizes = sizes[keep]
        starts = (np.cumsum(sizes) - sizes).astype(np.int64)
    if rule.max_pairs is not None:
        would_make = int((sizes * (sizes - 1) // 2).sum())
        if would_make > rule.max_pairs:
            stats.skipped_over_budget = would_make
            empty = np.zeros(0, dtype=np.int64)
            return PreparedRule(rule, np.full(records.n, -1, dtype=np.int64), empty, empty, empty, stats)
    return PreparedRule(rule, keys, order, starts, sizes, stats)


def _within_block_pairs(
    order: Indices, starts: Indices, sizes: Indices, chunk_pairs: int
) -> Iterator[tuple[Indices, Indices]]:
    """All pairs (i < j in ``order`` position) within each block, in chunks of about ``chunk_pairs``."""
    if order.size == 0:
        return
    block_end = np.repeat(starts + sizes, sizes)
    positions = np.arange(order.size, dtype=np.int64)
    partners = block_end - positions - 1  # pairs each position starts, towards the block's end
    cumulative = np.cumsum(partners)
    total = int(cumulative[-1]) if cumulative.size else 0
    begin = 0
    while begin < order.size:
        base = int(cumulative[begin - 1]) if begin else 0
        end = int(np.searchsorted(cumulative, base + chunk_pairs, side="right"))
        end = max(end, begin + 1)
        counts = partners[begin:end]
        n = int(counts.sum())
        if n:
            left_pos = np.repeat(positions[begin:end], counts)
            offsets = np.repeat(np.cumsum(counts) - counts, counts)
            right_pos = left_pos + 1 + (np.arange(n, dtype=np.int64) - offsets)
            yield order[left_pos], order[right_pos]
        begin = end
        if base + n >= total:
            break


def pairs_to_examine(rules: Sequence[PreparedRule]) -> int:
    """The pairs within the blocks of ``rules``, those several rules make counted once per rule."""
    return int(sum(int((p.sizes * (p.sizes - 1) // 2).sum()) for p in rules))


def pairs_examined(rules: Sequence[PreparedRule]) -> int:
    """How many of :func:`pairs_to_examine` :func:`candidate_pairs` has gone through so far."""
    return sum(p.stats.examined for p in rules)


def candidate_pairs(
    records: EncodedRecords,
    rules: Sequence[PreparedRule],
    *,
    link_only: bool = False,
    chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
) -> Iterator[tuple[int, Indices, Indices]]:
    """Yield ``(rule index, left, right)`` chunks; every pair once over the union of rules."""
    for r, prepared in enumerate(rules):
        for left, right in _within_block_pairs(prepared.order, prepared.starts, prepared.sizes, chunk_pairs):
            prepared.stats.examined += int(left.shape[0])
            keep = np.ones(left.shape[0], dtype=bool)
            if link_only:
                keep &= records.file_index[left] != records.file_index[right]
            for earlier in rules[:r]:
                kl = earlier.keys[left]
                keep &= ~((kl >= 0) & (kl == earlier.keys[right]))
            if not keep.all():
                left, right = left[keep], right[keep]
            if left.size:
                prepared.stats.pairs += int(left.size)
                yield r, left, right


def random_pairs(
    records: EncodedRecords, n_pairs: int, *, link_only: bool, seed: int
) -> tuple[Indices, Indices]:
    """Uniformly random distinct pairs (for u estimation): across files when linking."""
    rng = np.random.default_rng(seed)
    if link_only:
        files = np.unique(records.file_index)
        if files.size < 2:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        left = rng.integers(0, records.n, n_pairs)
        right = rng.integers(0, records.n, n_pairs)
        keep = records.file_index[left] != records.file_index[right]
        return left[keep].astype(np.int64), right[keep].astype(np.int64)
    if records.n < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    left = rng.integers(0, records.n, n_pairs)
    right = rng.integers(0, records.n, n_pairs)
    keep = left != right
    return left[keep].astype(np.int64), right[keep].astype(np.int64)


def total_comparisons(records: EncodedRecords, *, link_only: bool) -> int:
    """Number of record pairs a full comparison would make."""
    if link_only:
        counts = np.bincount(records.file_index.astype(np.int64))
        return int((counts.sum() ** 2 - (counts.astype(np.int64) ** 2).sum()) // 2)
    return records.n * (records.n - 1) // 2
