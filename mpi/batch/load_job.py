"""The batch side of ``mpi load``: read a file of source records and, for an empty registry, cluster it.

Reading turns every row into a source record key and its demographics: a row
names its assigning authority in ``source`` and its id in ``local_id``; where
either is missing, the configured default domain and the row's ``record_id``
stand in. A key may appear once per load.

Clustering is ``mpi dedup --model`` on the same rows: the rules and the trained
parameters beside them (the model the online MPI scores with), the same
blocking, kernel and constrained clustering, so a bulk-loaded registry holds
the persons a batch job would report, with one rule of the online path added:
records sharing a valid matricule are compared on sex and birth date first
(:mod:`mpi.batch.matricule_pairs`), whatever their blocking keys and score, as
registering them one by one would compare them. Both traits differ: never in
one cluster, and a potential collision to review. Neither differs: linked, as
online (a link clustering refuses goes to review). One differs: the matcher
decides. Pairs in the review band that end up in different clusters are kept,
with their comparison levels and weights, to become review tasks. Nothing here
touches the registry: the CLI hands the result to the service.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mpi.batch.io import InputTable, read_inputs
from mpi.batch.local import EXCLUSIVE_TRAITS, _refuse_incoherent_merges
from mpi.batch.matricule_pairs import (
    COMPATIBLE,
    CONFLICTING,
    UNDECIDED,
    matricule_codes,
    shared_matricule_pairs,
    strict_relations,
)
from mpi.batch.progress import Progress
from mpi.domain.records import DEMOGRAPHIC_FIELDS, Demographics, RecordKey
from mpi.domain.reviews import ReviewKind
from mpi.domain.scores import ComparisonOutcome, PairScore
from mpi.errors import InputError
from mpi.matching.clustering import constrained_clusters
from mpi.matching.encoding import UNORDERED_PAIRS
from mpi.matching.engine import Engine
from mpi.matching.scoring import ScoredPairs, Scorer, score_chunks
from mpi.matching.standardise import standardise
from mpi.matching.stored_form import FORM_COLUMNS
from mpi.rules.loader import load_parameters, load_rules, parameters_path_for
from mpi.rules.parameters import TrainedParameters


@dataclass
class LoadInput:
    """The rows of a load as source records, in file order."""

    table: InputTable
    keys: list[RecordKey]
    demographics: list[Demographics]


@dataclass(frozen=True)
class ReviewPair:
    """A pair between two clusters to review, by position in the load: a review-band pair, or two
    records sharing a valid matricule that online would link (a duplicate) or never link (a
    collision)."""

    record: int
    candidate: int
    score: PairScore
    kind: ReviewKind = ReviewKind.POTENTIAL_DUPLICATE


@dataclass
class Clustering:
    clusters: npt.NDArray[np.int64]  # one label per row: rows with one label are one person
    link_scores: list[float | None]  # the strongest automatic link of each row, None for a lone row
    reviews: list[ReviewPair]
    candidate_pairs: int
    links: int
    model: str
    invalid_counts: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    # The standardised columns the registry's index is built from, one entry per row: the
    # blocking rules' columns and the stored forms' (FORM_COLUMNS), so the registry's blocking
    # keys and forms come from them without standardising every row a second time.
    index_columns: dict[str, npt.NDArray[Any]] = field(default_factory=dict)


def _row_locator(table: InputTable) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per position: which input file and which data row of it (1-based)."""
    file_index = np.asarray(table.file_index, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(file_index)) + 1]
    first_of_file = np.repeat(starts, np.diff(np.r_[starts, file_index.size]))
    return file_index, np.arange(file_index.size, dtype=np.int64) - first_of_file + 1


def _column(frame: pd.DataFrame, name: str) -> npt.NDArray[np.object_]:
    """A column as given (``None`` where missing or absent), as an object array."""
    if name not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    column = frame[name].astype(object)
    return column.where(column.notna(), None).to_numpy(dtype=object)


def _text_column(frame: pd.DataFrame, name: str) -> list[str | None]:
    if name not in frame.columns:
        return [None] * len(frame)
    values: list[str | None] = frame[name].astype(object).where(frame[name].notna(), None).tolist()
    return values


def record_keys(table: InputTable, default_domain: str) -> list[RecordKey]:
    """The source record key of every row; ``InputError`` (file, row, column) on a repeated key."""
    frame = table.frame
    authorities = [a or default_domain for a in _text_column(frame, "source")]
    # read_inputs refuses a row without a record_id, so every row has a local id.
    local_ids = [
        str(local or record)
        for local, record in zip(
            _text_column(frame, "local_id"), _text_column(frame, "record_id"), strict=True
        )
    ]
    joined = pd.Series([f"{a}\x1f{i}" for a, i in zip(authorities, local_ids, strict=True)], dtype=object)
    repeated = joined.duplicated(keep="first").to_numpy()
    if repeated.any():
        file_of, row_of = _row_locator(table)
        second = int(np.flatnonzero(repeated)[0])
        first = int(np.flatnonzero((joined == joined.iloc[second]).to_numpy())[0])
        column = "local_id" if "local_id" in frame.columns else "record_id"
        raise InputError(
            table.files[int(file_of[second])],
            f"source record {authorities[second]}|{local_ids[second]} appears twice (first in "
            f"{table.files[int(file_of[first])]}, row {int(row_of[first])}); a load takes each source "
            "record once",
            row=int(row_of[second]),
            column=column,
        )
    return [RecordKey(a, i) for a, i in zip(authorities, local_ids, strict=True)]


def read_load_input(
    paths: Sequence[Path], mapping: Mapping[str, str], default_domain: str, progress: Progress
) -> LoadInput:
    progress.start("reading input")
    table = read_inputs(paths, mapping)
    keys = record_keys(table, default_domain)
    columns = [_text_column(table.frame, name) for name in DEMOGRAPHIC_FIELDS]
    demographics = [Demographics(*values) for values in zip(*columns, strict=True)]
    progress.finish()
    return LoadInput(table, keys, demographics)


def _outcomes(scorer: Scorer, pairs: ScoredPairs) -> list[tuple[ComparisonOutcome, ...]]:
    """Per pair, each comparison's level and weight (term-frequency adjustment included)."""
    per_comparison: list[list[ComparisonOutcome]] = []
    for k, compiled in enumerate(scorer.compiled):
        levels = pairs.levels[:, k]
        weights = compiled.table[levels]
        adjustment = scorer.tf_adjustment(k, levels, pairs.left)
        if adjustment is not None:
            weights = weights + adjustment
        labels = (*compiled.comparator.labels, "missing")  # level -1 picks "missing"
        per_comparison.append(
            [
                ComparisonOutcome(compiled.comparator.name, labels[level], weight)
                for level, weight in zip(levels.tolist(), weights.astype(np.float64).tolist(), strict=True)
            ]
        )
    return list(zip(*per_comparison, strict=True)) if per_comparison else [() for _ in pairs.left]


@dataclass
class _Kept:
    """The pairs of each scored chunk at or above the review threshold."""

    left: list[npt.NDArray[np.int64]] = field(default_factory=list)
    right: list[npt.NDArray[np.int64]] = field(default_factory=list)
    weight: list[npt.NDArray[np.float32]] = field(default_factory=list)
    probability: list[npt.NDArray[np.float32]] = field(default_factory=list)
    linkable: list[npt.NDArray[np.bool_]] = field(default_factory=list)
    levels: list[npt.NDArray[np.int8]] = field(default_factory=list)

    def add(self, scored: ScoredPairs, keep: npt.NDArray[np.bool_]) -> None:
        self.left.append(scored.left[keep])
        self.right.append(scored.right[keep])
        self.weight.append(scored.match_weight[keep])
        self.probability.append(scored.match_probability[keep])
        self.linkable.append(scored.linkable[keep])
        self.levels.append(scored.levels[keep])

    def pairs(self, comparisons: int) -> ScoredPairs:
        if not self.left:
            empty = np.zeros(0, dtype=np.float32)
            return ScoredPairs(
                np.zeros(0, dtype=np.int64),
                np.zeros(0, dtype=np.int64),
                np.zeros((0, comparisons), dtype=np.int8),
                empty,
                empty,
                np.zeros(0, dtype=bool),
            )
        return ScoredPairs(
            np.concatenate(self.left),
            np.concatenate(self.right),
            np.concatenate(self.levels),
            np.concatenate(self.weight),
            np.concatenate(self.probability),
            np.concatenate(self.linkable),
        )


def _concat(first: ScoredPairs, second: ScoredPairs) -> ScoredPairs:
    return ScoredPairs(
        np.concatenate([first.left, second.left]),
        np.concatenate([first.right, second.right]),
        np.concatenate([first.levels, second.levels]),
        np.concatenate([first.match_weight, second.match_weight]),
        np.concatenate([first.match_probability, second.match_probability]),
        np.concatenate([first.linkable, second.linkable]),
    )


def _take(pairs: ScoredPairs, rows: npt.NDArray[np.int64]) -> ScoredPairs:
    return ScoredPairs(
        pairs.left[rows],
        pairs.right[rows],
        pairs.levels[rows],
        pairs.match_weight[rows],
        pairs.match_probability[rows],
        pairs.linkable[rows],
    )


def _with_shared_matricules(
    kept: ScoredPairs, scorer: Scorer, matricules: npt.NDArray[Any], raw: pd.DataFrame, review_t: float
) -> tuple[ScoredPairs, npt.NDArray[np.int8]]:
    """The kept pairs, plus the pairs sharing a valid matricule that online would act on whatever
    their score (every collision and every same person; one trait differing, the review band),
    and each pair's relation (NONE unless it shares a valid matricule)."""
    relation = np.zeros(kept.left.size, dtype=np.int8)
    codes = matricule_codes(matricules)
    left, right = shared_matricule_pairs(codes)
    if left.size == 0:
        return kept, relation
    n = len(matricules)
    shared = strict_relations(_column(raw, "sex"), _column(raw, "birth_date"), left, right)
    # Which of them blocking found and kept already (every candidate pair is scored once).
    same = np.flatnonzero((codes[kept.left] >= 0) & (codes[kept.left] == codes[kept.right]))
    lo, hi = np.minimum(kept.left[same], kept.right[same]), np.maximum(kept.left[same], kept.right[same])
    at = pd.Index(left * n + right).get_indexer(lo * n + hi)
    relation[same] = shared[at]
    missing = np.ones(left.size, dtype=bool)
    missing[at] = False
    rows = np.flatnonzero(missing)
    if rows.size == 0:
        return kept, relation
    extra = scorer.score(left[rows], right[rows])
    wanted = np.flatnonzero((shared[rows] != UNDECIDED) | (extra.match_probability >= review_t))
    return _concat(kept, _take(extra, wanted)), np.r_[relation, shared[rows][wanted]].astype(np.int8)


def _strict_sex_codes(
    n: int, raw: pd.DataFrame, left: npt.NDArray[np.int64], right: npt.NDArray[np.int64]
) -> npt.NDArray[np.int32]:
    """A per-record code (-1 unknown) that keeps every collision pair out of one cluster: the
    sex as online reads it, given only to records of such pairs (whose sexes differ so read)."""
    codes = np.full(n, -1, dtype=np.int32)
    involved = np.unique(np.r_[left, right])
    if involved.size:
        sexes = pd.Series(_column(raw, "sex")[involved], dtype=object).fillna("").astype(str)
        first = sexes.str.strip().str.upper().str[:1]
        codes[involved] = np.where(first.to_numpy() == "M", 0, 1)
    return codes


def cluster_load_input(
    loaded: LoadInput,
    rules_path: Path,
    progress: Progress,
    *,
    params: TrainedParameters | None = None,
    workers: int = 2,
    chunk_pairs: int = 1_000_000,
) -> Clustering:
    """Cluster the rows as ``mpi dedup --model`` would, with the parameters beside ``rules_path``."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    rules = load_rules(rules_path)
    params = params or load_parameters(parameters_path_for(rules_path), rules)
    progress.start("standardising")
    standardised = standardise(loaded.table.frame)
    blocked = {
        part for rule in rules.blocking.rules for c in rule.keys for part in UNORDERED_PAIRS.get(c, (c,))
    }
    index_columns = {
        c: standardised.frame[c].to_numpy()
        for c in sorted(blocked | set(FORM_COLUMNS))
        if c in standardised.frame.columns
    }
    engine = Engine(rules)
    records = engine.encode(standardised.frame, loaded.table.file_index.astype(np.int16))
    progress.finish()
    timings["standardise"] = round(time.perf_counter() - started, 3)

    started = time.perf_counter()
    progress.start("blocking")
    prepared = engine.prepare_blocking(records)
    progress.finish()
    scorer = engine.scorer(records, params)
    review_t, link_t = rules.thresholds.review, rules.thresholds.link
    expected = int(sum(int((p.sizes * (p.sizes - 1) // 2).sum()) for p in prepared))
    progress.start("scoring candidate pairs", total=expected)
    kept = _Kept()
    candidate_pairs = 0
    chunks = engine.candidate_pairs(records, prepared, chunk_pairs=chunk_pairs)
    for _, scored in score_chunks(scorer, chunks, workers=workers):
        kept.add(scored, scored.match_probability >= review_t)
        candidate_pairs += int(scored.left.size)
        progress.advance(int(scored.left.size))
    progress.finish()
    timings["score"] = round(time.perf_counter() - started, 3)

    started = time.perf_counter()
    progress.start("clustering")
    pairs = kept.pairs(len(scorer.compiled))
    relation = np.zeros(pairs.left.size, dtype=np.int8)
    if "national_id" in standardised.frame.columns:
        matricules = standardised.frame["national_id"].to_numpy(dtype=object)
        pairs, relation = _with_shared_matricules(pairs, scorer, matricules, loaded.table.frame, review_t)
    left, right, weight, probability = pairs.left, pairs.right, pairs.match_weight, pairs.match_probability
    # The decision steps of run_dedup, in its order (tests/e2e/test_cli_load.py holds the two
    # to the same persons, but for the matricule rule): the link threshold, weak bridges between
    # clusters, exclusive traits.
    is_link = (probability >= link_t) & pairs.linkable
    is_link = _refuse_incoherent_merges(
        scorer, records.n, left, right, probability, is_link, link_t, review_t
    )
    # Then the online path's matricule rule, which dedup does not have: one valid matricule and
    # the same sex and birth date link whatever the score; both different never do, nor may the
    # two records meet in one cluster through others.
    conflicting = relation == CONFLICTING
    is_link = (is_link | (relation == COMPATIBLE)) & ~conflicting
    link_edges = np.flatnonzero(is_link)
    exclusive = [records.strings[c].codes for c in EXCLUSIVE_TRAITS if c in records.strings]
    if conflicting.any():
        exclusive.append(
            _strict_sex_codes(records.n, loaded.table.frame, left[conflicting], right[conflicting])
        )
    clusters, accepted = constrained_clusters(
        records.n, left[link_edges], right[link_edges], weight[link_edges], exclusive
    )
    is_link[link_edges[~accepted]] = False  # a link refused by clustering goes to review, as in dedup

    strongest = np.full(records.n, np.nan, dtype=np.float64)
    linked = np.flatnonzero(is_link & (clusters[left] == clusters[right]))
    for side in (left, right):
        np.fmax.at(strongest, side[linked], probability[linked].astype(np.float64))
    link_scores = [None if np.isnan(s) else s for s in strongest.tolist()]

    between = np.flatnonzero(clusters[left] != clusters[right])
    review_pairs = _take(pairs, between)
    outcomes = _outcomes(scorer, review_pairs)
    kinds = np.where(
        relation[between] == CONFLICTING,
        ReviewKind.POTENTIAL_COLLISION.value,
        ReviewKind.POTENTIAL_DUPLICATE.value,
    )
    reviews = [
        ReviewPair(a, b, PairScore(p, w, "review", comparisons), ReviewKind(kind))
        for a, b, p, w, comparisons, kind in zip(
            review_pairs.left.tolist(),
            review_pairs.right.tolist(),
            review_pairs.match_probability.astype(np.float64).tolist(),
            review_pairs.match_weight.astype(np.float64).tolist(),
            outcomes,
            kinds.tolist(),
            strict=True,
        )
    ]
    progress.finish()
    timings["cluster"] = round(time.perf_counter() - started, 3)
    return Clustering(
        clusters=clusters.astype(np.int64),
        link_scores=link_scores,
        reviews=reviews,
        candidate_pairs=candidate_pairs,
        links=int(is_link.sum()),
        model=f"{params.stamp}/{params.method}",
        invalid_counts={k: v for k, v in standardised.invalid_counts.items() if v},
        timings=timings,
        index_columns=index_columns,
    )
