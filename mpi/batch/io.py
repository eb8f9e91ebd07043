"""The file edge of batch jobs: read CSV/Parquet in the batch schema, map columns, write results.

Every problem with an input file becomes an :class:`~mpi.errors.InputError`
naming the file and, where it applies, the row (1-based data row, the header
not counted) and the column.
"""

from __future__ import annotations

import csv
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mpi.domain.records import BATCH_COLUMNS
from mpi.errors import InputError


@dataclass
class InputTable:
    """All input rows, in the batch schema, with where each row came from."""

    frame: pd.DataFrame  # batch-schema columns present in the input, strings, None for missing
    file_index: np.ndarray  # int16: which input file each row came from
    files: list[str]
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    truth: pd.Series | None = None  # the --truth-column values, when asked for


def parse_mapping(pairs: Sequence[str], mapping_file: Path | None) -> dict[str, str]:
    """``SRC=DST`` options and an optional mapping file (TOML table, or ``SRC=DST`` lines)."""
    mapping: dict[str, str] = {}
    if mapping_file is not None:
        try:
            text = mapping_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(str(mapping_file), f"cannot read the mapping file: {exc}") from None
        try:
            table = tomllib.loads(text)
            items = list(table.get("columns", table).items())
        except tomllib.TOMLDecodeError:
            items = []
            for number, line in enumerate(text.splitlines(), start=1):
                stripped = line.strip()
                if not stripped or stripped.startswith("#"):
                    continue
                if "=" not in stripped:
                    raise InputError(str(mapping_file), f"line {number}: expected SRC=DST") from None
                src, dst = stripped.split("=", 1)
                items.append((src.strip(), dst.strip()))
        for src, dst in items:
            if not isinstance(dst, str):
                raise InputError(str(mapping_file), f"mapping of {src!r} must be a column name")
            mapping[str(src)] = dst
    for pair in pairs:
        if "=" not in pair:
            raise InputError("--map", f"{pair!r} is not of the form SRC=DST")
        src, dst = pair.split("=", 1)
        mapping[src.strip()] = dst.strip()
    for src, dst in mapping.items():
        if dst not in BATCH_COLUMNS:
            raise InputError(
                str(mapping_file or "--map"),
                f"{src}={dst}: {dst!r} is not a batch-schema column (one of {', '.join(BATCH_COLUMNS)})",
            )
    return mapping


def _first_invalid_utf8_row(path: Path) -> tuple[int, int] | None:
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return line, exc.start
    return None


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        with path.open("rb") as handle:
            header = handle.readline()
    except FileNotFoundError:
        raise InputError(str(path), "file not found") from None
    except IsADirectoryError:
        raise InputError(str(path), "is a directory, not a file") from None
    except OSError as exc:
        raise InputError(str(path), f"cannot read: {exc.strerror}") from None
    if not header.strip():
        raise InputError(str(path), "file is empty")
    try:
        names = [n.strip() for n in next(csv.reader([header.decode("utf-8-sig").rstrip("\r\n")]))]
    except UnicodeDecodeError:
        raise InputError(str(path), "not UTF-8 text", row=0, column=None) from None
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=64 << 20),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        bad = _first_invalid_utf8_row(path)
        if bad is not None:
            line, offset = bad
            raise InputError(
                str(path),
                f"not UTF-8 text (byte offset {offset}); re-encode the file as UTF-8",
                row=line - 1,
            ) from None
        raise InputError(str(path), f"not a readable CSV file: {_arrow_message(exc)}") from None
    frame: pd.DataFrame = table.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)
    return frame


def _arrow_message(exc: Exception) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return message.replace("CSV parse error: ", "")


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise InputError(str(path), "file not found") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(str(path), f"not a readable Parquet file: {_arrow_message(exc)}") from None
    frame = table.to_pandas()
    frame.columns = [str(c).strip() for c in frame.columns]
    as_strings: pd.DataFrame = frame.astype(object).where(frame.notna(), None).astype(pd.StringDtype())
    return as_strings


def read_one(path: Path) -> pd.DataFrame:
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path)
    return _read_csv(path)


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    """Strip whitespace; empty cells become missing."""
    out = {}
    for column in frame.columns:
        values = frame[column].astype(pd.StringDtype()).str.strip()
        out[column] = values.mask(values == "")
    return pd.DataFrame(out, index=frame.index)


def read_inputs(
    paths: Sequence[Path], mapping: Mapping[str, str], truth_column: str | None = None
) -> InputTable:
    frames, indices, ignored = [], [], {}
    truth_parts: list[pd.Series] = []
    for file_number, path in enumerate(paths):
        raw = read_one(path)
        renamed = raw.rename(columns=dict(mapping))
        if renamed.columns.duplicated().any():
            dup = renamed.columns[renamed.columns.duplicated()][0]
            raise InputError(str(path), "two columns map to the same batch column", column=str(dup))
        if "record_id" not in renamed.columns:
            raise InputError(
                str(path),
                "required column is missing (map another column to it with --map SRC=record_id)",
                column="record_id",
            )
        if len(renamed) == 0:
            raise InputError(str(path), "file has a header but no data rows")
        if truth_column is not None:
            if truth_column not in raw.columns:
                raise InputError(str(path), "the --truth-column is not in this file", column=truth_column)
            truth_parts.append(raw[truth_column].astype(pd.StringDtype()).str.strip())
        keep = [c for c in renamed.columns if c in BATCH_COLUMNS]
        skipped = [c for c in raw.columns if mapping.get(c, c) not in BATCH_COLUMNS and c != truth_column]
        if skipped:
            ignored[str(path)] = skipped
        cleaned = _clean(renamed[keep])
        missing_ids = cleaned["record_id"].isna().to_numpy()
        if missing_ids.any():
            row = int(np.flatnonzero(missing_ids)[0]) + 1
            raise InputError(str(path), "record_id is empty", row=row, column="record_id")
        frames.append(cleaned)
        indices.append(np.full(len(cleaned), file_number, dtype=np.int16))
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    file_index = np.concatenate(indices)
    _check_unique_ids(frame, file_index, paths)
    truth = pd.concat(truth_parts, ignore_index=True) if truth_parts else None
    return InputTable(frame, file_index, [str(p) for p in paths], ignored, truth)


def _check_unique_ids(frame: pd.DataFrame, file_index: np.ndarray, paths: Sequence[Path]) -> None:
    ids = frame["record_id"]
    dup = ids.duplicated(keep="first").to_numpy()
    if not dup.any():
        return
    second = int(np.flatnonzero(dup)[0])
    value = ids.iloc[second]
    first = int(np.flatnonzero((ids == value).to_numpy())[0])
    starts = np.r_[0, np.flatnonzero(np.diff(file_index)) + 1]

    def locate(position: int) -> tuple[str, int]:
        f = int(file_index[position])
        return str(paths[f]), position - int(starts[np.searchsorted(np.unique(file_index), f)]) + 1

    path, row = locate(second)
    first_path, first_row = locate(first)
    raise InputError(
        path,
        f"duplicate record_id {value!r} (first seen in {first_path}, row {first_row})",
        row=row,
        column="record_id",
    )


def write_table(frame: pd.DataFrame, path: Path, fmt: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        target = path.with_suffix(".parquet")
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), target)
        return target
    target = path.with_suffix(".csv")
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), target)
    return target
