"""PIX query (IHE ITI-9): QBP^Q23^QBP_Q21 in, RSP^K23^RSP_K23 out.

The five answers of ITI TF-2 3.9.4.2.2.6, exactly:

========================================================  ===========  ==========================
case                                                      MSA / QAK-2  ERR
========================================================  ===========  ==========================
identifier known, identifiers in the requested domains    AA / OK      none
identifier known, nothing in the requested domains        AA / NF      none (and no PID)
identifier unknown in a known domain                      AE / AE      ``QPD^1^3^1^1`` 204
domain of QPD-3 unknown                                   AE / AE      ``QPD^1^3^1^4`` 204
a domain of QPD-4 unknown                                 AE / AE      ``QPD^1^4^<rep>`` 204 each
========================================================  ===========  ==========================

The answer's PID-3 lists the person's other identifiers with fully qualified
assigning authorities (the queried one left out) and PID-5 is ``~^^^^^^S``:
a PIX answer carries no demographics. A matricule carried by more than one
person (a collision waiting for review) is answered AE with 205 rather than
with someone's identifiers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from mpi.domain.access import Access, AccessAction, AccessChannel
from mpi.domain.mpi_id import normalise_mpi_id
from mpi.domain.records import RecordKey
from mpi.errors import HL7Error
from mpi.hl7v2.ack import AckCode, ErrorDetail
from mpi.hl7v2.codes import ErrorCode
from mpi.hl7v2.config import DomainConfig, DomainKind, HL7Config
from mpi.hl7v2.encode import Components, FieldValue, Raw, Repetitions, Subcomponents, encode_segment
from mpi.hl7v2.header import HierarchicDesignator
from mpi.hl7v2.location import Location
from mpi.hl7v2.message import Message, Repetition, Segment
from mpi.hl7v2.respond import response
from mpi.hl7v2.translate import read_domain
from mpi.service.access import Viewer
from mpi.service.crossrefs import CrossReferences, PersonIdentifiers
from mpi.service.operations import judge_matricule

log = logging.getLogger("mpi.hl7v2")

PIX_RESPONSE_TYPE = ("RSP", "K23", "RSP_K23")


@dataclass(frozen=True)
class QualifiedIdentifier:
    value: str
    domain: DomainConfig


def qualified_identifiers(person: PersonIdentifiers, config: HL7Config) -> list[QualifiedIdentifier]:
    """Every identifier of the person in a configured domain: local ids, matricules, the MPI id."""
    found = []
    for key in person.records:
        domain = config.domain(key.authority)
        if domain is not None and domain.kind is not DomainKind.MPI:
            found.append(QualifiedIdentifier(key.local_id, domain))
    matricule_domain = config.domain_of_kind(DomainKind.MATRICULE)
    if matricule_domain is not None:
        fed = {key.local_id for key in person.records if key.authority == matricule_domain.authority}
        found += [QualifiedIdentifier(m, matricule_domain) for m in person.matricules if m not in fed]
    mpi_domain = config.domain_of_kind(DomainKind.MPI)
    if mpi_domain is not None:
        found.append(QualifiedIdentifier(person.mpi_id, mpi_domain))
    return found


def identifier_list(identifiers: Sequence[QualifiedIdentifier]) -> Repetitions:
    """PID-3 with fully qualified assigning authorities."""
    return Repetitions(
        *(
            Components(
                i.value,
                "",
                "",
                Subcomponents(i.domain.namespace, i.domain.universal_id, i.domain.universal_id_type),
                i.domain.identifier_type,
            )
            for i in identifiers
        )
    )


def find_person(
    crossrefs: CrossReferences, domain: DomainConfig, value: str, location: str
) -> PersonIdentifiers | None:
    """The person an identifier of a domain belongs to; ``None`` if unknown."""
    if domain.kind is DomainKind.MPI:
        return crossrefs.by_person(value)
    person = crossrefs.by_record(RecordKey(domain.authority, value))
    if person is not None or domain.kind is not DomainKind.MATRICULE:
        return person
    persons = crossrefs.by_matricule(value)
    if len(persons) > 1:
        raise HL7Error(
            f"matricule {value} is carried by {len(persons)} persons (a potential collision under review)",
            code=ErrorCode.DUPLICATE_KEY_IDENTIFIER,
            location=location,
        )
    return persons[0] if persons else None


def failed_query(message: Message) -> QueryAnswer:
    """AR with ERR 207, in the query's own response: it could not be answered now (the database
    unreachable...); the consumer may ask again. Called while handling the exception."""
    log.exception("internal error answering query %s", message.msh.control_id)
    error = HL7Error(
        "internal error; the query could not be answered, ask again later",
        code=ErrorCode.APPLICATION_INTERNAL_ERROR,
    )
    return QueryAnswer("AR", "AR", (ErrorDetail.from_error(error),), ())


def stored_form(domain: DomainConfig, value: str) -> str:
    """An identifier as the MPI keeps it: a matricule without its spaces or dots, an MPI id in
    capitals without separators; a local id as sent."""
    if domain.kind is DomainKind.MATRICULE:
        return judge_matricule(value)[0] or value
    if domain.kind is DomainKind.MPI:
        return normalise_mpi_id(value)
    return value


def query_domain(repetition: Repetition, config: HL7Config, location: str) -> DomainConfig:
    """The domain of a queried identifier; none named is as unknown as a wrong one (204)."""
    try:
        return read_domain(repetition, config, location)
    except HL7Error as error:
        raise HL7Error(str(error), code=ErrorCode.UNKNOWN_KEY_IDENTIFIER, location=error.location) from None


@dataclass(frozen=True)
class QueryAnswer:
    code: AckCode
    status: str  # QAK-2: OK, NF, AE, AR
    errors: tuple[ErrorDetail, ...]
    body: tuple[str, ...]  # the segments after QPD
    shown: tuple[str, ...] = ()  # MPI ids of the persons the answer is about (the access audit trail)


AuditSink = Callable[[Access], None]


def audit_query(
    audit: AuditSink | None, message: Message, action: AccessAction, answer: QueryAnswer, at: datetime
) -> None:
    """Record the query in the access audit trail: the sender, its QPD, the persons answered."""
    if audit is None:
        return
    msh = message.msh
    sender = f"{msh.sending_application.namespace_id}|{msh.sending_facility.namespace_id}"
    qpd = message.find_segment("QPD")
    criteria = qpd.raw if qpd is not None else "(no QPD segment)"
    audit(Viewer(sender, AccessChannel.HL7).access(at, action, answer.shown, criteria))


def query_echo(message: Message, status: str, counts: tuple[int, int, int] | None = None) -> list[str]:
    """A query response's QAK and the query's QPD echoed as received.

    A query without a QPD is answered all the same (with the error of its missing segment):
    its QAK then names no query, and there is nothing to echo."""
    qpd = message.find_segment("QPD")
    qak: dict[int, FieldValue] = {2: status}
    if qpd is not None:
        qak.update({1: Raw(qpd.raw_value(2)), 3: Raw(qpd.raw_value(1))})
    if counts is not None:
        qak.update({4: str(counts[0]), 5: str(counts[1]), 6: str(counts[2])})
    echo = [qpd.raw] if qpd is not None else []
    return [encode_segment("QAK", qak, message.delimiters), *echo]


class PixQuery:
    def __init__(
        self,
        config: HL7Config,
        crossrefs: CrossReferences,
        clock: Callable[[], datetime],
        audit: AuditSink | None = None,
    ) -> None:
        self._config = config
        self._crossrefs = crossrefs
        self._clock = clock
        self._audit = audit

    def answer(self, message: Message) -> bytes:
        try:
            answer = self._answer(message, message.segment("QPD"))
        except HL7Error as error:
            answer = QueryAnswer("AR" if error.reject else "AE", "AE", (ErrorDetail.from_error(error),), ())
        except Exception:
            answer = failed_query(message)
        audit_query(self._audit, message, AccessAction.CROSS_REFERENCES_QUERIED, answer, self._clock())
        return response(
            message,
            message_type=PIX_RESPONSE_TYPE,
            sender=HierarchicDesignator(self._config.identity.application),
            facility=self._config.identity.facility,
            code=answer.code,
            errors=answer.errors,
            body=[*query_echo(message, answer.status), *answer.body],
            timestamp=self._clock(),
        )

    def _answer(self, message: Message, qpd: Segment) -> QueryAnswer:
        wanted, unknown = self._requested_domains(qpd.field(4).repetitions)
        if unknown:
            return QueryAnswer("AE", "AE", tuple(unknown), ())
        queried = qpd.field(3).repetition(1)
        value = queried.component(1).value.strip()
        if not value:
            raise HL7Error(
                "QPD-3 (person identifier) is missing",
                code=ErrorCode.REQUIRED_FIELD_MISSING,
                location="QPD^1^3^1^1",
            )
        domain = query_domain(queried, self._config, "QPD^1^3^1")
        person = find_person(self._crossrefs, domain, value, "QPD^1^3^1^1")
        if person is None:
            raise HL7Error(
                f"no patient has identifier {value!r} in domain {domain.authority}",
                code=ErrorCode.UNKNOWN_KEY_IDENTIFIER,
                location="QPD^1^3^1^1",
            )
        queried_as = stored_form(domain, value)
        others = [
            i
            for i in qualified_identifiers(person, self._config)
            if not (i.domain == domain and i.value == queried_as)
            and (wanted is None or i.domain.authority in wanted)
        ]
        if not others:
            return QueryAnswer("AA", "NF", (), (), shown=(person.mpi_id,))
        pid = encode_segment(
            "PID",
            {3: identifier_list(others), 5: Repetitions("", Components("", "", "", "", "", "", "S"))},
            message.delimiters,
        )
        return QueryAnswer("AA", "OK", (), (pid,), shown=(person.mpi_id,))

    def _requested_domains(
        self, repetitions: Sequence[Repetition]
    ) -> tuple[set[str] | None, list[ErrorDetail]]:
        """QPD-4: the authorities asked for (``None`` for all), and an error per unknown one."""
        wanted: set[str] = set()
        unknown: list[ErrorDetail] = []
        for number, repetition in enumerate(repetitions, start=1):
            if repetition.is_empty:  # "^^^": an empty field written with its delimiters
                continue
            try:
                domain = read_domain(repetition, self._config, f"QPD^1^4^{number}")
            except HL7Error as error:
                unknown.append(
                    ErrorDetail(
                        ErrorCode.UNKNOWN_KEY_IDENTIFIER,
                        Location("QPD", 1, 4, number),
                        diagnostic=str(error),
                    )
                )
                continue
            wanted.add(domain.authority)
        return (wanted or None), unknown
