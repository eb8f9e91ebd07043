"""Seeded generator of a Luxembourg-like patient population with ground truth."""
