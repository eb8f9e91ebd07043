"""Clustering: connected components over link decisions; one cluster per future MPI person."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from mpi.matching.encoding import Indices


def connected_clusters(n_records: int, left: Indices, right: Indices) -> npt.NDArray[np.int64]:
    """Cluster label per record; a label is the smallest record index of its cluster."""
    if n_records == 0:
        return np.zeros(0, dtype=np.int64)
    graph = coo_matrix(
        (np.ones(left.shape[0], dtype=np.int8), (left, right)), shape=(n_records, n_records)
    ).tocsr()
    _, labels = connected_components(graph, directed=False)
    # Re-label each component by its smallest member so labels are stable and meaningful.
    smallest = np.full(labels.max() + 1, n_records, dtype=np.int64)
    np.minimum.at(smallest, labels, np.arange(n_records, dtype=np.int64))
    return np.asarray(smallest[labels], dtype=np.int64)


def cluster_size_distribution(labels: npt.NDArray[np.int64]) -> dict[str, int]:
    """How many clusters have each size ("1": singletons, ...)."""
    if labels.size == 0:
        return {}
    sizes = np.bincount(labels)
    sizes = sizes[sizes > 0]
    values, counts = np.unique(sizes, return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)}
