"""The production :class:`~mpi.service.ports.Matcher`: the batch matching engine, one probe at a time.

The online MPI scores a new record against its candidates with exactly the
standardiser, comparators, trained parameters and decision rules that
``mpi dedup`` uses, so a user who learns how one path matches has learned both.
One difference is deliberate: term-frequency adjustments need the frequency of
each name in the whole population, which a single probe and its handful of
candidates cannot give, so the online matcher scores without them.

A probe and its candidates are a few dozen records, so the costs that matter
are fixed per call, not per row: they are standardised cell by cell from a
cache (:func:`~mpi.matching.standardise.standardise_few`, identical output to
the batch standardiser) and coded straight into the kernel's arrays, with no
DataFrame in between. Large batches (a bulk load's blocking keys) take the
vectorised batch standardiser instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import fields
from itertools import chain
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from mpi.domain.limits import MAX_BLOCKING_KEY_LENGTH
from mpi.domain.records import Demographics
from mpi.domain.scores import ComparisonOutcome, Decision, PairScore
from mpi.errors import RulesError
from mpi.matching.encoding import SHARED_VOCABULARIES, UNORDERED_PAIRS, EncodedRecords, StringColumn
from mpi.matching.engine import Engine
from mpi.matching.scoring import CompiledComparison
from mpi.matching.standardise import standardise, standardise_few
from mpi.matching.stored_form import (
    FORM_COLUMNS,
    form_fields,
    form_stamp,
    from_forms,
    is_current,
    refused_birth_dates,
    to_forms,
)
from mpi.rules.columns import INTEGER_COLUMNS, STRING_COLUMNS
from mpi.rules.loader import default_rules_path, load_parameters, load_rules, parameters_path_for
from mpi.rules.parameters import TrainedParameters
from mpi.rules.schema import Rules
from mpi.service.settings import Settings

_FIELDS = tuple(f.name for f in fields(Demographics))
# Up to this many records the cell cache beats factorising columns; a bulk load's chunks
# of new records (mostly unseen values) go through the vectorised batch standardiser.
FEW_RECORDS = 512
_VOCABULARY_GROUPS: tuple[tuple[str, ...], ...] = (
    *SHARED_VOCABULARIES,
    *((c,) for c in sorted(STRING_COLUMNS - {c for group in SHARED_VOCABULARIES for c in group})),
)
_MISSING_LABEL = "missing"
# Distinct level combinations kept with their outcomes (each a small tuple); far more than
# a model's comparisons produce in practice.
_MAX_LEVEL_COMBINATIONS = 100_000

Columns = dict[str, npt.NDArray[np.generic]]


def standardised_columns(records: Sequence[Demographics]) -> Columns:
    """The standardised columns of ``records`` as numpy arrays (text: object arrays, ``None`` if missing)."""
    raw = {name: [getattr(record, name) for record in records] for name in _FIELDS}
    if len(records) <= FEW_RECORDS:
        return standardise_few(raw)
    frame = standardise(pd.DataFrame(raw, dtype=object).astype(pd.StringDtype())).frame
    return {name: frame[name].to_numpy() for name in frame.columns}


def encode(
    columns: Mapping[str, Sequence[Any] | npt.NDArray[np.generic]], n: int, missing: str | None = None
) -> EncodedRecords:
    """The kernel's integer-coded records, straight from standardised columns (text cells equal
    to ``missing`` are missing; integer cells are numbers or their decimals).

    Codes follow first appearance rather than frequency: frequency order only
    decides which values share a precomputed similarity matrix, which is built
    for hundreds of thousands of pairs (never for one probe's candidates), and no
    comparison depends on code order.
    """
    strings: dict[str, StringColumn] = {}
    for group in _VOCABULARY_GROUPS:
        present = [c for c in group if c in columns]
        cells = [_cells(columns[c]) for c in present]
        # dict.fromkeys keeps first appearance and runs in C, as does the look-up through map.
        distinct = dict.fromkeys(chain.from_iterable(cells))
        distinct.pop(missing, None)
        values_in_order = list(distinct)
        code_of: dict[str | None, int] = dict(zip(values_in_order, range(len(values_in_order)), strict=True))
        code_of[missing] = -1
        vocab = np.empty(len(values_in_order), dtype=object)
        vocab[:] = values_in_order
        for column, values in zip(present, cells, strict=True):
            codes = np.fromiter(map(code_of.__getitem__, values), dtype=np.int32, count=len(values))
            strings[column] = StringColumn(codes=codes, vocab=vocab)
    integers = {c: np.asarray(columns[c], dtype=np.int16) for c in INTEGER_COLUMNS if c in columns}
    return EncodedRecords(n=n, strings=strings, integers=integers, file_index=np.zeros(n, dtype=np.int16))


def _cells(column: Sequence[Any] | npt.NDArray[np.generic]) -> Sequence[Any]:
    return column.tolist() if isinstance(column, np.ndarray) else column


def _key_part(columns: Columns, column: str) -> list[str | None] | None:
    """One blocking-key part per record as text, ``None`` where missing; ``None`` if the data lacks it."""
    if column in UNORDERED_PAIRS:
        a, b = UNORDERED_PAIRS[column]
        if a not in columns or b not in columns:
            return None
        # Order-free: family and given names swapped give the same key.
        return [
            None if x is None or y is None else (f"{x}|{y}" if x <= y else f"{y}|{x}")
            for x, y in zip(columns[a].tolist(), columns[b].tolist(), strict=True)
        ]
    if column not in columns:
        return None
    if column in INTEGER_COLUMNS:
        return [str(v) if v > 0 else None for v in columns[column].tolist()]
    values: list[str | None] = columns[column].tolist()
    return values


def blocking_keys_of(rules: Rules, columns: Columns, n: int) -> list[list[str]]:
    """Per record, ``"<rule>:<part>|<part>..."`` for every blocking rule whose parts it all has.

    Plain lists: a key is one string per record and rule whatever the batch size, and for
    the one record of an online registration they cost a fraction of array operations.
    """
    keys: list[list[str]] = [[] for _ in range(n)]
    parts_of: dict[str, list[str | None] | None] = {}
    for rule in rules.blocking.rules:
        parts = [
            parts_of[c] if c in parts_of else parts_of.setdefault(c, _key_part(columns, c)) for c in rule.keys
        ]
        usable = [part for part in parts if part is not None]
        if len(usable) < len(parts):
            continue  # the data lacks a column of this rule
        prefix = f"{rule.name}:"
        widest = sum(max(map(len, filter(None, part)), default=0) for part in usable)
        fits = len(prefix) + len(usable) - 1 + widest <= MAX_BLOCKING_KEY_LENGTH
        for record_keys, values in zip(keys, zip(*usable, strict=True), strict=True):
            if None not in values:
                key = prefix + "|".join(values)
                record_keys.append(key if fits else _storable_key(key))
    return keys


def _storable_key(key: str) -> str:
    """``key``, or past the stored width its beginning and a digest of the whole (equal keys stay
    equal, different ones different)."""
    if len(key) <= MAX_BLOCKING_KEY_LENGTH:
        return key
    digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
    return f"{key[: MAX_BLOCKING_KEY_LENGTH - len(digest) - 1]}#{digest}"


def _outcomes(compiled: CompiledComparison) -> tuple[ComparisonOutcome, ...]:
    """One outcome per level of a comparison, then the missing level (-1 indexes the last)."""
    name, labels = compiled.comparator.name, compiled.comparator.labels
    weights = compiled.table.tolist()
    return (
        *(ComparisonOutcome(name, label, weights[level]) for level, label in enumerate(labels)),
        ComparisonOutcome(name, _MISSING_LABEL, weights[-1]),
    )


class EngineMatcher:
    """Scores one probe against candidates with the batch engine and a trained model."""

    def __init__(self, rules: Rules, params: TrainedParameters) -> None:
        self.engine = Engine(rules)
        self.rules = rules
        self.params = params
        self.model_version = f"{params.stamp}/{params.method}"
        # Weights are fixed per level once term frequencies are off, so every outcome a
        # comparison can produce is built once, per set of comparisons the data supports.
        self._outcome_tables: dict[tuple[str, ...], list[tuple[ComparisonOutcome, ...]]] = {}
        self._outcomes_of_levels: dict[
            tuple[str, ...], dict[tuple[int, ...], tuple[ComparisonOutcome, ...]]
        ] = {}
        self._stamp = form_stamp()

    def _encoded(self, records: Sequence[Demographics | str]) -> EncodedRecords:
        """The kernel's records: stored forms are decoded, demographics standardised."""
        if all(isinstance(record, str) for record in records):  # the usual case: no numpy detour
            fields = form_fields(cast(Sequence[str], records), self._stamp)
            if fields is None:
                raise ValueError("a stored form is not current; score the record's demographics instead")
            return encode(dict(zip(FORM_COLUMNS, fields, strict=True)), len(records), missing="")
        return encode(self._columns(records), len(records))

    def _columns(self, records: Sequence[Demographics | str]) -> Columns:
        """The standardised columns of ``records``, some of them demographics (standardised
        here) and the others stored forms (decoded)."""
        stored_at = [k for k, c in enumerate(records) if isinstance(c, str)]
        stored = from_forms([c for c in records if isinstance(c, str)], self._stamp) if stored_at else None
        if stored_at and stored is None:
            raise ValueError("a stored form is not current; score the record's demographics instead")
        raw = [c for c in records if isinstance(c, Demographics)]
        if stored is None:
            return standardised_columns(raw)
        fresh = standardised_columns(raw)
        is_fresh = np.ones(len(records), dtype=bool)
        is_fresh[stored_at] = False
        fresh_at = np.flatnonzero(is_fresh)
        out: Columns = {}
        for name in FORM_COLUMNS:
            values = np.empty(len(records), dtype=stored[name].dtype)
            values[stored_at] = stored[name]
            values[fresh_at] = fresh[name]
            out[name] = values
        return out

    def blocking_keys(self, records: Sequence[Demographics]) -> list[list[str]]:
        if not records:
            return []
        return blocking_keys_of(self.rules, standardised_columns(records), len(records))

    def forms(self, records: Sequence[Demographics]) -> list[str | None]:
        if not records:
            return []
        return self._forms(records, standardised_columns(records))

    def _forms(self, records: Sequence[Demographics], columns: Columns) -> list[str | None]:
        withheld = refused_birth_dates([r.birth_date for r in records], columns["birth_date"])
        return to_forms(columns, len(records), self._stamp, withheld)

    def keys_and_forms(self, records: Sequence[Demographics]) -> tuple[list[list[str]], list[str | None]]:
        if not records:
            return [], []
        columns = standardised_columns(records)
        return blocking_keys_of(self.rules, columns, len(records)), self._forms(records, columns)

    def form_is_current(self, form: str) -> bool:
        return is_current(form, self._stamp)

    def score(self, probe: Demographics | str, candidates: Sequence[Demographics | str]) -> list[PairScore]:
        if not candidates:
            return []
        n = len(candidates) + 1
        records = self._encoded([probe, *candidates])
        scorer = self.engine.scorer(records, self.params, term_frequencies=False)
        right = np.arange(1, n, dtype=np.int64)
        scored = scorer.score(np.zeros_like(right), right)

        names = tuple(c.comparator.name for c in scorer.compiled)
        table = self._outcome_tables.get(names)
        if table is None:
            table = self._outcome_tables[names] = [_outcomes(c) for c in scorer.compiled]
        probability = scored.match_probability
        thresholds = self.rules.thresholds
        decisions: list[Decision] = np.where(
            (probability >= thresholds.link) & scored.linkable,
            "link",
            np.where(probability >= thresholds.review, "review", "none"),
        ).tolist()
        outcomes_of = self._outcomes_of_levels.setdefault(names, {})
        if len(outcomes_of) > _MAX_LEVEL_COMBINATIONS:
            outcomes_of.clear()
        pick = tuple.__getitem__
        scores = []
        for p, w, decision, row in zip(
            probability.astype(np.float64).tolist(),
            scored.match_weight.astype(np.float64).tolist(),
            decisions,
            map(tuple, scored.levels.tolist()),
            strict=True,
        ):
            # Candidates of one probe mostly fall into a few combinations of levels.
            outcomes = outcomes_of.get(row)
            if outcomes is None:
                outcomes = outcomes_of[row] = tuple(map(pick, table, row))
            scores.append(PairScore(p, w, decision, outcomes))
        return scores


def load_matcher(settings: Settings) -> EngineMatcher:
    """The matcher of the settings' rules, with the trained parameters beside them."""
    rules_path: Path = settings.rules or default_rules_path()
    rules = load_rules(rules_path)
    params_path = parameters_path_for(rules_path)
    if not params_path.exists():
        raise RulesError(
            str(params_path),
            "",
            f"no trained parameters beside the rules; train them with "
            f"`mpi train FILE --rules {rules_path} --out {params_path}`",
        )
    return EngineMatcher(rules, load_parameters(params_path, rules))
