"""A seeded synthetic Luxembourg patient population with ground truth.

``generate(n_rows, seed)`` builds exactly ``n_rows`` source records in the batch
schema of DOMAIN.md, the person behind each record (``truth``), the deliberate
errors applied to each record (``corruptions``) and the pairs of distinct
persons built to look alike (``hard_negatives``). ``write`` stores them with a
README and a manifest naming the command that made them. The same arguments
always give the same bytes.

Pipeline (each stage has its own random stream, so changing one leaves the
others' draws alone): plan the records per person and source, in shuffled order
-> draw persons -> add twins, namesake children, namesakes and spouses -> assign
matricules and contacts -> copy persons onto records and apply the error model
-> render each source's style.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from mpi.domain.records import BATCH_COLUMNS
from mpi.errors import MPIError
from mpi.synthetic.config import DEFAULT_SOURCES, ErrorRates, PopulationMix, SourceProfile
from mpi.synthetic.corrupt_fields import (
    apply_address_errors,
    apply_contact_errors,
    apply_date_errors,
    apply_missing_fields,
    apply_national_id_errors,
    apply_sex_errors,
)
from mpi.synthetic.corrupt_names import apply_name_errors
from mpi.synthetic.corruption import Draft, ErrorContext
from mpi.synthetic.households import add_relations
from mpi.synthetic.matricules import assign_national_ids
from mpi.synthetic.output import write_outputs
from mpi.synthetic.plan import local_ids, plan_records
from mpi.synthetic.pools import load_pools
from mpi.synthetic.population import add_contacts, draw_persons
from mpi.synthetic.render import render_columns
from mpi.synthetic.text import IntArray, TextArray, digits, text

RECORD_COLUMNS = BATCH_COLUMNS
_STAGES = ("plan", "persons", "relations", "identifiers", "errors", "order")


@dataclass(frozen=True)
class SyntheticData:
    """A synthetic population: records and the truth behind them."""

    records: pd.DataFrame  # RECORD_COLUMNS; missing values are NA
    truth: pd.DataFrame  # record_id, person_id
    corruptions: pd.DataFrame  # record_id, corruption: each deliberate error of each record
    hard_negatives: pd.DataFrame  # person_id, other_person_id, relation: twin, parent_child, namesake, spouse
    seed: int
    n_rows: int
    default_configuration: bool  # made with default sources, error rates and population mix


def _frame(columns: dict[str, TextArray]) -> pd.DataFrame:
    """A DataFrame of string columns in which empty strings become missing values."""
    arrays = {name: pa.array(values, type=pa.string(), mask=values == "") for name, values in columns.items()}
    frame: pd.DataFrame = pa.table(arrays).to_pandas()
    return frame


def _ids(prefix: str, numbers: IntArray, count: int) -> TextArray:
    return np.strings.add(prefix, digits(numbers + 1, max(7, len(str(count)))))


def generate(
    n_rows: int,
    seed: int,
    *,
    sources: Sequence[SourceProfile] = DEFAULT_SOURCES,
    errors: ErrorRates | None = None,
    population: PopulationMix | None = None,
) -> SyntheticData:
    """Exactly ``n_rows`` synthetic source records with their ground truth."""
    if n_rows < 1:
        raise MPIError(f"the number of rows must be at least 1, got {n_rows}")
    if seed < 0:
        raise MPIError(f"the seed must not be negative, got {seed}")
    rates = errors if errors is not None else ErrorRates()
    mix = population if population is not None else PopulationMix()
    return _generate(n_rows, seed, tuple(sources), rates, mix)


def _generate(
    n_rows: int, seed: int, sources: tuple[SourceProfile, ...], rates: ErrorRates, mix: PopulationMix
) -> SyntheticData:
    streams = np.random.SeedSequence(seed).spawn(len(_STAGES))
    rng = {stage: np.random.default_rng(stream) for stage, stream in zip(_STAGES, streams, strict=True)}
    pools = load_pools()
    # Rows are shuffled before any column exists, so neither order nor ids reveal who belongs
    # together and no string column ever needs reordering.
    plan = plan_records(rng["plan"], n_rows, sources, mix.cross_border_share)
    plan = plan.reordered(rng["order"].permutation(n_rows))
    persons = draw_persons(rng["persons"], plan.cross_border, mix, pools)
    relations = add_relations(rng["relations"], persons, mix, pools)
    persons.national_id, persons.legacy_national_id = assign_national_ids(
        rng["identifiers"],
        persons.birth_year,
        persons.birth_month,
        persons.birth_day,
        persons.sex,
        mix.legacy_number,
    )
    add_contacts(rng["identifiers"], persons, mix)

    ctx = ErrorContext.create(rng["errors"], plan, sources, rates)
    draft = Draft.from_persons(persons, plan.person)
    apply_name_errors(ctx, draft, pools)
    apply_date_errors(ctx, draft, int(mix.reference_date[:4]))
    apply_sex_errors(ctx, draft)
    apply_national_id_errors(ctx, draft, persons)
    apply_contact_errors(ctx, draft)  # before addresses, which may blank the country it needs
    apply_address_errors(ctx, draft, pools)
    apply_missing_fields(ctx, draft)
    columns = render_columns(ctx, draft)

    record_ids = _ids("R", np.arange(n_rows, dtype=np.int64), n_rows)
    records = {
        "record_id": record_ids,
        "source": text([s.name for s in sources])[plan.source],
        "local_id": local_ids(rng["order"], plan.source, sources),
        **columns,
    }
    person_ids = _ids("P", np.arange(plan.n_persons, dtype=np.int64), plan.n_persons)
    corrupted, kinds = ctx.log.entries()
    default = sources == DEFAULT_SOURCES and rates == ErrorRates() and mix == PopulationMix()
    return SyntheticData(
        records=_frame({name: records[name] for name in RECORD_COLUMNS}),
        truth=_frame({"record_id": record_ids, "person_id": person_ids[plan.person]}),
        corruptions=_frame({"record_id": record_ids[corrupted], "corruption": kinds}),
        hard_negatives=_frame(
            {
                "person_id": person_ids[relations.first],
                "other_person_id": person_ids[relations.second],
                "relation": relations.kind,
            }
        ),
        seed=seed,
        n_rows=n_rows,
        default_configuration=default,
    )


def write(data: SyntheticData, out_dir: Path, fmt: Literal["csv", "parquet"] = "csv") -> dict[str, Path]:
    """Store ``data`` in ``out_dir`` as records, truth, corruptions and hard negatives,
    with a README.md and a manifest.json naming the seed and the command; returns the paths."""
    if fmt not in ("csv", "parquet"):
        raise MPIError(f"unknown output format {fmt!r}; use csv or parquet")
    tables = {
        "records": data.records,
        "truth": data.truth,
        "corruptions": data.corruptions,
        "hard_negatives": data.hard_negatives,
    }
    return write_outputs(
        tables,
        Path(out_dir),
        fmt,
        seed=data.seed,
        n_rows=data.n_rows,
        default_configuration=data.default_configuration,
    )
