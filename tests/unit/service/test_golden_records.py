"""Survivorship: which of a person's records gives each golden field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from mpi.domain.records import Demographics, MatriculeFlag, RecordKey, SourceRecord
from mpi.service.golden import SurvivorshipRule, SurvivorshipRules, compute_golden


def record(
    record_id: int, authority: str, day: int, matricule: MatriculeFlag = MatriculeFlag.MISSING, **fields: str
) -> SourceRecord:
    return SourceRecord(
        record_id,
        RecordKey(authority, str(record_id)),
        1,
        Demographics(**fields),
        matricule,
        datetime(2024, 1, day, tzinfo=UTC),
    )


RULES = SurvivorshipRules(source_trust=["RNPP", "HOSP*", "LAB*"])


def test_the_most_trusted_source_wins_names_even_when_older() -> None:
    golden = compute_golden(
        [
            record(1, "LAB-1", 20, family_name="Webber"),
            record(2, "RNPP", 1, family_name="Weber"),
            record(3, "HOSP-CHL", 10, family_name="Wéber"),
        ],
        RULES,
    )
    assert golden.family_name == "Weber"


def test_an_unlisted_source_ranks_last_and_recency_breaks_ties() -> None:
    golden = compute_golden(
        [
            record(1, "UNKNOWN", 30, given_names="Jos"),
            record(2, "HOSP-A", 2, given_names="Joseph"),
            record(3, "HOSP-B", 5, given_names="Josef"),
        ],
        RULES,
    )
    assert golden.given_names == "Josef"


def test_address_is_taken_whole_from_the_most_recent_record() -> None:
    golden = compute_golden(
        [
            record(1, "RNPP", 1, street="Rue A", house_number="1", postcode="1111", city="Luxembourg"),
            record(2, "LAB-1", 9, street="Rue B", postcode="2222"),
        ],
        RULES,
    )
    assert (golden.street, golden.house_number, golden.postcode, golden.city) == ("Rue B", None, "2222", None)


def test_most_frequent_rule_counts_agreeing_records() -> None:
    rules = SurvivorshipRules(source_trust=["RNPP"], rules={"sex": SurvivorshipRule.MOST_FREQUENT})
    golden = compute_golden(
        [record(1, "RNPP", 1, sex="F"), record(2, "LAB", 2, sex="M"), record(3, "HOSP", 3, sex="M")], rules
    )
    assert golden.sex == "M"


def test_only_a_checked_matricule_survives_in_its_thirteen_digit_form() -> None:
    golden = compute_golden(
        [
            record(1, "RNPP", 1, MatriculeFlag.INVALID, national_id="1893120105733"),
            record(2, "LAB", 2, MatriculeFlag.UPGRADED, national_id="18931201057"),
        ],
        RULES,
    )
    assert golden.national_id == "1893120105732"


def test_unknown_fields_in_rules_are_refused() -> None:
    with pytest.raises(ValidationError, match="unknown fields"):
        SurvivorshipRules(rules={"shoe_size": SurvivorshipRule.MOST_RECENT})
