"""Source records: one local id in one assigning authority, with its demographics.

A source record is never overwritten: every update adds a version, so the
history of what each source said about a patient stays available to
identity-vigilance staff.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields, replace
from datetime import datetime

DEMOGRAPHIC_FIELDS: tuple[str, ...] = (
    "family_name",
    "birth_name",
    "given_names",
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
)
# The batch file schema (DOMAIN.md): an id for the row, where it comes from, its demographics.
BATCH_COLUMNS: tuple[str, ...] = ("record_id", "source", "local_id", *DEMOGRAPHIC_FIELDS)


@dataclass(frozen=True)
class Demographics:
    """The batch-schema fields of one record, raw strings or ``None`` when missing."""

    family_name: str | None = None
    birth_name: str | None = None
    given_names: str | None = None
    birth_date: str | None = None
    sex: str | None = None
    national_id: str | None = None
    street: str | None = None
    house_number: str | None = None
    postcode: str | None = None
    city: str | None = None
    country: str | None = None
    phone: str | None = None
    email: str | None = None

    @classmethod
    def from_mapping(cls, values: dict[str, object]) -> Demographics:
        """Build from a mapping, keeping known fields; empty strings count as missing."""
        kept: dict[str, str | None] = {}
        for name in DEMOGRAPHIC_FIELDS:
            value = values.get(name)
            text = None if value is None else str(value).strip()
            kept[name] = text or None
        return cls(**kept)

    def as_dict(self) -> dict[str, str | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def without_national_id(self) -> Demographics:
        return replace(self, national_id=None)


class MatriculeFlag(enum.StrEnum):
    """How the national number of a record's current version was judged."""

    MISSING = "missing"
    VALID = "valid"
    UPGRADED = "upgraded"  # a valid legacy 11-digit number, upgraded to 13 digits
    INVALID = "invalid"  # a typing error: flagged and never matched on


@dataclass(frozen=True)
class RecordKey:
    """The identity of a source record: a local id within an assigning authority."""

    authority: str
    local_id: str

    def __post_init__(self) -> None:
        if not self.authority.strip() or not self.local_id.strip():
            raise ValueError("a source record needs an assigning authority and a local id")

    def __str__(self) -> str:
        return f"{self.authority}|{self.local_id}"


@dataclass(frozen=True)
class RecordVersion:
    """One version of a source record, exactly as the source sent it."""

    record_id: int
    version: int
    demographics: Demographics
    matricule: MatriculeFlag
    recorded_at: datetime
    actor: str


@dataclass(frozen=True)
class SourceRecord:
    """The current version of a source record."""

    record_id: int
    key: RecordKey
    version: int
    demographics: Demographics
    matricule: MatriculeFlag
    updated_at: datetime


@dataclass(frozen=True)
class RecordIdentifier:
    """An identifier carried by a source record (the matricule), with its history.

    When a record's number changes, the old identifier is deactivated and names
    its successor in ``replaced_by``, so a search on an old number still leads
    to the record and reviewers see why it changed.
    """

    identifier_id: int
    record_id: int
    system: str
    value: str  # the normalised 13-digit number, or the raw text when invalid
    raw: str
    status: MatriculeFlag
    active: bool
    assigned_at: datetime
    replaced_by: int | None = None
