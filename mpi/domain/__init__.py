"""Domain vocabulary of mpi: identifiers, records, persons. Stdlib and pydantic only."""
