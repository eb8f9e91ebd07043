"""Splink 5 models for the benchmarks, configured the way Splink's own tutorials do.

The FEBRL recipe follows Splink's ``febrl3`` and ``febrl4`` DuckDB examples
(``docs/demos/examples/duckdb/febrl{3,4}``): ``NameComparison`` (Jaro-Winkler
0.92/0.88/0.7) with term-frequency adjustments on both names, ``DateOfBirthComparison``,
exact street number and Damerau-Levenshtein postcode with term frequencies, the
tutorials' blocking rules, the prior from deterministic rules, u from random sampling
and m by expectation maximisation blocked on date of birth, then on postcode.

Differences from the tutorials, all so that both engines see the same information:

* ``soc_sec_id`` is withheld (dropped from the input), and with it every rule and
  comparison that used it;
* street name (``address_1``) and suburb are compared with Jaro-Winkler, because our
  engine uses them too; ``address_2`` and ``state`` are left out, as our engine ignores them;
* u is sampled from 1e7 pairs, the figure the tutorial recommends over its demo's 1e6.

The synthetic recipe (batch schema of ``mpi synth``: ``given_names``, ``family_name``,
``birth_date``..., whichever exist) compares columns the same way and follows Splink's
``deduplicate_50k_synthetic`` example for the rest: pairs-of-fields blocking plus an
initials-and-birth-year rule, prior from three deterministic rules at recall 0.6, EM
blocked on names then on birth date, clusters at probability 0.95. Its input is first
cleaned in SQL (:func:`synthetic_preparation`), as a Splink user would.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

import splink.comparison_library as cl
from splink import Linker, SettingsCreator, block_on

LinkType = Literal["dedupe_only", "link_only"]

DEFAULT_THRESHOLD = 0.5


@dataclass
class SplinkRecipe:
    """Everything needed to train a Splink model the tutorial way, plus its decision threshold."""

    name: str
    settings: SettingsCreator
    deterministic_rules: list[Any]
    deterministic_recall: float
    em_rules: list[Any]
    u_max_pairs: float = 1e7
    em_max_pairs: float | None = None
    threshold: float = DEFAULT_THRESHOLD

    @property
    def unique_id_column(self) -> str:
        return self.settings.unique_id_column_name


def febrl_recipe(link_type: LinkType, *, lean_output: bool = False) -> SplinkRecipe:
    """The FEBRL3 (``dedupe_only``) or FEBRL4 (``link_only``) model, without ``soc_sec_id``."""
    blocking_rules = [
        block_on("given_name", "surname"),
        "l.given_name = r.surname and l.surname = r.given_name",
        block_on("given_name"),
        block_on("surname"),
        block_on("date_of_birth"),
        block_on("street_number", "address_1"),
        block_on("suburb"),
        block_on("postcode"),
    ]
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type=link_type,
        blocking_rules_to_generate_predictions=blocking_rules,
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison(
                "date_of_birth",
                input_is_string=True,
                datetime_format="%Y%m%d",
                invalid_dates_as_null=True,
            ),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]).configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("suburb", [0.9, 0.7]).configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(term_frequency_adjustments=True),
        ],
        retain_matching_columns=not lean_output,
        retain_intermediate_calculation_columns=False,
    )
    return SplinkRecipe(
        name=f"febrl-{link_type}",
        settings=settings,
        deterministic_rules=[
            block_on("given_name", "surname", "date_of_birth"),
            "l.given_name = r.surname and l.surname = r.given_name and l.date_of_birth = r.date_of_birth",
        ],
        # The tutorials' guesses (0.9 FEBRL3, 0.8 FEBRL4) included an uncorrupted soc_sec_id rule;
        # names plus birth date alone catch fewer true pairs.
        deterministic_recall=0.7,
        em_rules=[block_on("date_of_birth"), block_on("postcode")],
    )


def synthetic_recipe(
    columns: Collection[str], link_type: LinkType = "dedupe_only", *, lean_output: bool = True
) -> SplinkRecipe:
    """A model over the batch schema (``mpi synth`` output), using the columns present."""
    present = set(columns)
    for required in ("record_id", "given_names", "family_name", "birth_date"):
        if required not in present:
            raise ValueError(f"synthetic input lacks the {required!r} column; found {sorted(present)}")

    comparisons: list[Any] = [
        cl.NameComparison("given_names").configure(term_frequency_adjustments=True),
        cl.NameComparison("family_name").configure(term_frequency_adjustments=True),
        cl.DateOfBirthComparison(
            "birth_date",
            input_is_string=True,
            datetime_format="%Y-%m-%d",
            invalid_dates_as_null=True,
        ),
    ]
    blocking_rules: list[Any] = [
        block_on("given_names", "family_name"),
        "l.given_names = r.family_name and l.family_name = r.given_names",
        block_on("family_name", "birth_date"),
        block_on("given_names", "birth_date"),
    ]
    # The deduplicate_50k_synthetic tutorial's deterministic rules and recall guess (0.6).
    deterministic_rules: list[Any] = [block_on("given_names", "family_name", "birth_date")]
    if "postcode" in present:
        deterministic_rules += [
            block_on("substr(given_names, 1, 2)", "family_name", "substr(postcode, 1, 2)"),
            block_on("birth_date", "postcode"),
        ]
    optional_comparisons: dict[str, Any] = {
        "birth_name": cl.NameComparison("birth_name").configure(term_frequency_adjustments=True),
        "sex": cl.ExactMatch("sex"),
        "national_id": cl.DamerauLevenshteinAtThresholds("national_id", [1, 2]),
        "street": cl.JaroWinklerAtThresholds("street", [0.9, 0.7]).configure(term_frequency_adjustments=True),
        "house_number": cl.ExactMatch("house_number").configure(term_frequency_adjustments=True),
        "postcode": cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(
            term_frequency_adjustments=True
        ),
        "city": cl.JaroWinklerAtThresholds("city", [0.9, 0.7]).configure(term_frequency_adjustments=True),
        "phone": cl.DamerauLevenshteinAtThresholds("phone", [1, 2]),
        "email": cl.EmailComparison("email"),
    }
    comparisons += [comparison for column, comparison in optional_comparisons.items() if column in present]
    if "national_id" in present:
        blocking_rules.append(block_on("national_id"))
        deterministic_rules.append(block_on("national_id", "birth_date"))
    # The pattern of Splink's deduplicate_50k_synthetic tutorial: pairs of fields, then a coarse
    # initials-and-birth-year rule, so that a typo in any one field cannot hide a duplicate.
    if "postcode" in present:
        blocking_rules += [
            block_on("postcode", "given_names"),
            block_on("postcode", "family_name"),
            block_on("postcode", "birth_date"),
        ]
    if {"street", "house_number", "postcode"} <= present:
        # Street names repeat from town to town ("rue de la Gare"); the postcode keeps blocks small.
        blocking_rules.append(block_on("street", "house_number", "postcode"))
    if "city" in present:
        blocking_rules.append(block_on("city", "birth_date"))
    blocking_rules.append(
        block_on("substr(given_names, 1, 2)", "substr(family_name, 1, 2)", "substr(birth_date, 1, 4)")
    )
    for contact in ("phone", "email"):
        if contact in present:
            blocking_rules.append(block_on(contact))

    settings = SettingsCreator(
        unique_id_column_name="record_id",
        link_type=link_type,
        blocking_rules_to_generate_predictions=blocking_rules,
        comparisons=comparisons,
        retain_matching_columns=not lean_output,
        retain_intermediate_calculation_columns=False,
    )
    return SplinkRecipe(
        name=f"synthetic-{link_type}",
        settings=settings,
        deterministic_rules=deterministic_rules,
        deterministic_recall=0.6,
        # Blocking on names estimates the m of dates and addresses, blocking on the date the m of names.
        em_rules=[block_on("given_names", "family_name"), block_on("birth_date")],
        # Capped so that a million-row EM pass stays a sample, as Splink's docs advise.
        em_max_pairs=5e6,
        # The tutorial clusters at 0.95; it is also mpi's default link threshold.
        threshold=0.95,
    )


# Cleaning a Splink user does in SQL before linking (Splink itself compares raw values):
# case and accents folded, hyphens as spaces, the "L-" postcode prefix and phone
# punctuation and country code removed. mpi's own standardisation does the same kind of work.
_TEXT_COLUMNS = ("family_name", "birth_name", "given_names", "street", "city")


def _cleaned(expression: str) -> str:
    return f"nullif(trim({expression}), '')"


def synthetic_preparation(columns: Collection[str]) -> list[str]:
    """SELECT expressions that clean batch-schema columns for Splink, one per input column."""
    expressions = []
    for column in columns:
        quoted = f'"{column}"'
        if column in _TEXT_COLUMNS:
            folded = f"lower(strip_accents({quoted}))"
            spaced = f"regexp_replace(regexp_replace({folded}, '[-''.]', ' ', 'g'), '\\s+', ' ', 'g')"
            expression = _cleaned(spaced)
        elif column == "postcode":
            expression = _cleaned(f"regexp_replace(upper(trim({quoted})), '^L\\s*-?\\s*', '')")
        elif column == "phone":
            digits = f"regexp_replace({quoted}, '[^0-9]', '', 'g')"
            expression = _cleaned(f"regexp_replace({digits}, '^(00)?352', '')")
        elif column == "national_id":
            expression = _cleaned(f"regexp_replace({quoted}, '[^0-9]', '', 'g')")
        elif column == "email":
            expression = _cleaned(f"lower({quoted})")
        elif column == "sex":
            expression = f"nullif(upper(trim({quoted})), 'U')"
        else:
            expression = quoted
        expressions.append(f"{expression} AS {quoted}")
    return expressions


def train(linker: Linker, recipe: SplinkRecipe, *, seed: int = 42) -> dict[str, float]:
    """Estimate the prior, u and m as the tutorials do; return seconds per step."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    linker.training.estimate_probability_two_random_records_match(
        recipe.deterministic_rules, recall=recipe.deterministic_recall
    )
    timings["prior_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    linker.training.estimate_u_using_random_sampling(max_pairs=recipe.u_max_pairs, seed=seed)
    timings["u_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    for rule in recipe.em_rules:
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True, max_pairs=recipe.em_max_pairs
        )
    timings["em_seconds"] = time.perf_counter() - started
    timings["train_seconds"] = sum(timings.values())
    return timings
