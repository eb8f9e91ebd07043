"""Batch linkage: the CSV/Parquet edge and the local driver around the matching engine."""
