"""Options several commands share, defined once so their flags and help read the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL: sqlite:///mpi.db or postgresql+psycopg://USER@HOST/DB. "
        "Default: MPI_DATABASE_URL, .env, then sqlite:///mpi.db.",
        show_default=False,
    ),
]
