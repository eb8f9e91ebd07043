"""Accuracy against ground truth: pairwise and cluster precision/recall/F1, PR curve, threshold table.

All counting is done with contingency tables (group sizes), never by listing the
pairs a cluster implies, so a large cluster costs nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

Labels = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    true_positives: int
    predicted: int
    actual: int

    @classmethod
    def of(cls, tp: int, predicted: int, actual: int) -> Scores:
        precision = tp / predicted if predicted else 1.0
        recall = tp / actual if actual else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return cls(round(precision, 6), round(recall, 6), round(f1, 6), tp, predicted, actual)

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _pairs_within(groups: Labels, file_index: npt.NDArray[np.int16] | None) -> int:
    """Number of record pairs sharing a group (across files only, when file_index is given)."""
    if groups.size == 0:
        return 0
    if file_index is None:
        sizes = np.bincount(pd.factorize(groups)[0]).astype(np.int64)
        return int((sizes * (sizes - 1) // 2).sum())
    frame = pd.DataFrame({"g": groups, "f": file_index})
    per_file = frame.groupby(["g", "f"], sort=False).size()
    totals = per_file.groupby(level=0).sum().astype(np.int64)
    squares = (per_file.astype(np.int64) ** 2).groupby(level=0).sum()
    return int(((totals**2 - squares) // 2).sum())


def truth_labels(record_ids: pd.Series, truth: pd.DataFrame) -> Labels:
    """Integer entity label per record; records absent from the truth are their own entity."""
    mapping = dict(zip(truth.iloc[:, 0].astype(str), truth.iloc[:, 1].astype(str), strict=True))
    entity = record_ids.astype(str).map(mapping)
    codes, _ = pd.factorize(entity, use_na_sentinel=True)
    codes = codes.astype(np.int64)
    unknown = np.flatnonzero(codes < 0)
    codes[unknown] = codes.max(initial=-1) + 1 + np.arange(unknown.size)
    return codes


def pairwise_scores(
    left: npt.NDArray[np.int64],
    right: npt.NDArray[np.int64],
    truth: Labels,
    file_index: npt.NDArray[np.int16] | None,
) -> Scores:
    tp = int((truth[left] == truth[right]).sum())
    return Scores.of(tp, int(left.size), _pairs_within(truth, file_index))


def cluster_scores(clusters: Labels, truth: Labels, file_index: npt.NDArray[np.int16] | None) -> Scores:
    """Pairwise scores of the pairs clusters imply (what an MPI person means)."""
    joint = pd.factorize(pd.MultiIndex.from_arrays([clusters, truth]))[0].astype(np.int64)
    tp = _pairs_within(joint, file_index)
    return Scores.of(tp, _pairs_within(clusters, file_index), _pairs_within(truth, file_index))


def threshold_table(
    probability: npt.NDArray[np.float32],
    correct: npt.NDArray[np.bool_],
    actual: int,
    thresholds: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999),
) -> list[dict[str, float | int]]:
    rows = []
    for t in thresholds:
        chosen = probability >= t
        row = Scores.of(int((correct & chosen).sum()), int(chosen.sum()), actual).as_dict()
        rows.append({"threshold": t, **row})
    return rows


def precision_recall_curve(
    probability: npt.NDArray[np.float32], correct: npt.NDArray[np.bool_], actual: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float32]]:
    order = np.argsort(-probability, kind="stable")
    hits = np.cumsum(correct[order])
    predicted = np.arange(1, order.size + 1)
    precision = hits / predicted
    recall = hits / actual if actual else np.ones_like(precision)
    return precision, recall, probability[order]


def save_precision_recall_png(
    probability: npt.NDArray[np.float32], correct: npt.NDArray[np.bool_], actual: int, path: Path, title: str
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    precision, recall, _ = precision_recall_curve(probability, correct, actual)
    figure, axes = plt.subplots(figsize=(6, 4.5), dpi=110)
    axes.plot(recall, precision, linewidth=1.6)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_title(title)
    axes.set_xlim(max(0.0, float(recall.min(initial=1.0)) - 0.02), 1.001)
    axes.set_ylim(max(0.0, float(precision.min(initial=1.0)) - 0.02), 1.001)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
