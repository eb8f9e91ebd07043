"""Name and place pools of the synthetic generator, read from the CSV files beside this module.

Each pool keeps its values in a numpy string array and a cumulative distribution,
so drawing a million names is one ``searchsorted`` and one fancy index.
"""

from __future__ import annotations

import csv
import functools
import io
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt

from mpi.errors import MPIError
from mpi.synthetic.text import TEXT, TextArray

_POOL_PACKAGE = "mpi.synthetic.pools"
COMMON_NAME_RANK = 10  # "very common" surnames: the first ten of an origin's list


@dataclass(frozen=True)
class WeightedValues:
    """Values with relative frequencies, sampled by index."""

    values: TextArray
    cumulative: npt.NDArray[np.float64]

    @classmethod
    def from_pairs(cls, values: list[str], weights: list[float]) -> WeightedValues:
        if not values:
            raise MPIError("a pool needs at least one value")
        total = np.cumsum(np.asarray(weights, dtype=np.float64))
        if total[-1] <= 0:
            raise MPIError("a pool needs a positive total frequency")
        cumulative = total / total[-1]
        cumulative[-1] = 1.0
        return cls(np.array(values, dtype=TEXT), cumulative)

    def __len__(self) -> int:
        return len(self.values)

    def sample(self, rng: np.random.Generator, size: int) -> npt.NDArray[np.intp]:
        """Indices into ``values`` drawn by frequency."""
        return np.searchsorted(self.cumulative, rng.random(size), side="right").astype(np.intp)


@dataclass(frozen=True)
class FamilyNamePool:
    names: WeightedValues
    particles: TextArray  # Portuguese particle a name often carries ("dos" for Santos), else ""
    common: npt.NDArray[np.bool_]  # among the most frequent names of the origin


@dataclass(frozen=True)
class LocalityPool:
    localities: WeightedValues  # weighted by population
    postcode_first: npt.NDArray[np.int64]
    postcode_last: npt.NDArray[np.int64]


@dataclass(frozen=True)
class Pools:
    family_names: Mapping[str, FamilyNamePool]
    given_names: Mapping[tuple[str, str], WeightedValues]  # (origin, sex)
    localities: Mapping[str, LocalityPool]  # ISO country code
    streets: Mapping[str, WeightedValues]  # ISO country code
    nicknames: Mapping[str, tuple[str, ...]]
    spelling_variants: Mapping[str, tuple[str, ...]]

    def family(self, origin: str) -> FamilyNamePool:
        if origin not in self.family_names:
            raise MPIError(f"no family names for origin {origin!r} in {_POOL_PACKAGE}")
        return self.family_names[origin]

    def given(self, origin: str, sex: str) -> WeightedValues:
        if (origin, sex) not in self.given_names:
            raise MPIError(f"no given names for origin {origin!r} and sex {sex!r} in {_POOL_PACKAGE}")
        return self.given_names[(origin, sex)]

    def places(self, country: str) -> tuple[LocalityPool, WeightedValues]:
        if country not in self.localities or country not in self.streets:
            raise MPIError(f"no localities or streets for country {country!r} in {_POOL_PACKAGE}")
        return self.localities[country], self.streets[country]


def _rows(filename: str) -> list[dict[str, str]]:
    content = resources.files(_POOL_PACKAGE).joinpath(filename).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(content, newline="")))


def _alternatives(filename: str, key: str, value: str) -> dict[str, tuple[str, ...]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for row in _rows(filename):
        if row[value] not in grouped[row[key]]:
            grouped[row[key]].append(row[value])
    return {name: tuple(alts) for name, alts in grouped.items()}


def _family_names() -> dict[str, FamilyNamePool]:
    grouped: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in _rows("family_names.csv"):
        grouped[row["origin"]].append(row)
    pools = {}
    for origin, rows in grouped.items():
        weights = [float(r["frequency"]) for r in rows]
        order = np.argsort(-np.asarray(weights), kind="stable")
        common = np.zeros(len(rows), dtype=bool)
        common[order[:COMMON_NAME_RANK]] = True
        pools[origin] = FamilyNamePool(
            names=WeightedValues.from_pairs([r["name"] for r in rows], weights),
            particles=np.array([r["particle"] for r in rows], dtype=TEXT),
            common=common,
        )
    return pools


def _given_names() -> dict[tuple[str, str], WeightedValues]:
    grouped: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for row in _rows("given_names.csv"):
        grouped[(row["origin"], row["sex"])].append(row)
    return {
        key: WeightedValues.from_pairs([r["name"] for r in rows], [float(r["frequency"]) for r in rows])
        for key, rows in grouped.items()
    }


def _localities() -> dict[str, LocalityPool]:
    grouped: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in _rows("localities.csv"):
        grouped[row["country"]].append(row)
    return {
        country: LocalityPool(
            localities=WeightedValues.from_pairs(
                [r["locality"] for r in rows], [float(r["population"]) for r in rows]
            ),
            postcode_first=np.array([int(r["postcode_first"]) for r in rows], dtype=np.int64),
            postcode_last=np.array([int(r["postcode_last"]) for r in rows], dtype=np.int64),
        )
        for country, rows in grouped.items()
    }


def _streets() -> dict[str, WeightedValues]:
    grouped: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in _rows("streets.csv"):
        grouped[row["country"]].append(row)
    return {
        country: WeightedValues.from_pairs([r["street"] for r in rows], [float(r["frequency"]) for r in rows])
        for country, rows in grouped.items()
    }


@functools.cache
def load_pools() -> Pools:
    """Read every pool file once per process."""
    return Pools(
        family_names=_family_names(),
        given_names=_given_names(),
        localities=_localities(),
        streets=_streets(),
        nicknames=_alternatives("nicknames.csv", "name", "nickname"),
        spelling_variants=_alternatives("spelling_variants.csv", "name", "variant"),
    )
