"""Each source's house style: how it writes dates, postcodes, phones and names.

These are habits, not errors (except that an ASCII-only system loses accents, which
is logged), and they are what a standardiser must undo before matching.
"""

from __future__ import annotations

import numpy as np

from mpi.synthetic.corruption import Draft, ErrorContext
from mpi.synthetic.text import TextArray, digits, fold_diacritics, has_diacritics

_LUXEMBOURG_PREFIX = "+352"


def _birth_dates(draft: Draft) -> TextArray:
    rendered = np.strings.add(
        np.strings.add(
            np.strings.add(digits(draft.year, 4), "-"), np.strings.add(digits(draft.month, 2), "-")
        ),
        digits(draft.day, 2),
    )
    return np.where(draft.date_missing, "", rendered).astype(rendered.dtype)


def _grouped_national_ids(ctx: ErrorContext, national_id: TextArray) -> TextArray:
    """Some clerks type the number in groups: 1982 0802 85657."""
    chosen = ctx.rng.random(len(national_id)) < ctx.per_source("national_id_grouped")
    rows = np.flatnonzero(chosen & (national_id != ""))
    value = national_id[rows]
    parts = [np.strings.slice(value, start, stop) for start, stop in ((0, 4), (4, 8), (8, None))]
    rendered = national_id.copy()
    rendered[rows] = np.strings.add(
        np.strings.add(np.strings.add(parts[0], " "), np.strings.add(parts[1], " ")), parts[2]
    )
    return rendered


def _postcodes(ctx: ErrorContext, draft: Draft) -> TextArray:
    postcode = draft.address.postcode
    prefixed = (ctx.per_source("postcode_prefix") > 0) & (draft.country == "LU") & (postcode != "")
    return np.where(prefixed, np.strings.add("L-", postcode), postcode).astype(postcode.dtype)


def _phones(ctx: ErrorContext, phone: TextArray) -> TextArray:
    """E.164 numbers in the source's style: +352 621 123 456, 621 123 456 or 00352621123456."""
    rows = np.flatnonzero(phone != "")
    value = phone[rows]
    style = np.array([s.phone_style for s in ctx.sources])[ctx.plan.source[rows]]
    luxembourg = np.strings.startswith(value, _LUXEMBOURG_PREFIX)
    code_length = np.where(luxembourg, len(_LUXEMBOURG_PREFIX), 3)
    country_code = np.strings.slice(value, 0, code_length)
    rest = np.strings.slice(value, code_length, None)
    spaced = np.strings.add(
        np.strings.add(
            np.strings.add(np.strings.slice(rest, 0, 3), " "),
            np.strings.add(np.strings.slice(rest, 3, 6), " "),
        ),
        np.strings.slice(rest, 6, None),
    )
    national = np.where(luxembourg, spaced, rest)
    international = np.strings.add(np.strings.add(country_code, " "), national)
    compact = np.strings.add("00", np.strings.slice(value, 1, None))
    rendered = phone.copy()
    rendered[rows] = np.where(
        style == "compact", compact, np.where((style == "national") & luxembourg, spaced, international)
    )
    return rendered


def render_columns(ctx: ErrorContext, draft: Draft) -> dict[str, TextArray]:
    """The demographic columns of the batch schema, in each source's style."""
    family_name, birth_name, given_names = draft.family_name, draft.birth_name, draft.given_names
    street, city = draft.address.street, draft.address.city

    ascii_only = ctx.per_source("ascii_only") > 0
    names = (family_name, birth_name, given_names, street, city)
    accented = np.logical_or.reduce([has_diacritics(values) for values in names])
    folded = np.flatnonzero(ascii_only & accented)
    ctx.log.add("diacritics_lost", folded)
    for values in names:
        values[folded] = fold_diacritics(values[folded])

    upper = np.flatnonzero(ctx.per_source("upper_family_names") > 0)
    family_name[upper] = np.strings.upper(family_name[upper])
    birth_name[upper] = np.strings.upper(birth_name[upper])

    return {
        "family_name": family_name,
        "birth_name": birth_name,
        "given_names": given_names,
        "birth_date": _birth_dates(draft),
        "sex": draft.sex,
        "national_id": _grouped_national_ids(ctx, draft.national_id),
        "street": street,
        "house_number": draft.address.house_number,
        "postcode": _postcodes(ctx, draft),
        "city": city,
        "country": draft.country,
        "phone": _phones(ctx, draft.phone),
        "email": draft.email,
    }
