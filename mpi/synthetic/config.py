"""Knobs of the synthetic population: sources, population mix and error rates.

Defaults follow docs DOMAIN.md ("Scale", "Names", "How identity data goes wrong"):
residents are 53 % Luxembourgish, 13.5 % Portuguese, 7.3 % French, 3.7 % Italian;
about a quarter of the MPI are cross-border workers (half French, a quarter each
Belgian and German); 8-12 % of a hospital's records are duplicates; over 80 % of
typing errors are a single edit; sex and birth-date errors are about 0.1 %.
Every rate is a probability per record (or per person where the docstring says so)
and can be overridden by building the dataclass with other values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from mpi.errors import MPIError

PhoneStyle = Literal["international", "national", "compact"]


def _frozen(mapping: dict[str, float]) -> Mapping[str, float]:
    return MappingProxyType(mapping)


@dataclass(frozen=True)
class SourceProfile:
    """One assigning authority: who it registers, how it numbers them, how careful it is.

    ``coverage`` is the probability that a resident has at least one record here
    (``cross_border_coverage`` for cross-border workers). Sources sharing a
    ``group`` are alternatives: a person is registered with at most one of them
    (one general practice), with the group's total coverage split by each
    member's coverage. ``duplicate_rate`` is the expected share of this source's
    records that re-register a person already registered in it.
    """

    name: str
    coverage: float
    cross_border_coverage: float
    duplicate_rate: float
    local_id_prefix: str
    local_id_digits: int
    group: str = ""
    is_register: bool = False  # holds legal names only (no married names, no default dates)
    error_scale: float = 1.0  # multiplies every error rate for this source's records
    national_id_missing: float = 0.0
    legacy_national_id: float = 0.0  # share of eligible records typed in the 11-digit form
    national_id_grouped: float = 0.0  # typed in groups with spaces
    phone_present: float = 0.8
    email_present: float = 0.3
    address_missing: float = 0.02
    unknown_date_defaulted: float = 0.0  # an unknown month/day (00) entered as 01
    upper_family_names: bool = False
    ascii_only: bool = False
    postcode_prefix: bool = False  # "L-1234" rather than "1234"
    phone_style: PhoneStyle = "international"

    def __post_init__(self) -> None:
        for name in (
            "coverage",
            "cross_border_coverage",
            "duplicate_rate",
            "national_id_missing",
            "legacy_national_id",
            "national_id_grouped",
            "phone_present",
            "email_present",
            "address_missing",
            "unknown_date_defaulted",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise MPIError(f"source {self.name!r}: {name} must be a probability, got {value}")
        if self.duplicate_rate >= 1.0:
            raise MPIError(f"source {self.name!r}: duplicate_rate must be below 1")
        if self.local_id_digits < 3:
            raise MPIError(f"source {self.name!r}: local ids need at least 3 digits")
        if self.error_scale < 0:
            raise MPIError(f"source {self.name!r}: error_scale must not be negative")


def _general_practices(count: int, total_coverage: float) -> tuple[SourceProfile, ...]:
    # Practice sizes fall off with rank, as patient lists do.
    weights = [1.0 / (rank + 1) ** 0.6 for rank in range(count)]
    scale = total_coverage / sum(weights)
    return tuple(
        SourceProfile(
            name=f"GP_{rank + 1}",
            coverage=weight * scale,
            cross_border_coverage=weight * scale * 0.15,
            duplicate_rate=0.06,
            local_id_prefix=f"G{rank + 1:02d}-",
            local_id_digits=5,
            group="GP",
            error_scale=1.5,
            national_id_missing=0.6,
            legacy_national_id=0.15,
            national_id_grouped=0.1,
            phone_present=0.9,
            email_present=0.3,
            address_missing=0.05,
            unknown_date_defaulted=0.5,
            phone_style="national",
        )
        for rank, weight in enumerate(weights)
    )


DEFAULT_SOURCES: tuple[SourceProfile, ...] = (
    SourceProfile(
        name="RNPP",
        coverage=0.97,
        cross_border_coverage=0.95,
        duplicate_rate=0.005,
        local_id_prefix="RN",
        local_id_digits=9,
        is_register=True,
        error_scale=0.3,
        phone_present=0.3,
        email_present=0.0,
        address_missing=0.0,
    ),
    SourceProfile(
        name="CHL",
        coverage=0.30,
        cross_border_coverage=0.10,
        duplicate_rate=0.08,
        local_id_prefix="",
        local_id_digits=8,
        national_id_missing=0.12,
        legacy_national_id=0.05,
        national_id_grouped=0.05,
        upper_family_names=True,
        postcode_prefix=True,
        unknown_date_defaulted=0.5,
        phone_style="national",
    ),
    SourceProfile(
        name="HRS",
        coverage=0.25,
        cross_border_coverage=0.08,
        duplicate_rate=0.08,
        local_id_prefix="HRS",
        local_id_digits=7,
        national_id_missing=0.15,
        legacy_national_id=0.05,
        email_present=0.25,
        unknown_date_defaulted=0.5,
    ),
    SourceProfile(
        name="CHEM",
        coverage=0.25,
        cross_border_coverage=0.12,
        duplicate_rate=0.09,
        local_id_prefix="E",
        local_id_digits=9,
        error_scale=1.1,
        national_id_missing=0.15,
        legacy_national_id=0.08,
        email_present=0.2,
        upper_family_names=True,
        ascii_only=True,
        postcode_prefix=True,
        unknown_date_defaulted=0.6,
    ),
    SourceProfile(
        name="CHdN",
        coverage=0.12,
        cross_border_coverage=0.05,
        duplicate_rate=0.08,
        local_id_prefix="N",
        local_id_digits=7,
        national_id_missing=0.15,
        legacy_national_id=0.06,
        email_present=0.2,
        unknown_date_defaulted=0.5,
        phone_style="national",
    ),
    SourceProfile(
        name="LABO_LU",
        coverage=0.35,
        cross_border_coverage=0.15,
        duplicate_rate=0.10,
        local_id_prefix="LL",
        local_id_digits=8,
        error_scale=1.3,
        national_id_missing=0.45,
        legacy_national_id=0.1,
        national_id_grouped=0.1,
        phone_present=0.5,
        email_present=0.4,
        address_missing=0.2,
        unknown_date_defaulted=0.7,
        upper_family_names=True,
        ascii_only=True,
        phone_style="compact",
    ),
    SourceProfile(
        name="KETTERTHILL",
        coverage=0.30,
        cross_border_coverage=0.12,
        duplicate_rate=0.10,
        local_id_prefix="K",
        local_id_digits=9,
        error_scale=1.3,
        national_id_missing=0.5,
        legacy_national_id=0.1,
        phone_present=0.5,
        email_present=0.5,
        address_missing=0.25,
        unknown_date_defaulted=0.7,
        phone_style="compact",
    ),
    *_general_practices(12, 0.6),
)


def _resident_origins() -> dict[str, float]:
    return {
        "lu": 0.53,
        "pt": 0.155,  # Portuguese 13.5 % plus Cape Verdeans and Brazilians with Portuguese names
        "fr": 0.073,
        "it": 0.037,
        "be": 0.03,
        "de": 0.02,
        "yu": 0.03,
        "es": 0.012,
        "pl": 0.01,
        "gb": 0.01,
        "ro": 0.01,
        "ar": 0.015,
        "nl": 0.005,
        "cn": 0.006,
        "in": 0.008,
        "ua": 0.009,
    }


def _luxembourgish_name_origins() -> dict[str, float]:
    # Luxembourgish nationals include many naturalised families.
    return {"lu": 0.84, "pt": 0.06, "it": 0.04, "fr": 0.02, "de": 0.02, "be": 0.02}


def _cross_border_countries() -> dict[str, float]:
    return {"FR": 0.5, "BE": 0.25, "DE": 0.25}


def _cross_border_name_origins() -> dict[str, dict[str, float]]:
    return {
        "FR": {"fr": 0.78, "pt": 0.08, "it": 0.06, "ar": 0.06, "pl": 0.02},
        "BE": {"be": 0.88, "fr": 0.04, "it": 0.04, "pt": 0.04},
        "DE": {"de": 0.9, "pl": 0.04, "it": 0.02, "ro": 0.02, "lu": 0.02},
    }


# Share of residents in 5-year age bands 0-4 ... 100-104 (Luxembourg, 1 Jan 2024, rounded),
# extended with the deceased of older cohorts an MPI keeps.
RESIDENT_AGE_BANDS: tuple[float, ...] = (
    5.4, 5.6, 5.7, 5.8, 6.1, 7.1, 8.0, 8.3, 8.0, 7.4, 7.3, 6.9,
    5.9, 4.6, 3.7, 2.9, 2.0, 1.2, 0.6, 0.2, 0.05,
)  # fmt: skip
CROSS_BORDER_AGE_BANDS: tuple[float, ...] = (
    0.0, 0.0, 0.0, 0.5, 6.0, 12.0, 14.0, 14.0, 13.0, 12.0, 11.0, 9.0,
    5.0, 1.5, 0.8, 0.5, 0.3, 0.1, 0.0, 0.0, 0.0,
)  # fmt: skip


@dataclass(frozen=True)
class PopulationMix:
    """Who the persons are. Shares are per person and are normalised when used."""

    resident_origins: Mapping[str, float] = field(default_factory=lambda: _frozen(_resident_origins()))
    luxembourgish_name_origins: Mapping[str, float] = field(
        default_factory=lambda: _frozen(_luxembourgish_name_origins())
    )
    cross_border_share: float = 0.2
    cross_border_countries: Mapping[str, float] = field(
        default_factory=lambda: _frozen(_cross_border_countries())
    )
    cross_border_name_origins: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: MappingProxyType(
            {k: _frozen(v) for k, v in _cross_border_name_origins().items()}
        )
    )
    resident_age_bands: tuple[float, ...] = RESIDENT_AGE_BANDS
    cross_border_age_bands: tuple[float, ...] = CROSS_BORDER_AGE_BANDS
    reference_date: str = "2025-12-31"  # nobody is born after it
    earliest_birth_date: str = "1920-01-01"
    unknown_birth_date: float = 0.1  # of persons born abroad before 2000: month and/or day 00
    legacy_number: float = 0.85  # of persons born before 2014: number assigned in the 11-digit era
    double_surname_after_2006: float = 0.15  # Luxembourgish children carrying both parents' names
    portuguese_surname_counts: tuple[float, ...] = (0.2, 0.55, 0.2, 0.05)  # 1..4 surnames
    portuguese_particle: float = 0.7  # "dos Santos" rather than "Santos"
    given_name_counts: tuple[float, ...] = (0.4, 0.42, 0.18)  # 1..3 given names
    twins: float = 0.015  # share of persons who are the twin of another person
    junior_senior: float = 0.01  # share of persons who carry a parent's given and family names
    homonyms: float = 0.01  # share of persons sharing a very common name and birth year with another
    married_women: float = 0.45  # share of women over 22 married to a man of the population
    hyphenated_married_name: float = 0.3  # "Weber-Schmit": husband's name, hyphen, her own
    phone: float = 0.85  # of persons aged 14 or more
    email: float = 0.5  # of persons aged 14 to 80

    def __post_init__(self) -> None:
        for name in (
            "cross_border_share",
            "unknown_birth_date",
            "legacy_number",
            "double_surname_after_2006",
            "portuguese_particle",
            "married_women",
            "hyphenated_married_name",
            "phone",
            "email",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise MPIError(f"population mix: {name} must be a probability, got {value}")
        if self.twins + self.junior_senior + self.homonyms > 0.5:
            raise MPIError("population mix: twins, junior_senior and homonyms together exceed half")


@dataclass(frozen=True)
class ErrorRates:
    """How records of one person drift apart.

    Rates apply per record and are multiplied by the source's ``error_scale``,
    and by ``first_record_scale`` on a person's first record. Rates described as
    "of records where ..." apply only where the error is possible (a nickname
    needs a known nickname).
    """

    first_record_scale: float = 0.25
    family_name_typo: float = 0.035
    given_name_typo: float = 0.04
    street_typo: float = 0.03
    second_edit: float = 0.12  # of typos: a second edit in the same value
    spelling_variant: float = 0.12  # of records whose name has a known variant (Schmit/Schmitt)
    hyphen_variant: float = 0.25  # of records with a hyphenated name: "Jean Pierre"
    particle_dropped: float = 0.3  # of records with a Portuguese particle: "Santos" for "dos Santos"
    diacritics_lost: float = 0.3  # of records with an accented name (on top of ASCII-only sources)
    married_name_used: float = 0.5  # of a married woman's records outside the register
    birth_name_kept: float = 0.5  # of records carrying a married name
    surname_subset: float = 0.2  # of records of persons with several surnames: only the main one
    names_swapped: float = 0.01
    given_names_truncated: float = 0.35  # of records with two or more given names
    nickname: float = 0.05  # of records whose first given name has a known nickname
    day_month_swap: float = 0.005  # of records whose day could be a month
    date_part_wrong: float = 0.005
    year_off_by_one: float = 0.002
    sex_wrong: float = 0.001
    sex_unknown: float = 0.005
    national_id_mistyped: float = 0.01  # of records carrying a national number
    national_id_wrong_person: float = 0.002  # a relative's or a stranger's valid number
    moved: float = 0.15  # a later record carries another address
    postcode_changed: float = 0.03
    phone_changed: float = 0.1
    field_missing: float = 0.01  # each optional demographic field independently

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not 0.0 <= value <= 1.0:
                raise MPIError(f"error rates: {name} must be a probability, got {value}")
