"""Progress bars on stderr (rich), silent with --quiet."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from mpi.batch.progress import Progress as Steps
from mpi.batch.progress import SilentProgress


class RichProgress:
    """Implements :class:`mpi.batch.progress.Progress` with rich bars on stderr."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: int | None = None
        self._step = ""
        self._started = 0.0
        self._progress.start()

    def start(self, step: str, total: int | None = None) -> None:
        self.finish()
        self._step = step
        self._started = time.perf_counter()
        self._task = self._progress.add_task(step, total=total)

    def advance(self, amount: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)  # type: ignore[arg-type]

    def note(self, message: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, description=f"{self._step}: {message}")  # type: ignore[arg-type]

    def finish(self) -> None:
        if self._task is not None:
            task = self._task
            self._task = None
            total = self._progress.tasks[-1].total
            self._progress.update(task, description=self._step, completed=total or 1, total=total or 1)  # type: ignore[arg-type]

    def abandon(self) -> None:
        """The step in progress failed: its bar goes, rather than staying as if it had finished."""
        if self._task is not None:
            self._progress.remove_task(self._task)  # type: ignore[arg-type]
            self._task = None

    def close(self) -> None:
        self.finish()
        if self._progress.tasks:
            self._progress.stop()
            return
        # No bar to leave behind: not even the empty line rich ends a non-terminal display with.
        self._progress.live.transient = True
        self._progress.live.stop()


@contextmanager
def progress_bars(console: Console, quiet: bool) -> Iterator[Steps]:
    """Bars for a command's steps on ``console`` (none with ``quiet`` or without a stderr). A
    step that fails leaves no bar behind, so a refused input ends with its error line alone."""
    if quiet or not sys.stderr:
        yield SilentProgress()
        return
    bars = RichProgress(console)
    try:
        yield bars
    except BaseException:
        bars.abandon()
        raise
    finally:
        bars.close()
