"""The MPI as an HL7 v2 application: one message in, its answer out. Thread-safe, never raises.

The order of checks follows HL7 original-mode acknowledgement rules: what is
wrong with the envelope (unparsable bytes, version, processing id, an unknown
or unsupported message type or trigger, a sender that is not allowed) is
rejected with AR, which tells the sender it may try again once fixed; what is
wrong with the content (a missing PID-3, an invalid date, an unknown key) is
an application error, AE, which it must not resend unchanged. An
acknowledgement (MSH-9 ``ACK``) is never answered, whatever is wrong with it:
answering could start an endless exchange with a peer that acknowledges all it
receives; it is logged and dropped.

Feed messages are applied exactly once: the answer is stored with the change
(see :class:`mpi.service.feed.Feed`) and a resent message gets it back. An AE
is stored too; an AR is not, so a message refused for a passing reason (the
database unavailable) is applied when it comes again. Every refusal is written
to the ``mpi.hl7v2.audit`` log with the sender and the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from mpi.domain.limits import MAX_VALUE_LENGTH
from mpi.errors import HL7Error, InvalidValue, MPIError
from mpi.hl7v2.ack import AckCode, ErrorDetail, build_ack_for_unparsable
from mpi.hl7v2.adt import FEED_TRIGGERS, FeedChange, translate_feed
from mpi.hl7v2.codes import ErrorCode
from mpi.hl7v2.config import HL7Config, SenderConfig
from mpi.hl7v2.location import Location
from mpi.hl7v2.message import Message
from mpi.hl7v2.parse import parse_message
from mpi.hl7v2.pix import PixQuery
from mpi.hl7v2.respond import acknowledge, new_control_id
from mpi.service.delivery import MessageKey
from mpi.service.feed import Feed, FeedTransaction

audit = logging.getLogger("mpi.hl7v2.audit")
log = logging.getLogger("mpi.hl7v2")

_MIN_VERSION = (2, 3)
_QUERY_TRIGGERS = {"QBP": frozenset({"Q22", "Q23"}), "QCN": frozenset({"J01"})}


class DemographicsQuery(Protocol):
    def answer(self, message: Message) -> bytes: ...

    def cancel(self, message: Message) -> bytes: ...


def _supported_version(version: str) -> bool:
    try:
        numbers = tuple(int(part) for part in version.strip().split("."))
    except ValueError:
        return False
    return numbers[:1] == (2,) and numbers >= _MIN_VERSION


class HL7Application:
    def __init__(
        self,
        config: HL7Config,
        feed: Feed,
        pix: PixQuery,
        pdq: DemographicsQuery | None,
        clock: Callable[[], datetime],
    ) -> None:
        self._config = config
        self._feed = feed
        self._pix = pix
        self._pdq = pdq
        self._clock = clock

    # -- entry points ---------------------------------------------------------------
    def handle(self, payload: bytes) -> bytes:
        """The answer to one message payload (``b""`` when the sender asked for none, or when the
        message is an acknowledgement)."""
        try:
            message = parse_message(payload)
        except HL7Error as error:
            audit.warning("refused unparsable message (%s %s): %s", error.code, error.location, error)
            return self.refuse_unparsable(payload, error)
        try:
            return self._handle(message)
        except Exception:  # the server must answer whatever happens: AR says "try again later"
            log.exception("internal error on message %s", message.msh.control_id)
            internal = HL7Error(
                "internal error; the message was not applied", code=ErrorCode.APPLICATION_INTERNAL_ERROR
            )
            return self._ack(message, "AR", [ErrorDetail.from_error(internal)])

    def refuse_unparsable(self, payload: bytes, error: HL7Error) -> bytes:
        """The answer to bytes that are no usable message (also used for oversized frames)."""
        return build_ack_for_unparsable(
            payload,
            error,
            sending_app=self._config.identity.application,
            sending_facility=self._config.identity.facility,
            control_id=new_control_id(),
            timestamp=self._clock(),
        )

    # -- dispatch ---------------------------------------------------------------------
    def _handle(self, message: Message) -> bytes:
        header = message.msh
        kind = header.message_type
        code, trigger = kind.code.strip().upper(), kind.trigger.strip().upper()
        if code == "ACK":
            audit.warning(
                "ignored acknowledgement %s from %s/%s: acknowledgements are not answered",
                header.control_id,
                header.sending_application.namespace_id,
                header.sending_facility.namespace_id,
            )
            return b""
        envelope = self._check_envelope(message, code, trigger)
        if envelope is not None:
            return self._refuse(message, envelope)
        sender = self._config.sender(header.sending_application, header.sending_facility)
        if sender is None:
            return self._refuse(
                message,
                HL7Error(
                    f"sending application {header.sending_application.namespace_id!r} at facility "
                    f"{header.sending_facility.namespace_id!r} is not allowed to use this MPI",
                    code=ErrorCode.APPLICATION_INTERNAL_ERROR,
                    location="MSH^1^3",
                    reject=True,
                ),
            )
        if code == "ADT":
            return self._identity_feed(message, sender)
        if trigger == "Q23":
            return self._pix.answer(message)
        if self._pdq is None:
            return self._refuse(
                message,
                HL7Error(
                    "patient demographics queries are not served here",
                    code=ErrorCode.UNSUPPORTED_EVENT_CODE,
                    location="MSH^1^9^1^2",
                    reject=True,
                ),
            )
        return self._pdq.cancel(message) if code == "QCN" else self._pdq.answer(message)

    def _check_envelope(self, message: Message, code: str, trigger: str) -> HL7Error | None:
        header = message.msh
        if not _supported_version(header.version):
            return HL7Error(
                f"HL7 version {header.version!r} is not supported (2.3 and later 2.x)",
                code=ErrorCode.UNSUPPORTED_VERSION_ID,
                location="MSH^1^12",
                reject=True,
            )
        if header.processing_id.strip().upper() not in self._config.identity.processing_ids:
            return HL7Error(
                f"processing id {header.processing_id!r} is not accepted here "
                f"({', '.join(self._config.identity.processing_ids)})",
                code=ErrorCode.UNSUPPORTED_PROCESSING_ID,
                location="MSH^1^11",
                reject=True,
            )
        triggers = FEED_TRIGGERS if code == "ADT" else _QUERY_TRIGGERS.get(code)
        if triggers is None:
            return HL7Error(
                f"message type {code!r} is not supported (ADT, QBP, QCN)",
                code=ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
                location="MSH^1^9^1^1",
                reject=True,
            )
        if trigger not in triggers:
            return HL7Error(
                f"trigger event {code}^{trigger} is not supported",
                code=ErrorCode.UNSUPPORTED_EVENT_CODE,
                location="MSH^1^9^1^2",
                reject=True,
            )
        return None

    # -- identity feed ----------------------------------------------------------------
    def _identity_feed(self, message: Message, sender: SenderConfig) -> bytes:
        header = message.msh
        key = MessageKey(*header.key)
        # A sender allowed at any facility names it in the message: as long as MSH-4 allows.
        actor = f"hl7:{sender.application}/{header.sending_facility.namespace_id}"[:MAX_VALUE_LENGTH]
        try:
            change = translate_feed(message, self._config, sender)
        except HL7Error as error:
            return self._refuse(message, error, key)
        warnings = [
            ErrorDetail(
                ErrorCode.UNKNOWN_KEY_IDENTIFIER,
                Location.from_erl(identifier.location + "^4"),
                "W",
                f"identifier in domain {identifier.domain.authority} ignored: "
                f"{sender.application} does not feed that domain",
            )
            for identifier in change.ignored
        ]
        done: list[str] = []

        def run(feed: FeedTransaction) -> FeedChange:
            # A transaction lost to a concurrent one runs again: keep only the last account.
            done[:] = [change.run(feed)]
            return change

        try:
            answer, resent = self._feed.apply(key, actor, run, lambda _: self._ack(message, "AA", warnings))
        except HL7Error as error:  # among them a key refused as unknown or duplicate, where it sits
            return self._refuse(message, error, key)
        except InvalidValue as error:  # the adapter checks what it reads; this is the service's check
            return self._refuse(message, HL7Error(str(error), code=ErrorCode.DATA_TYPE_ERROR), key)
        except MPIError as error:
            internal = HL7Error(str(error), code=ErrorCode.APPLICATION_INTERNAL_ERROR)
            return self._refuse(message, internal, key)
        if resent:
            audit.info("resent message %s from %s answered from its receipt", header.control_id, actor)
        elif audit.isEnabledFor(logging.DEBUG):
            # What was done names local ids and persons: not for an INFO log.
            audit.debug("message %s from %s: %s", header.control_id, actor, "; ".join(done))
        return answer

    # -- answers ----------------------------------------------------------------------
    def _ack(self, message: Message, code: AckCode, errors: list[ErrorDetail]) -> bytes:
        return acknowledge(
            message,
            code,
            errors,
            application=self._config.identity.application,
            facility=self._config.identity.facility,
            timestamp=self._clock(),
        )

    def _refuse(self, message: Message, error: HL7Error, key: MessageKey | None = None) -> bytes:
        """AR (not stored: the sender may retry) or AE (stored: a resend gets the same answer)."""
        code: AckCode = "AR" if error.reject else "AE"
        header = message.msh
        audit.warning(
            "%s to %s from %s/%s (%s %s): %s",
            code,
            header.control_id,
            header.sending_application.namespace_id,
            header.sending_facility.namespace_id,
            error.code,
            error.location,
            error,
        )
        answer = self._ack(message, code, [ErrorDetail.from_error(error)])
        if key is not None and not error.reject:
            answer, _ = self._feed.refuse(key, answer)
        return answer
