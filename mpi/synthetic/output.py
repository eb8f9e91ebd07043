"""Files of a synthetic data set: tables, README.md and manifest.json.

Nothing written depends on the clock or the machine, so the same data always
gives the same bytes and a committed sample can be checked by regenerating it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

import mpi
from mpi.synthetic.corruption import CORRUPTIONS

_DESCRIPTIONS = {
    "records": "source records in the batch schema of DOMAIN.md; an empty cell is missing",
    "truth": "record_id -> person_id: the person behind every record",
    "corruptions": "record_id, corruption: each deliberate error applied to a record (kinds below)",
    "hard_negatives": "person_id, other_person_id, relation: distinct persons built to look alike",
}
_NEEDS_QUOTES = r'[,"\r\n]'


def command_for(n_rows: int, seed: int, out_dir: Path, fmt: str) -> str:
    """The CLI command that makes this data set."""
    command = f"mpi synth --n {n_rows} --seed {seed} --out {out_dir.as_posix()}"
    return command if fmt == "csv" else f"{command} --format {fmt}"


def _arrow(frame: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    schema = pa.schema([pa.field(name, pa.string()) for name in table.column_names])
    return table.cast(schema).replace_schema_metadata(None)


def _write_table(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pq.write_table(table, path)
        return
    # Quote only when a value needs it, so the file reads as plainly as pandas would write it;
    # Arrow quotes a header regardless, so the (plain identifier) header is written here.
    needs_quotes = any(
        pc.any(pc.match_substring_regex(column, _NEEDS_QUOTES)).as_py() for column in table.columns
    )
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed" if needs_quotes else "none")
    with path.open("wb") as handle:
        handle.write((",".join(table.column_names) + "\n").encode("utf-8"))
        pa_csv.write_csv(table, handle, options)


def _natural(name: str) -> tuple[str, int]:
    """GP_2 before GP_10."""
    stem = name.rstrip("0123456789")
    return stem, int(name[len(stem) :] or -1)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _markdown_table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _readme(
    tables: Mapping[str, pd.DataFrame], files: Mapping[str, Path], command: str, default_configuration: bool
) -> str:
    records, truth = tables["records"], tables["truth"]
    per_person_source = truth.assign(source=records["source"]).groupby(["person_id", "source"]).size()
    duplicates = int((per_person_source - 1).sum())
    persons = truth["person_id"].nunique()
    how = (
        f"Made by `{command}` (mpi {mpi.__version__}). The same command gives the same bytes."
        if default_configuration
        else f"Made with non-default settings through `mpi.synthetic.generator.generate` "
        f"(mpi {mpi.__version__}); `{command}` reproduces only the default configuration."
    )
    sources = records["source"].value_counts(sort=False)
    sources = sources.loc[sorted(sources.index, key=_natural)]
    kinds = tables["corruptions"]["corruption"].value_counts()
    relations = tables["hard_negatives"]["relation"].value_counts().sort_index()
    parts = [
        "# Synthetic Luxembourg patient population",
        "",
        how,
        "",
        "Entirely synthetic: names come from lists of common names, numbers are generated, "
        "e-mail domains are reserved example domains. No row describes a real person.",
        "",
        _markdown_table(
            ("file", "rows", "content"),
            [(f"`{files[name].name}`", len(frame), _DESCRIPTIONS[name]) for name, frame in tables.items()],
        ),
        "",
        f"{len(records)} records of {persons} persons; {duplicates} records re-register a person "
        "already registered in the same source (within-source duplicates).",
        "",
        "## Records per source",
        "",
        _markdown_table(("source", "records"), [(name, int(count)) for name, count in sources.items()]),
        "",
        "## Hard negatives",
        "",
        _markdown_table(("relation", "pairs"), [(name, int(count)) for name, count in relations.items()]),
        "",
        "## Corruptions",
        "",
        _markdown_table(
            ("corruption", "records", "meaning"),
            [(kind, int(kinds.get(kind, 0)), meaning) for kind, meaning in CORRUPTIONS.items()],
        ),
        "",
    ]
    return "\n".join(parts)


def write_outputs(
    tables: Mapping[str, pd.DataFrame],
    out_dir: Path,
    fmt: str,
    *,
    seed: int,
    n_rows: int,
    default_configuration: bool,
) -> dict[str, Path]:
    """Write every table, then README.md and manifest.json; returns the path of each file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, frame in tables.items():
        paths[name] = out_dir / f"{name}.{fmt}"
        _write_table(_arrow(frame), paths[name], fmt)
    command = command_for(n_rows, seed, out_dir, fmt)
    manifest = {
        "generator": "mpi.synthetic",
        "mpi_version": mpi.__version__,
        "seed": seed,
        "n_rows": n_rows,
        "format": fmt,
        "default_configuration": default_configuration,
        "command": command,
        "persons": int(tables["truth"]["person_id"].nunique()),
        "files": {
            name: {"path": path.name, "rows": len(tables[name]), "sha256": _sha256(path)}
            for name, path in paths.items()
        },
    }
    paths["manifest"] = out_dir / "manifest.json"
    paths["manifest"].write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["readme"] = out_dir / "README.md"
    paths["readme"].write_text(_readme(tables, paths, command, default_configuration), encoding="utf-8")
    return paths
