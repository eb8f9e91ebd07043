"""The machine a benchmark ran on, markdown tables, and the JSON result files."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def machine_info() -> dict[str, Any]:
    """CPU model, logical cores, RAM, OS and Python: the facts RESULTS.md asks for."""
    cpu_model = platform.processor() or "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        found = re.search(r"^Model name:\s*(.+)$", lscpu, flags=re.MULTILINE)
        if found:
            cpu_model = found.group(1).strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    ram_gib = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total = re.search(r"^MemTotal:\s*(\d+) kB", meminfo.read_text(), flags=re.MULTILINE)
        if total:
            ram_gib = round(int(total.group(1)) / 1024**2, 1)
    return {
        "cpu_model": cpu_model,
        "logical_cores": os.cpu_count(),
        "ram_gib": ram_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        # Other work on the machine skews wall times; record how busy it was.
        "load_average_1m": round(os.getloadavg()[0], 2),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mpi_revision": code_revision(),
    }


def code_revision() -> str:
    """Short git revision of the project, with ``+dirty`` when the working tree has changes."""
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return revision + ("+dirty" if changes else "")


def package_versions(names: Sequence[str]) -> dict[str, str]:
    """Installed versions of the named distributions (``absent`` when not installed)."""
    from importlib import metadata

    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; None shows as a dash.

    Floats up to 1 (scores) get 4 decimals, up to 100 (seconds) 2, larger ones none.
    """

    def cell(value: object) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            if abs(value) <= 1:
                return f"{value:.4f}"
            return f"{value:.2f}" if abs(value) < 100 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def latency(samples: Sequence[float]) -> dict[str, Any]:
    """Milliseconds: count, p50, p90, p99, max and mean of ``samples`` given in seconds."""
    if not samples:
        return {"n": 0}
    ms = np.array(samples, dtype=np.float64) * 1000
    return {
        "n": int(ms.size),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
        "mean_ms": round(float(ms.mean()), 3),
    }
