"""Addresses, phone numbers and e-mail addresses of synthetic persons."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mpi.synthetic.pools import Pools
from mpi.synthetic.text import (
    TEXT,
    BoolArray,
    IntArray,
    TextArray,
    blank,
    digits,
    distinct,
    fold_one,
    gather,
    map_distinct,
    partition,
    text,
)

# Mobile prefixes: POST, Tango, Orange and others in Luxembourg; common mobile ranges abroad.
_MOBILE_PREFIXES = {
    "LU": ("+352", ("621", "628", "661", "671", "691"), 6),
    "FR": ("+33", ("6", "7"), 8),
    "BE": ("+32", ("470", "471", "472", "475", "477", "485", "495", "496"), 6),
    "DE": ("+49", ("151", "152", "160", "170", "171", "176"), 8),
}
# Reserved for documentation (RFC 2606), so no generated address can reach anyone.
_EMAIL_DOMAINS = text(["example.com", "example.net", "example.org", "mail.example.com", "post.example.net"])
_EMAIL_DOMAIN_WEIGHTS = np.array([0.35, 0.2, 0.15, 0.2, 0.1])


@dataclass
class Addresses:
    street: TextArray
    house_number: TextArray
    postcode: TextArray
    city: TextArray

    @classmethod
    def empty(cls, n: int) -> Addresses:
        return cls(blank(n), blank(n), blank(n), blank(n))

    def take(self, index: IntArray) -> Addresses:
        return Addresses(
            gather(self.street, index),
            gather(self.house_number, index),
            gather(self.postcode, index),
            gather(self.city, index),
        )

    def put(self, rows: IntArray, other: Addresses) -> None:
        self.street[rows] = other.street
        self.house_number[rows] = other.house_number
        self.postcode[rows] = other.postcode
        self.city[rows] = other.city


def _house_numbers(rng: np.random.Generator, n: int) -> TextArray:
    # Most houses are on short streets: a skewed draw with a long tail, some with a letter.
    numbers = np.clip(np.exp(rng.normal(2.5, 0.9, n)).astype(np.int64), 1, 250)
    suffix = np.where(rng.random(n) < 0.05, text(["A", "B", "a", "b"])[rng.integers(0, 4, n)], "")
    return np.strings.add(numbers.astype(TEXT), suffix)


def draw_addresses(rng: np.random.Generator, country: TextArray, pools: Pools) -> Addresses:
    """A street address in each person's country of residence."""
    n = len(country)
    result = Addresses.empty(n)
    for code in distinct(country):
        rows = np.flatnonzero(country == code)
        localities, streets = pools.places(code)
        chosen = localities.localities.sample(rng, len(rows))
        first, last = localities.postcode_first[chosen], localities.postcode_last[chosen]
        postcode = first + (rng.random(len(rows)) * (last - first + 1)).astype(np.int64)
        width = 5 if code in ("FR", "DE") else 4
        result.postcode[rows] = digits(postcode, width)
        result.city[rows] = localities.localities.values[chosen]
        result.street[rows] = streets.values[streets.sample(rng, len(rows))]
        result.house_number[rows] = _house_numbers(rng, len(rows))
    return result


def other_postcodes(rng: np.random.Generator, postcode: TextArray) -> TextArray:
    """Another postcode a clerk might enter: a neighbouring code or one slipped digit."""
    n = len(postcode)
    if n == 0:
        return postcode.copy()
    width = np.strings.str_len(postcode).astype(np.int64)
    value = postcode.astype(np.int64)
    nearby = value + rng.integers(1, 4, n) * np.where(rng.random(n) < 0.5, -1, 1)
    power = 10 ** (width - 1 - (rng.random(n) * width).astype(np.int64))
    digit = (value // power) % 10
    slipped = value + ((digit + rng.integers(1, 10, n)) % 10 - digit) * power
    chosen = np.where(rng.random(n) < 0.5, nearby, slipped)
    lowest = 10 ** (width - 1)
    # A code that lost or gained a digit, or did not change, becomes its neighbour.
    fallback = np.where(value + 1 < 10 * lowest, value + 1, value - 1)
    chosen = np.where((chosen < lowest) | (chosen >= 10 * lowest) | (chosen == value), fallback, chosen)
    return chosen.astype(TEXT)


def draw_phones(rng: np.random.Generator, country: TextArray, has_phone: BoolArray) -> TextArray:
    """E.164 mobile numbers; half the cross-border workers carry a Luxembourg number."""
    n = len(country)
    numbering = np.where((country != "LU") & (rng.random(n) < 0.5), "LU", country)
    phones = blank(n)
    for code in distinct(numbering):
        prefix, ranges, subscriber = _MOBILE_PREFIXES[code]
        rows = np.flatnonzero((numbering == code) & has_phone)
        block = text(list(ranges))[rng.integers(0, len(ranges), len(rows))]
        number = digits(rng.integers(0, 10**subscriber, len(rows)), subscriber)
        phones[rows] = np.strings.add(np.strings.add(prefix, block), number)
    return phones


def derive_emails(
    rng: np.random.Generator,
    first_given: TextArray,
    main_family: TextArray,
    birth_year: IntArray,
    has_email: BoolArray,
) -> TextArray:
    """Addresses built the way people pick them: jean.schmit, jschmit78, maria_santos."""
    rows = np.flatnonzero(has_email)
    n = len(rows)
    given = partition(first_given[rows], " ")[0]
    given = map_distinct(given, lambda v: fold_one(v).lower())
    family = map_distinct(
        main_family[rows], lambda v: "".join(ch for ch in fold_one(v).lower() if ch.isalnum())
    )
    initial = np.strings.slice(given, 0, 1)
    style = rng.random(n)
    person = np.where(
        style < 0.55,
        np.strings.add(np.strings.add(given, "."), family),
        np.where(
            style < 0.75,
            np.strings.add(initial, family),
            np.where(
                style < 0.9, np.strings.add(np.strings.add(given, "_"), family), np.strings.add(given, family)
            ),
        ),
    )
    with_year = rng.random(n) < 0.3
    person = np.where(with_year, np.strings.add(person, digits(birth_year[rows] % 100, 2)), person)
    cumulative = np.cumsum(_EMAIL_DOMAIN_WEIGHTS) / _EMAIL_DOMAIN_WEIGHTS.sum()
    domain = _EMAIL_DOMAINS[np.searchsorted(cumulative, rng.random(n), side="right")]
    emails = blank(len(first_given))
    emails[rows] = np.strings.add(np.strings.add(person, "@"), domain)
    return emails
