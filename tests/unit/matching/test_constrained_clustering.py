"""Clustering never merges two different matricules (or sexes) through a bridging record."""

from __future__ import annotations

import numpy as np

from mpi.matching.clustering import connected_clusters, constrained_clusters


def _arrays(edges: list[tuple[int, int, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    left = np.array([e[0] for e in edges], dtype=np.int64)
    right = np.array([e[1] for e in edges], dtype=np.int64)
    weight = np.array([e[2] for e in edges], dtype=np.float32)
    return left, right, weight


def test_a_record_without_matricule_does_not_bridge_two_matricules() -> None:
    # 0,1: twin A (matricule 7); 2,3: twin B (matricule 9); 4: no matricule, close to both.
    matricule = np.array([7, 7, 9, 9, -1], dtype=np.int32)
    left, right, weight = _arrays([(0, 1, 40.0), (2, 3, 40.0), (1, 4, 25.0), (3, 4, 24.0), (0, 4, 25.0)])
    plain = connected_clusters(5, left, right)
    assert len(set(plain.tolist())) == 1  # what unconstrained clustering would do: an overlay
    labels, kept = constrained_clusters(5, left, right, weight, [matricule])
    assert labels[0] == labels[1] and labels[2] == labels[3]
    assert labels[0] != labels[2]
    # The bridge looked like both people: it is linked to neither automatically.
    assert labels[4] not in (labels[0], labels[2])
    assert not kept[2:].any() and kept[:2].all()


def test_components_without_conflict_are_left_alone() -> None:
    matricule = np.array([7, -1, 7, -1], dtype=np.int32)
    sex = np.array([1, 1, -1, 1], dtype=np.int32)
    left, right, weight = _arrays([(0, 1, 30.0), (1, 2, 20.0), (2, 3, 10.0)])
    labels, kept = constrained_clusters(4, left, right, weight, [matricule, sex])
    assert len(set(labels.tolist())) == 1
    assert kept.all()


def test_the_strongest_links_win_and_a_record_with_the_trait_keeps_its_side() -> None:
    sex = np.array([0, 1, 0], dtype=np.int32)  # 0 and 2 share a sex, 1 differs
    left, right, weight = _arrays([(0, 1, 10.0), (0, 2, 30.0), (1, 2, 5.0)])
    labels, kept = constrained_clusters(3, left, right, weight, [sex])
    assert labels[0] == labels[2] != labels[1]
    assert kept.tolist() == [False, True, False]


def test_a_weak_link_between_two_clusters_is_returned_with_every_cross_pair() -> None:
    from mpi.matching.clustering import weak_bridges

    # 0-1-2 and 3-4 are strong clusters; 2-3 is a weak link between them; 5-6 a weak pair of singletons.
    left, right, _ = _arrays([(0, 1, 0), (1, 2, 0), (3, 4, 0), (2, 3, 0), (5, 6, 0)])
    probability = np.array([0.99, 0.99, 0.99, 0.6, 0.6], dtype=np.float32)
    edge, pair_l, pair_r = weak_bridges(7, left, right, probability, strong=0.95)
    assert set(edge.tolist()) == {3}  # two singletons are not clusters to protect
    assert {frozenset(p) for p in zip(pair_l.tolist(), pair_r.tolist(), strict=True)} == {
        frozenset((a, b)) for a in (0, 1, 2) for b in (3, 4)
    }
