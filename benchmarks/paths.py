"""Where the benchmarks keep their scratch files and find the project's tools."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCHMARKS_DIR.parent
WORK_DIR = BENCHMARKS_DIR / ".work"


def venv_executable(name: str) -> Path:
    """Path of a console script installed beside the running interpreter (``mpi``, ``python``)."""
    return Path(sys.executable).parent / name


def mpi_executable() -> Path:
    """The ``mpi`` console script of the project's virtualenv."""
    return venv_executable("mpi")
