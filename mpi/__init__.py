"""mpi: a Master Patient Index engine."""

from mpi.errors import Conflict, HL7Error, InputError, MPIError, NotFound, RulesError

__all__ = ["Conflict", "HL7Error", "InputError", "MPIError", "NotFound", "RulesError"]
__version__ = "0.1.0"
