"""How batch jobs report progress, without knowing who draws it (the CLI draws bars)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, step: str, total: int | None = None) -> None:
        """A step begins; ``total`` units of work when known."""

    def advance(self, amount: int) -> None:
        """``amount`` units of the current step are done."""

    def note(self, message: str) -> None:
        """A sub-step message inside the current step."""

    def finish(self) -> None:
        """The current step is done."""


class SilentProgress:
    def start(self, step: str, total: int | None = None) -> None:
        return None

    def advance(self, amount: int) -> None:
        return None

    def note(self, message: str) -> None:
        return None

    def finish(self) -> None:
        return None
