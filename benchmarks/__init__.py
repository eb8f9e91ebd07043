"""Benchmarks of mpi against Splink 5 (DuckDB), one script per claim.

Run them from the project root as modules, e.g. ``python -m benchmarks.accuracy_febrl``;
see ``benchmarks/README.md``. Scratch files go to ``benchmarks/.work/`` (git-ignored).
"""
