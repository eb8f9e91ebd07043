"""Writing HL7 v2, and the properties tying the writer and the parser together."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpi.errors import HL7Error
from mpi.hl7v2 import (
    DEFAULT_DELIMITERS,
    NULL,
    Components,
    Delimiters,
    Raw,
    Repetitions,
    Subcomponents,
    encode_field,
    encode_message,
    encode_segment,
    format_timestamp,
    parse_message,
)
from mpi.hl7v2.encode import ComponentValue, FieldValue, RepetitionValue, Text


def test_text_is_escaped() -> None:
    assert encode_field("a|b^c&d~e\\f\ng\rh") == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\.br\\g\\X0D\\h"


def test_null_is_written_as_two_quotes_and_literal_quotes_are_not() -> None:
    assert encode_field(NULL) == '""'
    assert encode_field('""') == '\\X22\\"'
    assert encode_field(Components(NULL, "x")) == '""^x'


def test_structures_nest_and_drop_trailing_empty_parts() -> None:
    identifiers = Repetitions(
        Components("123", "", "", Subcomponents("LUX", "1.3.182.4.4", "ISO"), "NI"),
        Components("A-77", "", "", Subcomponents("HOSP", "", "")),
        Components("", ""),
    )
    assert encode_field(identifiers) == "123^^^LUX&1.3.182.4.4&ISO^NI~A-77^^^HOSP"


def test_raw_text_is_written_verbatim() -> None:
    assert encode_field(Components(Raw("A\\S\\B"), "C^D")) == "A\\S\\B^C\\S\\D"


def test_segments_number_fields_like_the_standard() -> None:
    assert encode_segment("PID", {3: "123", 5: Components("Weber", "Anne")}) == "PID|||123||Weber^Anne"
    assert encode_segment("PV1", {2: "N", 3: ""}) == "PV1||N"
    assert encode_segment("EVN", {}) == "EVN"


def test_msh_takes_its_first_two_fields_from_the_delimiters() -> None:
    delimiters = Delimiters("#", "$", "*", "!", "%")
    text = encode_segment("MSH", {3: "APP", 9: Components("ACK", "A01", "ACK")}, delimiters)
    assert text == "MSH#$*!%#APP######ACK$A01$ACK"
    assert encode_segment("MSH", {}) == "MSH|^~\\&"


@pytest.mark.parametrize(
    ("name", "fields"),
    [("pid", {}), ("PIDX", {}), ("PID", {0: "x"}), ("MSH", {1: "|"}), ("MSH", {2: "^~\\&"})],
)
def test_invalid_segments_are_programming_errors(name: str, fields: dict[int, FieldValue]) -> None:
    with pytest.raises(ValueError):
        encode_segment(name, fields)


def test_messages_end_every_segment_with_a_carriage_return() -> None:
    assert encode_message(["MSH|^~\\&", "PID|1"]) == b"MSH|^~\\&\rPID|1\r"
    assert encode_message(["NTE|||ł"], "latin-1", errors="replace") == b"NTE|||?\r"
    # An answer in the sender's character set keeps what it can of a name: its letters.
    assert encode_message(["PID|||Wéber^Zoë^Łucja"], "ascii", errors="fold") == b"PID|||Weber^Zoe^?ucja\r"
    assert encode_message(["PID|||Wéber^Štefan"], "latin-1", errors="fold") == "PID|||Wéber^Stefan\r".encode(
        "latin-1"
    )
    with pytest.raises(UnicodeEncodeError):
        encode_message(["NTE|||ł"], "latin-1")
    with pytest.raises(ValueError):
        encode_message([])


def test_timestamps_carry_the_offset_when_known() -> None:
    assert format_timestamp(datetime(2024, 3, 12, 10, 15, 1)) == "20240312101501"
    moment = datetime(2024, 3, 12, 10, 15, 1, tzinfo=timezone(timedelta(hours=1)))
    assert format_timestamp(moment) == "20240312101501+0100"


def test_delimiters_must_be_distinct_punctuation() -> None:
    with pytest.raises(ValueError):
        Delimiters(field="^")
    with pytest.raises(ValueError):
        Delimiters(component="A")
    with pytest.raises(ValueError):
        Delimiters(escape='"')
    assert DEFAULT_DELIMITERS.encoding_characters == "^~\\&"


# --- properties -----------------------------------------------------------------------------

delimiter_sets = st.permutations(list("|^~\\&#$*!%@.")).map(lambda chars: Delimiters(*chars[:5]))
texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x0b\x1c"),
    max_size=12,
)
primitives: st.SearchStrategy[Text] = st.one_of(texts, st.just(NULL))
components: st.SearchStrategy[ComponentValue] = st.one_of(
    primitives, st.lists(primitives, min_size=1, max_size=3).map(lambda parts: Subcomponents(*parts))
)
repetitions: st.SearchStrategy[RepetitionValue] = st.one_of(
    primitives, st.lists(components, min_size=1, max_size=4).map(lambda parts: Components(*parts))
)
field_values: st.SearchStrategy[FieldValue] = st.one_of(
    repetitions, st.lists(repetitions, min_size=1, max_size=3).map(lambda parts: Repetitions(*parts))
)
segment_names = st.from_regex(r"[A-Z][A-Z0-9]{2}", fullmatch=True).filter(lambda name: name != "MSH")
segments = st.tuples(segment_names, st.dictionaries(st.integers(1, 8), field_values, max_size=6))


def as_repetitions(value: FieldValue) -> list[RepetitionValue]:
    return list(value.values) if isinstance(value, Repetitions) else [value]


def as_components(value: RepetitionValue) -> list[ComponentValue]:
    return list(value.values) if isinstance(value, Components) else [value]


def as_subcomponents(value: ComponentValue) -> list[Text]:
    if isinstance(value, Subcomponents):
        return list(value.values)
    assert not isinstance(value, Raw)
    return [value]


def expected_text(value: Text) -> str:
    return "" if value is NULL else str(value)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(delimiters=delimiter_sets, body=st.lists(segments, min_size=1, max_size=4))
def test_every_written_value_reads_back_and_encode_parse_round_trips(
    delimiters: Delimiters, body: list[tuple[str, dict[int, FieldValue]]]
) -> None:
    header = encode_segment(
        "MSH",
        {3: "APP", 9: Components("ADT", "A01", "ADT_A01"), 10: "C1", 11: "P", 12: "2.5", 18: "UNICODE UTF-8"},
        delimiters,
    )
    written = encode_message([header, *(encode_segment(name, fields, delimiters) for name, fields in body)])

    message = parse_message(written)

    assert message.encode() == written
    assert message.delimiters == delimiters
    for occurrence, (name, fields) in enumerate(body):
        segment = message.segments[occurrence + 1]
        assert segment.name == name
        for number, value in fields.items():
            for r, repetition in enumerate(as_repetitions(value), start=1):
                for c, component in enumerate(as_components(repetition), start=1):
                    for s, subcomponent in enumerate(as_subcomponents(component), start=1):
                        assert segment.get(number, r, c, s) == expected_text(subcomponent)
                        if subcomponent is NULL:
                            assert segment.is_null(number, r, c, s)


@settings(max_examples=500)
@given(data=st.binary(max_size=300))
def test_parser_raises_only_hl7_error_on_arbitrary_bytes(data: bytes) -> None:
    try:
        parse_message(data)
    except HL7Error as error:
        assert error.code in {"100", "101", "102", "103"}


header_prefixes = st.sampled_from(
    [
        b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5|||||",
        b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5||||||8859/1\r",
        b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5||||||ASCII\n",
        b"MSH#$*!%#A##",
        b"MSH|^~\\&|",
    ]
)


@settings(max_examples=500)
@given(prefix=header_prefixes, tail=st.binary(max_size=300), paths=st.lists(st.integers(1, 9), max_size=5))
def test_parsing_and_reading_nearly_valid_messages_raises_only_hl7_error(
    prefix: bytes, tail: bytes, paths: list[int]
) -> None:
    try:
        message = parse_message(prefix + tail)
    except HL7Error:
        return
    for segment in message.segments:
        for number in [*paths, *range(len(segment) + 1)]:
            field = segment.field(number)
            for repetition in field.repetitions:
                for component in repetition.components:
                    assert isinstance(component.subcomponents, list)
            assert isinstance(segment.get(number, 2, 2, 2), str)
    assert isinstance(message.encode(), bytes)
