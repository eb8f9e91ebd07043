"""Patient demographics query (IHE ITI-21): QBP^Q22^QBP_Q21 in, RSP^K22^RSP_K21 out; QCN^J01 cancels.

QPD-3 holds the criteria as ``@field^value`` repetitions; supported fields:

=========================================  =========================================
``@PID.3.1`` with ``@PID.3.4[.n]``         an identifier in a domain (both needed)
``@PID.5``, ``@PID.5.1``, ``@PID.5.1.1``   family name (or birth name); ``*`` any letters
``@PID.5.2``                               given name; ``*`` any letters
``@PID.7``, ``@PID.7.1``                   birth date, ``YYYY[MM[DD]]``
``@PID.8``                                 sex
``@PID.11.3``, ``@PID.11.5``               city, postal code
``@PID.18``, ``@PID.18.1``                  patient account number, with ``@PID.18.4[.n]``
                                           in one domain, else in any local domain
=========================================  =========================================

Names match ignoring case and accents, exactly or phonetically (Double
Metaphone), a surname with particles also by its words run together or its last
word ("Delacruz", "Cruz" for "de la Cruz"), through
:class:`~mpi.service.directory.PersonDirectory`; the hits are scored by the
matching engine, whose confidence goes in QRI-1. QPD-8 limits the identifiers
returned (and the persons: only those with one in those domains);
an unknown QPD-8 domain is AE with ``QPD^1^8^<repetition>`` 204. RCP-2 caps a
response; when more hits remain the response says so in QAK-4/5/6 and carries
``DSC|<pointer>|I``, and the consumer asks for the next ones by repeating the
query (new MSH-10, same QPD) with that DSC. QCN^J01 forgets a continuation.
An unknown pointer, or one used with another QPD, is AE with ``DSC^1^1`` 204; the
request that used a pointer, resent with its MSH-10, gets its page again.
Continuations live in the database (:class:`~mpi.service.continuations.Continuations`):
a consumer that reconnects between pages may reach another server process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from mpi.domain.access import AccessAction
from mpi.domain.records import Demographics
from mpi.errors import HL7Error, NotReady
from mpi.hl7v2.ack import AckCode, ErrorDetail, build_ack
from mpi.hl7v2.codes import ErrorCode
from mpi.hl7v2.config import DomainConfig, DomainKind, HL7Config
from mpi.hl7v2.encode import Components, FieldValue, Repetitions, encode_segment
from mpi.hl7v2.header import HierarchicDesignator
from mpi.hl7v2.location import Location
from mpi.hl7v2.message import Message, Repetition, Segment
from mpi.hl7v2.pix import (
    AuditSink,
    QueryAnswer,
    audit_query,
    failed_query,
    find_person,
    identifier_list,
    qualified_identifiers,
    query_echo,
)
from mpi.hl7v2.respond import new_control_id, response
from mpi.hl7v2.translate import parse_birth_date, parse_sex
from mpi.service.continuations import Continuations
from mpi.service.crossrefs import CrossReferences, PersonProfile
from mpi.service.directory import Criteria, Hit, PersonDirectory
from mpi.service.ports import Matcher

PDQ_RESPONSE_TYPE = ("RSP", "K22", "RSP_K21")
_NAME_FIELDS = {"PID.5", "PID.5.1", "PID.5.1.1"}
_GIVEN_FIELDS = {"PID.5.2"}
_DATE_FIELDS = {"PID.7", "PID.7.1"}
_SEX_FIELDS = {"PID.8", "PID.8.1"}
_CITY_FIELDS = {"PID.11.3"}
_POSTCODE_FIELDS = {"PID.11.5"}
_ID_FIELDS = {"PID.3", "PID.3.1"}
_ID_AUTHORITY_FIELDS = {"PID.3.4": 1, "PID.3.4.1": 1, "PID.3.4.2": 2, "PID.3.4.3": 3}
_ACCOUNT_FIELDS = {"PID.18", "PID.18.1"}
_ACCOUNT_AUTHORITY_FIELDS = {"PID.18.4": 1, "PID.18.4.1": 1, "PID.18.4.2": 2, "PID.18.4.3": 3}
_SUPPORTED_FIELDS = frozenset().union(
    _NAME_FIELDS,
    _GIVEN_FIELDS,
    _DATE_FIELDS,
    _SEX_FIELDS,
    _CITY_FIELDS,
    _POSTCODE_FIELDS,
    _ID_FIELDS,
    _ID_AUTHORITY_FIELDS,
    _ACCOUNT_FIELDS,
    _ACCOUNT_AUTHORITY_FIELDS,
)


@dataclass(frozen=True)
class _Query:
    criteria: Criteria
    identifier: tuple[str, DomainConfig] | None
    domains: frozenset[str] | None
    account: tuple[str, tuple[str, ...]] | None = None  # the number, and the authorities searched


class PdqQuery:
    def __init__(
        self,
        config: HL7Config,
        crossrefs: CrossReferences,
        directory: PersonDirectory,
        continuations: Continuations,
        matcher: Matcher,
        clock: Callable[[], datetime],
        audit: AuditSink | None = None,
    ) -> None:
        self._config = config
        self._audit = audit
        self._crossrefs = crossrefs
        self._directory = directory
        self._continuations = continuations
        self._matcher = matcher
        self._clock = clock

    # -- QBP^Q22 --------------------------------------------------------------------
    def answer(self, message: Message) -> bytes:
        try:
            answer, counts = self._answer(message, message.segment("QPD"))
        except HL7Error as error:
            answer, counts = QueryAnswer("AE", "AE", unknown_domain_errors(error), ()), None
        except NotReady as error:  # a server still starting: AR, the consumer may ask again
            starting = HL7Error(str(error), code=ErrorCode.APPLICATION_INTERNAL_ERROR)
            answer, counts = QueryAnswer("AR", "AR", (ErrorDetail.from_error(starting),), ()), None
        except Exception:
            answer, counts = failed_query(message), None
        audit_query(self._audit, message, AccessAction.DEMOGRAPHICS_QUERIED, answer, self._clock())
        requested = message.msh.receiving_application
        sender = (
            requested if requested.namespace_id else HierarchicDesignator(self._config.identity.application)
        )
        return response(
            message,
            message_type=PDQ_RESPONSE_TYPE,
            sender=sender,
            facility=self._config.identity.facility,
            code=answer.code,
            errors=answer.errors,
            body=[*query_echo(message, answer.status, counts), *answer.body],
            timestamp=self._clock(),
        )

    def _answer(self, message: Message, qpd: Segment) -> tuple[QueryAnswer, tuple[int, int, int]]:
        query = self._parse(qpd)
        limit = self._limit(message)
        pointer = message.find_segment("DSC")
        sender = (message.msh.sending_application.namespace_id, message.msh.sending_facility.namespace_id)
        if pointer is not None and pointer.get(1).strip():
            hits, total = self._continue(pointer.get(1).strip(), sender, qpd, message.msh.key[2])
        else:
            hits = self._hits(query)
            total = len(hits)
        if not hits:
            return QueryAnswer("AA", "NF", (), ()), (0, 0, 0)
        found, rest = hits[:limit], hits[limit:]
        profiles = self._crossrefs.profiles([hit.mpi_id for hit in found])
        # A person merged away since the query's first page is no longer there to answer: the
        # counts say what is returned, not what was found then.
        page = [hit for hit in found if hit.mpi_id in profiles]
        total -= len(found) - len(page)
        body: list[str] = []
        for hit in page:
            body += self._person_segments(message, profiles[hit.mpi_id], hit, query.domains)
        if rest:
            token = self._continuations.remember(sender, qpd.get(2), qpd.raw, rest, total)
            body.append(encode_segment("DSC", {1: token, 2: "I"}, message.delimiters))
        shown = tuple(hit.mpi_id for hit in page)
        return QueryAnswer("AA", "OK", (), tuple(body), shown), (total, len(page), len(rest))

    def _hits(self, query: _Query) -> list[Hit]:
        criteria_given = query.criteria != Criteria()
        hits = self._directory.search(query.criteria) if criteria_given else None
        if query.identifier is not None:
            value, domain = query.identifier
            person = find_person(self._crossrefs, domain, value, "QPD^1^3")
            if person is None:
                return []
            hits = (
                [Hit(person.mpi_id, 1.0)] if hits is None else [h for h in hits if h.mpi_id == person.mpi_id]
            )
        if query.account is not None:
            number, authorities = query.account
            owners = self._crossrefs.by_account(authorities, number)
            if hits is None:
                hits = [Hit(mpi_id, 1.0) for mpi_id in owners]
            else:
                hits = [h for h in hits if h.mpi_id in set(owners)]
        if hits is None:
            raise HL7Error(
                "QPD-3 gives no search criterion", code=ErrorCode.REQUIRED_FIELD_MISSING, location="QPD^1^3"
            )
        hits = [h for h in hits if h.confidence >= self._config.queries.min_confidence]
        if query.domains is not None:
            wanted = query.domains
            profiles = self._crossrefs.of_persons([h.mpi_id for h in hits])
            kept = {
                mpi_id
                for mpi_id, person in profiles.items()
                if any(i.domain.authority in wanted for i in qualified_identifiers(person, self._config))
            }
            hits = [h for h in hits if h.mpi_id in kept]
        return hits

    # -- reading the query ----------------------------------------------------------
    def _parse(self, qpd: Segment) -> _Query:
        values: dict[str, str] = {}
        authority: dict[int, str] = {}
        authority_location = "QPD^1^3"
        identifier: str | None = None
        account: str | None = None
        account_authority: dict[int, str] = {}
        account_location = "QPD^1^3"
        for number, repetition in enumerate(qpd.field(3).repetitions, start=1):
            name = repetition.component(1).value.strip().lstrip("@").upper()
            value = repetition.component(2).value.strip()
            where = f"QPD^1^3^{number}"
            if not name and not value:
                continue  # an empty repetition asks for nothing
            # A field this supplier does not search is refused even without a value: the
            # consumer meant something by it, and answering as if it were absent misleads.
            if name not in _SUPPORTED_FIELDS:
                raise HL7Error(
                    f"query field @{name} is not supported",
                    code=ErrorCode.TABLE_VALUE_NOT_FOUND,
                    location=f"{where}^1",
                )
            if not value:
                continue
            if name in _ID_FIELDS:
                identifier = value
            elif name in _ID_AUTHORITY_FIELDS:
                authority[_ID_AUTHORITY_FIELDS[name]] = value
                authority_location = f"{where}^2"
            elif name in _ACCOUNT_FIELDS:
                account = value
            elif name in _ACCOUNT_AUTHORITY_FIELDS:
                account_authority[_ACCOUNT_AUTHORITY_FIELDS[name]] = value
                account_location = f"{where}^2"
            elif name in _NAME_FIELDS:
                values["family_name"] = value
            elif name in _GIVEN_FIELDS:
                values["given_name"] = value
            elif name in _DATE_FIELDS:
                values["birth_date"] = parse_birth_date(value, f"{where}^2")
            elif name in _SEX_FIELDS:
                values["sex"] = parse_sex(value, f"{where}^2")
            elif name in _CITY_FIELDS:
                values["city"] = value
            elif name in _POSTCODE_FIELDS:
                values["postcode"] = value
        if (identifier is None) != (not authority):
            raise HL7Error(
                "@PID.3.1 and @PID.3.4 go together: an identifier means nothing without its domain",
                code=ErrorCode.REQUIRED_FIELD_MISSING,
                location="QPD^1^3",
            )
        named = None
        if identifier is not None:
            named = (identifier, self._domain(authority, authority_location))
        accounts = self._account(account, account_authority, account_location)
        return _Query(Criteria(**values), named, self._requested_domains(qpd), accounts)

    def _account(
        self, number: str | None, authority: dict[int, str], location: str
    ) -> tuple[str, tuple[str, ...]] | None:
        """The account number asked for and the domains to look in (those of local ids by default)."""
        if number is None:
            if authority:
                raise HL7Error(
                    "@PID.18.4 names the domain of an account number, but @PID.18.1 gives none",
                    code=ErrorCode.REQUIRED_FIELD_MISSING,
                    location="QPD^1^3",
                )
            return None
        if not authority:
            local = tuple(d.authority for d in self._config.domains if d.kind is DomainKind.LOCAL)
            return number, local
        return number, (self._domain(authority, location).authority,)

    def _domain(self, authority: Mapping[int, str], location: str) -> DomainConfig:
        """The configured domain an assigning authority (namespace, universal id, its type) names."""
        parts = [authority.get(part, "") for part in (1, 2, 3)]
        domain = self._config.domain_named(*parts)
        if domain is None:
            raise HL7Error(
                f"assigning authority {'&'.join(p for p in parts if p)!r} is not a domain of this MPI",
                code=ErrorCode.UNKNOWN_KEY_IDENTIFIER,
                location=location,
            )
        return domain

    def _requested_domains(self, qpd: Segment) -> frozenset[str] | None:
        wanted: set[str] = set()
        unknown: list[int] = []
        for number, repetition in enumerate(qpd.field(8).repetitions, start=1):
            if repetition.is_empty:  # "^^^": an empty field written with its delimiters
                continue
            domain = _domain_or_none(repetition, self._config)
            if domain is None:
                unknown.append(number)
            else:
                wanted.add(domain.authority)
        if unknown:
            raise _UnknownDomains(unknown)
        return frozenset(wanted) if wanted else None

    def _limit(self, message: Message) -> int:
        rcp = message.find_segment("RCP")
        text = rcp.get(2, 1, 1).strip() if rcp is not None else ""
        if not text:
            return self._config.queries.default_limit
        if not text.isdigit() or int(text) < 1:
            raise HL7Error(
                f"RCP-2 quantity {text!r} is not a positive number",
                code=ErrorCode.DATA_TYPE_ERROR,
                location="RCP^1^2^1^1",
            )
        return min(int(text), self._config.queries.max_limit)

    # -- continuation ---------------------------------------------------------------
    def _continue(
        self, token: str, sender: tuple[str, str], qpd: Segment, request: str
    ) -> tuple[list[Hit], int]:
        # Only the query it was given for uses it up: another sender's guess, or a mistyped
        # query, must not cost the rightful consumer its next page.
        found = self._continuations.take(token, sender, qpd.raw, request)
        if found is None:
            raise HL7Error(
                f"continuation pointer {token!r} is unknown, expired, or was given for another query",
                code=ErrorCode.UNKNOWN_KEY_IDENTIFIER,
                location="DSC^1^1",
            )
        return found

    # -- QCN^J01 --------------------------------------------------------------------
    def cancel(self, message: Message) -> bytes:
        """Forget the sender's continuations of the query tag in QID-1; answered with an ACK."""
        qid = message.find_segment("QID")
        code: AckCode = "AA"
        errors: list[ErrorDetail] = []
        if qid is None or not qid.get(1).strip():
            code = "AE"
            errors.append(
                ErrorDetail(
                    ErrorCode.REQUIRED_FIELD_MISSING, Location("QID", 1, 1), diagnostic="QID-1 is missing"
                )
            )
        else:
            sender = (message.msh.sending_application.namespace_id, message.msh.sending_facility.namespace_id)
            self._continuations.cancel(sender, qid.get(1).strip())
        return build_ack(
            message,
            code,
            errors,
            sending_app=self._config.identity.application,
            sending_facility=self._config.identity.facility,
            control_id=new_control_id(),
            timestamp=self._clock(),
        )

    # -- writing hits ---------------------------------------------------------------
    def _person_segments(
        self, message: Message, profile: PersonProfile, hit: Hit, domains: frozenset[str] | None
    ) -> list[str]:
        identifiers = [
            i
            for i in qualified_identifiers(profile.identifiers, self._config)
            if domains is None or i.domain.authority in domains
        ]
        golden = profile.golden
        fields: dict[int, FieldValue] = {3: identifier_list(identifiers), 5: _names(golden)}
        if golden.birth_date:
            fields[7] = _hl7_date(golden.birth_date)
        if golden.sex:
            fields[8] = golden.sex
        if any((golden.street, golden.city, golden.postcode, golden.country)):
            street = " ".join(part for part in (golden.house_number, golden.street) if part)
            fields[11] = Components(
                street, "", golden.city or "", "", golden.postcode or "", golden.country or "", "H"
            )
        if golden.phone:
            fields[13] = Components(golden.phone, "PRN", "PH")
        delimiters = message.delimiters
        return [
            encode_segment("PID", fields, delimiters),
            encode_segment(
                "QRI", {1: f"{hit.confidence:.4f}", 3: Components("MPI", "mpi engine")}, delimiters
            ),
        ]


class _UnknownDomains(HL7Error):
    """Unknown QPD-8 domains: one ERR per repetition."""

    def __init__(self, repetitions: list[int]) -> None:
        super().__init__(
            f"QPD-8 names unknown domains (repetitions {repetitions})",
            code=ErrorCode.UNKNOWN_KEY_IDENTIFIER,
            location=f"QPD^1^8^{repetitions[0]}",
        )
        self.repetitions = repetitions


def unknown_domain_errors(error: HL7Error) -> tuple[ErrorDetail, ...]:
    if isinstance(error, _UnknownDomains):
        return tuple(
            ErrorDetail(
                ErrorCode.UNKNOWN_KEY_IDENTIFIER, Location("QPD", 1, 8, n), diagnostic="unknown domain"
            )
            for n in error.repetitions
        )
    return (ErrorDetail.from_error(error),)


def _domain_or_none(repetition: Repetition, config: HL7Config) -> DomainConfig | None:
    hd = repetition.component(4)
    parts = [hd.subcomponent(n).strip() for n in (1, 2, 3)]
    return config.domain_named(*parts)


def _names(golden: Demographics) -> Repetitions:
    given = (golden.given_names or "").split(" ", 1)
    legal = Components(
        golden.family_name or "", given[0], given[1] if len(given) > 1 else "", "", "", "", "L"
    )
    if golden.birth_name:
        return Repetitions(legal, Components(golden.birth_name, "", "", "", "", "", "M"))
    return Repetitions(legal)


def _hl7_date(iso: str) -> str:
    year, _, rest = iso.partition("-")
    month, _, day = rest.partition("-")
    if month in ("", "00"):
        return year
    return year + month if day in ("", "00") else year + month + day
