"""Identity feed conformance, ITI-8 (HL7 2.3.1) and ITI-30 (HL7 2.5), after IHE ITI TF-2 and Appendix C.

Each test sends what a Patient Identity Source sends and asserts the exact
MSA and ERR of the acknowledgement, and what the registry holds afterwards.
"""

from __future__ import annotations

import logging

import pytest
from hl7_harness import CHL_OID, MATRICULE, Harness, make_harness, msh, named

from mpi.domain.limits import MAX_VALUE_LENGTH
from mpi.domain.records import Demographics, RecordKey
from mpi.hl7v2 import parse_message
from mpi.service.audit import verify
from mpi.service.crossrefs import CrossReferences


@pytest.fixture
def mpi() -> Harness:
    return make_harness()


def record(mpi: Harness, authority: str, local_id: str) -> Demographics | None:
    found = mpi.services.store.run(lambda uow: uow.find_record(RecordKey(authority, local_id)), write=False)
    return None if found is None else found.demographics


def person_of(mpi: Harness, authority: str, local_id: str) -> str | None:
    found = CrossReferences(mpi.services.store).by_record(RecordKey(authority, local_id))
    return None if found is None else found.mpi_id


def register(
    mpi: Harness, control: str, pid: str, *, sender: str = "HIS|CHL", trigger: str = "A04"
) -> list[str]:
    answer = mpi.send(f"{msh(sender, f'ADT^{trigger}^ADT_A01', control)}\nEVN|{trigger}\n{pid}\nPV1||N")
    return named(answer, "MSA") + named(answer, "ERR")


WEBER = "PID|||A-1^^^CHL&1.3.182.3.1.1.1.2&ISO^PI||Weber^Jean^Pierre^^^^L||19820802|M"


@pytest.mark.parametrize("trigger", ["A01", "A04", "A05", "A08", "A28", "A31"])
def test_every_register_trigger_creates_an_unknown_patient(mpi: Harness, trigger: str) -> None:
    assert register(mpi, "C1", WEBER, trigger=trigger) == ["MSA|AA|C1"]
    assert record(mpi, "CHL", "A-1") == Demographics(
        family_name="Weber", given_names="Jean Pierre", birth_date="1982-08-02", sex="M"
    )


def test_iti8_231_message_with_two_component_msh9_is_acknowledged_in_its_version(mpi: Harness) -> None:
    answer = mpi.send(
        "MSH|^~\\&|LIS|ANY|MPI|ESANTE|20240101120000||ADT^A04|CTRL-231|P|2.3.1\n"
        "EVN|A04|20240101120000\nPID|||77^^^LABO||Dupont^Jean||19700101|M"
    )
    header = answer.segments[0].raw.split("|")
    assert header[8] == "ACK^A04^ACK" and header[11] == "2.3.1"
    assert named(answer, "MSA") == ["MSA|AA|CTRL-231"]
    assert record(mpi, "LABO", "77") is not None


def test_every_authority_form_of_pid3_names_the_same_domain(mpi: Harness) -> None:
    forms = ["A-1^^^CHL", f"A-1^^^&{CHL_OID}&ISO", f"A-1^^^CHL&{CHL_OID}&ISO", "A-1"]
    for number, form in enumerate(forms):
        assert register(mpi, f"F{number}", f"PID|||{form}||Weber^Jean||1982080{number + 1}|M") == [
            f"MSA|AA|F{number}"
        ]
    assert record(mpi, "CHL", "A-1") is not None
    assert mpi.services.registry.count_records() == 1


def test_matricule_in_pid3_is_the_national_id_and_names_follow_their_type_codes(mpi: Harness) -> None:
    pid = (
        f"PID|||A-1^^^CHL~{MATRICULE}^^^LUX&1.3.182.4.4&ISO^NI||"
        "Weber Schmit^Jean-Pierre^^^^^L~Schmit^Jean-Pierre^^^^^M||19820802|M|||"
        "12 Rue de la Gare&Rue de la Gare&12^^Esch-sur-Alzette^^L-4131^LU^H||"
        "+352621123456^PRN^CP~^NET^Internet^jp@example.lu"
    )
    assert register(mpi, "C1", pid) == ["MSA|AA|C1"]
    assert record(mpi, "CHL", "A-1") == Demographics(
        family_name="Weber Schmit",
        birth_name="Schmit",
        given_names="Jean-Pierre",
        birth_date="1982-08-02",
        sex="M",
        national_id=MATRICULE,
        street="Rue de la Gare",
        house_number="12",
        postcode="L-4131",
        city="Esch-sur-Alzette",
        country="LU",
        phone="+352621123456",
        email="jp@example.lu",
    )


def test_empty_fields_keep_values_and_explicit_null_removes_them(mpi: Harness) -> None:
    register(mpi, "C1", "PID|||A-1^^^CHL||Weber^Jean||19820802|M|||Rue X^^Diekirch^^9201^LU")
    assert register(mpi, "C2", 'PID|||A-1^^^CHL||Weber^Jean||19820802|""', trigger="A08") == ["MSA|AA|C2"]
    updated = record(mpi, "CHL", "A-1")
    assert updated is not None and updated.sex is None and updated.city == "Diekirch"
    assert updated.birth_date == "1982-08-02" and updated.family_name == "Weber"


def test_a_field_of_separators_only_is_empty_and_keeps_the_values(mpi: Harness) -> None:
    """Some interface engines write every field of their layout, empty ones as ``^^^``: that
    carries no value, so it changes nothing (it is not a null)."""
    register(mpi, "C1", "PID|||A-1^^^CHL||Weber^Jean||19820802|M|||Rue X^^Diekirch^^9201^LU||+352123")
    separators = "PID|||A-1^^^CHL||^^^^^^~^||||||^^^^^^||^^^&&"
    assert register(mpi, "C2", separators, trigger="A08") == ["MSA|AA|C2"]
    kept = record(mpi, "CHL", "A-1")
    assert kept is not None
    assert (kept.family_name, kept.given_names, kept.street, kept.city, kept.postcode, kept.phone) == (
        "Weber",
        "Jean",
        "Rue X",
        "Diekirch",
        "9201",
        "+352123",
    )


def test_partial_birth_dates_keep_unknown_parts_as_00(mpi: Harness) -> None:
    register(mpi, "C1", "PID|||A-1^^^CHL||Weber^Jean||198208|M")
    register(mpi, "C2", "PID|||A-2^^^CHL||Schmit^Anne||1975|F")
    assert record(mpi, "CHL", "A-1").birth_date == "1982-08-00"  # type: ignore[union-attr]
    assert record(mpi, "CHL", "A-2").birth_date == "1975-00-00"  # type: ignore[union-attr]


def test_latin1_message_declared_in_msh18_is_decoded(mpi: Harness) -> None:
    text = (
        "MSH|^~\\&|HIS|CHL|MPI|ESANTE|20240101||ADT^A04^ADT_A01|L1|P|2.5||||||8859/1\r"
        "PID|||A-9^^^CHL||Müller^Zoé||19900101|F\r"
    )
    answer = mpi.send_bytes(text.encode("latin-1"))
    assert b"MSA|AA|L1" in answer
    assert record(mpi, "CHL", "A-9") == Demographics(
        family_name="Müller", given_names="Zoé", birth_date="1990-01-01", sex="F"
    )


def test_lf_and_crlf_segment_terminators_are_accepted(mpi: Harness) -> None:
    for number, separator in enumerate(("\n", "\r\n")):
        text = separator.join(
            [msh(control=f"T{number}"), f"PID|||B-{number}^^^CHL||Kremer^Luc||19700101|M", ""]
        )
        assert f"MSA|AA|T{number}".encode() in mpi.send_bytes(text.encode())


# -- errors: AE with ERR at the exact location ----------------------------------------------
@pytest.mark.parametrize(
    ("pid", "err"),
    [
        ("PID|||||Weber^Jean||19820802|M", "ERR||PID^1^3|101^Required Field Missing^HL70357|E"),
        ("PID|||A-1^^^NOWHERE||Weber^Jean", "ERR||PID^1^3^1^4|204^Unknown Key Identifier^HL70357|E"),
        ("PID|||A-1^^^CHL||Weber^Jean||19821302|M", "ERR||PID^1^7^1^1|102^Data Type Error^HL70357|E"),
        ("PID|||A-1^^^CHL||Weber^Jean||1982-08-02|M", "ERR||PID^1^7^1^1|102^Data Type Error^HL70357|E"),
        ("PID|||A-1^^^CHL||Weber^Jean||19820802|X", "ERR||PID^1^8^1^1|103^Table Value Not Found^HL70357|E"),
        ("PID|||A-1^^^LABO||Weber^Jean||19820802|M", "ERR||PID^1^3^1^4|204^Unknown Key Identifier^HL70357|E"),
    ],
)
def test_content_errors_are_application_errors_with_the_exact_location(
    mpi: Harness, pid: str, err: str
) -> None:
    answer = mpi.send(f"{msh()}\nEVN|A04\n{pid}\nPV1||N")
    assert named(answer, "MSA") == ["MSA|AE|C1"]
    assert [e.rsplit("|", 3)[0] for e in named(answer, "ERR")] == [err]
    assert mpi.services.registry.count_records() == 0


LONG = "W" * 201  # one character more than the registry stores


@pytest.mark.parametrize(
    ("pid", "err"),
    [
        (f"PID|||A-1^^^CHL||{LONG}^Jean||19820802|M", "ERR||PID^1^5|102^Data Type Error^HL70357|E"),
        (
            f"PID|||A-1^^^CHL||Weber^Jean||19820802|M|||{LONG}^^Luxembourg",
            "ERR||PID^1^11|102^Data Type Error^HL70357|E",
        ),
        (f"PID|||{LONG}^^^CHL||Weber^Jean||19820802|M", "ERR||PID^1^3^1^1|102^Data Type Error^HL70357|E"),
        (
            "PID|||A-1^^^CHL||Weber^Jean||19820802|M" + "|" * 10 + f"{LONG}",
            "ERR||PID^1^18^1^1|102^Data Type Error^HL70357|E",
        ),
        ("PID|||A-1^^^CHL||We\x00ber^Jean||19820802|M", "ERR||PID^1^5|102^Data Type Error^HL70357|E"),
        ("PID|||A-1^^^CHL||We\\X00\\ber^Jean||19820802|M", "ERR||PID^1^5|102^Data Type Error^HL70357|E"),
    ],
)
def test_a_value_the_registry_cannot_store_is_refused_where_it_sits_and_a_resend_gets_the_same_ae(
    mpi: Harness, pid: str, err: str
) -> None:
    """Too long, or holding a NUL (which PostgreSQL cannot store): AE, so a sender that resends
    gets the same refusal, never an AR telling it to try again for ever."""
    text = f"{msh(control='LONG-1')}\rEVN|A04\r{pid}\rPV1||N\r".encode()
    answer = mpi.send_bytes(text)
    refused = parse_message(answer)
    assert named(refused, "MSA") == ["MSA|AE|LONG-1"]
    assert [e.rsplit("|", 3)[0] for e in named(refused, "ERR")] == [err]
    assert mpi.services.registry.count_records() == 0
    again = parse_message(mpi.send_bytes(text))
    assert named(again, "MSA") + named(again, "ERR") == named(refused, "MSA") + named(refused, "ERR")


@pytest.mark.parametrize(
    ("header", "err"),
    [
        (msh(control="C" * 200), "ERR||MSH^1^10|102^Data Type Error^HL70357|E"),
        (msh(control=" "), "ERR||MSH^1^10|101^Required Field Missing^HL70357|E"),
        (msh(sender="H\x00IS|CHL"), "ERR||MSH^1^3|102^Data Type Error^HL70357|E"),
    ],
)
def test_a_header_that_cannot_identify_a_resent_message_is_rejected(
    mpi: Harness, header: str, err: str
) -> None:
    answer = parse_message(mpi.send_bytes(f"{header}\r{WEBER}\r".encode()))
    assert named(answer, "MSA")[0].startswith("MSA|AR|")
    assert [e.rsplit("|", 3)[0] for e in named(answer, "ERR")] == [err]
    assert mpi.services.registry.count_records() == 0


def test_a_sender_at_any_facility_is_recorded_within_the_actor_column(mpi: Harness) -> None:
    facility = "F" * 220  # an HD namespace longer than HL7 allows, but within what MSH-4 may hold
    answer = mpi.send(f"{msh(sender=f'LIS|{facility}')}\nPID|||L-1^^^LABO||Weber^Jean||19820802|M")
    assert named(answer, "MSA") == ["MSA|AA|C1"]
    events = mpi.services.store.run(lambda uow: uow.events(), write=False)
    assert [len(event.actor) for event in events] == [MAX_VALUE_LENGTH]


def test_control_ids_differing_after_their_first_component_are_two_messages(mpi: Harness) -> None:
    first = mpi.send(f"{msh(control='K^1')}\n{WEBER}")
    second = mpi.send(f"{msh(control='K^2')}\n{WEBER.replace('A-1', 'A-2').replace('Weber', 'Muller')}")
    assert (named(first, "MSA"), named(second, "MSA")) == (["MSA|AA|K^1"], ["MSA|AA|K^2"])
    assert record(mpi, "CHL", "A-2") is not None


def test_missing_pid_segment_is_a_segment_sequence_error(mpi: Harness) -> None:
    answer = mpi.send(f"{msh()}\nEVN|A04\nPV1||N")
    assert named(answer, "MSA") == ["MSA|AE|C1"]
    assert named(answer, "ERR")[0].startswith("ERR||PID^1|100^Segment Sequence Error^HL70357|E")


def test_231_errors_use_err1(mpi: Harness) -> None:
    answer = mpi.send(
        "MSH|^~\\&|LIS|X|MPI|ESANTE|20240101||ADT^A04|E1|P|2.3.1\nPID|||9^^^NOWHERE||Dupont^Jean"
    )
    assert named(answer, "MSA") == ["MSA|AE|E1"]
    assert named(answer, "ERR") == ["ERR|PID^1^3^204&Unknown Key Identifier"]


@pytest.mark.parametrize(
    ("header", "err"),
    [
        (msh(kind="ORU^R01^ORU_R01"), "ERR||MSH^1^9^1^1|200^Unsupported Message Type^HL70357|E"),
        (msh(kind="ADT^A99^ADT_A01"), "ERR||MSH^1^9^1^2|201^Unsupported Event Code^HL70357|E"),
        (msh(version="3.0"), "ERR||MSH^1^12|203^Unsupported Version ID^HL70357|E"),
        (msh().replace("|P|2.5", "|D|2.5"), "ERR||MSH^1^11|202^Unsupported Processing ID^HL70357|E"),
        (msh(sender="ROGUE|CHL"), "ERR||MSH^1^3|207^Application Internal Error^HL70357|E"),
    ],
)
def test_envelope_problems_are_rejected_with_ar(mpi: Harness, header: str, err: str) -> None:
    answer = mpi.send(f"{header}\n{WEBER}")
    assert named(answer, "MSA") == ["MSA|AR|C1"]
    assert [e.rsplit("|", 3)[0] for e in named(answer, "ERR")] == [err]
    assert mpi.services.registry.count_records() == 0


@pytest.mark.parametrize(
    ("sender", "header"),
    [
        ("XDS/ESANTE", msh(sender="XDS|ESANTE", kind="ACK^A31^ACK", control="K1")),
        ("XDS/ESANTE", msh(sender="XDS|ESANTE", kind="ACK", control="K1") + "|||AL|AL"),  # asks: still none
        ("ROGUE/X", msh(sender="ROGUE|X", kind="ack^A04^ACK", control="K1", version="3.0")),  # all wrong
    ],
)
def test_an_acknowledgement_is_never_acknowledged(
    mpi: Harness, sender: str, header: str, caplog: pytest.LogCaptureFixture
) -> None:
    """HL7 v2.5 2.9: answering an ACK could start an endless exchange with a naive peer."""
    with caplog.at_level(logging.DEBUG, logger="mpi.hl7v2"):
        answer = mpi.send_bytes(f"{header}\rMSA|AA|C7\r{WEBER}\r".encode())
    assert answer == b""
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, f"ignored acknowledgement K1 from {sender}: acknowledgements are not answered")
    ]
    assert "Weber" not in caplog.text and mpi.events() == 0


def test_identifier_of_a_domain_the_sender_does_not_feed_is_ignored_with_a_warning(mpi: Harness) -> None:
    answer = mpi.send(f"{msh()}\nPID|||A-1^^^CHL~L-5^^^LABO||Weber^Jean||19820802|M")
    assert named(answer, "MSA") == ["MSA|AA|C1"]
    assert [e.rsplit("|", 3)[0] for e in named(answer, "ERR")] == [
        "ERR||PID^1^3^2^4|204^Unknown Key Identifier^HL70357|W"
    ]
    assert record(mpi, "LABO", "L-5") is None


# -- at-least-once delivery ---------------------------------------------------------------
def test_a_resent_message_gets_the_stored_ack_and_is_not_applied_again(mpi: Harness) -> None:
    text = f"{msh(control='DUP-1')}\n{WEBER}"
    first = mpi.send_bytes(text.replace("\n", "\r").encode())
    events = mpi.events()
    again = mpi.send_bytes(text.replace("\n", "\r").encode())
    assert again == first
    assert mpi.events() == events
    changed = text.replace("Weber", "Webber")  # same key, other content: still the stored answer
    assert mpi.send_bytes(changed.replace("\n", "\r").encode()) == first
    assert record(mpi, "CHL", "A-1").family_name == "Weber"  # type: ignore[union-attr]


def test_a_resent_refused_message_gets_the_same_ae(mpi: Harness) -> None:
    text = f"{msh(control='BAD-1')}\nPID|||A-1^^^CHL||Weber^Jean||19821302|M".replace("\n", "\r").encode()
    assert mpi.send_bytes(text) == mpi.send_bytes(text)


# -- enhanced acknowledgement mode (ITI-30 option) ------------------------------------------
def test_enhanced_mode_answers_commit_acknowledgements(mpi: Harness) -> None:
    header = msh(control="EN-1") + "|||AL|NE"
    assert named(mpi.send(f"{header}\n{WEBER}"), "MSA") == ["MSA|CA|EN-1"]
    bad = msh(control="EN-2") + "|||AL|NE"
    assert named(mpi.send(f"{bad}\nPID|||A-2^^^CHL||X^Y||2000|Q"), "MSA") == ["MSA|CE|EN-2"]
    only_errors = msh(control="EN-3") + "|||ER|NE"
    assert mpi.send_bytes(f"{only_errors}\r{WEBER}\r".encode()) == b""


# -- merge, change of identifier, link, unlink ----------------------------------------------
def test_a40_merges_the_persons_and_supersedes_the_prior_identifier(mpi: Harness) -> None:
    register(mpi, "C1", "PID|||A-1^^^CHL||Weber^Jean||19820802|M")
    register(mpi, "C2", "PID|||A-2^^^CHL||Hoffmann^Marc||19550101|M")
    register(mpi, "C3", "PID|||L-1^^^LABO||Hoffmann^Marc||19550101|M", sender="LIS|X")
    assert person_of(mpi, "LABO", "L-1") == person_of(mpi, "CHL", "A-2")
    answer = mpi.send(f"{msh(kind='ADT^A40^ADT_A39', control='M1')}\nEVN|A40\nPID|||A-1^^^CHL\nMRG|A-2^^^CHL")
    assert named(answer, "MSA") == ["MSA|AA|M1"] and named(answer, "ERR") == []
    survivor = person_of(mpi, "CHL", "A-1")
    assert person_of(mpi, "LABO", "L-1") == survivor
    assert person_of(mpi, "CHL", "A-2") is None  # no longer a current identifier
    crossrefs = CrossReferences(mpi.services.store).by_person(survivor or "")
    assert crossrefs is not None and crossrefs.records == (RecordKey("CHL", "A-1"), RecordKey("LABO", "L-1"))
    assert verify(mpi.services.store).ok


@pytest.mark.parametrize("same_person", [False, True])
def test_after_a40_the_golden_record_is_made_without_the_retired_identifier(
    mpi: Harness, same_person: bool
) -> None:
    """The source said its id A-2 was a mistake for A-1: A-2's data no longer speaks for the person."""
    register(mpi, "C1", "PID|||A-1^^^CHL||Weber^Jean||19820802|M|||^^Esch^^L-4131^LU")
    retired = (
        "PID|||A-2^^^CHL||Weber^Jean||19820802|M|||^^Diekirch^^L-9201^LU"
        if same_person
        else "PID|||A-2^^^CHL||Hoffmann^Marc||19550101|M|||^^Diekirch^^L-9201^LU"
    )
    register(mpi, "C2", retired)
    assert (person_of(mpi, "CHL", "A-1") == person_of(mpi, "CHL", "A-2")) is same_person
    answer = mpi.send(f"{msh(kind='ADT^A40^ADT_A39', control='M1')}\nPID|||A-1^^^CHL\nMRG|A-2^^^CHL")
    assert named(answer, "MSA") == ["MSA|AA|M1"]
    golden = mpi.services.persons.show(person_of(mpi, "CHL", "A-1") or "").person.golden
    assert (golden.family_name, golden.birth_date, golden.city) == ("Weber", "1982-08-02", "Esch")
    pdq = mpi.send(
        "MSH|^~\\&|PORTAL|ANY|DEMOGRAPHICS|ESANTE|20240101||QBP^Q22^QBP_Q21|P1|P|2.5\n"
        "QPD|IHE PDQ Query|T2|@PID.5.1.1^WEBER\nRCP|I"
    )
    (pid,) = named(pdq, "PID")
    assert "Weber^Jean" in pid and "Diekirch" not in pid
    assert verify(mpi.services.store).ok


def test_a40_with_an_unknown_target_changes_the_identifier(mpi: Harness) -> None:
    register(mpi, "C1", "PID|||A-1^^^CHL||Weber^Jean||19820802|M")
    before = person_of(mpi, "CHL", "A-1")
    answer = mpi.send(f"{msh(kind='ADT^A40^ADT_A39', control='M1')}\nPID|||A-9^^^CHL\nMRG|A-1^^^CHL")
    assert named(answer, "MSA") == ["MSA|AA|M1"]
    assert person_of(mpi, "CHL", "A-9") == before and record(mpi, "CHL", "A-1") is None
    assert verify(mpi.services.store).ok


def test_a40_with_an_unknown_source_does_nothing(mpi: Harness) -> None:
    register(mpi, "C1", "PID|||A-1^^^CHL||Weber^Jean||19820802|M")
    events = mpi.events()
    answer = mpi.send(f"{msh(kind='ADT^A40^ADT_A39', control='M1')}\nPID|||A-1^^^CHL\nMRG|A-404^^^CHL")
    assert named(answer, "MSA") == ["MSA|AA|M1"] and mpi.events() == events


def test_a47_changes_the_identifier_and_refuses_one_in_use(mpi: Harness) -> None:
    register(mpi, "C1", "PID|||A-1^^^CHL||Weber^Jean||19820802|M")
    register(mpi, "C2", "PID|||A-2^^^CHL||Hoffmann^Marc||19550101|M")
    taken = mpi.send(f"{msh(kind='ADT^A47^ADT_A30', control='X1')}\nPID|||A-2^^^CHL\nMRG|A-1^^^CHL")
    assert named(taken, "MSA") == ["MSA|AE|X1"]
    assert [e.rsplit("|", 3)[0] for e in named(taken, "ERR")] == [
        "ERR||PID^1^3^1^1|205^Duplicate Key Identifier^HL70357|E"
    ]
    moved = mpi.send(f"{msh(kind='ADT^A47^ADT_A30', control='X2')}\nPID|||A-3^^^CHL\nMRG|A-1^^^CHL")
    assert named(moved, "MSA") == ["MSA|AA|X2"]
    assert record(mpi, "CHL", "A-3") is not None and record(mpi, "CHL", "A-1") is None


@pytest.mark.parametrize(
    ("kind", "good_pair", "bad_pair", "error"),
    [
        # A-4 merged into A-3, then A-5 into A-2, which its source merged into A-1 already.
        ("ADT^A40^ADT_A39", "PID|||A-3^^^CHL\nMRG|A-4^^^CHL", "PID|||A-2^^^CHL\nMRG|A-5^^^CHL", "204"),
        # A-4 renamed A-6, then A-5 renamed A-1, which is in use.
        ("ADT^A47^ADT_A30", "PID|||A-6^^^CHL\nMRG|A-4^^^CHL", "PID|||A-1^^^CHL\nMRG|A-5^^^CHL", "205"),
    ],
)
def test_the_err_of_a_repeating_a40_or_a47_names_the_pair_refused(
    mpi: Harness, kind: str, good_pair: str, bad_pair: str, error: str
) -> None:
    for n in range(1, 6):
        register(mpi, f"C{n}", f"PID|||A-{n}^^^CHL||Name{n}^Given||1980010{n}|M")
    merged = mpi.send(f"{msh(kind='ADT^A40^ADT_A39', control='M1')}\nPID|||A-1^^^CHL\nMRG|A-2^^^CHL")
    assert named(merged, "MSA") == ["MSA|AA|M1"]
    events = mpi.events()

    def errors(control: str, pairs: str) -> list[str]:
        answer = mpi.send(f"{msh(kind=kind, control=control)}\n{pairs}")
        assert named(answer, "MSA") == [f"MSA|AE|{control}"]
        return [e.rsplit("|", 3)[0].rsplit("^", 2)[0] for e in named(answer, "ERR")]

    assert errors("M2", f"{good_pair}\n{bad_pair}") == [f"ERR||PID^2^3^1^1|{error}"]
    assert errors("M3", f"{bad_pair}\n{good_pair}") == [f"ERR||PID^1^3^1^1|{error}"]
    assert mpi.events() == events and record(mpi, "CHL", "A-4") is not None  # the good pair undone


def test_a24_links_and_a37_unlinks_and_unknown_ids_are_no_error(mpi: Harness) -> None:
    register(mpi, "C1", "PID|||A-1^^^CHL||Weber^Jean||19820802|M")
    register(mpi, "C2", "PID|||A-2^^^CHL||Kremer^Paul||19600505|M")
    assert person_of(mpi, "CHL", "A-1") != person_of(mpi, "CHL", "A-2")
    link = mpi.send(f"{msh(kind='ADT^A24^ADT_A24', control='K1')}\nPID|||A-1^^^CHL\nPID|||A-2^^^CHL")
    assert named(link, "MSA") == ["MSA|AA|K1"]
    assert person_of(mpi, "CHL", "A-1") == person_of(mpi, "CHL", "A-2")
    unlink = mpi.send(f"{msh(kind='ADT^A37^ADT_A37', control='K2')}\nPID|||A-1^^^CHL\nPID|||A-2^^^CHL")
    assert named(unlink, "MSA") == ["MSA|AA|K2"]
    assert person_of(mpi, "CHL", "A-1") != person_of(mpi, "CHL", "A-2")
    unknown = mpi.send(f"{msh(kind='ADT^A24^ADT_A24', control='K3')}\nPID|||A-1^^^CHL\nPID|||Z-9^^^CHL")
    assert named(unknown, "MSA") == ["MSA|AA|K3"]
    assert verify(mpi.services.store).ok


@pytest.mark.parametrize("kind", ["ADT^A37^ADT_A37", "ADT^A24^ADT_A24"])
def test_a_link_or_unlink_naming_one_patient_twice_changes_nothing(mpi: Harness, kind: str) -> None:
    register(mpi, "C1", "PID|||A-1^^^CHL||Weber^Jean||19820802|M")
    register(mpi, "C2", "PID|||L-1^^^LABO||Weber^Jean||19820802|M", sender="LIS|LAB")
    assert person_of(mpi, "CHL", "A-1") == person_of(mpi, "LABO", "L-1")
    events = mpi.events()
    answer = mpi.send(f"{msh(kind=kind, control='K1')}\nPID|||A-1^^^CHL\nPID|||A-1^^^CHL")
    assert named(answer, "MSA") == ["MSA|AA|K1"]
    assert mpi.events() == events  # A-1 was not split off its person, nor relinked by hand
    assert person_of(mpi, "CHL", "A-1") == person_of(mpi, "LABO", "L-1")
