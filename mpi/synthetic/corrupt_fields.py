"""How birth dates, sex, national numbers, addresses and contacts drift between records."""

from __future__ import annotations

import numpy as np

from mpi.synthetic.corruption import Draft, ErrorContext
from mpi.synthetic.places import draw_addresses, draw_phones, other_postcodes
from mpi.synthetic.pools import Pools
from mpi.synthetic.population import Persons
from mpi.synthetic.text import IntArray, apply_typos, mistype_digits

LEGACY_LENGTH = 11


def days_in_month(year: IntArray, month: IntArray) -> IntArray:
    start = ((year - 1970) * 12 + month - 1).astype("M8[M]")
    days: IntArray = ((start + 1).astype("M8[D]") - start.astype("M8[D]")).astype(np.int64)
    return days


def _date_part_wrong(ctx: ErrorContext, draft: Draft, rows: IntArray, reference_year: int) -> None:
    """A wrong day, a wrong month (where the day exists) or the year's last digits swapped."""
    rng = ctx.rng
    year, month, day = draft.year[rows], draft.month[rows], draft.day[rows]
    length = days_in_month(year, month)
    other_day = 1 + (day - 1 + rng.integers(1, 28, len(rows))) % length
    other_month = 1 + (month - 1 + rng.integers(1, 12, len(rows))) % 12
    month_fits = day <= days_in_month(year, other_month)
    swapped_year = year - year % 100 + (year % 10) * 10 + (year // 10) % 10
    year_fits = (
        (year % 10 != (year // 10) % 10)
        & (swapped_year <= reference_year)
        & (day <= days_in_month(swapped_year, month))
    )
    part = rng.random(len(rows))
    use_month = (part < 0.3) & month_fits
    use_year = (part >= 0.3) & (part < 0.5) & year_fits
    use_day = ~use_month & ~use_year
    draft.day[rows] = np.where(use_day, other_day, day)
    draft.month[rows] = np.where(use_month, other_month, month)
    draft.year[rows] = np.where(use_year, swapped_year, year)


def apply_date_errors(ctx: ErrorContext, draft: Draft, reference_year: int) -> None:
    rates = ctx.rates
    unknown = (draft.month == 0) | (draft.day == 0)
    defaulted = ctx.pick(
        ctx.per_source("unknown_date_defaulted"), unknown, scaled=False, kind="unknown_date_defaulted"
    )
    draft.month[defaulted] = np.maximum(draft.month[defaulted], 1)
    draft.day[defaulted] = np.maximum(draft.day[defaulted], 1)

    known = (draft.month > 0) & (draft.day > 0)
    swappable = known & (draft.day <= 12) & (draft.day != draft.month)
    swapped = ctx.pick(rates.day_month_swap, swappable, kind="day_month_swap")
    draft.day[swapped], draft.month[swapped] = draft.month[swapped], draft.day[swapped]

    wrong = ctx.pick(rates.date_part_wrong, known, kind="date_part_wrong")
    _date_part_wrong(ctx, draft, wrong, reference_year)

    shifted = ctx.pick(rates.year_off_by_one, kind="year_off_by_one")
    step = np.where(ctx.rng.random(len(shifted)) < 0.5, -1, 1)
    year = draft.year[shifted]
    year = np.where(year + step > reference_year, year - 1, year + step)
    draft.year[shifted] = year
    # 29 February of a year that is no longer leap becomes the 28th.
    month, day = draft.month[shifted], draft.day[shifted]
    past_end = (month > 0) & (day > days_in_month(year, np.maximum(month, 1)))
    draft.day[shifted] = np.where(past_end, 28, day)


def apply_sex_errors(ctx: ErrorContext, draft: Draft) -> None:
    flipped = ctx.pick(ctx.rates.sex_wrong, kind="sex_wrong")
    draft.sex[flipped] = np.where(draft.sex[flipped] == "F", "M", "F")
    unknown = ctx.pick(ctx.rates.sex_unknown, draft.sex != "U", kind="sex_unknown")
    draft.sex[unknown] = "U"


def apply_national_id_errors(ctx: ErrorContext, draft: Draft, persons: Persons) -> None:
    rates = ctx.rates
    missing = ctx.pick(ctx.per_source("national_id_missing"), scaled=False, kind="national_id_missing")
    draft.national_id[missing] = ""
    present = draft.national_id != ""

    wrong = ctx.pick(rates.national_id_wrong_person, present, kind="national_id_wrong_person")
    # Most often a relative's number (a twin, a parent, a spouse), else a stranger's.
    partner = persons.partner[draft.person[wrong]]
    stranger = ctx.rng.integers(0, len(persons), len(wrong))
    stranger = np.where(stranger == draft.person[wrong], (stranger + 1) % len(persons), stranger)
    other = np.where(partner >= 0, partner, stranger)
    draft.national_id[wrong] = persons.national_id[other]
    owned = present.copy()
    owned[wrong] = False

    legacy_rate = ctx.per_source("legacy_national_id")
    legacy = ctx.pick(legacy_rate, owned & draft.legacy_national_id, scaled=False, kind="national_id_legacy")
    draft.national_id[legacy] = np.strings.slice(draft.national_id[legacy], 0, LEGACY_LENGTH)

    mistyped = ctx.pick(rates.national_id_mistyped, present, kind="national_id_mistyped")
    draft.national_id[mistyped] = mistype_digits(draft.national_id[mistyped], ctx.rng)


def apply_address_errors(ctx: ErrorContext, draft: Draft, pools: Pools) -> None:
    rates = ctx.rates
    moved = ctx.pick(rates.moved, ~ctx.plan.first, kind="moved")
    draft.address.put(moved, draw_addresses(ctx.rng, draft.country[moved], pools))

    address = draft.address
    changed = ctx.pick(rates.postcode_changed, address.postcode != "", kind="postcode_changed")
    address.postcode[changed] = other_postcodes(ctx.rng, address.postcode[changed])
    slipped = ctx.pick(rates.street_typo, address.street != "", kind="street_typo")
    address.street[slipped] = apply_typos(address.street[slipped], ctx.rng, rates.second_edit)

    missing = ctx.pick(ctx.per_source("address_missing"), scaled=False, kind="address_missing")
    for column in (address.street, address.house_number, address.postcode, address.city, draft.country):
        column[missing] = ""


def apply_contact_errors(ctx: ErrorContext, draft: Draft) -> None:
    changed = ctx.pick(ctx.rates.phone_changed, (draft.phone != "") & ~ctx.plan.first, kind="phone_changed")
    draft.phone[changed] = draw_phones(ctx.rng, draft.country[changed], np.ones(len(changed), dtype=bool))
    # Whether a source asks for a phone or an e-mail at all is its habit, not an error.
    no_phone = ctx.rng.random(len(draft)) >= ctx.per_source("phone_present")
    no_email = ctx.rng.random(len(draft)) >= ctx.per_source("email_present")
    draft.phone[no_phone] = ""
    draft.email[no_email] = ""


def apply_missing_fields(ctx: ErrorContext, draft: Draft) -> None:
    """Fields left blank at registration, each independently."""
    address = draft.address
    for name, values in (
        ("given_names", draft.given_names),
        ("sex", draft.sex),
        ("street", address.street),
        ("house_number", address.house_number),
        ("postcode", address.postcode),
        ("city", address.city),
    ):
        blanked = ctx.pick(ctx.rates.field_missing, values != "", kind=f"{name}_missing")
        values[blanked] = ""
    dated = ctx.pick(ctx.rates.field_missing, ~draft.date_missing, kind="birth_date_missing")
    draft.date_missing[dated] = True
