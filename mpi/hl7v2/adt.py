"""Identity feeds: ITI-8 (HL7 2.3.1) and ITI-30 (HL7 2.5) ADT messages to feed changes.

=============================  ==============================================================
trigger                        change
=============================  ==============================================================
A01 A04 A05 A08 A28 A31        register the record, or update it (A31/A08 for an unknown
                               patient insert it: not an error); PID-18 is the record's
                               patient account number, in its source's domain
A40 (PID + MRG, repeating)     the source merged MRG-1 into PID-3: the persons are merged and
                               MRG-1 is superseded; unknown PID-3 = change of identifier;
                               unknown MRG-1 = no action
A47 (PID + MRG, repeating)     change of identifier MRG-1 -> PID-3; a PID-3 another patient
                               record already has is an error (AE 205)
A24 / A37 (two PIDs)           link / unlink the two records; unknown ids: no action
=============================  ==============================================================

Translation happens before any transaction, so a malformed message costs no
database work; the returned :class:`FeedChange` runs inside the transaction
that also stores the acknowledgement. A change refused for an unknown key
(``NotFound``) or a duplicate one (``Conflict``) raises ``HL7Error`` 204 or
205 located at the PID whose identifier it was applying: in a message that
repeats its PID/MRG pairs, the pair that failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mpi.errors import Conflict, HL7Error, NotFound
from mpi.hl7v2.codes import ErrorCode
from mpi.hl7v2.config import HL7Config, SenderConfig
from mpi.hl7v2.message import Message, Segment
from mpi.hl7v2.translate import (
    Identifier,
    PatientIdentity,
    check_length,
    demographic_changes,
    patient_identity,
)
from mpi.service.feed import AccountChange, FeedTransaction

REGISTER_TRIGGERS = frozenset({"A01", "A04", "A05", "A08", "A28", "A31"})
MERGE_TRIGGER = "A40"
CHANGE_IDENTIFIER_TRIGGER = "A47"
LINK_TRIGGER = "A24"
UNLINK_TRIGGER = "A37"
FEED_TRIGGERS = REGISTER_TRIGGERS | {MERGE_TRIGGER, CHANGE_IDENTIFIER_TRIGGER, LINK_TRIGGER, UNLINK_TRIGGER}


@dataclass(frozen=True)
class FeedChange:
    """A translated feed message: what to run in the transaction."""

    # Returns what was done, for the audit log; raises HL7Error when the change is refused.
    run: Callable[[FeedTransaction], str]
    ignored: tuple[Identifier, ...]  # identifiers of domains the sender does not feed


def translate_feed(message: Message, config: HL7Config, sender: SenderConfig) -> FeedChange:
    """The change an ADT message asks for; ``HL7Error`` when it cannot be applied as sent."""
    trigger = message.msh.message_type.trigger.strip().upper()
    if trigger in REGISTER_TRIGGERS:
        return _register(message, config, sender)
    if trigger in (MERGE_TRIGGER, CHANGE_IDENTIFIER_TRIGGER):
        return _merge_or_change(message, config, sender, trigger)
    if trigger in (LINK_TRIGGER, UNLINK_TRIGGER):
        return _link_or_unlink(message, config, sender, trigger)
    raise HL7Error(
        f"trigger event ADT^{trigger} is not supported",
        code=ErrorCode.UNSUPPORTED_EVENT_CODE,
        location="MSH^1^9^1^2",
        reject=True,
    )


def _register(message: Message, config: HL7Config, sender: SenderConfig) -> FeedChange:
    pid = message.segment("PID")
    identity = patient_identity(pid, 3, config, sender)
    changes = demographic_changes(pid, identity)
    account = _account(pid)

    def run(feed: FeedTransaction) -> str:
        with _refused_at("PID^1^3^1^1"):
            result = feed.upsert(identity.key, changes, account)
        return f"{identity.key}: {result.outcome} person {result.mpi_id}"

    return FeedChange(run, identity.ignored)


def _account(pid: Segment) -> AccountChange | None:
    """PID-18: empty leaves the account number as it is, ``""`` removes it.

    Its CX-4 is not read: a source numbers its accounts in its own domain, the
    domain of the record key.
    """
    field = pid.field(18)
    if field.is_empty:
        return None
    if field.is_null:
        return AccountChange(None)
    value = field.repetition(1).component(1).value.strip()
    check_length(value, "the patient account number", "PID^1^18^1^1")
    return AccountChange(value) if value else None


def _merge_or_change(message: Message, config: HL7Config, sender: SenderConfig, trigger: str) -> FeedChange:
    pairs: list[tuple[PatientIdentity, PatientIdentity]] = []
    merges = message.segments_named("MRG")
    if not merges:
        raise HL7Error(
            f"ADT^{trigger} needs an MRG segment", code=ErrorCode.SEGMENT_SEQUENCE_ERROR, location="MRG"
        )
    for index, mrg in enumerate(merges):
        pid = message.segment("PID", index)
        surviving = patient_identity(pid, 3, config, sender, occurrence=index + 1)
        prior = patient_identity(mrg, 1, config, sender, occurrence=index + 1)
        if prior.key.authority != surviving.key.authority:
            raise HL7Error(
                f"MRG-1 {prior.key} and PID-3 {surviving.key} are in different domains",
                code=ErrorCode.UNKNOWN_KEY_IDENTIFIER,
                location=f"MRG^{index + 1}^1^1^4",
            )
        pairs.append((surviving, prior))
    reason = f"ADT^{trigger} from {sender.application}"

    def run(feed: FeedTransaction) -> str:
        done = []
        for number, (surviving, prior) in enumerate(pairs, start=1):
            with _refused_at(f"PID^{number}^3^1^1"):
                if trigger == MERGE_TRIGGER:
                    result = feed.merge(surviving.key, prior.key, reason)
                else:
                    result = feed.change_identifier(prior.key, surviving.key, reason)
            done.append(f"{result.outcome}: {result.detail}")
        return "; ".join(done)

    ignored = tuple(i for surviving, prior in pairs for i in (*surviving.ignored, *prior.ignored))
    return FeedChange(run, ignored)


def _link_or_unlink(message: Message, config: HL7Config, sender: SenderConfig, trigger: str) -> FeedChange:
    first = patient_identity(message.segment("PID", 0), 3, config, sender, occurrence=1)
    second = patient_identity(message.segment("PID", 1), 3, config, sender, occurrence=2)
    reason = f"ADT^{trigger} from {sender.application}"

    def run(feed: FeedTransaction) -> str:
        with _refused_at("PID^2^3^1^1"):
            if trigger == LINK_TRIGGER:
                result = feed.link(first.key, second.key, reason)
            else:
                result = feed.unlink(first.key, second.key, reason)
        return f"{result.outcome}: {result.detail}"

    return FeedChange(run, (*first.ignored, *second.ignored))


@contextmanager
def _refused_at(location: str) -> Iterator[None]:
    """Turn a key found unknown (``NotFound``) or already in use (``Conflict``) into the AE that
    names it: ``HL7Error`` 204 or 205 at ``location``, the ERL of the identifier concerned."""
    try:
        yield
    except NotFound as error:
        raise HL7Error(str(error), code=ErrorCode.UNKNOWN_KEY_IDENTIFIER, location=location) from error
    except Conflict as error:
        raise HL7Error(str(error), code=ErrorCode.DUPLICATE_KEY_IDENTIFIER, location=location) from error
