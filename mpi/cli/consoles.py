"""The command line's two consoles.

On a terminal, rich fits tables to its width. Piped or redirected, it would assume 80 columns
and break lines there: a path, a message naming a file, row and column, or a table cell would
then reach a log or a script in pieces. There, lines are as long as their content instead.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console

_UNBOUNDED = 10_000  # columns: wider than any line the commands print


def _console(stream: TextIO | None, *, stderr: bool) -> Console:
    # A closed stream (``mpi ... >&-``) is None: rich then writes nowhere, at any width.
    width = _UNBOUNDED if stream is not None and not stream.isatty() else None
    return Console(stderr=stderr, soft_wrap=True, width=width)


stdout = _console(sys.stdout, stderr=False)
stderr = _console(sys.stderr, stderr=True)
