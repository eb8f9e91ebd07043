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
from mpi.batch.link_decisions import KeptPairs, decide, take
from mpi.batch.matricule_pairs import CONFLICTING
from mpi.batch.progress import Progress
from mpi.domain.limits import MAX_AUTHORITY_LENGTH, MAX_VALUE_LENGTH, problem_with
from mpi.domain.records import DEMOGRAPHIC_FIELDS, Demographics, RecordKey
from mpi.domain.reviews import ReviewKind
from mpi.domain.scores import ComparisonOutcome, PairScore
from mpi.errors import InputError
from mpi.matching.blocking import pairs_examined, pairs_to_examine
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


def _text_column(frame: pd.DataFrame, name: str) -> list[str | None]:
    if name not in frame.columns:
        return [None] * len(frame)
    values: list[str | None] = frame[name].astype(object).where(frame[name].notna(), None).tolist()
    return values


def _check_storable(
    table: InputTable, column: str, values: Sequence[str | None], limit: int = MAX_VALUE_LENGTH
) -> None:
    """``InputError`` at the first row whose ``column`` the registry cannot store."""
    present = [value for value in values if value is not None]
    # Loops in C over the whole column; the row is looked for only when there is one.
    if max(map(len, present), default=0) <= limit and "\x00" not in "".join(present):
        return
    at = next(k for k, value in enumerate(values) if value is not None and problem_with(value, limit))
    file_of, row_of = _row_locator(table)
    raise InputError(
        table.files[int(file_of[at])],
        f"{column} {problem_with(values[at] or '', limit)}",
        row=int(row_of[at]),
        column=column,
    )


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
    _check_storable(table, "source", authorities, MAX_AUTHORITY_LENGTH)
    _check_storable(table, "local_id" if "local_id" in frame.columns else "record_id", local_ids)
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
    for name, values in zip(DEMOGRAPHIC_FIELDS, columns, strict=True):
        _check_storable(table, name, values)
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
    review_t = rules.thresholds.review
    progress.start("scoring candidate pairs", total=pairs_to_examine(prepared))
    kept = KeptPairs()
    candidate_pairs = 0
    shown = 0
    chunks = engine.candidate_pairs(records, prepared, chunk_pairs=chunk_pairs)
    for _, scored in score_chunks(scorer, chunks, workers=workers):
        kept.add(scored, scored.match_probability >= review_t)
        candidate_pairs += int(scored.left.size)
        examined = pairs_examined(prepared)
        progress.advance(examined - shown)
        shown = examined
    progress.finish()
    timings["score"] = round(time.perf_counter() - started, 3)

    started = time.perf_counter()
    progress.start("clustering")
    matricules = (
        standardised.frame["national_id"].to_numpy(dtype=object)
        if "national_id" in standardised.frame.columns
        else None
    )
    decided = decide(
        scorer, records, kept.pairs(len(scorer.compiled)), loaded.table.frame, matricules, rules.thresholds
    )
    pairs, relation, is_link, clusters = decided.pairs, decided.relation, decided.is_link, decided.clusters
    left, right, probability = pairs.left, pairs.right, pairs.match_probability

    strongest = np.full(records.n, np.nan, dtype=np.float64)
    linked = np.flatnonzero(is_link & (clusters[left] == clusters[right]))
    for side in (left, right):
        np.fmax.at(strongest, side[linked], probability[linked].astype(np.float64))
    link_scores = [None if np.isnan(s) else s for s in strongest.tolist()]

    between = np.flatnonzero(clusters[left] != clusters[right])
    review_pairs = take(pairs, between)
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
