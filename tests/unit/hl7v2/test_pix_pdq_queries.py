"""PIX query (ITI-9) and patient demographics query (ITI-21) conformance, after IHE ITI TF-2.

Asserts the exact MSA, QAK, ERR and PID-3 of RSP^K23 and RSP^K22 for every
answer case the transactions define.
"""

from __future__ import annotations

import logging

import pytest
from hl7_harness import (
    CHL_OID,
    CONFIG,
    LAB_OID,
    MATRICULE,
    Harness,
    another_process,
    make_harness,
    msh,
    named,
)

from mpi.domain.records import RecordKey
from mpi.errors import NotReady
from mpi.hl7v2.message import Message
from mpi.hl7v2.parse import parse_message
from mpi.service.audit import verify
from mpi.service.crossrefs import CrossReferences

CHL = f"CHL&{CHL_OID}&ISO"
LABO = f"LABO&{LAB_OID}&ISO"
LUX = "LUX&1.3.182.4.4&ISO"


@pytest.fixture
def mpi() -> Harness:
    harness = make_harness()
    feeds = [
        ("HIS|CHL", "H1", f"PID|||A-1^^^CHL~{MATRICULE}^^^LUX||Weber^Jean||19820802|M|||^^Esch^^L-4131^LU"),
        ("LIS|LAB", "L1", "PID|||L-1^^^LABO||Wéber^Jean||19820802|M"),
        ("HIS|CHL", "H2", "PID|||A-2^^^CHL||Schmit^Anne||19750101|F"),
        ("HIS|CHL", "H3", "PID|||A-3^^^CHL||Schmitt^Marie||19800202|F"),
        ("HIS|CHL", "H4", "PID|||A-4^^^CHL||Schmidt^Claire||19900303|F"),
        ("GPSOFT|X", "G1", "PID|||G-1^^^GP||Hoffmann^Paul||19400404|M"),
    ]
    for sender, control, pid in feeds:
        answer = harness.send(f"{msh(sender, 'ADT^A04^ADT_A01', control)}\n{pid}")
        assert named(answer, "MSA") == [f"MSA|AA|{control}"]
    return harness


def mpi_id(mpi: Harness, authority: str, local_id: str) -> str:
    found = CrossReferences(mpi.services.store).by_record(RecordKey(authority, local_id))
    assert found is not None
    return found.mpi_id


def pix(mpi: Harness, qpd: str) -> tuple[list[str], list[str], list[str], list[str]]:
    answer = mpi.send(f"{msh('PORTAL|ANY', 'QBP^Q23^QBP_Q21', 'Q1')}\n{qpd}\nRCP|I")
    errors = [e.rsplit("|", 3)[0] for e in named(answer, "ERR")]
    return named(answer, "MSA"), named(answer, "QAK"), errors, named(answer, "PID")


# -- ITI-9 ------------------------------------------------------------------------------
def test_pix_known_identifier_returns_the_other_identifiers(mpi: Harness) -> None:
    msa, qak, errors, pids = pix(mpi, "QPD|IHE PIX Query|T1|A-1^^^CHL")
    person = mpi_id(mpi, "CHL", "A-1")
    assert (msa, qak, errors) == (["MSA|AA|Q1"], ["QAK|T1|OK|IHE PIX Query"], [])
    assert pids == [
        f"PID|||L-1^^^{LABO}^PI~{MATRICULE}^^^{LUX}^NI~{person}^^^MPI&1.3.182.2.4.2&ISO^PI||~^^^^^^S"
    ]


def test_pix_accepts_every_form_of_the_queried_authority_and_filters_domains(mpi: Harness) -> None:
    for authority in ("CHL", f"&{CHL_OID}&ISO", CHL):
        msa, qak, _, pids = pix(mpi, f"QPD|IHE PIX Query|T1|A-1^^^{authority}|^^^LABO")
        assert (msa, qak) == (["MSA|AA|Q1"], ["QAK|T1|OK|IHE PIX Query"])
        assert pids == [f"PID|||L-1^^^{LABO}^PI||~^^^^^^S"]


def test_pix_by_matricule(mpi: Harness) -> None:
    _, qak, _, pids = pix(mpi, f"QPD|IHE PIX Query|T1|{MATRICULE}^^^&1.3.182.4.4&ISO|^^^CHL")
    assert qak == ["QAK|T1|OK|IHE PIX Query"] and pids == [f"PID|||A-1^^^{CHL}^PI||~^^^^^^S"]


def test_pix_known_identifier_with_nothing_in_the_requested_domains_is_nf(mpi: Harness) -> None:
    msa, qak, errors, pids = pix(mpi, "QPD|IHE PIX Query|T1|A-2^^^CHL|^^^LABO")
    assert (msa, qak, errors, pids) == (["MSA|AA|Q1"], ["QAK|T1|NF|IHE PIX Query"], [], [])


def test_pix_unknown_identifier_in_a_known_domain(mpi: Harness) -> None:
    msa, qak, errors, pids = pix(mpi, "QPD|IHE PIX Query|T1|NOPE^^^CHL")
    assert (msa, qak, pids) == (["MSA|AE|Q1"], ["QAK|T1|AE|IHE PIX Query"], [])
    assert errors == ["ERR||QPD^1^3^1^1|204^Unknown Key Identifier^HL70357|E"]


@pytest.mark.parametrize("authority", ["ELSEWHERE", "&9.9.9&ISO", ""])
def test_pix_unknown_domain_of_the_queried_identifier(mpi: Harness, authority: str) -> None:
    msa, qak, errors, pids = pix(mpi, f"QPD|IHE PIX Query|T1|A-1^^^{authority}")
    assert (msa, qak, pids) == (["MSA|AE|Q1"], ["QAK|T1|AE|IHE PIX Query"], [])
    assert errors == ["ERR||QPD^1^3^1^4|204^Unknown Key Identifier^HL70357|E"]


def test_pix_unknown_requested_domains_get_one_err_each(mpi: Harness) -> None:
    msa, qak, errors, pids = pix(mpi, "QPD|IHE PIX Query|T1|A-1^^^CHL|^^^X1~^^^LABO~^^^&8.8&ISO")
    assert (msa, qak, pids) == (["MSA|AE|Q1"], ["QAK|T1|AE|IHE PIX Query"], [])
    assert errors == [
        "ERR||QPD^1^4^1|204^Unknown Key Identifier^HL70357|E",
        "ERR||QPD^1^4^3|204^Unknown Key Identifier^HL70357|E",
    ]


@pytest.mark.parametrize(
    "queried",
    [
        f"{MATRICULE[:4]} {MATRICULE[4:8]} {MATRICULE[8:11]} {MATRICULE[11:]}^^^LUX",  # as typed
        f"{MATRICULE[:4]}.{MATRICULE[4:8]}.{MATRICULE[8:]}^^^LUX",
        "{person}^^^MPI",
        "{person_lower}^^^MPI",
    ],
)
def test_pix_leaves_out_the_queried_identifier_whatever_form_it_was_sent_in(
    mpi: Harness, queried: str
) -> None:
    person = mpi_id(mpi, "CHL", "A-1")
    qpd_3 = queried.format(person=person, person_lower=person.lower())
    domain = qpd_3.rsplit("^", 1)[1]
    _, qak, _, pids = pix(mpi, f"QPD|IHE PIX Query|T1|{qpd_3}")
    assert qak == ["QAK|T1|OK|IHE PIX Query"] and len(pids) == 1
    assert f"^^^{domain}&" not in pids[0]  # the one asked about is not listed
    msa, qak, _, pids = pix(mpi, f"QPD|IHE PIX Query|T1|{qpd_3}|^^^{domain}")
    assert (msa, qak, pids) == (["MSA|AA|Q1"], ["QAK|T1|NF|IHE PIX Query"], [])


@pytest.mark.parametrize("empty", ["^^^", "^^^&&", "~^^^LABO"])
def test_an_empty_domain_list_written_with_its_delimiters_asks_for_every_domain(
    mpi: Harness, empty: str
) -> None:
    _, qak, errors, pids = pix(mpi, f"QPD|IHE PIX Query|T1|A-1^^^CHL|{empty}")
    assert (qak, errors) == (["QAK|T1|OK|IHE PIX Query"], [])
    assert pids[0].startswith(f"PID|||L-1^^^{LABO}^PI")
    answer = pdq(mpi, "@PID.5.1.1^WEBER", extra=f"|||||{empty}")
    assert answer[1] == "MSA|AA|P1" and not [s for s in answer if s.startswith("ERR")]


def test_a_matricule_collision_resolved_by_the_source_s_merge_is_no_longer_reported(mpi: Harness) -> None:
    shared = "1975010112371"
    for control, pid in (
        ("H5", f"PID|||A-5^^^CHL~{shared}^^^LUX||Muller^Eva||19750101|F"),
        ("H6", "PID|||A-6^^^CHL||Klein^Otto||19500505|M"),
        ("H9", f"PID|||A-9^^^CHL~{shared}^^^LUX||Klein^Otto||19500505|M"),
    ):
        mpi.send(f"{msh('HIS|CHL', 'ADT^A04^ADT_A01', control)}\n{pid}")
    _, qak, errors, _ = pix(mpi, f"QPD|IHE PIX Query|T1|{shared}^^^LUX")
    assert qak == ["QAK|T1|AE|IHE PIX Query"] and errors[0].endswith("205^Duplicate Key Identifier^HL70357|E")
    merged = mpi.send(f"{msh(kind='ADT^A40^ADT_A39', control='M1')}\nPID|||A-6^^^CHL\nMRG|A-9^^^CHL")
    assert named(merged, "MSA") == ["MSA|AA|M1"]  # A-9 was A-6 all along: it carries the matricule no more
    _, qak, errors, pids = pix(mpi, f"QPD|IHE PIX Query|T1|{shared}^^^LUX")
    assert (qak, errors) == (["QAK|T1|OK|IHE PIX Query"], [])
    assert pids[0].startswith(f"PID|||A-5^^^{CHL}^PI")


# -- ITI-21 -----------------------------------------------------------------------------
def pdq(
    mpi: Harness, criteria: str, *, control: str = "P1", extra: str = "", rcp: str = "RCP|I"
) -> list[str]:
    header = f"MSH|^~\\&|PORTAL|ANY|DEMOGRAPHICS|ESANTE|20240101||QBP^Q22^QBP_Q21|{control}|P|2.5"
    answer = mpi.send(f"{header}\nQPD|IHE PDQ Query|T2|{criteria}{extra}\n{rcp}")
    return [segment.raw for segment in answer.segments]


def continuation_pointer(answer: list[str]) -> str:
    """DSC-1 of a PDQ answer that has more to give."""
    return next(s for s in answer if s.startswith("DSC")).split("|")[1]


def cancel_query(mpi: Harness) -> Message:
    """QCN^J01 cancelling the query tagged T2 (as the consumer PORTAL)."""
    return mpi.send(
        "MSH|^~\\&|PORTAL|ANY|MPI|ESANTE|20240101||QCN^J01^QCN_J01|C9|P|2.5\nQID|T2|IHE PDQ Query"
    )


def test_pdq_matches_ignoring_case_and_accents_and_phonetically(mpi: Harness) -> None:
    answer = pdq(mpi, "@PID.5.1.1^WEBER~@PID.7^19820802")
    assert answer[0].split("|")[2] == "DEMOGRAPHICS"  # MSH-5 of the query is MSH-3 of the answer
    assert answer[1] == "MSA|AA|P1"
    assert "QAK|T2|OK|IHE PDQ Query|1|1|0" in answer  # one person, whose records say Weber and Wéber
    pids = [s for s in answer if s.startswith("PID")]
    person = mpi_id(mpi, "CHL", "A-1")
    assert pids[0].startswith(
        f"PID|||A-1^^^{CHL}^PI~L-1^^^{LABO}^PI~{MATRICULE}^^^{LUX}^NI~{person}^^^MPI&1.3.182.2.4.2&ISO^PI||"
    )
    assert "^Jean^^^^^L||19820802|M|||^^Esch^^L-4131^LU^H" in pids[0]
    assert [s.split("|")[1] for s in answer if s.startswith("QRI")] == ["1.0000"]


def test_a_pdq_while_the_directory_is_still_loading_is_rejected_for_a_retry(
    mpi: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def loading(criteria: object) -> None:
        raise NotReady("the person directory is still loading; send the query again shortly")

    monkeypatch.setattr(mpi.directory, "search", loading)
    answer = pdq(mpi, "@PID.5.1.1^WEBER")
    assert answer[1] == "MSA|AR|P1"  # AR: the consumer may send the same query again
    assert "QAK|T2|AR|IHE PDQ Query" in answer
    assert answer[2] == (
        "ERR|||207^Application Internal Error^HL70357|E|||"
        "the person directory is still loading; send the query again shortly"
    )
    assert not [s for s in answer if s.startswith("PID")]
    monkeypatch.undo()
    assert pdq(mpi, "@PID.5.1.1^WEBER", control="P2")[1] == "MSA|AA|P2"


def test_pdq_phonetic_and_wildcard_names(mpi: Harness) -> None:
    phonetic = pdq(mpi, "@PID.5.1.1^SCHMITT~@PID.8^F")
    # Schmit, Schmitt and Schmidt sound alike (Double Metaphone XMT); Schmitz would not.
    assert "QAK|T2|OK|IHE PDQ Query|3|3|0" in phonetic
    exact_first = [s.split("|")[5] for s in phonetic if s.startswith("PID")]
    assert exact_first[0].startswith("Schmitt^")  # the exact spelling ranks first
    wildcard = pdq(mpi, "@PID.5.1.1^schm*")
    assert "QAK|T2|OK|IHE PDQ Query|3|3|0" in wildcard


def test_pdq_no_match_is_nf(mpi: Harness) -> None:
    answer = pdq(mpi, "@PID.5.1.1^NOBODY")
    assert answer[1] == "MSA|AA|P1" and "QAK|T2|NF|IHE PDQ Query|0|0|0" in answer
    assert not [s for s in answer if s.startswith("PID")]


def test_pdq_limit_continuation_and_cancel(mpi: Harness) -> None:
    first = pdq(mpi, "@PID.5.1.1^SCHM*", rcp="RCP|I|2^RD")
    assert "QAK|T2|OK|IHE PDQ Query|3|2|1" in first
    assert len([s for s in first if s.startswith("PID")]) == 2
    dsc = next(s for s in first if s.startswith("DSC"))
    pointer = dsc.split("|")[1]
    assert dsc == f"DSC|{pointer}|I"
    second = pdq(mpi, "@PID.5.1.1^SCHM*", control="P2", rcp=f"RCP|I|2^RD\nDSC|{pointer}|I")
    assert "QAK|T2|OK|IHE PDQ Query|3|1|0" in second
    assert not [s for s in second if s.startswith("DSC")]
    # Its answer lost, the consumer resends the same request (same MSH-10): the same page.
    resent = pdq(mpi, "@PID.5.1.1^SCHM*", control="P2", rcp=f"RCP|I|2^RD\nDSC|{pointer}|I")
    assert [s for s in resent if s[:3] in ("MSA", "QAK", "PID")] == [
        s for s in second if s[:3] in ("MSA", "QAK", "PID")
    ]
    used = pdq(mpi, "@PID.5.1.1^SCHM*", control="P3", rcp=f"RCP|I|2^RD\nDSC|{pointer}|I")
    assert used[1] == "MSA|AE|P3"
    assert [s.rsplit("|", 3)[0] for s in used if s.startswith("ERR")] == [
        "ERR||DSC^1^1|204^Unknown Key Identifier^HL70357|E"
    ]
    again = pdq(mpi, "@PID.5.1.1^SCHM*", control="P4", rcp="RCP|I|2^RD")
    pointer = continuation_pointer(again)
    assert named(cancel_query(mpi), "MSA") == ["MSA|AA|C9"]
    after = pdq(mpi, "@PID.5.1.1^SCHM*", control="P5", rcp=f"RCP|I|2^RD\nDSC|{pointer}|I")
    assert after[1] == "MSA|AE|P5"


def test_a_continuation_asked_for_another_query_is_refused_and_kept(mpi: Harness) -> None:
    first = pdq(mpi, "@PID.5.1.1^SCHM*", rcp="RCP|I|2^RD")
    pointer = continuation_pointer(first)
    wrong = pdq(mpi, "@PID.5.1.1^WEBER", control="P2", rcp=f"RCP|I|2^RD\nDSC|{pointer}|I")
    assert wrong[1] == "MSA|AE|P2"
    assert [s.rsplit("|", 3)[0] for s in wrong if s.startswith("ERR")] == [
        "ERR||DSC^1^1|204^Unknown Key Identifier^HL70357|E"
    ]
    rightful = pdq(mpi, "@PID.5.1.1^SCHM*", control="P3", rcp=f"RCP|I|2^RD\nDSC|{pointer}|I")
    assert "QAK|T2|OK|IHE PDQ Query|3|1|0" in rightful


def test_another_server_process_serves_and_cancels_the_continuations_one_gave(mpi: Harness) -> None:
    """``mpi serve --processes N``: a consumer that reconnects between pages may reach another
    process, which shares nothing with the first but the database."""
    other = another_process(mpi)
    first = pdq(mpi, "@PID.5.1.1^SCHM*", rcp="RCP|I|2^RD")
    pointer = continuation_pointer(first)
    second = pdq(other, "@PID.5.1.1^SCHM*", control="P2", rcp=f"RCP|I|2^RD\nDSC|{pointer}|I")
    assert second[1] == "MSA|AA|P2" and "QAK|T2|OK|IHE PDQ Query|3|1|0" in second
    shown = [s.split("|")[3] for s in first + second if s.startswith("PID")]
    assert len(shown) == len(set(shown)) == 3  # each person on one page
    used = pdq(mpi, "@PID.5.1.1^SCHM*", control="P3", rcp=f"RCP|I|2^RD\nDSC|{pointer}|I")
    assert used[1] == "MSA|AE|P3"  # used up for every process

    again = pdq(other, "@PID.5.1.1^SCHM*", control="P4", rcp="RCP|I|2^RD")
    pointer = continuation_pointer(again)
    assert named(cancel_query(mpi), "MSA") == ["MSA|AA|C9"]
    after = pdq(other, "@PID.5.1.1^SCHM*", control="P5", rcp=f"RCP|I|2^RD\nDSC|{pointer}|I")
    assert after[1] == "MSA|AE|P5"


@pytest.mark.parametrize(
    ("kind", "header"),
    [("QBP^Q23^QBP_Q21", "PORTAL|ANY|MPI|ESANTE"), ("QBP^Q22^QBP_Q21", "PORTAL|ANY|DEMOGRAPHICS|ESANTE")],
)
def test_a_query_without_qpd_is_answered_with_a_segment_error(mpi: Harness, kind: str, header: str) -> None:
    """Not an internal error (AR, "try again later"): the query itself is malformed."""
    answer = mpi.send(f"MSH|^~\\&|{header}|20240101||{kind}|Q7|P|2.5\nRCP|I")
    response = f"RSP^{kind.split('^')[1].replace('Q', 'K')}"
    assert named(answer, "MSH")[0].split("|")[8].startswith(response)
    assert named(answer, "MSA") == ["MSA|AE|Q7"]
    assert [e.rsplit("|", 3)[0] for e in named(answer, "ERR")] == [
        "ERR||QPD^1|100^Segment Sequence Error^HL70357|E"
    ]
    assert named(answer, "QAK") == ["QAK||AE"] and named(answer, "QPD") == []


def test_a_pdq_answer_in_ascii_keeps_the_letters_of_accented_names(mpi: Harness) -> None:
    """The sender declared ASCII (MSH-18): a name from another source loses its accents, not
    its letters."""
    header = "MSH|^~\\&|PORTAL|ANY|DEMOGRAPHICS|ESANTE|20240101||QBP^Q22^QBP_Q21|P1|P|2.5||||||ASCII"
    answer = mpi.send(f"{header}\nQPD|IHE PDQ Query|T2|@PID.3.1^L-1~@PID.3.4.1^LABO\nRCP|I")
    (pid,) = named(answer, "PID")
    assert "|Weber^Jean" in pid and "?" not in pid


def test_a_wildcard_or_partial_date_a_hit_meets_does_not_lower_its_confidence() -> None:
    """Schm* found Schmit: scoring the query as the name "Schm" would call that a disagreement,
    and a confidence floor would then drop the very persons the query found."""
    harness = make_harness({**CONFIG, "queries": {"default_limit": 10, "min_confidence": 0.5}})
    sent = harness.send(f"{msh('HIS|CHL', 'ADT^A04^ADT_A01', 'H1')}\nPID|||A-1^^^CHL||Weber^Jean||19820802|M")
    assert named(sent, "MSA") == ["MSA|AA|H1"]
    for criteria in ("@PID.5.1.1^WEBER", "@PID.5.1.1^WEB*", "@PID.5.1.1^WEBER~@PID.7^1982", "@PID.5.2^J*"):
        answer = pdq(harness, criteria)
        assert "QAK|T2|OK|IHE PDQ Query|1|1|0" in answer, criteria
        (qri,) = [s for s in answer if s.startswith("QRI")]
        assert qri.startswith("QRI|1.0000|"), criteria


def test_an_unsupported_query_field_is_refused_even_without_a_value(mpi: Harness) -> None:
    answer = pdq(mpi, "@PID.5.1.1^SCHMIT~@PID.99^")
    assert answer[1] == "MSA|AE|P1"
    assert [s.rsplit("|", 3)[0] for s in answer if s.startswith("ERR")] == [
        "ERR||QPD^1^3^2^1|103^Table Value Not Found^HL70357|E"
    ]


def test_a_person_merged_away_between_pages_is_not_counted(mpi: Harness) -> None:
    first = pdq(mpi, "@PID.5.1.1^SCHM*", rcp="RCP|I|1^RD")
    assert "QAK|T2|OK|IHE PDQ Query|3|1|2" in first
    pointer = continuation_pointer(first)
    shown = next(s for s in first if s.startswith("PID"))
    rest = [k for k in ("A-2", "A-3", "A-4") if f"|{k}^" not in shown]
    merged = mpi.send(
        f"{msh(kind='ADT^A40^ADT_A39', control='M1')}\nPID|||{rest[0]}^^^CHL\nMRG|{rest[1]}^^^CHL"
    )
    assert named(merged, "MSA") == ["MSA|AA|M1"]
    pages = []
    while pointer:
        page = pdq(mpi, "@PID.5.1.1^SCHM*", control=f"P{len(pages) + 2}", rcp=f"RCP|I|1^RD\nDSC|{pointer}|I")
        pages.append(page)
        dsc = [s for s in page if s.startswith("DSC")]
        pointer = dsc[0].split("|")[1] if dsc else ""
    for page in pages:
        (qak,) = [s for s in page if s.startswith("QAK")]
        returned = len([s for s in page if s.startswith("PID")])
        assert int(qak.split("|")[5]) == returned, page  # QAK-5: the persons in this answer


@pytest.mark.parametrize(
    ("criteria", "found"),
    [
        ("@PID.5.1.1^*MIT", 1),  # Schmit
        ("@PID.5.1.1^*MIT*", 2),  # Schmit, Schmitt
        ("@PID.5.1.1^S*T", 3),  # Schmit, Schmitt, Schmidt
        ("@PID.5.1.1^S*TT", 1),  # Schmitt
        ("@PID.5.1.1^*DT", 1),  # Schmidt
        ("@PID.5.2^*AIRE", 1),  # Claire
        ("@PID.11.3^E*H", 1),  # Esch
    ],
)
def test_a_wildcard_anywhere_in_a_name_stands_for_any_letters(
    mpi: Harness, criteria: str, found: int
) -> None:
    answer = pdq(mpi, criteria)
    assert f"QAK|T2|OK|IHE PDQ Query|{found}|{found}|0" in answer, answer


@pytest.mark.parametrize("surname", ["de la Cruz", "Delacruz", "DE-LA-CRUZ", "Cruz", "Dela*", "cru*"])
def test_a_surname_with_particles_is_found_under_its_other_spellings(mpi: Harness, surname: str) -> None:
    sent = mpi.send(
        f"{msh('HIS|CHL', 'ADT^A04^ADT_A01', 'H9')}\nPID|||A-9^^^CHL||de la Cruz^Maria||19770707|F"
    )
    assert named(sent, "MSA") == ["MSA|AA|H9"]
    answer = pdq(mpi, f"@PID.5.1.1^{surname}")
    assert "QAK|T2|OK|IHE PDQ Query|1|1|0" in answer, answer


def test_pdq_domains_to_return(mpi: Harness) -> None:
    answer = pdq(mpi, "@PID.5.1.1^WEBER", extra="|||||^^^LABO")
    pids = [s for s in answer if s.startswith("PID")]
    assert len(pids) == 1 and pids[0].startswith(f"PID|||L-1^^^{LABO}^PI||")
    none_there = pdq(mpi, "@PID.5.1.1^HOFFMANN", extra="|||||^^^LABO")
    assert "QAK|T2|NF|IHE PDQ Query|0|0|0" in none_there


def test_pdq_unknown_domain_to_return_is_ae(mpi: Harness) -> None:
    answer = pdq(mpi, "@PID.5.1.1^WEBER", extra="|||||^^^CHL~^^^NOWHERE")
    assert answer[1] == "MSA|AE|P1"
    assert [s.rsplit("|", 3)[0] for s in answer if s.startswith("ERR")] == [
        "ERR||QPD^1^8^2|204^Unknown Key Identifier^HL70357|E"
    ]
    assert "QAK|T2|AE|IHE PDQ Query" in answer


def test_pdq_by_identifier(mpi: Harness) -> None:
    answer = pdq(mpi, "@PID.3.1^L-1~@PID.3.4.1^LABO")
    assert "QAK|T2|OK|IHE PDQ Query|1|1|0" in answer
    alone = pdq(mpi, "@PID.3.1^L-1")
    assert alone[1] == "MSA|AE|P1"


def with_account(local_id: str, names: str, birth: str, sex: str, account: str) -> str:
    """A PID whose PID-18 (patient account number) is ``account``."""
    fields = ["PID", "", "", f"{local_id}^^^CHL", "", names, "", birth, sex, *[""] * 9, account]
    return "|".join(fields)


def test_pdq_by_patient_account_number(mpi: Harness) -> None:
    """ITI-21 lists PID.18 among the QPD-3 fields a supplier supports; a feed's PID-18 sets it."""
    update = msh("HIS|CHL", "ADT^A08^ADT_A01", "H5")
    sent = mpi.send(f"{update}\n{with_account('A-2', 'Schmit^Anne', '19750101', 'F', 'V-100^^^CHL')}")
    assert named(sent, "MSA") == ["MSA|AA|H5"]
    anne = mpi_id(mpi, "CHL", "A-2")

    for criteria in (
        "@PID.18^V-100",
        "@PID.18.1^V-100~@PID.18.4.1^CHL",
        f"@PID.18.1^V-100~@PID.18.4.2^{CHL_OID}",
    ):
        answer = pdq(mpi, criteria)
        assert answer[1] == "MSA|AA|P1" and "QAK|T2|OK|IHE PDQ Query|1|1|0" in answer
        assert next(s.split("|")[3] for s in answer if s.startswith("PID")).endswith(
            f"{anne}^^^MPI&1.3.182.2.4.2&ISO^PI"
        )
    assert "QAK|T2|OK|IHE PDQ Query|1|1|0" in pdq(mpi, "@PID.18^V-100~@PID.5.1.1^SCHMIT")
    for elsewhere in ("@PID.18^V-100~@PID.5.1.1^WEBER", "@PID.18.1^V-100~@PID.18.4.1^LABO", "@PID.18^V-999"):
        answer = pdq(mpi, elsewhere)
        assert answer[1] == "MSA|AA|P1" and "QAK|T2|NF|IHE PDQ Query|0|0|0" in answer

    unknown = pdq(mpi, "@PID.18.1^V-100~@PID.18.4.1^NOWHERE")
    assert unknown[1] == "MSA|AE|P1" and "QAK|T2|AE|IHE PDQ Query" in unknown
    assert [s.rsplit("|", 3)[0] for s in unknown if s.startswith("ERR")] == [
        "ERR||QPD^1^3^2^2|204^Unknown Key Identifier^HL70357|E"
    ]
    domain_only = pdq(mpi, "@PID.18.4.1^CHL~@PID.5.1.1^SCHMIT")
    assert [s.rsplit("|", 3)[0] for s in domain_only if s.startswith("ERR")] == [
        "ERR||QPD^1^3|101^Required Field Missing^HL70357|E"
    ]


def test_a_feed_replaces_keeps_or_removes_the_account_number(mpi: Harness) -> None:
    def feed(control: str, account: str) -> None:
        header = msh("HIS|CHL", "ADT^A08^ADT_A01", control)
        answer = mpi.send(f"{header}\n{with_account('A-3', 'Schmitt^Marie', '19800202', 'F', account)}")
        assert named(answer, "MSA") == [f"MSA|AA|{control}"]

    def found(account: str) -> bool:
        return "QAK|T2|OK|IHE PDQ Query|1|1|0" in pdq(mpi, f"@PID.18^{account}")

    feed("U1", "V-1")
    feed("U2", "V-2")  # a new account replaces the one before
    assert (found("V-1"), found("V-2")) == (False, True)
    events = mpi.events()
    feed("U3", "")  # empty: unchanged, and nothing to record
    assert found("V-2") and mpi.events() == events
    feed("U4", '""')  # the explicit null removes it
    assert not found("V-2")
    assert verify(mpi.services.store).ok  # the account numbers are in the event log too


def test_a_query_the_database_fails_is_answered_ar_in_its_own_response(
    mpi: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """RSP^K23 or RSP^K22 with MSA and QAK AR and ERR 207: the consumer may ask again; an ACK
    instead of the response it waits for would not be understood."""

    def unreachable(*args: object, **kwargs: object) -> None:
        raise ConnectionError("the database is unreachable")

    mpi.services.store.run = unreachable  # type: ignore[method-assign]
    for kind, qpd, response in (
        ("QBP^Q23^QBP_Q21", "QPD|IHE PIX Query|T1|A-1^^^CHL", "RSP^K23^RSP_K23"),
        (
            "QBP^Q22^QBP_Q21",
            "QPD|IHE PDQ Query|T1|@PID.5.1.1^WEBER~@PID.3.1^A-1~@PID.3.4^CHL",
            "RSP^K22^RSP_K21",
        ),
    ):
        with caplog.at_level(logging.ERROR, logger="mpi.hl7v2"):
            sent = f"{msh('PORTAL|ANY', kind, 'Q9')}\r{qpd}\rRCP|I\r".encode()
            answer = parse_message(mpi.application.handle(sent))
        assert answer.segments[0].raw.split("|")[8] == response
        assert named(answer, "MSA") == ["MSA|AR|Q9"] and named(answer, "QAK")[0].startswith("QAK|T1|AR")
        assert [e.rsplit("|", 3)[0] for e in named(answer, "ERR")] == [
            "ERR|||207^Application Internal Error^HL70357|E"
        ]
