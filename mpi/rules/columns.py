"""The standardised columns a rules file may name (produced by ``mpi.matching.standardise``)."""

from __future__ import annotations

STRING_COLUMNS: frozenset[str] = frozenset(
    {
        "family_name",
        "family_last",
        "family_dm",
        "family_kp",
        "birth_name",
        "birth_name_dm",
        "given_name",
        "given_names",
        "given_canonical",
        "given_dm",
        "given_kp",
        "birth_date",
        "sex",
        "national_id",
        "street",
        "house_number",
        "postcode",
        "city",
        "country",
        "phone",
        "email",
    }
)
INTEGER_COLUMNS: frozenset[str] = frozenset({"birth_year", "birth_month", "birth_day"})
# Blocking-only keys derived while encoding (see mpi.matching.encoding.UNORDERED_PAIRS).
DERIVED_KEYS: frozenset[str] = frozenset({"name_pair_dm"})
KNOWN_COLUMNS: frozenset[str] = STRING_COLUMNS | INTEGER_COLUMNS | DERIVED_KEYS

# Which raw batch-schema column each standardised column comes from, so a job can
# say which comparisons it dropped because an input column was absent.
SOURCE_COLUMN: dict[str, str] = {
    "family_name": "family_name",
    "family_last": "family_name",
    "family_dm": "family_name",
    "family_kp": "family_name",
    "birth_name": "birth_name",
    "birth_name_dm": "birth_name",
    "given_name": "given_names",
    "given_names": "given_names",
    "given_canonical": "given_names",
    "given_dm": "given_names",
    "given_kp": "given_names",
    "birth_date": "birth_date",
    "birth_year": "birth_date",
    "birth_month": "birth_date",
    "birth_day": "birth_date",
    "sex": "sex",
    "national_id": "national_id",
    "street": "street",
    "house_number": "house_number",
    "postcode": "postcode",
    "city": "city",
    "country": "country",
    "phone": "phone",
    "email": "email",
    "name_pair_dm": "family_name",
}
