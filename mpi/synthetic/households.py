"""Hard negatives: distinct persons whose records look alike.

Twins share a surname, a birth date and an address; a son may carry his father's
given and family names at the same address; spouses share an address and, in
many records, a surname; and very common names meet the same birth year
(DOMAIN.md, "How identity data goes wrong"). Each relation is built by copying
traits from an *anchor* person onto a distinct *derived* person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mpi.synthetic.config import PopulationMix
from mpi.synthetic.pools import Pools
from mpi.synthetic.population import (
    FAMILY_SLOTS,
    GIVEN_SLOTS,
    Persons,
    draw_given_names,
    gendered_surnames,
    join_dates,
    split_dates,
)
from mpi.synthetic.text import IntArray, TextArray, distinct, text

TWIN = "twin"
PARENT_CHILD = "parent_child"
SPOUSE = "spouse"
NAMESAKE = "namesake"
_MIN_PARENT_AGE_YEARS = 25
_MAX_PARENT_AGE_YEARS = 40
_MIN_MARRIAGE_AGE_YEARS = 22
_DAYS_PER_YEAR = 365.2425


@dataclass
class Relations:
    """Pairs of distinct persons (indices) and how they are related."""

    first: IntArray
    second: IntArray
    kind: TextArray


def _opposite(sex: TextArray) -> TextArray:
    return np.where(sex == "F", "M", "F").astype(sex.dtype)


def _copy_family_names(persons: Persons, source: IntArray, target: IntArray) -> None:
    for slot in range(FAMILY_SLOTS):
        persons.family[slot][target] = persons.family[slot][source]
    persons.main_family_slot[target] = persons.main_family_slot[source]
    persons.common_family_name[target] = persons.common_family_name[source]
    persons.name_origin[target] = persons.name_origin[source]


def _copy_household(persons: Persons, source: IntArray, target: IntArray) -> None:
    persons.address.put(target, persons.address.take(source))
    persons.country[target] = persons.country[source]
    persons.cross_border[target] = persons.cross_border[source]


def _redraw_given_names(
    rng: np.random.Generator,
    persons: Persons,
    rows: IntArray,
    avoid_first: TextArray,
    mix: PopulationMix,
    pools: Pools,
) -> None:
    """New given names for ``rows`` whose first name differs from ``avoid_first``."""
    pending = np.arange(len(rows))
    for _ in range(8):  # a clash needs a redraw of the same name from the same pool; rare after a few
        drawn = draw_given_names(
            rng, persons.name_origin[rows[pending]], persons.sex[rows[pending]], mix, pools
        )
        for slot in range(GIVEN_SLOTS):
            persons.given[slot][rows[pending]] = drawn[slot]
        pending = pending[drawn[0] == avoid_first[pending]]
        if pending.size == 0:
            break


def _restore_gender_agreement(persons: Persons, rows: IntArray) -> None:
    family = [slot[rows] for slot in persons.family]
    gendered_surnames(family, persons.name_origin[rows], persons.sex[rows])
    for slot, values in zip(persons.family, family, strict=True):
        slot[rows] = values


def _birth_dates(persons: Persons, rows: IntArray) -> npt.NDArray[np.datetime64]:
    # Unknown parts count as January and the 1st: only ages are derived from them.
    month = np.maximum(persons.birth_month[rows], 1)
    day = np.maximum(persons.birth_day[rows], 1)
    return join_dates(persons.birth_year[rows], month, day)


def _twins(
    rng: np.random.Generator,
    persons: Persons,
    anchors: IntArray,
    twins: IntArray,
    mix: PopulationMix,
    pools: Pools,
) -> None:
    _copy_family_names(persons, anchors, twins)
    _copy_household(persons, anchors, twins)
    persons.birth_year[twins] = persons.birth_year[anchors]
    persons.birth_month[twins] = persons.birth_month[anchors]
    persons.birth_day[twins] = persons.birth_day[anchors]
    # About a third of twins are identical; of the others half are boy-girl pairs.
    flip = rng.random(len(twins)) < 0.4
    persons.sex[twins] = np.where(flip, _opposite(persons.sex[anchors]), persons.sex[anchors])
    _redraw_given_names(rng, persons, twins, persons.given[0][anchors], mix, pools)
    _restore_gender_agreement(persons, twins)


def _children_named_after_parent(
    rng: np.random.Generator,
    persons: Persons,
    parents: IntArray,
    children: IntArray,
    reference: np.datetime64,
) -> None:
    _copy_family_names(persons, parents, children)
    _copy_household(persons, parents, children)
    for slot in range(GIVEN_SLOTS):
        persons.given[slot][children] = persons.given[slot][parents]
    persons.sex[children] = persons.sex[parents]
    born = _birth_dates(persons, parents)
    low = _MIN_PARENT_AGE_YEARS * _DAYS_PER_YEAR
    high = np.minimum(_MAX_PARENT_AGE_YEARS * _DAYS_PER_YEAR, (reference - born).astype(np.float64))
    offset = (low + rng.random(len(parents)) * (high - low)).astype(np.int64)
    year, month, day = split_dates(born + offset.astype("m8[D]"))
    persons.birth_year[children] = year
    persons.birth_month[children] = month
    persons.birth_day[children] = day


def _namesakes(
    rng: np.random.Generator,
    persons: Persons,
    anchors: IntArray,
    namesakes: IntArray,
    mix: PopulationMix,
    pools: Pools,
) -> None:
    _copy_family_names(persons, anchors, namesakes)
    persons.sex[namesakes] = persons.sex[anchors]
    drawn = draw_given_names(rng, persons.name_origin[namesakes], persons.sex[namesakes], mix, pools)
    first = persons.given[0][anchors]
    persons.given[0][namesakes] = first
    for slot in range(1, GIVEN_SLOTS):
        persons.given[slot][namesakes] = np.where(drawn[slot] == first, "", drawn[slot])
    persons.birth_year[namesakes] = persons.birth_year[anchors]
    month, day = persons.birth_month[namesakes], persons.birth_day[namesakes]
    same = (month == persons.birth_month[anchors]) & (day == persons.birth_day[anchors])
    persons.birth_day[namesakes] = np.where(same, day % 28 + 1, day)
    persons.birth_month[namesakes] = np.where(same, np.maximum(month, 1), month)


def _spouses(
    rng: np.random.Generator,
    persons: Persons,
    may_marry: npt.NDArray[np.bool_],
    stays_home: npt.NDArray[np.bool_],
    mix: PopulationMix,
) -> tuple[IntArray, IntArray]:
    """Couples within a country and a naming tradition, paired by age; the wife moves in."""
    husbands, wives = [], []
    groups = np.strings.add(np.strings.add(persons.country, ":"), persons.name_origin)
    for group in distinct(groups[may_marry]):
        in_group = may_marry & (groups == group)
        women = np.flatnonzero(in_group & (persons.sex == "F") & ~stays_home)
        men = np.flatnonzero(in_group & (persons.sex == "M"))
        couples = min(round(mix.married_women * len(women)), len(men))
        if couples == 0:
            continue
        women = rng.choice(women, couples, replace=False)
        men = rng.choice(men, couples, replace=False)
        # Husbands are on average two years older; noise keeps pairs from being exact.
        women = women[np.argsort(persons.birth_year[women] - 2 + rng.normal(0, 3, couples), kind="stable")]
        men = men[np.argsort(persons.birth_year[men] + rng.normal(0, 3, couples), kind="stable")]
        husbands.append(men)
        wives.append(women)
    if not husbands:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    return np.concatenate(husbands), np.concatenate(wives)


def add_relations(rng: np.random.Generator, persons: Persons, mix: PopulationMix, pools: Pools) -> Relations:
    """Turn some persons into twins, namesake children, namesakes and spouses of others."""
    n = len(persons)
    reference = np.datetime64(mix.reference_date, "D")
    sizes = [round(n * mix.twins), round(n * mix.junior_senior), round(n * mix.homonyms)]
    order = rng.permutation(n)
    bounds = np.cumsum([0, *sizes])
    twins, children, namesakes = (order[bounds[i] : bounds[i + 1]] for i in range(3))
    free = np.sort(order[bounds[3] :])
    age_days = (reference - _birth_dates(persons, free)).astype(np.int64)

    twin_anchors = rng.choice(free, min(len(twins), len(free)), replace=False)
    twins = twins[: len(twin_anchors)]
    _twins(rng, persons, twin_anchors, twins, mix, pools)

    can_be_parent = free[
        (age_days > (_MIN_PARENT_AGE_YEARS + 1) * _DAYS_PER_YEAR) & ~np.isin(free, twin_anchors)
    ]
    # A son named after his father is the usual case; a daughter after her mother happens.
    weight = np.where(persons.sex[can_be_parent] == "M", 4.0, 1.0)
    count = min(len(children), len(can_be_parent))
    parents = (
        rng.choice(can_be_parent, count, replace=False, p=weight / weight.sum())
        if count
        else can_be_parent[:0]
    )
    children = children[: len(parents)]
    _children_named_after_parent(rng, persons, parents, children, reference)

    common = free[persons.common_family_name[free] & ~np.isin(free, twin_anchors) & ~np.isin(free, parents)]
    namesake_anchors = rng.choice(common, min(len(namesakes), len(common)), replace=False)
    namesakes = namesakes[: len(namesake_anchors)]
    _namesakes(rng, persons, namesake_anchors, namesakes, mix, pools)

    adult = (reference - _birth_dates(persons, np.arange(n))).astype(np.int64) >= (
        _MIN_MARRIAGE_AGE_YEARS * _DAYS_PER_YEAR
    )
    everyone = np.arange(n)
    may_marry = adult & ~np.isin(everyone, np.concatenate([twins, children, namesakes]))
    # Twins and namesake parents keep the address they share with their relative.
    stays_home = np.isin(everyone, np.concatenate([twin_anchors, parents]))
    husbands, wives = _spouses(rng, persons, may_marry, stays_home, mix)
    own_name = persons.main_family_name(wives)
    husband_name = persons.main_family_name(husbands)
    hyphenated = rng.random(len(wives)) < mix.hyphenated_married_name
    persons.married_name[wives] = np.where(
        hyphenated, np.strings.add(np.strings.add(husband_name, "-"), own_name), husband_name
    )
    persons.address.put(wives, persons.address.take(husbands))

    anchors = np.concatenate([twin_anchors, parents, namesake_anchors, husbands])
    derived = np.concatenate([twins, children, namesakes, wives])
    persons.partner[derived] = anchors
    persons.partner[husbands] = wives
    kinds = np.repeat(
        text([TWIN, PARENT_CHILD, NAMESAKE, SPOUSE]), [len(twins), len(children), len(namesakes), len(wives)]
    )
    return Relations(first=anchors.astype(np.int64), second=derived.astype(np.int64), kind=kinds)
