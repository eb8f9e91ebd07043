"""Data files of the matching package (nickname table, surname particles, address abbreviations)."""
