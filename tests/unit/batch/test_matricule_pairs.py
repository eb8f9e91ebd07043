"""The bulk load's matricule rule, a column at a time, gives the online path's answer pair by pair."""

from __future__ import annotations

import itertools

import numpy as np

from mpi.batch.matricule_pairs import (
    COMPATIBLE,
    CONFLICTING,
    UNDECIDED,
    matricule_codes,
    shared_matricule_pairs,
    strict_relations,
)
from mpi.domain.records import Demographics
from mpi.service.evidence import MatriculeRelation, strict_relation

CODE_OF = {
    MatriculeRelation.COMPATIBLE: COMPATIBLE,
    MatriculeRelation.UNDECIDED: UNDECIDED,
    MatriculeRelation.CONFLICTING: CONFLICTING,
}
SEXES = [None, "", " ", "M", "m", " F ", "Female", "male", "U", "x", "W", "1", "2"]
BIRTH_DATES = [
    None,
    "",
    " ",
    "1974-09-11",
    " 1974-09-11 ",
    "1974-9-11",
    "1974-09-00",
    "1974-00-00",
    "0000-09-11",
    "1975-03-04",
    "1974-09-12",
    "11.09.1974",
    "1974-09",
    "1974-09-11-1",
    "1974-O9-11",
    "abc",
]


def test_relations_of_every_trait_combination_are_the_online_ones() -> None:
    records = list(itertools.product(SEXES, BIRTH_DATES))
    pairs = np.array(list(itertools.combinations(range(len(records)), 2)), dtype=np.int64)
    left, right = pairs[:, 0], pairs[:, 1]
    sexes = [s for s, _ in records]
    dates = [d for _, d in records]
    vectorised = strict_relations(sexes, dates, left, right).tolist()
    online = [
        CODE_OF[strict_relation(Demographics(sex=records[a][0], birth_date=records[a][1]), records[b])]
        for a, b in zip(left.tolist(), right.tolist(), strict=True)
    ]
    assert vectorised == online
    assert set(online) == {COMPATIBLE, UNDECIDED, CONFLICTING}


def test_only_records_of_a_pair_are_read_and_order_of_a_pair_does_not_matter() -> None:
    sexes = np.array(["M", "F", None, "F"], dtype=object)
    dates = np.array(["1974-09-11", "1975-03-04", "1974-09-11", "1974-09-11"], dtype=object)
    left, right = np.array([0, 1, 0, 2]), np.array([1, 0, 2, 3])
    assert strict_relations(sexes, dates, left, right).tolist() == [
        CONFLICTING,
        CONFLICTING,
        COMPATIBLE,
        COMPATIBLE,
    ]
    assert strict_relations(sexes, dates, left[:0], right[:0]).size == 0


def test_pairs_are_every_two_records_with_one_valid_matricule() -> None:
    matricules = np.array(
        ["1974091186700", None, "1990093012358", "1974091186700", np.nan, "1974091186700", "1990093012358"],
        dtype=object,
    )
    left, right = shared_matricule_pairs(matricule_codes(matricules))
    assert sorted(zip(left.tolist(), right.tolist(), strict=True)) == [(0, 3), (0, 5), (2, 6), (3, 5)]
    none = shared_matricule_pairs(matricule_codes(np.array(["1974091186700", None, None], dtype=object)))
    assert none[0].size == none[1].size == 0
