"""Acknowledgements: exact bytes, in the grammar of the version received."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

import pytest
from hl7_samples import ADT_A01, ADT_A04_231
from hypothesis import given, settings
from hypothesis import strategies as st

from mpi.errors import HL7Error
from mpi.hl7v2 import (
    ErrorCode,
    ErrorDetail,
    HierarchicDesignator,
    Location,
    build_ack,
    build_ack_for_unparsable,
    parse_message,
)


class Responder(TypedDict):
    sending_app: str
    sending_facility: str
    control_id: str
    timestamp: datetime


WHEN = datetime(2024, 3, 12, 10, 15, 2)
OURS = Responder(sending_app="MPI", sending_facility="ESANTE", control_id="ACK-1", timestamp=WHEN)


def fields_of(ack: bytes) -> list[list[str]]:
    assert ack.endswith(b"\r")
    return [segment.split("|") for segment in ack.decode("utf-8").split("\r")[:-1]]


def test_accepting_a_2_5_message() -> None:
    ack = build_ack(parse_message(ADT_A01), "AA", [], **OURS)
    msh, msa = fields_of(ack)
    assert msh == [
        "MSH", "^~\\&", "MPI", "ESANTE", "HIS_CHL", "CHL^1.3.182.3.1.1.1.2^ISO", "20240312101502", "",
        "ACK^A01^ACK", "ACK-1", "P", "2.5", "", "", "", "", "", "UNICODE UTF-8",
    ]  # fmt: skip
    assert msa == ["MSA", "AA", "MSG00001"]


def test_an_application_error_in_2_5_reports_location_code_and_severity() -> None:
    errors = [
        ErrorDetail(ErrorCode.UNKNOWN_KEY_IDENTIFIER, Location.from_erl("PID^1^3^1^1")),
        ErrorDetail(ErrorCode.REQUIRED_FIELD_MISSING, Location.parse("PID-8"), "W", "sex missing"),
    ]
    ack = build_ack(parse_message(ADT_A01), "AE", errors, **OURS)
    _, msa, first, second = fields_of(ack)
    assert msa == ["MSA", "AE", "MSG00001"]
    assert first == ["ERR", "", "PID^1^3^1^1", "204^Unknown Key Identifier^HL70357", "E"]
    assert second == ["ERR", "", "PID^1^8", "101^Required Field Missing^HL70357", "W", "", "", "sex missing"]


def test_a_2_3_1_message_gets_err_1() -> None:
    errors = [ErrorDetail(ErrorCode.UNKNOWN_KEY_IDENTIFIER, Location.from_erl("PID^1^3^1^1"), diagnostic="x")]
    ack = build_ack(parse_message(ADT_A04_231), "AE", errors, **OURS)
    msh, msa, err = fields_of(ack)
    assert msh == [
        "MSH", "^~\\&", "MPI", "ESANTE", "LAB", "HOSP_A", "20240312101502", "", "ACK^A04^ACK", "ACK-1", "P",
        "2.3.1",
    ]  # fmt: skip
    assert msa == ["MSA", "AE", "CTRL-231"]
    assert err == ["ERR", "PID^1^3^204&Unknown Key Identifier"]


def test_several_errors_in_2_3_1_share_one_err_whose_err_1_repeats() -> None:
    """ERR does not repeat in a 2.3.1 ACK (MSH, MSA, [ERR]); its ERR-1 does."""
    errors = [
        ErrorDetail(ErrorCode.UNKNOWN_KEY_IDENTIFIER, Location.from_erl("PID^1^3^2^4")),
        ErrorDetail(ErrorCode.UNKNOWN_KEY_IDENTIFIER, Location.from_erl("PID^1^3^3^4")),
    ]
    _, _, err = fields_of(build_ack(parse_message(ADT_A04_231), "AA", errors, **OURS))
    assert err == ["ERR", "PID^1^3^204&Unknown Key Identifier~PID^1^3^204&Unknown Key Identifier"]


def test_a_2_3_1_error_without_location_keeps_err_1_positions() -> None:
    errors = [ErrorDetail(ErrorCode.APPLICATION_INTERNAL_ERROR)]
    _, _, err = fields_of(build_ack(parse_message(ADT_A04_231), "AR", errors, **OURS))
    assert err == ["ERR", "^^^207&Application Internal Error"]


def test_commit_acknowledgements_share_the_layout() -> None:
    _, msa = fields_of(build_ack(parse_message(ADT_A01), "CA", [], **OURS))
    assert msa == ["MSA", "CA", "MSG00001"]


def test_unknown_acknowledgement_codes_are_refused() -> None:
    with pytest.raises(ValueError, match="acknowledgement code"):
        build_ack(parse_message(ADT_A01), "OK", [], **OURS)  # type: ignore[arg-type]


def test_the_ack_uses_the_incoming_delimiters_charset_and_sender_designators() -> None:
    incoming = (
        "MSH#$*!%#APP#FAC$1.2.3$ISO#MPI#ESANTE#20240101##ADT$A28$ADT_A05#C9#T#2.5.1######8859/1\r"
        "PID#1##123$$$HOSP\r"
    ).encode("latin-1")
    ack = build_ack(
        parse_message(incoming),
        "AA",
        [ErrorDetail(ErrorCode.MESSAGE_ACCEPTED, severity="I", diagnostic="Zoë")],
        sending_app=HierarchicDesignator("MPI", "1.3.182.2.4.2", "ISO"),
        sending_facility="ESANTE",
        control_id="A9",
        timestamp=WHEN,
    )
    segments = ack.decode("latin-1").split("\r")
    assert segments[0] == (
        "MSH#$*!%#MPI$1.3.182.2.4.2$ISO#ESANTE#APP#FAC$1.2.3$ISO#20240312101502##ACK$A28$ACK#A9#T#2.5.1######8859/1"
    )
    assert segments[1] == "MSA#AA#C9"
    assert segments[2] == "ERR###0$Message Accepted$HL70357#I###Zoë"
    assert "Zoë".encode("latin-1") in ack


def test_the_ack_reads_back_with_our_parser() -> None:
    ack = parse_message(
        build_ack(parse_message(ADT_A01), "AE", [ErrorDetail(ErrorCode.UNKNOWN_KEY_IDENTIFIER)], **OURS)
    )
    assert ack.msh.message_type == ("ACK", "A01", "ACK")
    assert ack.get("MSA-2") == "MSG00001"
    assert ack.get("ERR-3.1") == "204"


def test_error_details_come_from_hl7_errors() -> None:
    detail = ErrorDetail.from_error(HL7Error("MSH-9 missing", code="101", location="MSH^1^9"))
    assert detail == ErrorDetail(
        ErrorCode.REQUIRED_FIELD_MISSING, Location("MSH", 1, 9), "E", "MSH-9 missing"
    )
    odd = ErrorDetail.from_error(HL7Error("boom", code="999", location="nowhere^x"))
    assert odd.code is ErrorCode.APPLICATION_INTERNAL_ERROR
    assert odd.location is None
    assert "999" in odd.diagnostic and "nowhere^x" in odd.diagnostic


def test_error_details_refuse_codes_and_severities_outside_their_tables() -> None:
    assert ErrorDetail("204").code is ErrorCode.UNKNOWN_KEY_IDENTIFIER  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ErrorDetail("999")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="severity"):
        ErrorDetail(ErrorCode.UNKNOWN_KEY_IDENTIFIER, severity="X")  # type: ignore[arg-type]


def test_table_0357_has_every_code_the_profiles_use() -> None:
    assert {code.value: code.text for code in ErrorCode if code.value != "0"} == {
        "100": "Segment Sequence Error",
        "101": "Required Field Missing",
        "102": "Data Type Error",
        "103": "Table Value Not Found",
        "200": "Unsupported Message Type",
        "201": "Unsupported Event Code",
        "202": "Unsupported Processing ID",
        "203": "Unsupported Version ID",
        "204": "Unknown Key Identifier",
        "205": "Duplicate Key Identifier",
        "206": "Application Record Locked",
        "207": "Application Internal Error",
    }


# --- messages that did not parse -------------------------------------------------------------


def refuse(raw: bytes) -> tuple[HL7Error, bytes]:
    with pytest.raises(HL7Error) as caught:
        parse_message(raw)
    return caught.value, build_ack_for_unparsable(raw, caught.value, **OURS)


def test_an_unparsable_message_is_answered_with_what_its_msh_line_gives() -> None:
    raw = b"MSH|^~\\&|LAB|HOSP_A|MPI|ESANTE|20240101||ADT^A08^ADT_A01|C-77|P\rPID|1||77\r"
    error, ack = refuse(raw)
    assert error.code == "101"
    msh, msa, err = fields_of(ack)
    assert msh == [
        "MSH", "^~\\&", "MPI", "ESANTE", "LAB", "HOSP_A", "20240312101502", "", "ACK^A08^ACK", "ACK-1", "P",
        "2.5",
    ]  # fmt: skip
    assert msa == ["MSA", "AR", "C-77"]
    assert err == [
        "ERR",
        "",
        "MSH^1^12",
        "101^Required Field Missing^HL70357",
        "E",
        "",
        "",
        "MSH-12 (version id) is missing",
    ]


def test_a_body_error_is_answered_ae_in_the_received_version() -> None:
    raw = b"MSH|^~\\&|LAB|HOSP_A|MPI|ESANTE|20240101||ADT^A04|C-78|P|2.3.1||||||ASCII\rPID|1||77||M\xfcller\r"
    error, ack = refuse(raw)
    assert not error.reject
    msh, msa, err = fields_of(ack)
    assert msh[11:] == ["2.3.1", "", "", "", "", "", "ASCII"]
    assert msa == ["MSA", "AE", "C-78"]
    assert err == ["ERR", "PID^1^5^102&Data Type Error"]


def test_echoed_header_bytes_pass_through_unchanged() -> None:
    raw = (
        "MSH|^~\\&|CLINIQUE_ÉTÉ|FAC|MPI|ESANTE|20240101||ADT^A01|C-1|P|2.5||||||UNICODE UTF-8\r"
        "PID|1||\udcff\r"
    )
    data = raw.encode("utf-8", errors="surrogateescape")
    _, ack = refuse(data)
    assert "CLINIQUE_ÉTÉ".encode() in ack
    assert ack.decode("utf-8").split("\r")[0].split("|")[4] == "CLINIQUE_ÉTÉ"


def test_a_message_without_msh_gets_a_minimal_ack() -> None:
    error, ack = refuse(b"PID|1||123\r")
    msh, msa, err = fields_of(ack)
    assert msh == [
        "MSH",
        "^~\\&",
        "MPI",
        "ESANTE",
        "",
        "",
        "20240312101502",
        "",
        "ACK^^ACK",
        "ACK-1",
        "P",
        "2.5",
    ]
    assert msa == ["MSA", "AR"]  # MSA-2 empty
    assert err[:5] == ["ERR", "", "MSH^1", "100^Segment Sequence Error^HL70357", "E"]
    assert error.reject


def test_unusable_encoding_characters_still_salvage_the_sender() -> None:
    error, ack = refuse(b"MSH|^^|LAB|HOSP_A|MPI|ESANTE|20240101||ADT^A01|C-5|P|2.5\r")
    msh, msa, _ = fields_of(ack)
    assert error.location == "MSH^1^2"
    assert msh[1] == "^~\\&"
    assert msh[4:6] == ["LAB", "HOSP_A"]
    assert msa == ["MSA", "AR", "C-5"]


@settings(max_examples=300)
@given(
    prefix=st.sampled_from([b"", b"MSH|^~\\&|", b"MSH#$*!%#A#B#C#D#1##ADT$A01#X#P#2.3.1#", b"MSH|^^|"]),
    tail=st.binary(max_size=200),
)
def test_any_refused_bytes_get_an_ack_our_parser_reads(prefix: bytes, tail: bytes) -> None:
    raw = prefix + tail
    try:
        parse_message(raw)
    except HL7Error as error:
        ack = parse_message(build_ack_for_unparsable(raw, error, **OURS))
        assert ack.get("MSA-1") == ("AR" if error.reject else "AE")
        assert ack.msh.message_type.code == "ACK"
