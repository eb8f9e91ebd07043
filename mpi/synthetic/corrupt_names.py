"""How a person's names drift between records.

Representation changes come first (married name, a subset of surnames, a dropped
particle, a spelling variant, fewer given names, a nickname), then the names are
joined and suffer keyboard slips, swaps and lost accents.
"""

from __future__ import annotations

import numpy as np

from mpi.synthetic.corruption import Draft, ErrorContext
from mpi.synthetic.pools import Pools
from mpi.synthetic.text import (
    BoolArray,
    IntArray,
    TextArray,
    apply_typos,
    draw_alternative,
    fold_diacritics,
    has_alternative,
    has_diacritics,
    join_nonempty,
    partition,
)

_PARTICLES = ("da ", "das ", "do ", "dos ", "de ")


def _main_values(draft: Draft) -> TextArray:
    stacked = np.stack(draft.family)
    return stacked[draft.main_slot, np.arange(len(draft))]


def _set_main_values(draft: Draft, rows: IntArray, values: TextArray) -> None:
    for slot in range(len(draft.family)):
        at = rows[draft.main_slot[rows] == slot]
        draft.family[slot][at] = values[draft.main_slot[rows] == slot]


def _count_nonempty(slots: list[TextArray]) -> IntArray:
    counts: IntArray = np.sum([slot != "" for slot in slots], axis=0).astype(np.int64)
    return counts


def _starts_with_particle(values: TextArray) -> BoolArray:
    found = np.zeros(len(values), dtype=bool)
    for particle in _PARTICLES:
        found |= np.strings.startswith(values, particle)
    return found


def _surname_representation(ctx: ErrorContext, draft: Draft, pools: Pools) -> None:
    rates = ctx.rates
    subset = ctx.pick(rates.surname_subset, _count_nonempty(draft.family) >= 2, kind="surname_subset")
    main = _main_values(draft)[subset]
    for slot in draft.family:
        slot[subset] = ""
    draft.family[0][subset] = main
    draft.main_slot[subset] = 0

    particled = np.stack([_starts_with_particle(slot) for slot in draft.family])
    any_particle: BoolArray = np.logical_or.reduce(particled, axis=0)
    dropped = ctx.pick(rates.particle_dropped, any_particle, kind="particle_dropped")
    for slot, has_particle in zip(draft.family, particled, strict=True):
        at = dropped[has_particle[dropped]]
        slot[at] = partition(slot[at], " ")[2]

    main = _main_values(draft)
    variant = ctx.pick(
        rates.spelling_variant, has_alternative(main, pools.spelling_variants), kind="spelling_variant"
    )
    _set_main_values(draft, variant, draw_alternative(main[variant], pools.spelling_variants, ctx.rng))


def _given_representation(ctx: ErrorContext, draft: Draft, pools: Pools) -> None:
    rates = ctx.rates
    count = _count_nonempty(draft.given)
    truncated = ctx.pick(rates.given_names_truncated, count >= 2, kind="given_names_truncated")
    # Three given names shrink to one or two; two shrink to one.
    keep_two = (count[truncated] >= 3) & (ctx.rng.random(len(truncated)) < 0.5)
    draft.given[1][truncated[~keep_two]] = ""
    for slot in draft.given[2:]:
        slot[truncated] = ""

    first = draft.given[0]
    nickname = ctx.pick(rates.nickname, has_alternative(first, pools.nicknames), kind="nickname")
    first[nickname] = draw_alternative(first[nickname], pools.nicknames, ctx.rng)
    eligible = has_alternative(first, pools.spelling_variants)
    eligible[nickname] = False
    variant = ctx.pick(rates.spelling_variant, eligible, kind="spelling_variant")
    first[variant] = draw_alternative(first[variant], pools.spelling_variants, ctx.rng)


def _married_names(ctx: ErrorContext, draft: Draft) -> None:
    """Outside the register a married woman often goes by her husband's name."""
    register = ctx.per_source("is_register") > 0
    married = (draft.married_name != "") & ~register
    used = ctx.pick(ctx.rates.married_name_used, married, scaled=False, kind="married_name")
    keep_birth_name = ctx.rng.random(len(used)) < ctx.rates.birth_name_kept
    draft.birth_name[used[keep_birth_name]] = draft.family_name[used[keep_birth_name]]
    draft.family_name[used] = draft.married_name[used]


def _hyphens(ctx: ErrorContext, values: TextArray) -> None:
    hyphenated = ctx.pick(ctx.rates.hyphen_variant, np.strings.find(values, "-") >= 0, kind="hyphen_variant")
    spaced = ctx.rng.random(len(hyphenated)) < 0.75
    values[hyphenated] = np.where(
        spaced,
        np.strings.replace(values[hyphenated], "-", " "),
        np.strings.replace(values[hyphenated], "-", ""),
    )


def apply_name_errors(ctx: ErrorContext, draft: Draft, pools: Pools) -> None:
    """Fill ``family_name``, ``birth_name`` and ``given_names`` of the draft, with errors."""
    rates = ctx.rates
    _surname_representation(ctx, draft, pools)
    _given_representation(ctx, draft, pools)
    draft.family_name = join_nonempty(draft.family)
    draft.given_names = join_nonempty(draft.given)
    _married_names(ctx, draft)
    _hyphens(ctx, draft.given_names)
    _hyphens(ctx, draft.family_name)

    swapped = ctx.pick(
        rates.names_swapped,
        (draft.given_names != draft.family_name) & (draft.given_names != ""),
        kind="names_swapped",
    )
    draft.family_name[swapped], draft.given_names[swapped] = (
        draft.given_names[swapped],
        draft.family_name[swapped],
    )

    for values, rate, kind in (
        (draft.family_name, rates.family_name_typo, "family_name_typo"),
        (draft.given_names, rates.given_name_typo, "given_name_typo"),
    ):
        slipped = ctx.pick(rate, values != "", kind=kind)
        values[slipped] = apply_typos(values[slipped], ctx.rng, rates.second_edit)

    accented = (
        has_diacritics(draft.family_name)
        | has_diacritics(draft.given_names)
        | has_diacritics(draft.birth_name)
    )
    folded = ctx.pick(rates.diacritics_lost, accented, kind="diacritics_lost")
    for values in (draft.family_name, draft.given_names, draft.birth_name):
        values[folded] = fold_diacritics(values[folded])
