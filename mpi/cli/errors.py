"""One way every command reports failure: a one-line message on stderr and exit code 2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.markup import escape

from mpi.cli.consoles import stderr
from mpi.errors import MPIError

P = ParamSpec("P")
R = TypeVar("R")


# The largest number a task, an access or a limit can be: a database integer (64 bits). A larger
# one is refused as a bad option, not carried to the driver that cannot convert it.
LARGEST_NUMBER = 2**63 - 1


def fail(message: str) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise (code 2)."""
    stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def handles_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn every MPIError into a one-line message and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except MPIError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            stderr.print("interrupted")
            raise typer.Exit(code=130) from None

    return wrapper
