"""The one exceptions module of mpi.

Every error mpi raises on purpose derives from :class:`MPIError`, so adapters can
turn it into the right answer for their channel (CLI exit code 2, HTTP 4xx,
HL7 AE/AR) without ever showing a traceback::

    MPIError
    ├── RulesError      a rules or model file is malformed (names the file and key)
    ├── InputError      an input file is unusable (names the file, row and column)
    ├── NotFound        an id that does not exist            (HTTP 404)
    ├── Conflict        a request that contradicts the state  (HTTP 409)
    ├── InvalidValue    a value the registry cannot store      (HTTP 422, HL7 AE 102)
    ├── NotReady        a part of the service still starting   (HTTP 503, HL7 AR)
    └── HL7Error        an HL7 message that must be refused   (AE/AR)
"""

from __future__ import annotations


class MPIError(Exception):
    """Root of every error mpi raises on purpose."""


class RulesError(MPIError):
    """A rules file or a trained-parameters file is malformed."""

    def __init__(self, path: str, key: str, message: str) -> None:
        self.path = path
        self.key = key
        self.message = message
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {message}")


class InputError(MPIError):
    """An input file cannot be used as given."""

    def __init__(
        self,
        path: str,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = path
        self.row = row
        self.column = column
        self.message = message
        where = path
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")


class NotFound(MPIError):
    """The id named does not exist."""


class Conflict(MPIError):
    """The request contradicts the current state; nothing was changed."""


class InvalidValue(MPIError):
    """A value the registry cannot store (too long, or holding a NUL); nothing was changed."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class DatabaseUnavailable(MPIError):
    """The database cannot be reached or refuses the connection."""


class NotReady(MPIError):
    """A part of the service is still starting (the person directory loading): ask again shortly."""


class ListenError(MPIError):
    """A server cannot listen on its configured address (in use, not this machine's, ...)."""

    def __init__(self, host: str, port: int, reason: OSError) -> None:
        super().__init__(f"cannot listen on {host}:{port}: {reason.strerror or reason}")


class HL7Error(MPIError):
    """An HL7 message that must be answered with AE or AR."""

    def __init__(self, message: str, *, code: str = "207", location: str = "", reject: bool = False) -> None:
        self.code = code
        self.location = location
        self.reject = reject
        super().__init__(message)
