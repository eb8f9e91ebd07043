"""The true identities behind the records: who each synthetic person is.

A :class:`Persons` table holds one row per person in columns of numpy arrays.
Names are kept in slots (up to three given names, up to four surnames) so later
steps can drop a middle name or keep only the surname a person is known by
without splitting compound names such as "Maria da Conceição" or "dos Santos".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mpi.errors import MPIError
from mpi.synthetic.config import PopulationMix
from mpi.synthetic.places import Addresses, derive_emails, draw_addresses, draw_phones
from mpi.synthetic.pools import Pools
from mpi.synthetic.text import TEXT, BoolArray, IntArray, TextArray, blank, distinct, text

GIVEN_SLOTS = 3
FAMILY_SLOTS = 4
_DAYS_PER_YEAR = 365.2425
_LUXEMBOURG_DOUBLE_NAMES_FROM = 2006  # law of 23 Dec 2005 on the name of children


@dataclass
class Persons:
    """One row per person; every array has the same length."""

    cross_border: BoolArray
    country: TextArray  # ISO code of the country of residence
    name_origin: TextArray  # pool key the names come from (lu, pt, fr, ...)
    sex: TextArray  # "M" or "F"
    given: list[TextArray]  # GIVEN_SLOTS columns, empty past the last given name
    family: list[TextArray]  # FAMILY_SLOTS columns: the birth (legal) surnames
    main_family_slot: IntArray  # the surname a person is known by (the last, for Portuguese)
    common_family_name: BoolArray  # among the most frequent surnames of the origin
    birth_year: IntArray
    birth_month: IntArray  # 0 when unknown
    birth_day: IntArray  # 0 when unknown
    address: Addresses
    married_name: TextArray  # the name a married woman may use, else ""
    partner: IntArray  # a related person (twin, parent, spouse, namesake), else -1
    phone: TextArray
    email: TextArray
    national_id: TextArray  # 13-digit matricule
    legacy_national_id: BoolArray  # assigned before 2014: the first 11 digits form a legacy number

    def __len__(self) -> int:
        return len(self.sex)

    def main_family_name(self, rows: IntArray | None = None) -> TextArray:
        index = np.arange(len(self)) if rows is None else rows
        stacked = np.stack([slot[index] for slot in self.family])
        return stacked[self.main_family_slot[index], np.arange(len(index))]


def _normalised(weights: Mapping[str, float]) -> tuple[list[str], npt.NDArray[np.float64]]:
    keys = list(weights)
    values = np.array([weights[k] for k in keys], dtype=np.float64)
    if values.sum() <= 0:
        raise MPIError("a mix needs a positive total share")
    return keys, np.cumsum(values) / values.sum()


def _draw_keys(rng: np.random.Generator, weights: Mapping[str, float], n: int) -> TextArray:
    keys, cumulative = _normalised(weights)
    return text(keys)[np.minimum(np.searchsorted(cumulative, rng.random(n), side="right"), len(keys) - 1)]


def _draw_origins(
    rng: np.random.Generator, cross_border: BoolArray, mix: PopulationMix
) -> tuple[TextArray, TextArray, TextArray]:
    n = len(cross_border)
    nationality = _draw_keys(rng, mix.resident_origins, n)
    naturalised = _draw_keys(rng, mix.luxembourgish_name_origins, n)
    name_origin = np.where(nationality == "lu", naturalised, nationality)
    country = np.where(cross_border, _draw_keys(rng, mix.cross_border_countries, n), "LU")
    for code, origins in mix.cross_border_name_origins.items():
        rows = np.flatnonzero(cross_border & (country == code))
        name_origin[rows] = _draw_keys(rng, origins, len(rows))
    return country, name_origin, nationality


def _draw_birth_dates(
    rng: np.random.Generator, cross_border: BoolArray, mix: PopulationMix
) -> tuple[IntArray, IntArray, IntArray]:
    n = len(cross_border)
    reference = np.datetime64(mix.reference_date, "D")
    earliest = np.datetime64(mix.earliest_birth_date, "D")
    age_years = np.empty(n, dtype=np.float64)
    for bands, rows in (
        (mix.resident_age_bands, np.flatnonzero(~cross_border)),
        (mix.cross_border_age_bands, np.flatnonzero(cross_border)),
    ):
        weights = np.asarray(bands, dtype=np.float64)
        band = np.searchsorted(np.cumsum(weights) / weights.sum(), rng.random(len(rows)), side="right")
        age_years[rows] = (band + rng.random(len(rows))) * 5.0
    born = reference - (age_years * _DAYS_PER_YEAR).astype(np.int64).astype("m8[D]")
    born = np.maximum(born, earliest)
    return split_dates(born)


def split_dates(dates: npt.NDArray[np.datetime64]) -> tuple[IntArray, IntArray, IntArray]:
    """Year, month and day columns of a datetime64[D] array."""
    months = dates.astype("M8[M]")
    year = dates.astype("M8[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (dates - months.astype("M8[D]")).astype(np.int64) + 1
    return year, month, day


def join_dates(year: IntArray, month: IntArray, day: IntArray) -> npt.NDArray[np.datetime64]:
    """datetime64[D] of known year, month and day columns."""
    months = (year - 1970) * 12 + (month - 1)
    dates: npt.NDArray[np.datetime64] = months.astype("M8[M]").astype("M8[D]") + (day - 1).astype("m8[D]")
    return dates


def _distinct_slots(indices: IntArray, pool_size: int) -> IntArray:
    """Shift later slots so one person never carries the same pool entry twice."""
    for slot in range(1, indices.shape[1]):
        for _ in range(slot):
            clash = (indices[:, :slot] == indices[:, slot : slot + 1]).any(axis=1)
            indices[clash, slot] = (indices[clash, slot] + 1) % pool_size
    return indices


def draw_given_names(
    rng: np.random.Generator, name_origin: TextArray, sex: TextArray, mix: PopulationMix, pools: Pools
) -> list[TextArray]:
    """Given-name slots; Portuguese and Spanish persons carry at most two."""
    n = len(sex)
    slots = [blank(n) for _ in range(GIVEN_SLOTS)]
    weights = np.asarray(mix.given_name_counts, dtype=np.float64)
    count = np.searchsorted(np.cumsum(weights) / weights.sum(), rng.random(n), side="right") + 1
    count = np.where(np.isin(name_origin, ["pt", "es"]), np.minimum(count, 2), count)
    for origin in distinct(name_origin):
        for code in ("M", "F"):
            rows = np.flatnonzero((name_origin == origin) & (sex == code))
            pool = pools.given(origin, code)
            chosen = np.stack([pool.sample(rng, len(rows)) for _ in range(GIVEN_SLOTS)], axis=1)
            chosen = _distinct_slots(chosen, len(pool))
            for slot in range(GIVEN_SLOTS):
                keep = rows[count[rows] > slot]
                slots[slot][keep] = pool.values[chosen[count[rows] > slot, slot]]
    return slots


def gendered_surnames(family: list[TextArray], name_origin: TextArray, sex: TextArray) -> None:
    """Polish adjectival surnames agree with sex: Kowalski, Kowalska."""
    polish = name_origin == "pl"
    for slot in family:
        masculine = polish & (sex == "F") & np.strings.endswith(slot, "ki")
        feminine = polish & (sex == "M") & np.strings.endswith(slot, "ka")
        stem = np.strings.slice(slot, 0, -1)
        slot[masculine] = np.strings.add(stem[masculine], "a")
        slot[feminine] = np.strings.add(stem[feminine], "i")


def _draw_family_names(
    rng: np.random.Generator, name_origin: TextArray, birth_year: IntArray, mix: PopulationMix, pools: Pools
) -> tuple[list[TextArray], IntArray, BoolArray]:
    n = len(name_origin)
    slots = [blank(n) for _ in range(FAMILY_SLOTS)]
    count = np.ones(n, dtype=np.int64)
    weights = np.asarray(mix.portuguese_surname_counts, dtype=np.float64)
    portuguese = name_origin == "pt"
    drawn = np.searchsorted(np.cumsum(weights) / weights.sum(), rng.random(n), side="right") + 1
    count = np.where(portuguese, np.minimum(drawn, FAMILY_SLOTS), count)
    count = np.where((name_origin == "es") & (rng.random(n) < 0.9), 2, count)
    double = (name_origin == "lu") & (birth_year >= _LUXEMBOURG_DOUBLE_NAMES_FROM)
    count = np.where(double & (rng.random(n) < mix.double_surname_after_2006), 2, count)
    common = np.zeros(n, dtype=bool)
    with_particle = rng.random((n, FAMILY_SLOTS)) < mix.portuguese_particle
    for origin in distinct(name_origin):
        rows = np.flatnonzero(name_origin == origin)
        pool = pools.family(origin)
        chosen = np.stack([pool.names.sample(rng, len(rows)) for _ in range(FAMILY_SLOTS)], axis=1)
        chosen = _distinct_slots(chosen, len(pool.names))
        for slot in range(FAMILY_SLOTS):
            used = count[rows] > slot
            names = pool.names.values[chosen[used, slot]]
            particle = pool.particles[chosen[used, slot]]
            attach = (particle != "") & with_particle[rows[used], slot]
            names = np.where(attach, np.strings.add(np.strings.add(particle, " "), names), names)
            slots[slot][rows[used]] = names
        main = np.where(portuguese[rows], count[rows] - 1, 0)
        common[rows] = pool.common[chosen[np.arange(len(rows)), main]]
    # Portuguese persons are known by their last surname, everyone else by the first.
    main_slot = np.where(portuguese, count - 1, 0)
    return slots, main_slot, common


def _unknown_date_parts(
    rng: np.random.Generator,
    nationality: TextArray,
    cross_border: BoolArray,
    year: IntArray,
    month: IntArray,
    day: IntArray,
    share: float,
) -> None:
    """Immigrants whose papers lack a day, or a month and a day: recorded as 00."""
    born_abroad = (nationality != "lu") & ~cross_border & (year < 2000)
    unknown = born_abroad & (rng.random(len(year)) < share)
    month_too = unknown & (rng.random(len(year)) < 0.4)
    day[unknown] = 0
    month[month_too] = 0


def draw_persons(
    rng: np.random.Generator, cross_border: BoolArray, mix: PopulationMix, pools: Pools
) -> Persons:
    """Independent persons; relatives and namesakes are added by :mod:`households`."""
    n = len(cross_border)
    country, name_origin, nationality = _draw_origins(rng, cross_border, mix)
    sex = np.where(rng.random(n) < 0.5, "F", "M").astype(TEXT)
    year, month, day = _draw_birth_dates(rng, cross_border, mix)
    _unknown_date_parts(rng, nationality, cross_border, year, month, day, mix.unknown_birth_date)
    given = draw_given_names(rng, name_origin, sex, mix, pools)
    family, main_slot, common = _draw_family_names(rng, name_origin, year, mix, pools)
    gendered_surnames(family, name_origin, sex)
    return Persons(
        cross_border=cross_border.copy(),
        country=country,
        name_origin=name_origin,
        sex=sex,
        given=given,
        family=family,
        main_family_slot=main_slot,
        common_family_name=common,
        birth_year=year,
        birth_month=month,
        birth_day=day,
        address=draw_addresses(rng, country, pools),
        married_name=blank(n),
        partner=np.full(n, -1, dtype=np.int64),
        phone=blank(n),
        email=blank(n),
        national_id=blank(n),
        legacy_national_id=np.zeros(n, dtype=bool),
    )


def add_contacts(rng: np.random.Generator, persons: Persons, mix: PopulationMix) -> None:
    """Phones and e-mails, once names and households are final."""
    age = int(mix.reference_date[:4]) - persons.birth_year
    n = len(persons)
    has_phone = (age >= 14) & (rng.random(n) < mix.phone)
    has_email = (age >= 14) & (age <= 80) & (rng.random(n) < mix.email)
    persons.phone = draw_phones(rng, persons.country, has_phone)
    persons.email = derive_emails(
        rng, persons.given[0], persons.main_family_name(), persons.birth_year, has_email
    )
