"""Tests of the benchmark helpers (metrics, data preparation, timing)."""
