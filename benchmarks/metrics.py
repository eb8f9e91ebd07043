"""Accuracy of a linkage result against ground truth, for deduplication and linkage.

Three views, each as precision / recall / F1 (:class:`Scores`):

* :func:`pair_scores`: the pairs an engine decided to link, against the true pairs.
  In link-only mode the true pairs are the same-entity pairs *across* sources.
* :func:`cluster_pair_scores`: the pairs implied by the clusters (every two records in
  one cluster) against the pairs implied by the true entities. Counted from the
  cluster x entity contingency table, so a giant cluster costs no pair explosion.
* :func:`bcubed_scores`: B-cubed precision and recall, the per-record average of
  how much of its cluster is its entity and how much of its entity is its cluster.

Conventions: an empty prediction has precision 1, an empty truth has recall 1, and F1
is 0 whenever either is 0. Ids are compared as text. Records of the truth that a
clusters file omits count as singletons; ids absent from the truth are an error,
because they mean the result and the truth describe different inputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

TRUTH_ENTITY_COLUMNS = ("entity_id", "person_id", "cluster_id")


@dataclass(frozen=True)
class Scores:
    """Precision, recall and F1 with the counts they come from."""

    precision: float
    recall: float
    f1: float
    true_positives: float
    predicted: float
    actual: float

    @classmethod
    def from_counts(cls, true_positives: float, predicted: float, actual: float) -> Scores:
        precision = true_positives / predicted if predicted else 1.0
        recall = true_positives / actual if actual else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return cls(precision, recall, f1, true_positives, predicted, actual)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def load_truth(path: Path) -> pd.DataFrame:
    """Read a truth CSV as text columns ``record_id``, ``entity_id`` and, if present, ``source``.

    The entity column may be named ``entity_id``, ``person_id`` (``mpi synth``) or ``cluster_id``.
    """
    truth = pd.read_csv(path, dtype=str, keep_default_na=False)
    return normalise_truth(truth, str(path))


def normalise_truth(truth: pd.DataFrame, origin: str = "truth") -> pd.DataFrame:
    """Rename the entity column to ``entity_id`` and check record ids are unique."""
    entity_column = next((c for c in TRUTH_ENTITY_COLUMNS if c in truth.columns), None)
    if "record_id" not in truth.columns or entity_column is None:
        raise ValueError(
            f"{origin}: needs a record_id column and one of {', '.join(TRUTH_ENTITY_COLUMNS)}; "
            f"found {list(truth.columns)}"
        )
    keep = ["record_id", entity_column] + (["source"] if "source" in truth.columns else [])
    normalised = truth[keep].rename(columns={entity_column: "entity_id"}).astype(str)
    duplicated = normalised["record_id"].duplicated()
    if duplicated.any():
        raise ValueError(
            f"{origin}: duplicate record ids, e.g. {normalised['record_id'][duplicated].iloc[0]}"
        )
    return normalised.reset_index(drop=True)


def read_pairs(path: Path, decisions: tuple[str, ...] | None = ("link",)) -> pd.DataFrame:
    """Read an engine's ``pairs.csv``, keeping only rows whose decision is in ``decisions``.

    ``decisions=None`` keeps every row, for files without a decision column.
    """
    pairs = pd.read_csv(path, dtype={"record_id_l": str, "record_id_r": str}, keep_default_na=False)
    if decisions is not None:
        pairs = pairs[pairs["decision"].astype(str).isin(decisions)]
    return pairs.reset_index(drop=True)


def read_clusters(path: Path) -> pd.DataFrame:
    """Read an engine's ``clusters.csv`` (record_id, cluster_id) as text."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, usecols=["record_id", "cluster_id"])


def _choose2(counts: pd.Series | np.ndarray) -> float:
    sizes = np.asarray(counts, dtype=np.int64)
    return float((sizes * (sizes - 1) // 2).sum())


def _as_objects(values: pd.Series) -> npt.NDArray[np.object_]:
    # Object arrays hash in C; pandas 3's Arrow-backed strings fall back to Python loops in isin.
    return values.astype(str).to_numpy(dtype=object)


def _codes(values: pd.Series) -> npt.NDArray[np.int64]:
    return pd.factorize(_as_objects(values))[0].astype(np.int64)


def _positions(truth: pd.DataFrame, record_ids: pd.Series) -> npt.NDArray[np.int64]:
    """Row of each id in the truth, -1 for ids the truth does not have."""
    index = pd.Index(_as_objects(truth["record_id"]))
    return index.get_indexer(_as_objects(record_ids)).astype(np.int64)


def true_pair_count(truth: pd.DataFrame, link_only: bool = False) -> float:
    """Number of same-entity pairs; across sources only when ``link_only``."""
    entity = _codes(truth["entity_id"])
    all_pairs = _choose2(np.bincount(entity))
    if not link_only:
        return all_pairs
    if "source" not in truth.columns:
        raise ValueError("link-only scoring needs a source column in the truth")
    source = _codes(truth["source"])
    within_source = _choose2(np.unique(entity * (source.max() + 1) + source, return_counts=True)[1])
    return all_pairs - within_source


def canonical_pairs(left: npt.NDArray[np.int64], right: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Unordered, de-duplicated pairs of row positions without self-pairs, as an (n, 2) array."""
    low, high = np.minimum(left, right), np.maximum(left, right)
    keep = low != high
    pairs = np.column_stack([low[keep], high[keep]])
    return np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)


def pair_scores(pairs: pd.DataFrame, truth: pd.DataFrame, link_only: bool = False) -> Scores:
    """Score predicted pairs (``record_id_l``, ``record_id_r``) against the truth."""
    left = _positions(truth, pairs["record_id_l"])
    right = _positions(truth, pairs["record_id_r"])
    unknown = (left < 0) | (right < 0)
    if unknown.any():
        example = pairs[["record_id_l", "record_id_r"]][unknown].iloc[0].tolist()
        raise ValueError(
            f"{int(unknown.sum())} predicted pairs name ids absent from the truth, e.g. {example}"
        )
    predicted = canonical_pairs(left, right)
    entity = _codes(truth["entity_id"])
    correct = entity[predicted[:, 0]] == entity[predicted[:, 1]]
    if link_only:
        if "source" not in truth.columns:
            raise ValueError("link-only scoring needs a source column in the truth")
        source = _codes(truth["source"])
        correct &= source[predicted[:, 0]] != source[predicted[:, 1]]
    return Scores.from_counts(float(correct.sum()), float(len(predicted)), true_pair_count(truth, link_only))


@dataclass(frozen=True)
class _Contingency:
    """Cluster x entity overlap counts over every truth record."""

    cluster: npt.NDArray[np.int64]  # cluster of each non-empty cell
    entity: npt.NDArray[np.int64]  # entity of each non-empty cell
    overlap: npt.NDArray[np.int64]  # records in both
    cluster_size: npt.NDArray[np.int64]  # by cluster code
    entity_size: npt.NDArray[np.int64]  # by entity code
    records: int


def _contingency(clusters: pd.DataFrame, truth: pd.DataFrame) -> _Contingency:
    """Every truth record with its cluster; records the clusters omit become singletons."""
    positions = _positions(truth, clusters["record_id"])
    unknown = positions < 0
    if unknown.any():
        raise ValueError(
            f"{int(unknown.sum())} clustered ids are absent from the truth, "
            f"e.g. {clusters['record_id'][unknown].iloc[0]}"
        )
    if len(np.unique(positions)) != len(positions):
        repeated = clusters["record_id"][pd.Series(positions).duplicated().to_numpy()].iloc[0]
        raise ValueError(f"a record is in two clusters: {repeated}")
    records = len(truth)
    cluster = np.full(records, -1, dtype=np.int64)
    cluster[positions] = _codes(clusters["cluster_id"])
    missing = cluster < 0
    cluster[missing] = cluster.max(initial=-1) + 1 + np.arange(int(missing.sum()))
    entity = _codes(truth["entity_id"])
    entity_count = int(entity.max(initial=-1)) + 1
    cells, overlap = np.unique(cluster * entity_count + entity, return_counts=True)
    return _Contingency(
        cluster=cells // max(entity_count, 1),
        entity=cells % max(entity_count, 1),
        overlap=overlap.astype(np.int64),
        cluster_size=np.bincount(cluster),
        entity_size=np.bincount(entity),
        records=records,
    )


def cluster_pair_scores(clusters: pd.DataFrame, truth: pd.DataFrame) -> Scores:
    """Pairwise scores of the pairs implied by ``clusters`` (record_id, cluster_id)."""
    table = _contingency(clusters, truth)
    return Scores.from_counts(
        _choose2(table.overlap), _choose2(table.cluster_size), _choose2(table.entity_size)
    )


def bcubed_scores(clusters: pd.DataFrame, truth: pd.DataFrame) -> Scores:
    """B-cubed precision/recall/F1; the counts are the summed per-record scores and N."""
    table = _contingency(clusters, truth)
    squared = table.overlap.astype(np.float64) ** 2
    record_count = float(table.records)
    precision_sum = float((squared / table.cluster_size[table.cluster]).sum())
    recall_sum = float((squared / table.entity_size[table.entity]).sum())
    precision = precision_sum / record_count if record_count else 1.0
    recall = recall_sum / record_count if record_count else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1, precision_sum, record_count, record_count)
