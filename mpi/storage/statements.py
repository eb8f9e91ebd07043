"""The statements of the online hot path, built once with bind parameters.

Building a SQLAlchemy statement costs several times more than running it on an
indexed table (about 250 µs against 80 µs for a primary-key lookup on SQLite),
and a registration runs a dozen of them; so they are built at import and only
executed per call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    Boolean,
    Select,
    String,
    any_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

from mpi.domain.records import DEMOGRAPHIC_FIELDS
from mpi.domain.reviews import ReviewStatus
from mpi.storage import tables as t

V = TypeVar("V")
SELECT_CHUNK = 900  # values bound in one statement: below SQLite's bound-parameter limit


def chunks(values: Sequence[V]) -> Iterator[Sequence[V]]:
    """``values`` in slices of at most :data:`SELECT_CHUNK`, for one statement each."""
    for start in range(0, len(values), SELECT_CHUNK):
        yield values[start : start + SELECT_CHUNK]


_record = t.source_record
_identifier = t.record_identifier
_review = t.review_task

FIND_RECORD = select(_record).where(
    _record.c.authority == bindparam("authority"), _record.c.local_id == bindparam("local_id")
)
RECORDS_BY_ID = select(_record).where(_record.c.record_id.in_(bindparam("ids", expanding=True)))
RECORDS_AFTER = (
    select(_record)
    .where(_record.c.record_id > bindparam("after"))
    .order_by(_record.c.record_id)
    .limit(bindparam("limit"))
)
RECORDS_AFTER_FOR_UPDATE = RECORDS_AFTER.with_for_update()
INSERT_RECORD = insert(_record).returning(_record.c.record_id)
# PostgreSQL: a new record with its first identifier, blocking keys and stored form, in one
# round trip instead of three (a registration's writes before its link).
_RECORD_COLUMNS = (
    "authority",
    "local_id",
    "version",
    *DEMOGRAPHIC_FIELDS,
    "matricule",
    "updated_at",
    "actor",
)
_new_record = (
    insert(_record)
    .values({_record.c[name]: bindparam(name, type_=_record.c[name].type) for name in _RECORD_COLUMNS})
    .returning(_record.c.record_id)
    .cte("new_record")
)
_new_identifier = (
    insert(_identifier)
    .from_select(
        ["record_id", "system", "value", "raw", "status", "active", "assigned_at"],
        select(
            _new_record.c.record_id,
            bindparam("i_system", type_=String()),
            bindparam("i_value", type_=String()),
            bindparam("i_raw", type_=String()),
            bindparam("i_status", type_=String()),
            true(),
            bindparam("updated_at", type_=_record.c.updated_at.type),
        ).where(bindparam("i_system", type_=String()).is_not(None)),
    )
    .returning(_identifier.c.identifier_id)
    .cte("new_identifier")
)
_new_form = (
    insert(t.record_form)
    .from_select(
        ["record_id", "version", "form"],
        select(_new_record.c.record_id, literal(1), bindparam("form", type_=String())).where(
            bindparam("form", type_=String()).is_not(None)
        ),
    )
    .cte("new_form")
)
_new_keys = (
    insert(t.blocking_key)
    .from_select(
        ["key", "record_id"],
        select(func.unnest(bindparam("keys", type_=ARRAY(String))), _new_record.c.record_id).distinct(),
    )
    .cte("new_keys")
)
_new_link = (
    insert(t.link)
    .from_select(
        ["record_id", "mpi_id", "provenance", "score", "model_version", "linked_at", "actor", "reason"],
        select(
            _new_record.c.record_id,
            bindparam("l_mpi_id", type_=String()),
            bindparam("l_provenance", type_=String()),
            bindparam("l_score", type_=t.link.c.score.type),
            bindparam("l_model_version", type_=String()),
            bindparam("updated_at", type_=_record.c.updated_at.type),
            bindparam("actor", type_=String()),
            bindparam("l_reason", type_=String()),
        ).where(bindparam("l_mpi_id", type_=String()).is_not(None)),
    )
    .cte("new_link")
)
PG_INSERT_INDEXED_RECORD = (
    select(_new_record.c.record_id, select(_new_identifier.c.identifier_id).scalar_subquery())
    .add_cte(_new_form)
    .add_cte(_new_keys)
    .add_cte(_new_link)
)
# The same, storing first the person the new record links to (a person created with its first
# record: one round trip instead of two). The link's foreign key is checked at the statement's
# end, when the person is there.
_PERSON_COLUMNS = tuple(column.name for column in t.person.columns)
PG_INSERT_INDEXED_RECORD_OF_NEW_PERSON = PG_INSERT_INDEXED_RECORD.add_cte(
    insert(t.person)
    .values(
        {t.person.c[name]: bindparam(f"p_{name}", type_=t.person.c[name].type) for name in _PERSON_COLUMNS}
    )
    .cte("new_person")
)


def _current_records_of(persons: ColumnElement[bool]) -> Select[Any]:
    """The current records of the persons whose link satisfies ``persons``: one its source
    superseded (merged into another of its ids, ADT^A40) still links to the person but no longer
    speaks for it."""
    return (
        select(_record)
        .join(t.link, t.link.c.record_id == _record.c.record_id)
        .where(persons, ~exists().where(t.superseded_record.c.record_id == _record.c.record_id))
    )


# The same as PG_INSERT_INDEXED_RECORD, also reading the other current records of the person the
# new one is linked to (for its golden record). Run after that person is locked, the statement's
# snapshot already holds every change to its links; the new record itself is not among them (a
# statement does not see its own inserts).
_other_members = _current_records_of(t.link.c.mpi_id == bindparam("l_mpi_id", type_=String())).subquery(
    "member"
)
PG_INSERT_INDEXED_RECORD_READING_MEMBERS = (
    select(
        _new_record.c.record_id.label("new_record_id"),
        select(_new_identifier.c.identifier_id).scalar_subquery().label("new_identifier_id"),
        *_other_members.c,
    )
    .select_from(_new_record.outerjoin(_other_members, true()))
    .order_by(_other_members.c.record_id)
    .add_cte(_new_form)
    .add_cte(_new_keys)
    .add_cte(_new_link)
)
ARCHIVE_CURRENT_VERSION = insert(t.record_version).from_select(
    ["record_id", "version", *DEMOGRAPHIC_FIELDS, "matricule", "recorded_at", "actor"],
    select(
        _record.c.record_id,
        _record.c.version,
        *(_record.c[f] for f in DEMOGRAPHIC_FIELDS),
        _record.c.matricule,
        _record.c.updated_at,
        _record.c.actor,
    ).where(_record.c.record_id == bindparam("record_id")),
)
VERSION_HISTORY = (
    select(t.record_version)
    .where(t.record_version.c.record_id == bindparam("record_id"))
    .order_by(t.record_version.c.version)
)
UPDATE_RECORD = update(_record).where(_record.c.record_id == bindparam("b_record_id"))

ACTIVE_IDENTIFIERS = (
    select(_identifier)
    .where(_identifier.c.record_id == bindparam("record_id"), _identifier.c.active.is_(True))
    .order_by(_identifier.c.identifier_id)
)
INSERT_IDENTIFIER = insert(_identifier).returning(_identifier.c.identifier_id)
UPDATE_IDENTIFIER = update(_identifier).where(_identifier.c.identifier_id == bindparam("b_identifier_id"))
RECORDS_WITH_IDENTIFIER = (
    select(_identifier.c.record_id)
    .where(
        _identifier.c.system == bindparam("system"),
        _identifier.c.value == bindparam("value"),
        _identifier.c.active.is_(True),
    )
    .distinct()
    .order_by(_identifier.c.record_id)
)

PERSON = select(t.person).where(t.person.c.mpi_id == bindparam("mpi_id"))
PERSON_FOR_UPDATE = PERSON.with_for_update()
PERSONS = (
    select(t.person)
    .where(t.person.c.mpi_id.in_(bindparam("ids", expanding=True)))
    .order_by(t.person.c.mpi_id)
)
# PostgreSQL: the ids as one array parameter, so the statement is compiled once (storage.direct).
PG_PERSONS_FOR_UPDATE = (
    select(t.person)
    .where(t.person.c.mpi_id == any_(bindparam("ids", type_=ARRAY(String))))
    .order_by(t.person.c.mpi_id)
    .with_for_update()
)
INSERT_PERSON = insert(t.person)
UPDATE_PERSON = update(t.person).where(t.person.c.mpi_id == bindparam("b_mpi_id"))

LINKS_BY_RECORD = select(t.link).where(t.link.c.record_id.in_(bindparam("ids", expanding=True)))
LINKS_OF_PERSON = select(t.link).where(t.link.c.mpi_id == bindparam("mpi_id")).order_by(t.link.c.record_id)
INSERT_LINK = insert(t.link)
LINKED_TO_PERSONS = select(t.link.c.record_id).where(t.link.c.mpi_id.in_(bindparam("ids", expanding=True)))
RECORDS_OF_PERSON = _current_records_of(t.link.c.mpi_id == bindparam("mpi_id")).order_by(_record.c.record_id)
RECORDS_OF_PERSONS = (
    _current_records_of(t.link.c.mpi_id.in_(bindparam("ids", expanding=True)))
    .add_columns(t.link.c.mpi_id.label("linked_mpi_id"))
    .order_by(_record.c.record_id)
)
_WITH_KEY = select(t.blocking_key.c.record_id).where(
    t.blocking_key.c.key.in_(bindparam("keys", expanding=True))
)
_WITH_IDENTIFIER = select(_identifier.c.record_id).where(
    _identifier.c.system == bindparam("system"),
    _identifier.c.value == bindparam("value"),
    _identifier.c.active.is_(True),
)
# A probe's candidates: their persons and stored forms, without reading the records themselves
# (scattered over the file: most candidates are scored from their forms alone).
_CANDIDATE_FORMS = select(t.link.c.record_id, t.link.c.mpi_id, t.record_form.c.form).select_from(
    t.link.outerjoin(t.record_form, t.record_form.c.record_id == t.link.c.record_id)
)


# The holders of an identifier with the traits that judge a shared matricule: a few rows, read
# with the candidates rather than in a statement of their own.
_holder = (
    select(_identifier.c.record_id, _record.c.sex, _record.c.birth_date)
    .join(_record, _record.c.record_id == _identifier.c.record_id)
    .where(
        _identifier.c.system == bindparam("system"),
        _identifier.c.value == bindparam("value"),
        _identifier.c.active.is_(True),
    )
    .distinct()
    .subquery("holder")
)


def _candidates(with_key: Select[tuple[int]]) -> tuple[Select[Any], Select[Any]]:
    """The candidates of some keys, and of some keys or an identifier (with its holders' traits)."""
    by_key = _CANDIDATE_FORMS.where(t.link.c.record_id.in_(with_key))
    by_key_or_identifier = (
        select(
            t.link.c.record_id,
            t.link.c.mpi_id,
            t.record_form.c.form,
            _holder.c.record_id.is_not(None).label("has_identifier"),
            _holder.c.sex,
            _holder.c.birth_date,
        )
        .select_from(
            t.link.outerjoin(t.record_form, t.record_form.c.record_id == t.link.c.record_id).outerjoin(
                _holder, _holder.c.record_id == t.link.c.record_id
            )
        )
        .where(t.link.c.record_id.in_(with_key.union(_WITH_IDENTIFIER)))
    )
    return by_key, by_key_or_identifier


CANDIDATES_BY_KEY, CANDIDATES_BY_KEY_OR_IDENTIFIER = _candidates(_WITH_KEY)
# PostgreSQL: the keys as one array parameter, so the statement's text is the same whatever
# the number of keys, and the server prepares it once and keeps its plan (see storage.engine).
PG_CANDIDATES_BY_KEY, PG_CANDIDATES_BY_KEY_OR_IDENTIFIER = _candidates(
    select(t.blocking_key.c.record_id).where(
        t.blocking_key.c.key == any_(bindparam("keys", type_=ARRAY(String)))
    )
)


def _beside_record_of_key(candidates: Select[Any]) -> Select[Any]:
    """The id of the record of a key (``key_record_id``, null if none) and, only if there is
    none, ``candidates``: the two reads of a registration once its keys are locked, in one round
    trip. (The condition on the key does not depend on the candidates' rows: the server checks
    it once and does not look for candidates of a record that exists.)"""
    of_key = (_record.c.authority == bindparam("authority"), _record.c.local_id == bindparam("local_id"))
    keyed = select(
        select(_record.c.record_id).where(*of_key).scalar_subquery().label("key_record_id")
    ).subquery("keyed")
    found = candidates.where(~exists().where(*of_key)).subquery("candidate")
    return select(keyed.c.key_record_id, *found.c).select_from(keyed.outerjoin(found, true()))


PG_KEYED_CANDIDATES_BY_KEY = _beside_record_of_key(PG_CANDIDATES_BY_KEY)
PG_KEYED_CANDIDATES_BY_KEY_OR_IDENTIFIER = _beside_record_of_key(PG_CANDIDATES_BY_KEY_OR_IDENTIFIER)
CANDIDATES_BY_ID = _CANDIDATE_FORMS.where(t.link.c.record_id.in_(bindparam("ids", expanding=True)))
LINKED_RECORDS = (
    select(_record, t.link.c.mpi_id.label("linked_mpi_id"))
    .join(t.link, t.link.c.record_id == _record.c.record_id)
    .where(_record.c.record_id.in_(bindparam("ids", expanding=True)))
)

UPDATE_LINK = update(t.link).where(t.link.c.record_id == bindparam("b_record_id"))


def _pending_reviews(of_person: ColumnElement[Any], of_candidate: ColumnElement[Any]) -> Select[Any]:
    """The unresolved review tasks whose person or candidate person satisfies the conditions."""
    return (
        select(_review)
        .where(_review.c.status != ReviewStatus.RESOLVED.value, or_(of_person, of_candidate))
        .order_by(_review.c.task_id)
    )


PENDING_REVIEWS = _pending_reviews(
    _review.c.mpi_id.in_(bindparam("ids", expanding=True)),
    _review.c.candidate_mpi_id.in_(bindparam("cids", expanding=True)),
)
# One person's (the common case): without an expanding IN, so compiled once (see storage.direct).
PENDING_REVIEWS_OF_PERSON = _pending_reviews(
    _review.c.mpi_id == bindparam("mpi_id"), _review.c.candidate_mpi_id == bindparam("mpi_id")
)
REVIEW = select(_review).where(_review.c.task_id == bindparam("task_id"))
INSERT_REVIEW = insert(_review).returning(_review.c.task_id)
UPDATE_REVIEW = update(_review).where(_review.c.task_id == bindparam("b_task_id"))

NOT_DUPLICATE_PAIRS = select(t.not_duplicate.c.person_a, t.not_duplicate.c.person_b).where(
    or_(t.not_duplicate.c.person_a == bindparam("mpi_id"), t.not_duplicate.c.person_b == bindparam("mpi_id"))
)
INSERT_NOT_DUPLICATE = insert(t.not_duplicate)

INSERT_EVENT = insert(t.event).returning(t.event.c.seq)
INSERT_EVENT_SUBJECT = insert(t.event_subject)
# PostgreSQL: the event and its subjects in one statement, one round trip instead of two.
_EVENT_COLUMNS = ("kind", "occurred_at", "actor", "reason", "subjects", "changes")
_new_event = (
    insert(t.event)
    .values({t.event.c[name]: bindparam(name) for name in _EVENT_COLUMNS})
    .returning(t.event.c.seq)
    .cte("new_event")
)
_new_subjects = (
    insert(t.event_subject)
    .from_select(
        ["mpi_id", "seq"],
        select(func.unnest(bindparam("subject_ids", type_=ARRAY(String))), _new_event.c.seq),
    )
    .cte("new_subjects")
)
INSERT_EVENT_WITH_SUBJECTS = select(_new_event.c.seq).add_cte(_new_subjects)
# PostgreSQL: the persons an operation changed last (their golden records and flags) saved with
# its event, in the same round trip. A person's key and creation time never change.
_PERSON_ARRAYS = ("mpi_ids", "statuses", "trusts", "checked", "replaced", "flag_sets", "goldens")
INSERT_EVENT_SAVING_PERSONS = text(
    "WITH saved AS (UPDATE person AS p SET status = u.status, trust = u.trust, "
    "document_checked = u.document_checked, replaced_by = u.replaced_by, flags = u.flags, "
    "golden = u.golden "
    f"FROM unnest({', '.join(':' + name for name in _PERSON_ARRAYS)}) "
    "AS u(mpi_id, status, trust, document_checked, replaced_by, flags, golden) "
    "WHERE p.mpi_id = u.mpi_id), "
    "new_event AS (INSERT INTO event (kind, occurred_at, actor, reason, subjects, changes) "
    "VALUES (:kind, :occurred_at, :actor, :reason, :subjects, :changes) RETURNING seq), "
    "new_subjects AS (INSERT INTO event_subject (mpi_id, seq) "
    "SELECT unnest(:subject_ids), seq FROM new_event) "
    "SELECT seq FROM new_event"
).bindparams(
    *(
        bindparam(name, type_=ARRAY(Boolean) if name == "checked" else ARRAY(String))
        for name in (*_PERSON_ARRAYS, "subject_ids")
    ),
    bindparam("occurred_at", type_=t.UTCDateTime()),
)

# -- HL7 delivery ---------------------------------------------------------------------
_receipt = t.message_receipt
RECEIPT = select(_receipt.c.response, _receipt.c.received_at).where(
    _receipt.c.sending_application == bindparam("sending_application"),
    _receipt.c.sending_facility == bindparam("sending_facility"),
    _receipt.c.control_id == bindparam("control_id"),
)
INSERT_RECEIPT = insert(_receipt)
EVENT_CURSOR = select(t.event_cursor.c.last_seq).where(t.event_cursor.c.name == bindparam("name"))
UPDATE_EVENT_CURSOR = update(t.event_cursor).where(t.event_cursor.c.name == bindparam("b_name"))
_outbound = t.outbound_message
PENDING_OUTBOUND = (
    select(_outbound)
    .where(_outbound.c.status == bindparam("status"))
    .order_by(_outbound.c.message_id)
    .limit(bindparam("limit"))
)
_heads = (
    select(func.min(_outbound.c.message_id).label("message_id"))
    .where(_outbound.c.status == bindparam("status"))
    .group_by(_outbound.c.consumer)
    .subquery()
)
PENDING_HEADS = (
    select(_outbound)
    .join(_heads, _heads.c.message_id == _outbound.c.message_id)
    .order_by(_outbound.c.message_id)
)
# The consumer is written into the statement: planned for any consumer (generic plans, see
# engine.py), PostgreSQL walked the pending messages in order through the (status, message_id)
# index, past a million of another consumer's (145 ms), rather than use the consumer's index.
PENDING_HEAD = (
    select(_outbound)
    .where(
        _outbound.c.consumer == bindparam("consumer", literal_execute=True),
        _outbound.c.status == bindparam("status", literal_execute=True),
    )
    .order_by(_outbound.c.message_id)
    .limit(1)
)
UPDATE_OUTBOUND = update(_outbound).where(_outbound.c.message_id == bindparam("b_message_id"))
SUPERSEDED_RECORDS = select(t.superseded_record).where(
    t.superseded_record.c.record_id.in_(bindparam("ids", expanding=True))
)
_latest = (
    select(func.max(_outbound.c.message_id))
    .where(
        _outbound.c.consumer == bindparam("consumer"),
        _outbound.c.mpi_id.in_(bindparam("ids", expanding=True)),
        _outbound.c.status != bindparam("refused"),
    )
    .group_by(_outbound.c.mpi_id)
)
LAST_ANNOUNCED = select(_outbound.c.mpi_id, _outbound.c.identifiers).where(
    _outbound.c.message_id.in_(_latest)
)
RENAME_RECORD = update(_record).where(_record.c.record_id == bindparam("b_record_id"))
