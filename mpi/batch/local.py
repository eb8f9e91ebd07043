"""The local batch driver: read, standardise, train, block, score, cluster, write.

It streams candidate pairs through the kernel in chunks and keeps only pairs at
or above the review threshold, so memory follows the number of records and
kept pairs, not the number of candidate pairs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mpi.batch.evaluation import cluster_scores, pairwise_scores, truth_labels
from mpi.batch.io import InputTable, read_inputs, write_table
from mpi.batch.link_decisions import KeptPairs, decide
from mpi.batch.progress import Progress, SilentProgress
from mpi.errors import InputError
from mpi.matching.blocking import pairs_examined, pairs_to_examine
from mpi.matching.clustering import cluster_size_distribution
from mpi.matching.encoding import EncodedRecords
from mpi.matching.engine import Engine
from mpi.matching.scoring import score_chunks
from mpi.matching.standardise import standardise
from mpi.rules.loader import load_parameters, load_rules, save_parameters
from mpi.rules.parameters import TrainedParameters
from mpi.rules.schema import Rules


@dataclass
class JobOptions:
    inputs: Sequence[Path]
    out: Path | None = None
    link_only: bool = False
    rules_path: Path | None = None
    model_path: Path | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    truth_path: Path | None = None
    truth_column: str | None = None
    fmt: str = "csv"
    chunk_pairs: int = 1_000_000
    workers: int = 2


@dataclass
class Prepared:
    table: InputTable
    rules: Rules
    engine: Engine
    records: EncodedRecords
    invalid_counts: dict[str, int]
    truth: npt.NDArray[np.int64] | None
    timings: dict[str, float]
    # The standardised national ids, when the input has them (the matricule rule reads them).
    matricules: npt.NDArray[np.object_] | None = None


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def lap(self, name: str, started: float) -> None:
        self.timings[name] = round(time.perf_counter() - started, 3)


def _load_truth(options: JobOptions, table: InputTable) -> npt.NDArray[np.int64] | None:
    if options.truth_column is not None and table.truth is not None:
        codes, _ = pd.factorize(table.truth, use_na_sentinel=True)
        return codes.astype(np.int64)
    if options.truth_path is None:
        return None
    truth_table = read_truth(options.truth_path)
    return truth_labels(table.frame["record_id"], truth_table)


def read_truth(path: Path) -> pd.DataFrame:
    from mpi.batch.io import read_one

    frame = read_one(path)
    if frame.shape[1] < 2:
        raise InputError(str(path), "a truth file has two columns: record_id and an entity id")
    if "record_id" in frame.columns:
        other = next(c for c in frame.columns if c != "record_id")
        frame = frame[["record_id", other]]
    return frame.iloc[:, :2].astype(str)


def prepare(options: JobOptions, progress: Progress) -> Prepared:
    timer = _Timer()
    rules = load_rules(options.rules_path)
    started = time.perf_counter()
    progress.start("reading input")
    table = read_inputs(options.inputs, options.mapping, options.truth_column)
    if options.link_only and len(set(table.file_index.tolist())) < 2:
        raise InputError(", ".join(map(str, options.inputs)), "--link-only needs at least two input files")
    progress.finish()
    timer.lap("read", started)

    started = time.perf_counter()
    progress.start("standardising")
    standardised = standardise(table.frame)
    progress.finish()
    timer.lap("standardise", started)

    started = time.perf_counter()
    engine = Engine(rules)
    records = engine.encode(standardised.frame, table.file_index.astype(np.int16))
    timer.lap("encode", started)
    truth = _load_truth(options, table)
    matricules = (
        standardised.frame["national_id"].to_numpy(dtype=object)
        if "national_id" in standardised.frame.columns
        else None
    )
    return Prepared(
        table, rules, engine, records, dict(standardised.invalid_counts), truth, timer.timings, matricules
    )


def train(
    prepared: Prepared, *, link_only: bool, supervised: bool, progress: Progress
) -> tuple[TrainedParameters, dict[str, Any]]:
    started = time.perf_counter()
    progress.start("training the model")
    params, report = prepared.engine.train(
        prepared.records,
        link_only=link_only,
        truth=prepared.truth if supervised else None,
        progress=progress.note,
    )
    progress.finish()
    prepared.timings["train"] = round(time.perf_counter() - started, 3)
    facts: dict[str, Any] = {
        "method": params.method,
        "prior": params.prior,
        "deterministic_pairs": report.deterministic_pairs,
        "u_random_pairs": report.u_pairs,
        "em_passes": report.em_passes,
    }
    return params, facts


def run_dedup(options: JobOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Run a whole deduplication or linkage job; returns the summary also written to summary.json."""
    progress = progress or SilentProgress()
    job_started = time.perf_counter()
    prepared = prepare(options, progress)
    rules, engine, records = prepared.rules, prepared.engine, prepared.records

    if options.model_path is not None:
        params = load_parameters(options.model_path, rules)
        model_facts: dict[str, Any] = {"method": params.method, "loaded_from": str(options.model_path)}
    else:
        params, model_facts = train(
            prepared,
            link_only=options.link_only,
            supervised=options.truth_column is not None,
            progress=progress,
        )
        if options.out is not None:
            save_parameters(params, options.out / "model.params.json")
            model_facts["saved_to"] = str(options.out / "model.params.json")

    started = time.perf_counter()
    progress.start("blocking")
    prepared_rules = engine.prepare_blocking(records)
    progress.finish()
    prepared.timings["blocking"] = round(time.perf_counter() - started, 3)

    started = time.perf_counter()
    scorer = engine.scorer(records, params)
    review_t = rules.thresholds.review
    kept = KeptPairs()
    truth = prepared.truth
    true_found = np.zeros(len(prepared_rules), dtype=np.int64)
    scored_pairs = 0
    progress.start("scoring candidate pairs", total=pairs_to_examine(prepared_rules))
    shown = 0
    chunks = engine.candidate_pairs(
        records, prepared_rules, link_only=options.link_only, chunk_pairs=options.chunk_pairs
    )
    for r, scored in score_chunks(scorer, chunks, workers=options.workers):
        left, right = scored.left, scored.right
        kept.add(scored, scored.match_probability >= review_t)
        if truth is not None:
            true_found[r] += int((truth[left] == truth[right]).sum())
        scored_pairs += int(left.size)
        examined = pairs_examined(prepared_rules)
        progress.advance(examined - shown)
        shown = examined
    progress.finish()
    prepared.timings["score"] = round(time.perf_counter() - started, 3)

    started = time.perf_counter()
    progress.start("clustering")
    decided = decide(
        scorer,
        records,
        kept.pairs(len(scorer.compiled)),
        prepared.table.frame,
        prepared.matricules,
        rules.thresholds,
        link_only=options.link_only,
    )
    pairs, is_link, clusters = decided.pairs, decided.is_link, decided.clusters
    left, right, weight, probability = pairs.left, pairs.right, pairs.match_weight, pairs.match_probability
    progress.finish()
    prepared.timings["cluster"] = round(time.perf_counter() - started, 3)

    record_ids = prepared.table.frame["record_id"].to_numpy(dtype=object)
    written: dict[str, str] = {}
    if options.out is not None:
        started = time.perf_counter()
        progress.start("writing results")
        order = np.argsort(-probability, kind="stable")
        pairs_frame = pd.DataFrame(
            {
                "record_id_l": record_ids[left[order]],
                "record_id_r": record_ids[right[order]],
                "match_probability": np.round(probability[order].astype(np.float64), 6),
                "match_weight": np.round(weight[order].astype(np.float64), 4),
                "decision": np.where(is_link[order], "link", "review"),
            }
        )
        written["pairs"] = str(write_table(pairs_frame, options.out / "pairs", options.fmt))
        clusters_frame = pd.DataFrame({"record_id": record_ids, "cluster_id": record_ids[clusters]})
        written["clusters"] = str(write_table(clusters_frame, options.out / "clusters", options.fmt))
        progress.finish()
        prepared.timings["write"] = round(time.perf_counter() - started, 3)

    summary = _summary(
        options,
        prepared,
        params,
        model_facts,
        prepared_rules,
        scored_pairs,
        int(is_link.sum()),
        int((~is_link).sum()),
        clusters,
        (left, right, is_link, true_found),
    )
    prepared.timings["total"] = round(time.perf_counter() - job_started, 3)
    summary["timings_seconds"] = prepared.timings
    summary["outputs"] = written
    if options.out is not None:
        options.out.mkdir(parents=True, exist_ok=True)
        (options.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _summary(
    options: JobOptions,
    prepared: Prepared,
    params: TrainedParameters,
    model_facts: dict[str, Any],
    prepared_rules: Sequence[Any],
    scored_pairs: int,
    links: int,
    reviews: int,
    clusters: npt.NDArray[np.int64],
    pairs: tuple[Any, Any, Any, Any],
) -> dict[str, Any]:
    engine, records = prepared.engine, prepared.records
    used, dropped = engine.usable_comparators(records)
    _, dropped_rules = engine.usable_blocking_rules(records)
    left, right, is_link, true_found = pairs
    link_only = options.link_only
    file_index = records.file_index if link_only else None
    blocking: dict[str, Any] = {
        "max_block_size": prepared.rules.blocking.max_block_size,
        "rules": [
            {
                "name": p.stats.name,
                "pairs": p.stats.pairs,
                "blocks": p.stats.blocks,
                "largest_blocks": [{"key": k, "size": s} for k, s in p.stats.largest_blocks],
                "skipped_oversized_blocks": [{"key": b.key, "size": b.size} for b in p.stats.skipped_blocks],
                "skipped_over_budget": p.stats.skipped_over_budget,
            }
            for p in prepared_rules
        ],
        "dropped_rules": [
            {"name": d.name, "missing_columns": list(d.missing_columns)} for d in dropped_rules
        ],
        "candidate_pairs": scored_pairs,
    }
    summary: dict[str, Any] = {
        "mode": "link" if link_only else "dedup",
        "inputs": prepared.table.files,
        "rules": prepared.rules.stamp,
        "thresholds": {"link": prepared.rules.thresholds.link, "review": prepared.rules.thresholds.review},
        "counts": {
            "records": records.n,
            "candidate_pairs": scored_pairs,
            "links": links,
            "reviews": reviews,
            "clusters": int(np.unique(clusters).size),
        },
        "cluster_sizes": cluster_size_distribution(clusters),
        "model": {
            **model_facts,
            "prior": params.prior,
            "comparisons_used": [c.name for c in used if c.name in params.comparisons],
            "comparisons_dropped": [
                {"name": d.name, "missing_columns": list(d.missing_columns)} for d in dropped
            ],
            "warnings": list(params.warnings),
        },
        "blocking": blocking,
        "invalid_values": {k: v for k, v in prepared.invalid_counts.items() if v},
        "ignored_columns": prepared.table.ignored_columns,
    }
    truth = prepared.truth
    if truth is not None:
        actual = pairwise_scores(left[is_link], right[is_link], truth, file_index)
        found = int(true_found.sum())
        blocking["pair_completeness"] = round(found / actual.actual, 6) if actual.actual else 1.0
        for rule_stats, found in zip(blocking["rules"], true_found.tolist(), strict=True):
            rule_stats["true_pairs_found"] = found
        summary["accuracy"] = {
            "pairwise_links": actual.as_dict(),
            "clusters": cluster_scores(clusters, truth, file_index).as_dict(),
        }
    return summary
