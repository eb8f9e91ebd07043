"""Blocking: the union of rules gives every candidate pair exactly once, whatever the chunking."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpi.matching.blocking import candidate_pairs, prepare_rule, random_pairs, total_comparisons
from mpi.matching.encoding import EncodedRecords
from mpi.rules.schema import BlockingRule

KEY_COLUMNS = ("postcode", "city", "sex")
RULES = (
    BlockingRule(name="postcode", keys=("postcode",)),
    BlockingRule(name="city+sex", keys=("city", "sex")),
    BlockingRule(name="sex+postcode", keys=("sex", "postcode")),
)

Row = tuple[str | None, str | None, str | None]


def encode(rows: Sequence[Row], file_index: Sequence[int] | None = None) -> EncodedRecords:
    frame = pd.DataFrame(list(rows), columns=list(KEY_COLUMNS), dtype=object)
    files = None if file_index is None else np.asarray(file_index, dtype=np.int16)
    return EncodedRecords.from_frame(frame, files)


def generated_pairs(
    records: EncodedRecords,
    rules: Sequence[BlockingRule],
    *,
    max_block_size: int = 1000,
    link_only: bool = False,
    chunk_pairs: int = 1_000_000,
) -> list[tuple[int, int]]:
    prepared = [prepare_rule(records, rule, max_block_size) for rule in rules]
    pairs: list[tuple[int, int]] = []
    for _, left, right in candidate_pairs(records, prepared, link_only=link_only, chunk_pairs=chunk_pairs):
        pairs.extend(zip(np.minimum(left, right).tolist(), np.maximum(left, right).tolist(), strict=True))
    return pairs


def brute_force_pairs(
    rows: Sequence[Row],
    rules: Sequence[BlockingRule],
    *,
    max_block_size: int = 1000,
    file_index: Sequence[int] | None = None,
) -> set[tuple[int, int]]:
    """Every pair agreeing on all keys of some rule, with no key missing, outside oversized blocks."""
    position = {c: k for k, c in enumerate(KEY_COLUMNS)}

    def key(row: Row, rule: BlockingRule) -> tuple[str | None, ...] | None:
        values = tuple(row[position[c]] for c in rule.keys)
        return None if None in values else values

    expected = set()
    for rule in rules:
        block_sizes: dict[tuple[str | None, ...], int] = {}
        for row in rows:
            k = key(row, rule)
            if k is not None:
                block_sizes[k] = block_sizes.get(k, 0) + 1
        for i, j in combinations(range(len(rows)), 2):
            ki = key(rows[i], rule)
            if ki is None or ki != key(rows[j], rule) or block_sizes[ki] > max_block_size:
                continue
            if file_index is not None and file_index[i] == file_index[j]:
                continue
            expected.add((i, j))
    return expected


values = st.one_of(st.none(), st.sampled_from("abcd"))
rows_strategy = st.lists(st.tuples(values, values, st.one_of(st.none(), st.sampled_from("MF"))), max_size=40)


@settings(max_examples=100, deadline=None)
@given(rows_strategy, st.integers(2, 12))
def test_union_of_rules_yields_each_pair_once(rows: list[Row], max_block_size: int) -> None:
    pairs = generated_pairs(encode(rows), RULES, max_block_size=max_block_size)
    assert len(pairs) == len(set(pairs))
    assert set(pairs) == brute_force_pairs(rows, RULES, max_block_size=max_block_size)


@settings(max_examples=100, deadline=None)
@given(rows_strategy, st.data())
def test_link_only_yields_exactly_the_cross_file_pairs(rows: list[Row], data: st.DataObject) -> None:
    files = data.draw(st.lists(st.integers(0, 2), min_size=len(rows), max_size=len(rows)))
    pairs = generated_pairs(encode(rows, files), RULES, link_only=True)
    assert all(files[i] != files[j] for i, j in pairs)
    assert len(pairs) == len(set(pairs))
    assert set(pairs) == brute_force_pairs(rows, RULES, file_index=files)


@settings(max_examples=100, deadline=None)
@given(rows_strategy, st.integers(1, 50))
def test_chunking_does_not_change_the_pairs(rows: list[Row], chunk_pairs: int) -> None:
    records = encode(rows)
    whole = generated_pairs(records, RULES)
    chunked = generated_pairs(records, RULES, chunk_pairs=chunk_pairs)
    assert sorted(chunked) == sorted(whole)


def test_chunks_stay_near_the_requested_size() -> None:
    # One block of 200 records holds 19,900 pairs; a chunk never grows past one record's partners.
    records = encode([("1234", None, None)] * 200)
    prepared = [prepare_rule(records, RULES[0], 1000)]
    sizes = [left.size for _, left, _ in candidate_pairs(records, prepared, chunk_pairs=500)]
    assert sum(sizes) == 200 * 199 // 2
    assert max(sizes) <= 500 + 199


def test_oversized_block_is_skipped_and_reported_with_its_key_and_size() -> None:
    rows: list[Row] = [("1111", None, None)] * 5 + [("2222", None, None)] * 2
    records = encode(rows)
    prepared = prepare_rule(records, RULES[0], max_block_size=4)
    assert [(b.rule, b.key, b.size) for b in prepared.stats.skipped_blocks] == [("postcode", "1111", 5)]
    pairs = [
        (int(a), int(b))
        for _, left, right in candidate_pairs(records, [prepared])
        for a, b in zip(left, right, strict=True)
    ]
    assert pairs == [(5, 6)]
    assert prepared.stats.pairs == 1


def test_pairs_of_a_skipped_block_can_still_come_from_another_rule() -> None:
    rows: list[Row] = [("1111", "x", "M")] * 3 + [("1111", "y", "F")] * 3
    records = encode(rows)
    pairs = generated_pairs(records, RULES[:2], max_block_size=4)
    # postcode 1111 (6 records) is skipped; city+sex still pairs each half.
    assert sorted(pairs) == [(0, 1), (0, 2), (1, 2), (3, 4), (3, 5), (4, 5)]


def test_largest_blocks_are_reported_largest_first() -> None:
    rows: list[Row] = [("1111", None, None)] * 2 + [("2222", None, None)] * 4 + [("3333", None, None)] * 3
    stats = prepare_rule(encode(rows), RULES[0], 1000).stats
    assert stats.largest_blocks == [("2222", 4), ("3333", 3), ("1111", 2)]
    assert stats.blocks == 3


def test_missing_keys_never_block() -> None:
    rows: list[Row] = [(None, None, "M")] * 10
    assert generated_pairs(encode(rows), RULES) == []
    rows = [("1111", None, "M"), ("1111", "x", None), (None, "x", None)]
    # Only the postcode rule has both keys present on a pair.
    assert generated_pairs(encode(rows), RULES) == [(0, 1)]


def test_pair_statistics_count_each_pair_under_the_first_rule_that_finds_it() -> None:
    rows: list[Row] = [("1111", "x", "M"), ("1111", "x", "M"), ("2222", "x", "M")]
    records = encode(rows)
    prepared = [prepare_rule(records, rule, 1000) for rule in RULES]
    list(candidate_pairs(records, prepared))
    assert [p.stats.pairs for p in prepared] == [1, 2, 0]


def test_total_comparisons_counts_all_pairs_or_cross_file_pairs() -> None:
    records = encode([("a", None, None)] * 5, file_index=[0, 0, 1, 1, 1])
    assert total_comparisons(records, link_only=False) == 10
    assert total_comparisons(records, link_only=True) == 6


@pytest.mark.parametrize("link_only", [False, True])
def test_random_pairs_are_distinct_records_and_cross_files_when_linking(link_only: bool) -> None:
    records = encode([("a", None, None)] * 50, file_index=[0] * 20 + [1] * 30)
    left, right = random_pairs(records, 5000, link_only=link_only, seed=3)
    assert left.size > 1000
    assert np.all(left != right)
    if link_only:
        assert np.all(records.file_index[left] != records.file_index[right])
    again = random_pairs(records, 5000, link_only=link_only, seed=3)
    np.testing.assert_array_equal(left, again[0])  # seeded: training is reproducible
