"""PID and friends to domain values: identifiers, record keys and demographic changes.

What an HL7 field means for the registry:

* an **empty** field leaves the stored value as it is; the explicit null ``""``
  removes it; a field that is present replaces the value as a whole (a PID-5
  without a maiden name removes the birth name);
* PID-3 identifiers (CX) name their assigning authority in CX-4 as a namespace,
  a universal id with its type, or both; an identifier without one belongs to
  the first domain its sender feeds. The identifier in a domain the sender
  feeds is the record key; one in the matricule domain is the national number
  (a trait of the record, kept when PID-3 does not carry it); identifiers in
  other known domains are left to their own sources (one source per domain);
* PID-5 names by type code (table 0200): ``L`` legal (or no type) gives the
  family name and the given names, ``M``/``B`` maiden or birth name the birth
  name;
* PID-7 birth date to ``YYYY-MM-DD``, ``00`` for a month or day not given;
  PID-8 sex (table 0001) to ``M``/``F``/``O``/``U``; PID-11 the home (or first)
  address; PID-13 the first phone number and the first e-mail address.

Every refusal is an ``HL7Error`` with its table-0357 code and exact location.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass

from mpi.domain.limits import MAX_VALUE_LENGTH, problem_with
from mpi.domain.records import RecordKey
from mpi.errors import HL7Error
from mpi.hl7v2.codes import ErrorCode
from mpi.hl7v2.config import DomainConfig, DomainKind, HL7Config, SenderConfig
from mpi.hl7v2.message import Field, Repetition, Segment

_TIMESTAMP = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2,6}(\.\d{1,4})?)?([+-]\d{4})?")
_SEX_CODES = {"M": "M", "F": "F", "O": "O", "U": "U", "A": "O", "N": "U"}
_LEGAL_NAME_TYPES = ("L", "")
_BIRTH_NAME_TYPES = ("M", "B")
_EMAIL_TYPES = ("NET", "X.400")
_FIRST_BIRTH_YEAR = 1850


@dataclass(frozen=True)
class Identifier:
    """One CX with the domain it belongs to, and where it sat in the message."""

    value: str
    domain: DomainConfig
    location: str  # ERL of the repetition, e.g. PID^1^3^2

    @property
    def key(self) -> RecordKey:
        return RecordKey(self.domain.authority, self.value)


def read_domain(
    repetition: Repetition,
    config: HL7Config,
    location: str,
    *,
    component: int = 4,
    default: DomainConfig | None = None,
) -> DomainConfig:
    """The domain named by the HD in ``component`` (CX-4); ``default`` when it names none."""
    authority = repetition.component(component)
    namespace, universal_id, universal_id_type = (authority.subcomponent(n).strip() for n in (1, 2, 3))
    if not namespace and not universal_id:
        if default is None:
            raise HL7Error(
                "the identifier has no assigning authority and its sender feeds no domain",
                code=ErrorCode.REQUIRED_FIELD_MISSING,
                location=f"{location}^{component}",
            )
        return default
    domain = config.domain_named(namespace, universal_id, universal_id_type)
    if domain is None:
        named = "&".join(part for part in (namespace, universal_id, universal_id_type) if part)
        raise HL7Error(
            f"assigning authority {named!r} is not a domain of this MPI",
            code=ErrorCode.UNKNOWN_KEY_IDENTIFIER,
            location=f"{location}^{component}",
        )
    return domain


def read_identifiers(
    field: Field, config: HL7Config, location: str, default: DomainConfig | None = None
) -> list[Identifier]:
    """Every CX of a repeating identifier field, each with its domain."""
    found = []
    for number, repetition in enumerate(field.repetitions, start=1):
        value = repetition.component(1).value.strip()
        if not value:
            continue
        where = f"{location}^{number}"
        check_length(value, "the identifier", f"{where}^1")
        found.append(Identifier(value, read_domain(repetition, config, where, default=default), where))
    return found


def sender_default_domain(sender: SenderConfig | None, config: HL7Config) -> DomainConfig | None:
    if sender is None or not sender.domains:
        return None
    return config.domain(sender.domains[0])


@dataclass(frozen=True)
class PatientIdentity:
    """What a PID (or MRG) says about whose record it is."""

    key: RecordKey
    matricule: str | None
    ignored: tuple[Identifier, ...]  # identifiers of domains the sender does not feed


def patient_identity(
    segment: Segment, field_number: int, config: HL7Config, sender: SenderConfig, occurrence: int = 1
) -> PatientIdentity:
    """The record key of a PID-3 (or MRG-1) as sent by ``sender``."""
    name = segment.name
    location = f"{name}^{occurrence}^{field_number}"
    field = segment.field(field_number)
    if field.is_empty or field.is_null:
        raise HL7Error(
            f"{name}-{field_number} (patient identifier list) is missing",
            code=ErrorCode.REQUIRED_FIELD_MISSING,
            location=location,
        )
    identifiers = read_identifiers(field, config, location, sender_default_domain(sender, config))
    if not identifiers:
        raise HL7Error(
            f"{name}-{field_number} holds no identifier",
            code=ErrorCode.REQUIRED_FIELD_MISSING,
            location=f"{location}^1^1",
        )
    own = [i for i in identifiers if i.domain.authority in sender.domains]
    matricules = [i.value for i in identifiers if i.domain.kind is DomainKind.MATRICULE]
    others = tuple(i for i in identifiers if i not in own and i.domain.kind is DomainKind.LOCAL)
    if not own:
        where = (others[0].location + "^4") if others else f"{location}^1^4"
        raise HL7Error(
            f"{name}-{field_number} has no identifier in a domain sender {sender.application} may feed "
            f"({', '.join(sender.domains) or 'none'})",
            code=ErrorCode.UNKNOWN_KEY_IDENTIFIER,
            location=where,
        )
    return PatientIdentity(own[0].key, matricules[0] if matricules else None, others)


def check_length(value: str, what: str, location: str) -> None:
    """AE 102 at ``location`` for a value longer than the registry stores."""
    if (problem := problem_with(value, MAX_VALUE_LENGTH)) is not None:
        raise HL7Error(f"{what} {problem}", code=ErrorCode.DATA_TYPE_ERROR, location=location)


# -- demographics ---------------------------------------------------------------------
_PID_FIELD_OF = {
    "family_name": 5,
    "given_names": 5,
    "birth_name": 5,
    "street": 11,
    "house_number": 11,
    "postcode": 11,
    "city": 11,
    "country": 11,
    "phone": 13,
    "email": 13,
}


def demographic_changes(pid: Segment, identity: PatientIdentity) -> dict[str, str | None]:
    """The demographic fields a PID sets or removes (fields it leaves empty are not included)."""
    changes: dict[str, str | None] = {}
    if identity.matricule is not None:
        changes["national_id"] = identity.matricule
    changes.update(_names(pid.field(5)))
    changes.update(_birth_date(pid.field(7)))
    changes.update(_sex(pid.field(8)))
    changes.update(_address(pid.field(11)))
    changes.update(_contacts(pid.field(13)))
    for name, value in changes.items():
        if value is not None and name in _PID_FIELD_OF:
            check_length(value, name.replace("_", " "), f"PID^1^{_PID_FIELD_OF[name]}")
    return changes


def _text(value: str) -> str | None:
    return value.strip() or None


def _names(field: Field) -> dict[str, str | None]:
    names = ("family_name", "given_names", "birth_name")
    if field.is_empty:
        return {}
    if field.is_null:
        return dict.fromkeys(names)
    repetitions = field.repetitions
    typed = [(r.component(7).value.strip().upper(), r) for r in repetitions]
    legal = next((r for kind, r in typed if kind in _LEGAL_NAME_TYPES), None)
    if legal is None:
        legal = next((r for kind, r in typed if kind not in _BIRTH_NAME_TYPES), None)
    birth = next((r for kind, r in typed if kind in _BIRTH_NAME_TYPES), None)
    given = None
    if legal is not None:
        parts = [legal.component(2).value.strip(), legal.component(3).value.strip()]
        given = " ".join(part for part in parts if part) or None
    return {
        "family_name": _text(legal.component(1).subcomponent(1)) if legal is not None else None,
        "given_names": given,
        "birth_name": _text(birth.component(1).subcomponent(1)) if birth is not None else None,
    }


def parse_birth_date(text: str, location: str) -> str:
    """An HL7 DT/DTM (``YYYY[MM[DD[HHMM...]]]``) as ``YYYY-MM-DD`` with ``00`` for what is not given."""
    match = _TIMESTAMP.fullmatch(text.strip())
    if match is None:
        raise HL7Error(
            f"{text.strip()!r} is not an HL7 date (YYYY[MM[DD]])",
            code=ErrorCode.DATA_TYPE_ERROR,
            location=location,
        )
    year, month, day = int(match[1]), int(match[2] or 0), int(match[3] or 0)
    if match[2] is None and match[3] is None and match[4] is not None:
        raise HL7Error(
            f"{text.strip()!r} is not an HL7 date", code=ErrorCode.DATA_TYPE_ERROR, location=location
        )
    if year < _FIRST_BIRTH_YEAR or month > 12 or (month and day > calendar.monthrange(year, month)[1]):
        raise HL7Error(
            f"{text.strip()!r} is not a possible birth date",
            code=ErrorCode.DATA_TYPE_ERROR,
            location=location,
        )
    if match[2] is not None and month == 0:
        raise HL7Error(f"{text.strip()!r} has month 00", code=ErrorCode.DATA_TYPE_ERROR, location=location)
    if match[3] is not None and day == 0:
        raise HL7Error(f"{text.strip()!r} has day 00", code=ErrorCode.DATA_TYPE_ERROR, location=location)
    return f"{year:04d}-{month:02d}-{day:02d}"


def _birth_date(field: Field) -> dict[str, str | None]:
    if field.is_empty:
        return {}
    if field.is_null:
        return {"birth_date": None}
    return {"birth_date": parse_birth_date(field.repetition(1).component(1).value, "PID^1^7^1^1")}


def parse_sex(code: str, location: str) -> str:
    sex = _SEX_CODES.get(code.strip().upper())
    if sex is None:
        raise HL7Error(
            f"sex {code.strip()!r} is not in HL7 table 0001 (M, F, O, U, A, N)",
            code=ErrorCode.TABLE_VALUE_NOT_FOUND,
            location=location,
        )
    return sex


def _sex(field: Field) -> dict[str, str | None]:
    if field.is_empty:
        return {}
    if field.is_null:
        return {"sex": None}
    return {"sex": parse_sex(field.value, "PID^1^8^1^1")}


_ADDRESS_FIELDS = ("street", "house_number", "postcode", "city", "country")


def _address(field: Field) -> dict[str, str | None]:
    if field.is_empty:
        return {}
    if field.is_null:
        return dict.fromkeys(_ADDRESS_FIELDS)
    repetitions = field.repetitions
    home = next((r for r in repetitions if r.component(7).value.strip().upper() == "H"), repetitions[0])
    street_part = home.component(1)
    street_name = street_part.subcomponent(2).strip()
    if street_name:  # SAD split into street name and dwelling number
        street, number = street_name, street_part.subcomponent(3).strip()
    else:
        street, number = street_part.subcomponent(1).strip(), ""
    return {
        "street": street or None,
        "house_number": number or None,
        "city": _text(home.component(3).value),
        "postcode": _text(home.component(5).value),
        "country": _text(home.component(6).value),
    }


def _contacts(field: Field) -> dict[str, str | None]:
    if field.is_empty:
        return {}
    if field.is_null:
        return {"phone": None, "email": None}
    phone = email = None
    for repetition in field.repetitions:
        use = repetition.component(2).value.strip().upper()
        equipment = repetition.component(3).value.strip().lower()
        if use in _EMAIL_TYPES or equipment == "internet":
            email = email or _text(repetition.component(4).value)
            continue
        if phone is None:
            phone = _phone_number(repetition)
    return {"phone": phone, "email": email}


def _phone_number(repetition: Repetition) -> str | None:
    written = _text(repetition.component(1).value) or _text(repetition.component(12).value)
    if written is not None:
        return written
    country, area, local = (repetition.component(n).value.strip() for n in (5, 6, 7))
    if not local:
        return None
    return ("+" + country if country else "") + area + local
