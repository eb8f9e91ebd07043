"""The match model as data: schema, loading and validation of ``matching_rules/`` files."""
