"""FEBRL-like synthetic records at any size, for when ``mpi synth`` is not available.

    python -m benchmarks.febrl_like --n 1000000 --seed 7 --out DIR

Writes ``DIR/records.csv`` in the batch schema (record_id, given_names, family_name,
birth_date, house_number, street, postcode, city) and ``DIR/truth.csv`` (record_id,
person_id): the same layout as ``mpi synth``, so every benchmark accepts either.

Persons draw each field independently from the value frequencies of FEBRL's original
records, so common names stay common. About a quarter of the rows are duplicates of a
person; each duplicate field is corrupted with probability ``FIELD_ERROR_RATE``: mostly
one typing edit (substitution, deletion, insertion, adjacent transposition), else a blank;
dates get a day/month swap or a changed day. All edits are done on fixed-width
code-point matrices, so a million rows take seconds.

Unlike ``mpi synth`` it has no Luxembourg-specific traits (matricule, particles, twins);
use it for throughput, not for judging accuracy on Luxembourg data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from benchmarks.febrl import febrl_source_dir, read_febrl_csv

DUPLICATE_SHARE = 0.25
FIELD_ERROR_RATE = 0.2
BLANK_SHARE_OF_ERRORS = 0.15
MAX_FIELD_WIDTH = 40
ALPHABET = np.array([ord(c) for c in "abcdefghijklmnopqrstuvwxyz"], dtype=np.uint32)
TEXT_POOLS = {
    "given_names": "given_name",
    "family_name": "surname",
    "street": "address_1",
    "city": "suburb",
    "postcode": "postcode",
}

StrArray = npt.NDArray[np.str_]


def value_pools(source_dir: Path | None = None) -> dict[str, StrArray]:
    """Non-blank values of FEBRL's original records, one array per output column, with repeats."""
    source_dir = source_dir or febrl_source_dir()
    originals = pd.concat(
        [read_febrl_csv(source_dir / name) for name in ("dataset3.csv", "dataset4a.csv", "dataset4b.csv")]
    )
    originals = originals[originals["rec_id"].str.endswith("-org")]
    pools = {}
    for column, febrl_column in TEXT_POOLS.items():
        values = originals[febrl_column].to_numpy(dtype=str)
        pools[column] = values[values != ""]
    return pools


def _as_codepoints(values: StrArray) -> npt.NDArray[np.uint32]:
    fixed = np.asarray(values, dtype=f"<U{MAX_FIELD_WIDTH}")
    return fixed.view(np.uint32).reshape(len(fixed), MAX_FIELD_WIDTH).copy()


def _from_codepoints(codes: npt.NDArray[np.uint32]) -> StrArray:
    return np.ascontiguousarray(codes).view(f"<U{MAX_FIELD_WIDTH}").ravel()


def typo(values: StrArray, rng: np.random.Generator) -> StrArray:
    """One random single-character edit per value (values of length < 2 are returned as they are)."""
    codes = _as_codepoints(values)
    lengths = (codes != 0).sum(axis=1)
    editable = lengths >= 2
    count = len(values)
    position = (rng.random(count) * np.maximum(lengths - 1, 1)).astype(np.int64)
    letter = ALPHABET[rng.integers(0, len(ALPHABET), count)]
    kind = rng.integers(0, 4, count)
    columns = np.arange(MAX_FIELD_WIDTH)[None, :]
    rows = np.arange(count)
    edited = codes.copy()

    substitute = editable & (kind == 0)
    edited[rows[substitute], position[substitute]] = letter[substitute]

    delete = editable & (kind == 1)
    shift = np.minimum(columns + (columns >= position[:, None]), MAX_FIELD_WIDTH - 1)
    deleted = np.take_along_axis(codes, shift, axis=1)
    deleted[:, -1] = 0
    edited[delete] = deleted[delete]

    insert = editable & (kind == 2) & (lengths < MAX_FIELD_WIDTH)
    source = np.maximum(columns - (columns > position[:, None]), 0)
    inserted = np.take_along_axis(codes, source, axis=1)
    inserted[rows, position] = letter
    edited[insert] = inserted[insert]

    transpose = editable & (kind == 3)
    left, right = position[transpose], position[transpose] + 1
    swapped_rows = rows[transpose]
    edited[swapped_rows, left], edited[swapped_rows, right] = (
        codes[swapped_rows, right],
        codes[swapped_rows, left],
    )
    return _from_codepoints(edited)


def corrupt_text(values: StrArray, rng: np.random.Generator) -> StrArray:
    """Apply typing errors or blanks to a ``FIELD_ERROR_RATE`` share of the values."""
    out = values.astype(object)
    chosen = rng.random(len(values)) < FIELD_ERROR_RATE
    blank = chosen & (rng.random(len(values)) < BLANK_SHARE_OF_ERRORS)
    edit = chosen & ~blank
    out[edit] = typo(values[edit], rng)
    out[blank] = ""
    return out.astype(str)


def corrupt_dates(dates: npt.NDArray[np.datetime64], rng: np.random.Generator) -> StrArray:
    """ISO dates; a share swaps day and month (when valid) or moves the day, a few are blank."""
    years = dates.astype("datetime64[Y]")
    months = dates.astype("datetime64[M]")
    year = years.astype(np.int64) + 1970
    month = (months - years.astype("datetime64[M]")).astype(np.int64) + 1
    day = (dates.astype("datetime64[D]") - months.astype("datetime64[D]")).astype(np.int64) + 1
    count = len(dates)
    chosen = rng.random(count) < FIELD_ERROR_RATE
    roll = rng.random(count)
    swap = chosen & (roll < 0.4) & (day <= 12) & (day != month)
    blank = chosen & (roll >= 0.85)
    shift_day = chosen & ~swap & ~blank
    moved_day = (day + rng.integers(1, 9, count) - 1) % 28 + 1
    new_day = np.where(swap, month, np.where(shift_day, moved_day, day))
    new_month = np.where(swap, day, month)
    text = pd.Series(year * 10000 + new_month * 100 + new_day).astype(str).str.zfill(8)
    iso = (text.str.slice(0, 4) + "-" + text.str.slice(4, 6) + "-" + text.str.slice(6, 8)).to_numpy(
        dtype=object
    )
    iso[blank] = ""
    return iso.astype(str)


def generate(
    n: int, seed: int, pools: dict[str, StrArray] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` records and their truth; duplicates are corrupted copies of their person's original."""
    if n < 1:
        raise ValueError("n must be at least 1")
    rng = np.random.default_rng(seed)
    pools = pools or value_pools()
    persons = max(1, round(n * (1 - DUPLICATE_SHARE)))
    owner = np.concatenate([np.arange(persons), rng.integers(0, persons, n - persons)])
    is_duplicate = np.arange(n) >= persons

    person_fields = {
        column: pools[column][rng.integers(0, len(pools[column]), persons)] for column in TEXT_POOLS
    }
    first_day, last_day = np.datetime64("1920-01-01"), np.datetime64("2020-12-31")
    span = int((last_day - first_day).astype(int))
    birth = first_day + rng.integers(0, span + 1, persons).astype("timedelta64[D]")
    house = rng.integers(1, 300, persons).astype(str)

    records = pd.DataFrame({"record_id": np.char.add("r", np.arange(n).astype(str))})
    for column, values in person_fields.items():
        # Object arrays: an insertion must not be truncated to the pool's fixed width.
        field = values[owner].astype(object)
        field[is_duplicate] = corrupt_text(field[is_duplicate], rng)
        records[column] = field
    house_numbers = house[owner].astype(object)
    house_numbers[is_duplicate] = corrupt_text(house_numbers[is_duplicate], rng)
    records["house_number"] = house_numbers
    birth_dates = pd.Series(pd.to_datetime(birth[owner])).dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    birth_dates[is_duplicate] = corrupt_dates(birth[owner][is_duplicate], rng)
    records["birth_date"] = birth_dates.astype(str)

    # Shuffle so duplicates are not all at the end of the file.
    order = rng.permutation(n)
    records = records.iloc[order].reset_index(drop=True)
    truth = pd.DataFrame(
        {"record_id": records["record_id"], "person_id": np.char.add("p", owner[order].astype(str))}
    )
    columns = [
        "record_id",
        "given_names",
        "family_name",
        "birth_date",
        "house_number",
        "street",
        "postcode",
        "city",
    ]
    return records[columns], truth


def write(out: Path, n: int, seed: int) -> tuple[Path, Path]:
    """Generate and write ``records.csv`` and ``truth.csv`` under ``out``."""
    records, truth = generate(n, seed)
    out.mkdir(parents=True, exist_ok=True)
    records_path, truth_path = out / "records.csv", out / "truth.csv"
    records.to_csv(records_path, index=False)
    truth.to_csv(truth_path, index=False)
    return records_path, truth_path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    records_path, truth_path = write(args.out, args.n, args.seed)
    print(f"wrote {records_path} and {truth_path}")


if __name__ == "__main__":
    main()
