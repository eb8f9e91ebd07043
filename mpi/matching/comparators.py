"""Comparators: turn a comparison of two records into a small integer level.

Each comparator is built from one ``[[comparison]]`` of the rules file and maps
pairs of record indices to levels: ``0`` is the strongest agreement, the last
level is plain disagreement, and ``-1`` means a value is missing on a side (the
comparison then weighs nothing). Levels are decided with numpy masks, assigned
from the weakest to the strongest so that the strongest true condition wins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from mpi.matching.encoding import (
    JARO_WINKLER,
    WORD_SUBSET,
    Codes,
    EncodedRecords,
    Indices,
    StringColumn,
)
from mpi.rules.schema import Comparison

Levels = npt.NDArray[np.int8]
Mask = npt.NDArray[np.bool_]
NULL_LEVEL = -1


def _assign(n: int, conditions: Sequence[Mask], null: Mask) -> Levels:
    """Level of each pair: index of the first true condition, else the last level; -1 where null."""
    levels = np.full(n, len(conditions), dtype=np.int8)
    for level in range(len(conditions) - 1, -1, -1):
        levels[conditions[level]] = level
    levels[null] = NULL_LEVEL
    return levels


def _threshold_label(value: float) -> str:
    return f"jaro_winkler>={value:g}"


@dataclass(frozen=True)
class Comparator:
    """A configured comparison: its level labels and how to compute them."""

    config: Comparison
    labels: tuple[str, ...]
    required: tuple[str, ...]
    compute: Callable[[EncodedRecords, Indices, Indices], Levels]
    exact_column: str | None  # the column whose exact agreement is level 0 (term frequencies)
    needs_any: bool = False  # usable when any one of ``required`` is present, not all

    def usable_with(self, present: Callable[[str], bool]) -> tuple[str, ...]:
        """The required columns missing from the input (empty when the comparator can run)."""
        missing = tuple(c for c in self.required if not present(c))
        if self.needs_any and len(missing) < len(self.required):
            return ()
        return missing

    @property
    def name(self) -> str:
        return self.config.name

    def levels(self, records: EncodedRecords, left: Indices, right: Indices) -> Levels:
        return self.compute(records, left, right)


def _codes(records: EncodedRecords, column: str, index: Indices) -> Codes:
    return records.strings[column].codes[index]


def _optional_equal(records: EncodedRecords, column: str, left: Indices, right: Indices) -> Mask:
    """Both sides present and equal; all false when the column is absent."""
    if column not in records.strings:
        return np.zeros(left.shape[0], dtype=bool)
    cl = _codes(records, column, left)
    cr = _codes(records, column, right)
    return np.asarray((cl == cr) & (cl >= 0), dtype=bool)


def _name_conditions(
    records: EncodedRecords,
    column: StringColumn,
    cl: Codes,
    cr: Codes,
    thresholds: Sequence[float],
    phonetic: Mask,
    subset: bool,
) -> list[Mask]:
    """exact, [token subset], jw>=t1, phonetic, jw>=t2.. for one column pair (codes share a vocabulary)."""
    present = (cl >= 0) & (cr >= 0)
    safe_l = np.where(present, cl, 0).astype(np.int32)
    safe_r = np.where(present, cr, 0).astype(np.int32)
    exact = present & (cl == cr)
    jw = column.similarity(JARO_WINKLER, safe_l, safe_r)
    conditions = [exact]
    if subset:
        conditions.append(present & (column.similarity(WORD_SUBSET, safe_l, safe_r) >= 0.999))
    first, *rest = thresholds or (0.9,)
    conditions.append(present & (jw >= first))
    conditions.append(present & phonetic)
    conditions.extend(present & (jw >= t) for t in rest)
    return conditions


def swapped_names(records: EncodedRecords, left: Indices, right: Indices) -> Mask:
    """Pairs whose family and given names are swapped on one side (phonetically crosswise equal).

    First/last name swaps are a common data-entry error; comparing the names
    straight would count two strong disagreements for one slip. Both name
    comparators ask for the same chunk, so the last answer is remembered.
    """
    memo = records.memo.get("swapped_names")
    if memo is not None and memo[0] is left and memo[1] is right:
        remembered: Mask = memo[2]
        return remembered
    swapped = _swapped_names(records, left, right)
    records.memo["swapped_names"] = (left, right, swapped)
    return swapped


def first_token_codes(records: EncodedRecords, column: str) -> Codes:
    """Per record, the code of the first word of ``column`` in its shared vocabulary (-1 if absent).

    A swapped record carries all its given names in the family-name field, so
    its first word is what the other record's first given name should equal.
    """
    key = f"first_token:{column}"
    cached = records.memo.get(key)
    if cached is not None:
        codes_cached: Codes = cached
        return codes_cached
    col = records.strings[column]
    position = {value: code for code, value in enumerate(col.vocab.tolist())}
    token_code = np.array(
        [position.get(value.split(" ", 1)[0], -1) for value in col.vocab.tolist()], dtype=np.int32
    )
    if token_code.size == 0:  # no record has a value in the column
        codes = np.full(col.codes.shape, -1, dtype=np.int32)
    else:
        codes = np.where(col.codes >= 0, token_code[np.maximum(col.codes, 0)], -1).astype(np.int32)
    records.memo[key] = codes
    return codes


def _swapped_names(records: EncodedRecords, left: Indices, right: Indices) -> Mask:
    needed = ("family_dm", "given_dm", "family_kp", "given_kp")
    if not all(c in records.strings for c in needed):
        return np.zeros(left.shape[0], dtype=bool)
    fdm, gdm = records.strings["family_dm"].codes, records.strings["given_dm"].codes
    fkp, gkp = records.strings["family_kp"].codes, records.strings["given_kp"].codes
    first_dm = first_token_codes(records, "family_dm")
    first_kp = first_token_codes(records, "family_kp")
    fl, fr, gl, gr = fdm[left], fdm[right], gdm[left], gdm[right]
    # Only pairs whose names disagree straight can be swaps: look at those alone.
    candidates = np.flatnonzero((fl != fr) & (gl != gr) & (fl >= 0) & (fr >= 0) & (gl >= 0) & (gr >= 0))
    swapped = np.zeros(left.shape[0], dtype=bool)
    if candidates.size == 0:
        return swapped
    left, right = left[candidates], right[candidates]
    fl, fr, gl, gr = fl[candidates], fr[candidates], gl[candidates], gr[candidates]
    present = np.ones(candidates.size, dtype=bool)
    cross_family = (
        (fl == gr) | (first_dm[left] == gr) | (fkp[left] == gkp[right]) | (first_kp[left] == gkp[right])
    )
    cross_given = (
        (gl == fr) | (gl == first_dm[right]) | (gkp[left] == fkp[right]) | (gkp[left] == first_kp[right])
    )
    # One crosswise agreement is strong evidence of a swap; then a typo may hide
    # the other one ("Laura Webb" / "Webf Laura"), so it only needs to be close.
    one_side = np.flatnonzero(cross_family ^ cross_given)
    if one_side.size and "family_name" in records.strings and "given_name" in records.strings:
        names = records.strings["family_name"]  # shares its vocabulary with given_name
        first_name = first_token_codes(records, "family_name")
        given = records.strings["given_name"].codes
        sl, sr = left[one_side], right[one_side]
        fam_side = cross_family[one_side]
        # The side still to check: given(left) vs family(right), or family(left) vs given(right).
        a = np.where(fam_side, given[sl], first_name[sl])
        b = np.where(fam_side, first_name[sr], given[sr])
        both = (a >= 0) & (b >= 0)
        close = np.zeros(one_side.size, dtype=bool)
        if both.any():
            similarity = names.similarity(JARO_WINKLER, a[both].astype(np.int32), b[both].astype(np.int32))
            close[both] = similarity >= 0.85
        cross_family[one_side[close]] = True
        cross_given[one_side[close]] = True
    swapped[candidates] = present & cross_family & cross_given
    return swapped


def _crossed(
    records: EncodedRecords, column: str, other: str, index: Indices, swap: Mask, *, first_word: bool = False
) -> Codes:
    """Codes of ``column`` at ``index``, taken from ``other`` where the names are swapped."""
    codes = records.strings[column].codes[index]
    if swap.any() and other in records.strings:
        codes = codes.copy()
        source = first_token_codes(records, other) if first_word else records.strings[other].codes
        codes[swap] = source[index[swap]]
    return codes


def _best_of(level_sets: Sequence[Levels]) -> Levels:
    """Per pair, the strongest non-null level over several column pairings."""
    stacked = np.stack(level_sets)
    big = np.int8(127)
    best = np.where(stacked < 0, big, stacked).min(axis=0)
    return np.where(best == big, NULL_LEVEL, best).astype(np.int8)


def _surname(config: Comparison) -> Comparator:
    thresholds = config.thresholds or (0.92, 0.8)
    labels: tuple[str, ...] = (
        "exact",
        "token_subset",
        _threshold_label(thresholds[0]),
        "phonetic",
        *(_threshold_label(t) for t in thresholds[1:]),
        "different",
    )
    primary = config.column
    phonetic_of = {"family_name": ("family_dm", "family_kp"), "birth_name": ("birth_name_dm",)}

    crossed_with = {"family_name": "given_name", "family_dm": "given_dm", "family_kp": "given_kp"}

    def codes_of(records: EncodedRecords, name: str, index: Indices, swap: Mask | None) -> Codes:
        if swap is not None and name in crossed_with:
            return _crossed(records, name, crossed_with[name], index, swap)
        return _codes(records, name, index)

    def levels_of(
        records: EncodedRecords,
        a: str,
        b: str,
        left: Indices,
        right: Indices,
        swap_left: Mask | None,
        swap_right: Mask | None,
    ) -> Levels:
        """Levels of column ``a`` of the left records against column ``b`` of the right ones."""
        cl = codes_of(records, a, left, swap_left)
        cr = codes_of(records, b, right, swap_right)
        phonetic = np.zeros(left.shape[0], dtype=bool)
        for pa, pb in zip(phonetic_of.get(a, ()), phonetic_of.get(b, ()), strict=False):
            if pa in records.strings and pb in records.strings:
                pl = codes_of(records, pa, left, swap_left)
                pr = codes_of(records, pb, right, swap_right)
                phonetic |= (pl == pr) & (pl >= 0)
        conditions = _name_conditions(records, records.strings[primary], cl, cr, thresholds, phonetic, True)
        return _assign(left.shape[0], conditions, (cl < 0) | (cr < 0))

    def compute(records: EncodedRecords, left: Indices, right: Indices) -> Levels:
        n = left.shape[0]
        swap = swapped_names(records, left, right)
        level_sets = [levels_of(records, primary, primary, left, right, None, swap)]
        # The rarer comparisons run only on the rows they can change.
        rows = np.flatnonzero(swap)
        if rows.size:
            # The swapped record may be either one: cross the left one too and keep the better level.
            partial = np.full(n, NULL_LEVEL, dtype=np.int8)
            partial[rows] = levels_of(
                records, primary, primary, left[rows], right[rows], np.ones(rows.size, dtype=bool), None
            )
            level_sets.append(partial)
        for alternate in config.alternates:
            if alternate not in records.strings:
                continue
            codes = records.strings[alternate].codes
            for a, b, side in ((primary, alternate, right), (alternate, primary, left)):
                rows = np.flatnonzero(codes[side] >= 0)
                if rows.size == 0:
                    continue
                partial = np.full(n, NULL_LEVEL, dtype=np.int8)
                partial[rows] = levels_of(records, a, b, left[rows], right[rows], None, None)
                level_sets.append(partial)
        return level_sets[0] if len(level_sets) == 1 else _best_of(level_sets)

    return Comparator(config, labels, (primary,), compute, primary)


def _given_name(config: Comparison) -> Comparator:
    thresholds = config.thresholds or (0.92, 0.8)
    labels: tuple[str, ...] = (
        "exact",
        "nickname",
        _threshold_label(thresholds[0]),
        "phonetic",
        *(_threshold_label(t) for t in thresholds[1:]),
        "shares_a_given_name",
        "different",
    )
    primary = config.column

    def compute(records: EncodedRecords, left: Indices, right: Indices) -> Levels:
        column = records.strings[primary]
        swap = swapped_names(records, left, right)
        cl = _codes(records, primary, left)
        cr = _crossed(records, primary, "family_name", right, swap, first_word=True)
        phonetic = np.zeros(left.shape[0], dtype=bool)
        for name, crossed in (("given_dm", "family_dm"), ("given_kp", "family_kp")):
            if name in records.strings:
                pl = _codes(records, name, left)
                pr = _crossed(records, name, crossed, right, swap, first_word=True)
                phonetic |= (pl == pr) & (pl >= 0)
        conditions = _name_conditions(records, column, cl, cr, thresholds, phonetic, subset=False)
        conditions.insert(1, _optional_equal(records, "given_canonical", left, right) & ~swap)
        if "given_names" in records.strings:
            all_names = records.strings["given_names"]
            al = _codes(records, "given_names", left)
            ar = _codes(records, "given_names", right)
            present = (al >= 0) & (ar >= 0)
            safe_l = np.where(present, al, 0).astype(np.int32)
            safe_r = np.where(present, ar, 0).astype(np.int32)
            overlap = all_names.similarity(WORD_SUBSET, safe_l, safe_r)
            conditions.append(present & (overlap >= 0.999))
        else:
            conditions.append(np.zeros(left.shape[0], dtype=bool))
        null = (cl < 0) | (cr < 0)
        return _assign(left.shape[0], conditions, null)

    return Comparator(config, labels, (primary,), compute, primary)


def _birth_date(config: Comparison) -> Comparator:
    labels = (
        "exact",
        "day_month_swapped",
        "year_off_by_one",
        "partial_date_compatible",
        "one_part_differs",
        "different",
    )

    def compute(records: EncodedRecords, left: Indices, right: Indices) -> Levels:
        year = records.integers["birth_year"]
        month = records.integers["birth_month"]
        day = records.integers["birth_day"]
        yl, yr = year[left], year[right]
        ml, mr = month[left], month[right]
        dl, dr = day[left], day[right]
        null = (yl < 0) | (yr < 0)
        same_y = yl == yr
        known = (ml > 0) & (mr > 0) & (dl > 0) & (dr > 0)
        same_m = ml == mr
        same_d = dl == dr
        exact = same_y & same_m & same_d & known
        swapped = same_y & known & (dl == mr) & (ml == dr) & (dl != ml)
        year_off = (np.abs(yl.astype(np.int32) - yr.astype(np.int32)) == 1) & same_m & same_d & known
        month_ok = (ml == 0) | (mr == 0) | same_m
        day_ok = (dl == 0) | (dr == 0) | same_d
        partial = same_y & month_ok & day_ok & ~known
        parts_equal = same_y.astype(np.int8) + (same_m & (ml > 0)) + (same_d & (dl > 0))
        one_differs = (parts_equal == 2) & known
        return _assign(left.shape[0], [exact, swapped, year_off, partial, one_differs], null)

    return Comparator(config, labels, ("birth_year", "birth_month", "birth_day"), compute, None)


PAYLOAD_DIGITS = 11


def payload_digits(column: StringColumn) -> npt.NDArray[np.uint8]:
    """(vocabulary, 11) matrix of the payload digits of each normalised matricule."""
    cached = column.derived.get("payload_digits")
    if cached is None:
        text = "".join(value[:PAYLOAD_DIGITS].ljust(PAYLOAD_DIGITS, "0") for value in column.vocab.tolist())
        cached = np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(-1, PAYLOAD_DIGITS)
        column.derived["payload_digits"] = cached
    return np.asarray(cached, dtype=np.uint8)


def _one_edit_apart(digits: npt.NDArray[np.uint8], cl: Codes, cr: Codes) -> Mask:
    """Payloads one substitution or one adjacent transposition apart, all pairs at once."""
    a = digits[cl]
    b = digits[cr]
    mismatch = a != b
    count = mismatch.sum(axis=1)
    first = np.argmax(mismatch, axis=1)
    nxt = np.minimum(first + 1, PAYLOAD_DIGITS - 1)
    rows = np.arange(a.shape[0])
    swapped = (
        (count == 2)
        & mismatch[rows, nxt]
        & (a[rows, first] == b[rows, nxt])
        & (a[rows, nxt] == b[rows, first])
    )
    return np.asarray((count == 1) | swapped, dtype=bool)


def _national_id(config: Comparison) -> Comparator:
    labels = ("exact", "one_digit_apart", "different")
    primary = config.column

    def compute(records: EncodedRecords, left: Indices, right: Indices) -> Levels:
        column = records.strings[primary]
        cl = _codes(records, primary, left)
        cr = _codes(records, primary, right)
        null = (cl < 0) | (cr < 0)
        exact = ~null & (cl == cr)
        close = np.zeros(left.shape[0], dtype=bool)
        differ = np.flatnonzero(~null & ~exact)
        if differ.size:
            close[differ] = _one_edit_apart(payload_digits(column), cl[differ], cr[differ])
        return _assign(left.shape[0], [exact, close], null)

    return Comparator(config, labels, (primary,), compute, primary)


def _exact(config: Comparison) -> Comparator:
    primary = config.column

    def compute(records: EncodedRecords, left: Indices, right: Indices) -> Levels:
        cl = _codes(records, primary, left)
        cr = _codes(records, primary, right)
        null = (cl < 0) | (cr < 0)
        return _assign(left.shape[0], [~null & (cl == cr)], null)

    return Comparator(config, ("exact", "different"), (primary,), compute, primary)


def _string(config: Comparison) -> Comparator:
    thresholds = config.thresholds or (0.9, 0.8)
    labels = ("exact", *(_threshold_label(t) for t in thresholds), "different")
    primary = config.column

    def compute(records: EncodedRecords, left: Indices, right: Indices) -> Levels:
        column = records.strings[primary]
        cl = _codes(records, primary, left)
        cr = _codes(records, primary, right)
        null = (cl < 0) | (cr < 0)
        safe_l = np.where(null, 0, cl).astype(np.int32)
        safe_r = np.where(null, 0, cr).astype(np.int32)
        jw = column.similarity(JARO_WINKLER, safe_l, safe_r)
        conditions = [~null & (cl == cr)] + [~null & (jw >= t) for t in thresholds]
        return _assign(left.shape[0], conditions, null)

    return Comparator(config, labels, (primary,), compute, primary)


def _prefix_codes(column: StringColumn, length: int) -> Codes:
    """Codes of each vocabulary value's first ``length`` characters, per record."""
    prefixes = np.array([v[:length] for v in column.vocab.tolist()], dtype=object)
    prefix_code = pd.factorize(prefixes)[0].astype(np.int32)
    if prefix_code.size == 0:
        return np.full(column.codes.shape[0], -1, dtype=np.int32)
    return np.where(column.codes >= 0, prefix_code[np.maximum(column.codes, 0)], -1).astype(np.int32)


def _postcode(config: Comparison) -> Comparator:
    primary = config.column
    labels = ("exact", "same_area", "different")

    def compute(records: EncodedRecords, left: Indices, right: Indices) -> Levels:
        column = records.strings[primary]
        cl = column.codes[left]
        cr = column.codes[right]
        null = (cl < 0) | (cr < 0)
        area = _prefix_codes(column, 3)
        return _assign(left.shape[0], [~null & (cl == cr), ~null & (area[left] == area[right])], null)

    return Comparator(config, labels, (primary,), compute, primary)


def _email(config: Comparison) -> Comparator:
    primary = config.column
    labels = ("exact", "same_local_part", "different")

    def compute(records: EncodedRecords, left: Indices, right: Indices) -> Levels:
        column = records.strings[primary]
        code_of: dict[str, int] = {}
        locals_ = (v.split("@", 1)[0] for v in column.vocab.tolist())
        local_code = np.array([code_of.setdefault(v, len(code_of)) for v in locals_], dtype=np.int32)
        if local_code.size == 0:  # no e-mail anywhere: every pair is missing
            return np.full(left.shape[0], NULL_LEVEL, dtype=np.int8)
        cl = column.codes[left]
        cr = column.codes[right]
        null = (cl < 0) | (cr < 0)
        same_local = local_code[np.maximum(cl, 0)] == local_code[np.maximum(cr, 0)]
        return _assign(left.shape[0], [~null & (cl == cr), ~null & same_local], null)

    return Comparator(config, labels, (primary,), compute, primary)


ADDRESS_COLUMNS = ("street", "house_number", "postcode", "city")


def _address(config: Comparison) -> Comparator:
    """One comparison for the whole address.

    Street, house number, postcode and city agree together for everyone in a
    household; scored as four independent comparisons they would add up to
    overwhelming evidence for spouses, twins and parent and child.
    """
    threshold = config.thresholds[0] if config.thresholds else 0.9
    labels = ("same_address", "one_part_differs", "same_street", "same_locality", "different")

    def compute(records: EncodedRecords, left: Indices, right: Indices) -> Levels:
        n = left.shape[0]
        none = np.zeros(n, dtype=bool)

        def present(column: str) -> tuple[Mask, Mask]:
            if column not in records.strings:
                return none, none
            codes = records.strings[column].codes
            return codes[left] >= 0, codes[right] >= 0

        def similar(column: str, use_similarity: bool) -> Mask:
            if column not in records.strings:
                return none
            col = records.strings[column]
            cl, cr = col.codes[left], col.codes[right]
            both = (cl >= 0) & (cr >= 0)
            same = both & (cl == cr)
            if not use_similarity:
                return np.asarray(same, dtype=bool)
            safe_l = np.where(both, cl, 0).astype(np.int32)
            safe_r = np.where(both, cr, 0).astype(np.int32)
            return np.asarray(both & (col.similarity(JARO_WINKLER, safe_l, safe_r) >= threshold), dtype=bool)

        street = similar("street", True)
        house = similar("house_number", False)
        postcode = similar("postcode", False)
        city = similar("city", True)
        locality = postcode | city
        compared = np.zeros(n, dtype=np.int8)
        agreeing = (street.astype(np.int8) + house + postcode + city).astype(np.int8)
        for column in ADDRESS_COLUMNS:
            pl, pr = present(column)
            compared += pl & pr
        # Street and house number alone exist in many villages: a full match needs the locality.
        every_part = (agreeing == compared) & (compared >= 2) & locality
        all_but_one = (agreeing == compared - 1) & (compared >= 3) & locality
        conditions = [every_part, all_but_one, street & locality, locality]
        return _assign(n, conditions, compared == 0)

    return Comparator(config, labels, ADDRESS_COLUMNS, compute, None, needs_any=True)


_BUILDERS: dict[str, Callable[[Comparison], Comparator]] = {
    "address": _address,
    "surname": _surname,
    "given_name": _given_name,
    "birth_date": _birth_date,
    "national_id": _national_id,
    "exact": _exact,
    "string": _string,
    "postcode": _postcode,
    "phone": _exact,
    "email": _email,
}


def build_comparator(config: Comparison) -> Comparator:
    """Resolve a comparison of the rules file into an executable comparator."""
    return _BUILDERS[config.comparator](config)
