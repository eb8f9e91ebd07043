"""Clustering: connected components over link decisions; one cluster per future MPI person."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
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


def constrained_clusters(
    n_records: int,
    left: Indices,
    right: Indices,
    weight: npt.NDArray[np.float32],
    exclusive: Sequence[npt.NDArray[np.int32]],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Connected components that never join two records with different exclusive values.

    ``exclusive`` holds per-record codes (-1 when unknown) of traits one person
    has only one of: a valid matricule, a sex. A record without them can bridge
    two records that have different ones (a lab record "Maria Coelho" without a
    matricule, close to each of two twin sisters); plain connected components
    would then merge the sisters: an overlay. Components with such a conflict
    are rebuilt by adding their links strongest first and refusing a link that
    would join conflicting values; a record without the traits whose links were
    refused that way is ambiguous and loses all its automatic links (it goes to
    review). Returns the labels and which links were kept.
    """
    labels = connected_clusters(n_records, left, right)
    accepted = np.ones(left.shape[0], dtype=bool)
    if left.size == 0 or not exclusive:
        return labels, accepted
    conflicted = np.zeros(labels.max() + 1, dtype=bool)
    for codes in exclusive:
        known = codes >= 0
        if not known.any():
            continue
        frame = pd.DataFrame({"cluster": labels[known], "value": codes[known]})
        distinct = frame.groupby("cluster", sort=False)["value"].nunique()
        conflicted[distinct.index[distinct.to_numpy() > 1].to_numpy()] = True
    edge_in_conflict = conflicted[labels[left]]
    if not edge_in_conflict.any():
        return labels, accepted
    edges = np.flatnonzero(edge_in_conflict)
    edges = edges[np.argsort(-weight[edges], kind="stable")]
    parent: dict[int, int] = {}
    values: dict[int, list[int]] = {}

    def root(x: int) -> int:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    def traits(x: int) -> list[int]:
        if x not in values:
            values[x] = [int(codes[x]) for codes in exclusive]
        return values[x]

    refused_on: list[tuple[int, int]] = []  # (edge, trait) of each refused link
    # Only the few conflicting components reach this loop.
    for edge in edges.tolist():
        a, b = root(int(left[edge])), root(int(right[edge]))
        if a == b:
            continue
        ta, tb = traits(a), traits(b)
        clash = [k for k, (x, y) in enumerate(zip(ta, tb, strict=True)) if x >= 0 and y >= 0 and x != y]
        if clash:
            accepted[edge] = False
            refused_on.extend((edge, k) for k in clash)
            continue
        parent[b] = a
        values[a] = [x if x >= 0 else y for x, y in zip(ta, tb, strict=True)]
    # A record without the traits that was refused somewhere looked like two
    # different people: it is ambiguous, so none of its links is automatic.
    ambiguous = np.zeros(n_records, dtype=bool)
    for edge, trait in refused_on:
        for record in (int(left[edge]), int(right[edge])):
            if exclusive[trait][record] < 0:
                ambiguous[record] = True
    accepted[edges[ambiguous[left[edges]] | ambiguous[right[edges]]]] = False
    kept = accepted | ~edge_in_conflict
    return connected_clusters(n_records, left[kept], right[kept]), accepted



def weak_bridges(
    n_records: int,
    left: Indices,
    right: Indices,
    probability: npt.NDArray[np.float32],
    strong: float,
    max_cross_pairs: int = 400,
) -> tuple[Indices, Indices, Indices]:
    """Weak links that would merge two clusters built from strong links, and the pairs to check.

    Single-linkage clustering lets one weak link join two groups of records
    that otherwise have nothing in common (one misread record joins two
    families). For every link below ``strong`` between two such clusters, this
    returns the link's index and every cross pair of the two clusters (as
    record indices, with the link index they belong to), so the caller can
    score them all and keep the link only if the clusters match as a whole.
    Links whose clusters would need more than ``max_cross_pairs`` checks are
    left alone.
    """
    empty = np.zeros(0, dtype=np.int64)
    weak = np.flatnonzero(probability < strong)
    if weak.size == 0:
        return empty, empty, empty
    strong_edges = probability >= strong
    labels = connected_clusters(n_records, left[strong_edges], right[strong_edges])
    cl, cr = labels[left[weak]], labels[right[weak]]
    sizes = np.bincount(labels, minlength=n_records)
    candidates = (cl != cr) & ((sizes[cl] > 1) | (sizes[cr] > 1)) & (sizes[cl] * sizes[cr] <= max_cross_pairs)
    weak, cl, cr = weak[candidates], cl[candidates], cr[candidates]
    if weak.size == 0:
        return empty, empty, empty
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(n_records))
    # Few links reach here (only weak links between multi-record clusters).
    edge_ids, pair_l, pair_r = [], [], []
    for edge, a, b in zip(weak.tolist(), cl.tolist(), cr.tolist(), strict=True):
        members_a = order[starts[a] : starts[a] + sizes[a]]
        members_b = order[starts[b] : starts[b] + sizes[b]]
        grid_a = np.repeat(members_a, members_b.size)
        grid_b = np.tile(members_b, members_a.size)
        pair_l.append(grid_a)
        pair_r.append(grid_b)
        edge_ids.append(np.full(grid_a.size, edge, dtype=np.int64))
    return np.concatenate(edge_ids), np.concatenate(pair_l), np.concatenate(pair_r)
