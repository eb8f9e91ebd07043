"""Use cases of the MPI: register, update, search, merge, unmerge, link, review."""
