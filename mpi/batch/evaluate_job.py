"""`mpi evaluate`: pairs or clusters files against a truth file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mpi.batch.evaluation import (
    Scores,
    _pairs_within,
    cluster_scores,
    save_precision_recall_png,
    threshold_table,
)
from mpi.batch.io import read_one
from mpi.batch.local import read_truth
from mpi.errors import InputError


def _require(frame: pd.DataFrame, path: Path, columns: tuple[str, ...]) -> None:
    for column in columns:
        if column not in frame.columns:
            raise InputError(str(path), "required column is missing", column=column)


def evaluate_files(
    truth_path: Path, pairs_path: Path | None, clusters_path: Path | None, out: Path | None
) -> dict[str, Any]:
    truth = read_truth(truth_path)
    entity_of = pd.Series(truth.iloc[:, 1].to_numpy(), index=truth.iloc[:, 0].to_numpy())
    if entity_of.index.duplicated().any():
        dup = entity_of.index[entity_of.index.duplicated()][0]
        raise InputError(str(truth_path), f"record_id {dup!r} appears twice", column="record_id")
    entity_codes = pd.factorize(entity_of)[0].astype(np.int64)
    actual = _pairs_within(entity_codes, None)
    report: dict[str, Any] = {"truth": str(truth_path), "true_pairs": actual}

    if pairs_path is not None:
        pairs = read_one(pairs_path)
        _require(pairs, pairs_path, ("record_id_l", "record_id_r"))
        el = pairs["record_id_l"].map(entity_of)
        er = pairs["record_id_r"].map(entity_of)
        correct = (el == er).fillna(False).to_numpy(dtype=bool)
        if "decision" in pairs.columns:
            is_link = (pairs["decision"] == "link").to_numpy(dtype=bool)
        else:
            is_link = np.ones(len(pairs), dtype=bool)
        report["pairwise_links"] = Scores.of(
            int((correct & is_link).sum()), int(is_link.sum()), actual
        ).as_dict()
        if "match_probability" in pairs.columns:
            try:
                probability = pairs["match_probability"].astype(float).to_numpy(dtype=np.float32)
            except ValueError:
                raise InputError(str(pairs_path), "not a number", column="match_probability") from None
            report["threshold_table"] = threshold_table(probability, correct, actual)
            if out is not None:
                png = save_precision_recall_png(
                    probability, correct, actual, out / "precision_recall.png", f"{pairs_path.name}"
                )
                report["precision_recall_png"] = str(png)

    if clusters_path is not None:
        clusters = read_one(clusters_path)
        _require(clusters, clusters_path, ("record_id", "cluster_id"))
        entity = clusters["record_id"].map(entity_of)
        missing = entity.isna().to_numpy()
        entity_labels = pd.factorize(entity)[0].astype(np.int64)
        entity_labels[missing] = entity_labels.max(initial=-1) + 1 + np.arange(int(missing.sum()))
        cluster_labels = pd.factorize(clusters["cluster_id"])[0].astype(np.int64)
        report["clusters"] = cluster_scores(cluster_labels, entity_labels, None).as_dict()

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "evaluation.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report
