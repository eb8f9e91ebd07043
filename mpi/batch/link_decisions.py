"""What a batch job decides on its scored pairs: which pairs link, and the clusters they make.

``mpi dedup`` and the bulk path of ``mpi load`` decide alike, in this order, so a file loaded
gives the persons its deduplication reports:

1. the link threshold, on the pairs kept at or above the review threshold;
2. weak bridges refused: a weak link joining two clusters stands only if the clusters match on
   average;
3. the matricule rule of the online path (DOMAIN.md): records sharing a valid matricule with
   the same sex and birth date link whatever their score, and with both different never do,
   nor may they meet in one cluster through other records (a potential collision);
4. clustering under exclusive traits: a cluster never holds two matricules or two sexes; a link
   that would is refused and goes to review.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mpi.batch.matricule_pairs import (
    COMPATIBLE,
    CONFLICTING,
    UNDECIDED,
    matricule_codes,
    shared_matricule_pairs,
    strict_relations,
)
from mpi.matching.clustering import constrained_clusters, weak_bridges
from mpi.matching.encoding import EncodedRecords
from mpi.matching.scoring import ScoredPairs, Scorer
from mpi.rules.schema import Thresholds

STRONG_LINK = 0.95
EXCLUSIVE_TRAITS = ("national_id", "sex")


@dataclass
class KeptPairs:
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


@dataclass(frozen=True)
class Decisions:
    pairs: ScoredPairs  # the kept pairs, then those sharing a valid matricule the rule acts on
    relation: npt.NDArray[np.int8]  # per pair: how a shared valid matricule relates them (0: none)
    is_link: npt.NDArray[np.bool_]
    clusters: npt.NDArray[np.int64]  # per record: the first record of its cluster


def decide(
    scorer: Scorer,
    records: EncodedRecords,
    kept: ScoredPairs,
    raw: pd.DataFrame,
    matricules: npt.NDArray[Any] | None,
    thresholds: Thresholds,
    *,
    link_only: bool = False,
) -> Decisions:
    """The links and clusters of ``kept`` (``matricules``: the standardised national ids, if the
    input has them; ``raw``: the input as read, whose sex and birth date judge a shared one)."""
    review_t, link_t = thresholds.review, thresholds.link
    pairs, relation = kept, np.zeros(kept.left.size, dtype=np.int8)
    if matricules is not None:
        across = records.file_index if link_only else None
        pairs, relation = with_shared_matricules(kept, scorer, matricules, raw, review_t, across)
    left, right, probability = pairs.left, pairs.right, pairs.match_probability
    is_link = (probability >= link_t) & pairs.linkable
    is_link = refuse_incoherent_merges(scorer, records.n, left, right, probability, is_link, link_t, review_t)
    conflicting = relation == CONFLICTING
    is_link = (is_link | (relation == COMPATIBLE)) & ~conflicting
    link_edges = np.flatnonzero(is_link)
    exclusive = [records.strings[c].codes for c in EXCLUSIVE_TRAITS if c in records.strings]
    if conflicting.any():
        exclusive.append(_strict_sex_codes(records.n, raw, left[conflicting], right[conflicting]))
    clusters, accepted = constrained_clusters(
        records.n, left[link_edges], right[link_edges], pairs.match_weight[link_edges], exclusive
    )
    is_link[link_edges[~accepted]] = False  # a link refused by clustering goes to review
    return Decisions(pairs, relation, is_link, clusters.astype(np.int64))


def refuse_incoherent_merges(
    scorer: Scorer,
    n_records: int,
    left: npt.NDArray[np.int64],
    right: npt.NDArray[np.int64],
    probability: npt.NDArray[np.float32],
    is_link: npt.NDArray[np.bool_],
    link_t: float,
    review_t: float,
) -> npt.NDArray[np.bool_]:
    """A weak link merging two clusters stands only if the clusters match on average.

    Every record of one cluster is scored against every record of the other
    (average linkage); when their mean probability does not even reach the
    review threshold, the clusters are not one entity and the link goes to review.
    """
    links = np.flatnonzero(is_link)
    edge, pair_l, pair_r = weak_bridges(
        n_records, left[links], right[links], probability[links], max(link_t, STRONG_LINK)
    )
    if edge.size == 0:
        return is_link
    scored = scorer.score(pair_l, pair_r)
    codes, edges = pd.factorize(edge)
    mean = np.bincount(codes, weights=scored.match_probability) / np.bincount(codes)
    refused = links[np.asarray(edges)[mean < review_t]]
    out = is_link.copy()
    out[refused] = False
    return out


def take(pairs: ScoredPairs, rows: npt.NDArray[np.int64]) -> ScoredPairs:
    return ScoredPairs(
        pairs.left[rows],
        pairs.right[rows],
        pairs.levels[rows],
        pairs.match_weight[rows],
        pairs.match_probability[rows],
        pairs.linkable[rows],
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


def raw_column(frame: pd.DataFrame, name: str) -> npt.NDArray[np.object_]:
    """A column as given (``None`` where missing or absent), as an object array."""
    if name not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    column = frame[name].astype(object)
    return column.where(column.notna(), None).to_numpy(dtype=object)


def with_shared_matricules(
    kept: ScoredPairs,
    scorer: Scorer,
    matricules: npt.NDArray[Any],
    raw: pd.DataFrame,
    review_t: float,
    file_index: npt.NDArray[Any] | None = None,
) -> tuple[ScoredPairs, npt.NDArray[np.int8]]:
    """The kept pairs, plus the pairs sharing a valid matricule that online would act on whatever
    their score (every collision and every same person; one trait differing, the review band),
    and each pair's relation (NONE unless it shares a valid matricule). With ``file_index``
    (a linkage), only pairs across files."""
    relation = np.zeros(kept.left.size, dtype=np.int8)
    codes = matricule_codes(matricules)
    left, right = shared_matricule_pairs(codes)
    if file_index is not None and left.size:
        across = file_index[left] != file_index[right]
        left, right = left[across], right[across]
    if left.size == 0:
        return kept, relation
    n = len(matricules)
    shared = strict_relations(raw_column(raw, "sex"), raw_column(raw, "birth_date"), left, right)
    # Which of them blocking found and kept already (every candidate pair is scored once).
    same = np.flatnonzero((codes[kept.left] >= 0) & (codes[kept.left] == codes[kept.right]))
    lo, hi = np.minimum(kept.left[same], kept.right[same]), np.maximum(kept.left[same], kept.right[same])
    at = pd.Index(left * n + right).get_indexer(lo * n + hi)
    found = at >= 0  # a kept pair within one file of a linkage is not among them
    relation[same[found]] = shared[at[found]]
    missing = np.ones(left.size, dtype=bool)
    missing[at[found]] = False
    rows = np.flatnonzero(missing)
    if rows.size == 0:
        return kept, relation
    extra = scorer.score(left[rows], right[rows])
    wanted = np.flatnonzero((shared[rows] != UNDECIDED) | (extra.match_probability >= review_t))
    return _concat(kept, take(extra, wanted)), np.r_[relation, shared[rows][wanted]].astype(np.int8)


def _strict_sex_codes(
    n: int, raw: pd.DataFrame, left: npt.NDArray[np.int64], right: npt.NDArray[np.int64]
) -> npt.NDArray[np.int32]:
    """A per-record code (-1 unknown) that keeps every collision pair out of one cluster: the
    sex as online reads it, given only to records of such pairs (whose sexes differ so read)."""
    codes = np.full(n, -1, dtype=np.int32)
    involved = np.unique(np.r_[left, right])
    if involved.size:
        sexes = pd.Series(raw_column(raw, "sex")[involved], dtype=object).fillna("").astype(str)
        first = sexes.str.strip().str.upper().str[:1]
        codes[involved] = np.where(first.to_numpy() == "M", 0, 1)
    return codes
