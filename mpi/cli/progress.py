"""Progress bars on stderr (rich), silent with --quiet."""

from __future__ import annotations

import time

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

    def close(self) -> None:
        self.finish()
        self._progress.stop()
