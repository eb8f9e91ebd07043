"""Synthetic benchmark inputs, generated once per (generator, size, seed) and then reused.

``mpi synth --n N --seed S --out DIR`` is the reference generator (Luxembourg-like
persons with ground truth). When the installed ``mpi`` has no ``synth`` command,
``generator="auto"`` falls back to :mod:`benchmarks.febrl_like` and says so, so the
Splink side can still be measured; the result files record which generator ran.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchmarks.paths import PROJECT_ROOT, WORK_DIR, mpi_executable

Generator = Literal["auto", "mpi", "febrl-like"]


@dataclass(frozen=True)
class SyntheticDataset:
    """A generated input file, its truth and how it was made."""

    records: Path
    truth: Path
    generator: str
    rows: int
    seed: int
    command: list[str]


def mpi_synth_available() -> bool:
    """True when the project's ``mpi synth`` can actually write a (tiny) dataset.

    ``--help`` is not enough: the command can be registered before its generator exists.
    """
    if not mpi_executable().exists():
        return False
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "probe"
        probe = subprocess.run(
            [*generator_command("mpi", 50, 1, out), "--quiet"],
            capture_output=True,
            check=False,
            timeout=300,
        )
        return probe.returncode == 0 and (out / "records.csv").exists() and (out / "truth.csv").exists()


def generator_command(generator: str, rows: int, seed: int, out: Path) -> list[str]:
    if generator == "mpi":
        return [str(mpi_executable()), "synth", "--n", str(rows), "--seed", str(seed), "--out", str(out)]
    if generator == "febrl-like":
        return [
            sys.executable, "-m", "benchmarks.febrl_like",
            "--n", str(rows), "--seed", str(seed), "--out", str(out),
        ]  # fmt: skip
    raise ValueError(f"unknown generator {generator!r}")


def ensure_dataset(rows: int, seed: int, generator: Generator = "auto") -> SyntheticDataset:
    """Return the dataset, generating it under ``benchmarks/.work/synth/`` if it is not there yet."""
    chosen = generator
    if generator == "auto":
        chosen = "mpi" if mpi_synth_available() else "febrl-like"
        if chosen == "febrl-like":
            print("mpi synth is not available; using the FEBRL-like generator", file=sys.stderr)
    out = WORK_DIR / "synth" / f"{chosen}_{rows}_{seed}"
    command = generator_command(chosen, rows, seed, out)
    records, truth = out / "records.csv", out / "truth.csv"
    if not (records.exists() and truth.exists()):
        print(f"generating {rows:,} rows: {' '.join(command)}", file=sys.stderr)
        subprocess.run(command, check=True, cwd=PROJECT_ROOT)
        if not (records.exists() and truth.exists()):
            raise FileNotFoundError(f"{' '.join(command)} did not write {records} and {truth}")
    return SyntheticDataset(records, truth, chosen, rows, seed, command)
