"""ER7 parsing: what a translator reads from a message, and what is refused with which code."""

from __future__ import annotations

import pytest
from hl7_samples import ADT_A01, ADT_A01_SEGMENTS, ADT_A04_231

from mpi.errors import HL7Error
from mpi.hl7v2 import (
    Delimiters,
    HierarchicDesignator,
    Location,
    MessageType,
    codec_for_charset,
    parse_message,
)


def build(*segments: str, charset: str = "", codec: str = "utf-8", terminator: str = "\r") -> bytes:
    header = f"MSH|^~\\&|APP|FAC|MPI|ESANTE|20240101||ADT^A01^ADT_A01|C1|P|2.5||||||{charset}"
    return terminator.join([header, *segments, ""]).encode(codec)


def test_header_fields_are_typed() -> None:
    header = parse_message(ADT_A01).msh
    assert header.sending_application == HierarchicDesignator("HIS_CHL")
    assert header.sending_facility == HierarchicDesignator("CHL", "1.3.182.3.1.1.1.2", "ISO")
    assert header.receiving_application == HierarchicDesignator("MPI")
    assert header.receiving_facility == HierarchicDesignator("ESANTE")
    assert header.timestamp == "20240312101500+0100"
    assert header.message_type == MessageType("ADT", "A01", "ADT_A01")
    assert header.control_id == "MSG00001"
    assert header.processing_id == "P"
    assert header.version == "2.5"
    assert header.accept_ack_type == "AL"
    assert header.application_ack_type == "NE"
    assert header.charset == "UNICODE UTF-8"
    assert header.key == ("HIS_CHL", "CHL^1.3.182.3.1.1.1.2^ISO", "MSG00001")


def test_message_type_with_two_components_has_an_empty_structure() -> None:
    header = parse_message(ADT_A04_231).msh
    assert header.message_type == MessageType("ADT", "A04", "")
    assert header.version == "2.3.1"


def test_segments_keep_their_order_and_names() -> None:
    message = parse_message(ADT_A01)
    assert [segment.name for segment in message.segments] == [s[:3] for s in ADT_A01_SEGMENTS]
    assert message.segment("OBX", 1).get(5) == "first line\nsecond line"
    assert [segment.get(1) for segment in message.segments_named("OBX")] == ["1", "2"]


@pytest.mark.parametrize("terminator", ["\r", "\r\n", "\n"])
def test_every_segment_terminator_is_accepted(terminator: str) -> None:
    message = parse_message(build("PID|1||123^^^HOSP", "PV1|1|N", terminator=terminator))
    assert [segment.name for segment in message.segments] == ["MSH", "PID", "PV1"]
    assert message.get("PID-3.4") == "HOSP"
    assert message.get("PV1-2") == "N"


def test_mixed_terminators_blank_lines_bom_and_leading_line_breaks_are_tolerated() -> None:
    data = b"\xef\xbb\xbf\r\n" + build("PID|1||123", "", "PV1|1|N").replace(b"\rPV1", b"\r\n\nPV1")
    message = parse_message(data)
    assert [segment.name for segment in message.segments] == ["MSH", "PID", "PV1"]


def test_paths_address_repetitions_components_and_subcomponents() -> None:
    message = parse_message(ADT_A01)
    assert message.get("PID-3") == "1982080285657"
    assert message.get("PID-3[1].4.2") == "1.3.182.4.4"
    assert message.get("PID-3[2].1") == "A-4711"
    assert message.get("PID-3[2].4.1") == "CHL"
    assert message.get("PID-3[2].5") == "PI"
    assert message.get("PID-5[2].1") == "Schmit"
    assert message.get("PID-11.3") == "Esch-sur-Alzette"
    assert message.get("OBX[2]-3.2") == "Lab report"


def test_absent_values_read_as_empty() -> None:
    message = parse_message(ADT_A01)
    assert message.get("PID-3[3].1") == ""
    assert message.get("PID-3.9") == ""
    assert message.get("PID-3.4.7") == ""
    assert message.get("PID-99") == ""
    assert message.get("MRG-1") == ""
    assert message.get("OBX[3]-5") == ""


def test_field_elements_walk_repeating_structures() -> None:
    identifiers = parse_message(ADT_A01).field("PID-3").repetitions
    assert [(rep.value, rep.component(4).subcomponent(1), rep.component(5).value) for rep in identifiers] == [
        ("1982080285657", "LUX", "NI"),
        ("A-4711", "CHL", "PI"),
    ]
    assert identifiers[0].component(4).subcomponents == ["LUX", "1.3.182.4.4", "ISO"]
    assert [component.value for component in identifiers[1].components] == ["A-4711", "", "", "CHL", "PI"]


def test_explicit_null_is_distinguished_from_empty() -> None:
    message = parse_message(build('PID|1||123|""|""^Jean||""'))
    assert message.is_null("PID-4")
    assert message.get("PID-4") == ""
    assert message.field("PID-4").is_null
    assert message.field("PID-4").repetitions[0].is_null
    assert not message.is_null("PID-5")
    assert message.is_null("PID-5.1")
    assert message.get("PID-5.2") == "Jean"
    assert not message.is_null("PID-6")
    assert message.field("PID-6").is_empty
    assert message.field("PID-6").repetitions == []
    assert message.is_null("PID-7")
    assert not message.is_null("PID-99")
    assert not message.is_null("ZZZ-1")


def test_escape_sequences_are_decoded_when_read() -> None:
    message = parse_message(
        build(r"NTE|1||a\F\b\S\c\T\d\R\e\E\f|x\.br\y|\XC3A9\t\X41\|\H\bold\N\|\E|\Xzz" + "\\")
    )
    assert message.get("NTE-3") == "a|b^c&d~e\\f"
    assert message.get("NTE-4") == "x\ny"
    assert message.get("NTE-5") == "étA"
    # Formatting escapes, unterminated and malformed sequences stay as written.
    assert message.get("NTE-6") == "\\H\\bold\\N\\"
    assert message.get("NTE-7") == "\\E"
    assert message.get("NTE-8") == "\\Xzz\\"


def test_escaped_delimiters_do_not_split_values() -> None:
    message = parse_message(build(r"PID|1||A\S\B^^^X\T\Y\R\Z"))
    assert message.get("PID-3.1") == "A^B"
    assert message.get("PID-3.4") == "X&Y~Z"
    assert message.get("PID-3.4.2") == ""


def test_custom_delimiters_from_msh_1_and_msh_2() -> None:
    data = (
        "MSH#$*!%#APP#FAC$1.2.3$ISO#MPI#ESANTE#20240101##ADT$A04$ADT_A01#C9#T#2.5\r"
        "PID#1##123$$$HOSP%1.2.840%ISO*456$$$OTHER##Smith!S!Jones$John#!F!!E!\r"
    ).encode("ascii")
    message = parse_message(data)
    assert message.delimiters == Delimiters("#", "$", "*", "!", "%")
    assert message.get("MSH-1") == "#"
    assert message.get("MSH-2") == "$*!%"
    assert message.msh.sending_facility == HierarchicDesignator("FAC", "1.2.3", "ISO")
    assert message.msh.message_type == MessageType("ADT", "A04", "ADT_A01")
    assert message.get("PID-3[1].4.2") == "1.2.840"
    assert message.get("PID-3[2].4") == "OTHER"
    assert message.get("PID-5.1") == "Smith$Jones"
    assert message.get("PID-6") == "#!"


def test_a_fifth_encoding_character_is_read_as_the_truncation_character() -> None:
    data = b"MSH|^~\\&#|A|B|C|D|20240101||ADT^A01|1|P|2.7\rNTE|1||a\\P\\b\r"
    message = parse_message(data)
    assert message.delimiters.truncation == "#"
    assert message.get("MSH-2") == "^~\\&#"
    assert message.get("NTE-3") == "a#b"


def test_msh_1_and_msh_2_read_literally() -> None:
    message = parse_message(ADT_A01)
    assert message.get("MSH-1") == "|"
    assert message.get("MSH-2") == "^~\\&"
    assert message.get("MSH-2.2") == ""
    assert message.segment("MSH").field(2).repetitions[0].components[0].subcomponents == ["^~\\&"]


def test_latin1_bytes_declared_8859_1_are_decoded() -> None:
    message = parse_message(build("PID|1||123||Müller^Zoë", charset="8859/1", codec="latin-1"))
    assert message.codec == "latin-1"
    assert not message.charset_fallback
    assert message.get("PID-5.1") == "Müller"
    assert message.get("PID-5.2") == "Zoë"


def test_8859_15_carries_the_euro_sign() -> None:
    message = parse_message(build("NTE|1||5 €", charset="8859/15", codec="iso8859-15"))
    assert message.get("NTE-3") == "5 €"


def test_utf8_declared_is_decoded() -> None:
    message = parse_message(build("PID|1||123||Conceição^João", charset="UNICODE UTF-8"))
    assert message.get("PID-5") == "Conceição"
    assert not message.charset_fallback


def test_undeclared_utf8_is_read_without_fallback() -> None:
    message = parse_message(build("PID|1||123||Gonçalves"))
    assert message.codec == "utf-8"
    assert not message.charset_fallback
    assert message.get("PID-5") == "Gonçalves"


def test_undeclared_latin1_falls_back_and_says_so() -> None:
    message = parse_message(build("PID|1||123||Müller", codec="latin-1"))
    assert message.charset_fallback
    assert message.codec == "latin-1"
    assert message.get("PID-5") == "Müller"


def test_hex_escapes_decode_in_the_message_charset() -> None:
    latin = parse_message(build("NTE|1||\\XFC\\", charset="8859/1", codec="latin-1"))
    utf8 = parse_message(build("NTE|1||\\XC3BC\\", charset="UNICODE UTF-8"))
    assert latin.get("NTE-3") == utf8.get("NTE-3") == "ü"


def test_bytes_invalid_in_the_declared_charset_are_refused_with_their_location() -> None:
    data = build("PID|1||123", "PID|2||456||M\xfcller", charset="ASCII", codec="latin-1")
    with pytest.raises(HL7Error) as caught:
        parse_message(data)
    assert (caught.value.code, caught.value.location, caught.value.reject) == ("102", "PID^2^5", False)


def test_invalid_utf8_in_a_declared_utf8_message_is_refused() -> None:
    data = build("PID|1||123||M\xfcller", charset="UNICODE UTF-8", codec="latin-1")
    with pytest.raises(HL7Error) as caught:
        parse_message(data)
    assert (caught.value.code, caught.value.location) == ("102", "PID^1^5")


def test_unsupported_charset_is_rejected_at_msh_18() -> None:
    with pytest.raises(HL7Error) as caught:
        parse_message(build("PID|1", charset="ISO IR87"))
    assert (caught.value.code, caught.value.location, caught.value.reject) == ("103", "MSH^1^18", True)


def test_charset_names_map_to_codecs() -> None:
    assert codec_for_charset("") is None
    assert codec_for_charset(" unicode utf-8 ") == "utf-8"
    assert codec_for_charset("8859/1") == "latin-1"
    assert codec_for_charset("ASCII") == "ascii"


@pytest.mark.parametrize(
    ("data", "code", "location"),
    [
        (b"PID|1||123\rMSH|^~\\&|A", "100", "MSH^1"),
        (b"", "100", "MSH^1"),
        (b"MSH", "101", "MSH^1^1"),
        (b"MSHA^~\\&|A", "102", "MSH^1^1"),
        (b"MSH|", "101", "MSH^1^2"),
        (b"MSH|^~\\|A", "102", "MSH^1^2"),
        (b"MSH|^^\\&|A", "102", "MSH^1^2"),
        (b"MSH|^~\\&", "101", "MSH^1^9"),
        (b"MSH|^~\\&|A|B|C|D|20240101||^A01|1|P|2.5", "101", "MSH^1^9"),
        (b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01||P|2.5", "101", "MSH^1^10"),
        (b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1||2.5", "101", "MSH^1^11"),
        (b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P", "101", "MSH^1^12"),
        (b'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|""', "101", "MSH^1^12"),
    ],
)
def test_malformed_headers_are_rejected_with_their_table_0357_code(
    data: bytes, code: str, location: str
) -> None:
    with pytest.raises(HL7Error) as caught:
        parse_message(data)
    assert (caught.value.code, caught.value.location, caught.value.reject) == (code, location, True)


def test_a_segment_without_a_valid_name_is_a_segment_sequence_error() -> None:
    with pytest.raises(HL7Error) as caught:
        parse_message(build("PID|1", "pv1|1"))
    assert caught.value.code == "100"
    assert not caught.value.reject


def test_a_second_msh_is_refused() -> None:
    with pytest.raises(HL7Error) as caught:
        parse_message(ADT_A01 + ADT_A01)
    assert (caught.value.code, caught.value.location) == ("100", "MSH^2")


def test_a_missing_required_segment_raises_hl7_error_100() -> None:
    message = parse_message(ADT_A01)
    assert message.find_segment("MRG") is None
    with pytest.raises(HL7Error) as caught:
        message.segment("MRG")
    assert (caught.value.code, caught.value.location) == ("100", "MRG")
    with pytest.raises(HL7Error) as caught:
        message.segment("OBX", 2)
    assert caught.value.location == "OBX^3"


def test_encode_writes_carriage_returns_and_round_trips() -> None:
    data = build("PID|1||123^^^HOSP||Müller", "PV1|1|N", terminator="\r\n")
    message = parse_message(data)
    assert message.encode() == data.replace(b"\r\n", b"\r")
    assert parse_message(message.encode()).get("PID-5") == "Müller"


def test_segment_level_access_matches_paths() -> None:
    pid = parse_message(ADT_A01).segment("PID")
    assert len(pid) == 13
    assert pid.get(3, 2, 4, 2) == "1.3.182.3.1.1.1.2"
    assert pid.raw_value(3, 2) == "A-4711^^^CHL&1.3.182.3.1.1.1.2&ISO^PI"
    assert pid.raw_value(5, component=2) == "Jean-Pierre"
    assert pid.is_null(6)
    assert pid.field(0).is_empty and pid.field(40).is_empty


def test_paths_parse_and_render_both_notations() -> None:
    location = Location.parse("PID-3[2].4.1")
    assert location == Location("PID", 1, 3, 2, 4, 1)
    assert str(location) == "PID-3[2].4.1"
    assert location.erl_parts() == ("PID", "1", "3", "2", "4", "1")
    assert Location.parse("OBX[2]-5").erl_parts() == ("OBX", "2", "5")
    assert Location.parse("PID-5.1").erl_parts() == ("PID", "1", "5", "1", "1")
    assert Location.from_erl("PID^1^3^1^1") == Location("PID", 1, 3, 1, 1)
    assert Location.from_erl("MSH^1^9") == Location("MSH", 1, 9)
    assert Location.from_erl("MRG") == Location("MRG")


@pytest.mark.parametrize("path", ["PID", "pid-3", "PID-0", "PID-3[0]", "PID-3.1.2.3", "PID3", "PID-3..1"])
def test_malformed_paths_are_programming_errors(path: str) -> None:
    message = parse_message(ADT_A01)
    with pytest.raises(ValueError):
        message.get(path)


@pytest.mark.parametrize("erl", ["", "PID^x", "PID^1^2^3^4^5^6", "^1^3"])
def test_malformed_error_locations_are_refused(erl: str) -> None:
    with pytest.raises(ValueError):
        Location.from_erl(erl)
