"""State shared by the error model: the records being built and the log of what was done to them.

Every deliberate error is logged per record with one of :data:`CORRUPTIONS`, so a
benchmark can ask which kinds of error a matcher misses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from mpi.synthetic.config import ErrorRates, SourceProfile
from mpi.synthetic.places import Addresses
from mpi.synthetic.plan import RecordPlan
from mpi.synthetic.population import Persons
from mpi.synthetic.text import BoolArray, IntArray, TextArray, blank, gather, text

CORRUPTIONS: dict[str, str] = {
    "married_name": "a married woman recorded under her husband's surname (birth name kept or not)",
    "surname_subset": "only the surname the person is known by, of several",
    "particle_dropped": "a Portuguese particle dropped: Santos for dos Santos",
    "spelling_variant": "another spelling of a name: Schmitt for Schmit, Matthias for Mathias",
    "given_names_truncated": "only the first one or two given names",
    "nickname": "a nickname for the first given name: Jempi for Jean-Pierre",
    "hyphen_variant": "a hyphen dropped: Jean Pierre, Jeanpierre",
    "names_swapped": "given names and family name swapped",
    "family_name_typo": "one or two keyboard slips in the family name",
    "given_name_typo": "one or two keyboard slips in the given names",
    "diacritics_lost": "accents dropped: Conceicao for Conceição",
    "unknown_date_defaulted": "an unknown (00) birth month or day entered as 01",
    "day_month_swap": "birth day and month swapped",
    "date_part_wrong": "a wrong birth day, a wrong month or swapped year digits",
    "year_off_by_one": "birth year one off",
    "sex_wrong": "the other sex",
    "sex_unknown": "sex recorded as U",
    "national_id_missing": "no national number",
    "national_id_legacy": "national number typed in its 11-digit legacy form",
    "national_id_mistyped": "one wrong digit or two swapped digits: fails the check digits",
    "national_id_wrong_person": "a valid national number of a relative or a stranger",
    "moved": "another (newer or older) address",
    "postcode_changed": "a neighbouring or mistyped postcode",
    "street_typo": "a keyboard slip in the street name",
    "address_missing": "no address",
    "phone_changed": "another phone number",
    "given_names_missing": "no given names",
    "birth_date_missing": "no birth date",
    "sex_missing": "no sex",
    "street_missing": "no street",
    "house_number_missing": "no house number",
    "postcode_missing": "no postcode",
    "city_missing": "no city",
}
_KIND_ORDER = {kind: i for i, kind in enumerate(CORRUPTIONS)}


@dataclass
class CorruptionLog:
    """Which record got which deliberate error."""

    _rows: list[IntArray] = field(default_factory=list)
    _kinds: list[int] = field(default_factory=list)

    def add(self, kind: str, rows: IntArray) -> None:
        if kind not in _KIND_ORDER:
            raise KeyError(f"unknown corruption {kind!r}")
        self._rows.append(np.asarray(rows, dtype=np.int64))
        self._kinds.append(_KIND_ORDER[kind])

    def entries(self) -> tuple[IntArray, TextArray]:
        """Distinct (row, kind) pairs ordered by row, then by the order of :data:`CORRUPTIONS`."""
        if not self._rows:
            return np.zeros(0, dtype=np.int64), text([])
        rows = np.concatenate(self._rows)
        kinds = np.repeat(np.array(self._kinds, dtype=np.int64), [len(r) for r in self._rows])
        keys = np.sort(rows * len(CORRUPTIONS) + kinds)
        keys = keys[np.concatenate([keys[:1] >= 0, keys[1:] != keys[:-1]])]  # sorting beats np.unique here
        return keys // len(CORRUPTIONS), text(list(CORRUPTIONS))[keys % len(CORRUPTIONS)]


@dataclass
class Draft:
    """Columns of the records under construction, one row per record."""

    person: IntArray
    given: list[TextArray]
    family: list[TextArray]
    main_slot: IntArray
    married_name: TextArray
    family_name: TextArray
    birth_name: TextArray
    given_names: TextArray
    year: IntArray
    month: IntArray
    day: IntArray
    date_missing: BoolArray
    sex: TextArray
    national_id: TextArray
    legacy_national_id: BoolArray
    address: Addresses
    country: TextArray
    phone: TextArray
    email: TextArray

    @classmethod
    def from_persons(cls, persons: Persons, rows: IntArray) -> Draft:
        n = len(rows)
        return cls(
            person=rows,
            given=[gather(slot, rows) for slot in persons.given],
            family=[gather(slot, rows) for slot in persons.family],
            main_slot=persons.main_family_slot[rows],
            married_name=gather(persons.married_name, rows),
            family_name=blank(n),
            birth_name=blank(n),
            given_names=blank(n),
            year=persons.birth_year[rows].copy(),
            month=persons.birth_month[rows].copy(),
            day=persons.birth_day[rows].copy(),
            date_missing=np.zeros(n, dtype=bool),
            sex=gather(persons.sex, rows),
            national_id=persons.national_id[rows],
            legacy_national_id=persons.legacy_national_id[rows],
            address=persons.address.take(rows),
            country=gather(persons.country, rows),
            phone=persons.phone[rows],
            email=persons.email[rows],
        )

    def __len__(self) -> int:
        return len(self.person)


@dataclass
class ErrorContext:
    """Randomness, per-row error scale and the log, shared by every error step."""

    rng: np.random.Generator
    plan: RecordPlan
    sources: Sequence[SourceProfile]
    rates: ErrorRates
    log: CorruptionLog
    scale: npt.NDArray[np.float64]

    @classmethod
    def create(
        cls, rng: np.random.Generator, plan: RecordPlan, sources: Sequence[SourceProfile], rates: ErrorRates
    ) -> ErrorContext:
        source_scale = np.array([s.error_scale for s in sources], dtype=np.float64)[plan.source]
        scale = source_scale * np.where(plan.first, rates.first_record_scale, 1.0)
        return cls(rng, plan, sources, rates, CorruptionLog(), scale)

    def per_source(self, attribute: str) -> npt.NDArray[np.float64]:
        """A numeric or boolean attribute of each row's source."""
        values = np.array([float(getattr(s, attribute)) for s in self.sources], dtype=np.float64)
        return values[self.plan.source]

    def pick(
        self,
        rate: float | npt.NDArray[np.float64],
        eligible: BoolArray | None = None,
        *,
        scaled: bool = True,
        kind: str | None = None,
    ) -> IntArray:
        """Rows hit by an error of probability ``rate`` (times the row's scale), among ``eligible``."""
        probability = rate * self.scale if scaled else rate
        hit = self.rng.random(len(self.scale)) < probability
        if eligible is not None:
            hit &= eligible
        rows = np.flatnonzero(hit)
        if kind is not None:
            self.log.add(kind, rows)
        return rows
