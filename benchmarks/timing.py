"""Run a command in its own process under GNU ``/usr/bin/time -v``: wall time and peak memory.

Each engine runs as a separate process so that its interpreter start-up, imports and
memory are its own, and one engine's caches cannot help the other.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

GNU_TIME = Path("/usr/bin/time")

_MAX_RSS = re.compile(r"Maximum resident set size \(kbytes\):\s*(\d+)")
_ELAPSED = re.compile(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\):\s*([\d:.]+)")
_USER = re.compile(r"User time \(seconds\):\s*([\d.]+)")
_SYSTEM = re.compile(r"System time \(seconds\):\s*([\d.]+)")


@dataclass(frozen=True)
class TimedRun:
    """Outcome of one measured process."""

    command: list[str]
    returncode: int | None
    timed_out: bool
    wall_seconds: float
    max_rss_mb: float | None
    cpu_seconds: float | None
    log_path: str

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "succeeded": self.succeeded}


def parse_elapsed(text: str) -> float:
    """Seconds from GNU time's ``h:mm:ss`` or ``m:ss.ss`` wall-clock field."""
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def parse_gnu_time(report: str) -> tuple[float | None, float | None, float | None]:
    """(wall seconds, max RSS in MiB, user+system CPU seconds) from a ``time -v`` report."""
    elapsed = _ELAPSED.search(report)
    rss = _MAX_RSS.search(report)
    user = _USER.search(report)
    system = _SYSTEM.search(report)
    wall = parse_elapsed(elapsed.group(1)) if elapsed else None
    rss_mb = int(rss.group(1)) / 1024 if rss else None
    cpu = float(user.group(1)) + float(system.group(1)) if user and system else None
    return wall, rss_mb, cpu


def run_timed(
    command: list[str],
    log_path: Path,
    *,
    timeout_seconds: float | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> TimedRun:
    """Run ``command`` under ``/usr/bin/time -v``; stdout+stderr go to ``log_path``.

    On timeout the whole process group is killed and the run is reported as timed out
    with the wall time it was given.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    time_report = log_path.with_suffix(".time.txt")
    wrapped = [str(GNU_TIME), "-v", "-o", str(time_report), *command] if GNU_TIME.exists() else command
    started = time.perf_counter()
    with log_path.open("w") as log:
        log.write(f"$ {shlex.join(command)}\n")
        log.flush()
        # A new session lets a timeout kill the engine's worker processes too.
        process = subprocess.Popen(
            wrapped,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        try:
            returncode: int | None = process.wait(timeout=timeout_seconds)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
            returncode, timed_out = None, True
    measured_wall = time.perf_counter() - started
    wall, rss_mb, cpu = (None, None, None)
    if time_report.exists():
        wall, rss_mb, cpu = parse_gnu_time(time_report.read_text())
    return TimedRun(
        command=command,
        returncode=returncode,
        timed_out=timed_out,
        wall_seconds=wall if wall is not None and not timed_out else measured_wall,
        max_rss_mb=rss_mb,
        cpu_seconds=cpu,
        log_path=str(log_path),
    )


def log_tail(run: TimedRun, lines: int = 15) -> str:
    """Last lines of a run's log, to show why it failed."""
    text = Path(run.log_path).read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])
