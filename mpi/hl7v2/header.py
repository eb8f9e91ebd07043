"""Typed access to the message header (MSH), the fields every exchange depends on."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from mpi.hl7v2.message import Segment


class HierarchicDesignator(NamedTuple):
    """An HD: an application or facility name, and optionally its OID (MSH-3 to MSH-6)."""

    namespace_id: str
    universal_id: str = ""
    universal_id_type: str = ""


class MessageType(NamedTuple):
    """MSH-9. ``structure`` is ``""`` when a 2.3.1 sender gives only type and trigger."""

    code: str
    trigger: str = ""
    structure: str = ""


class MessageHeader:
    """A read-only view of an MSH segment; values are decoded when asked for."""

    __slots__ = ("segment",)

    def __init__(self, segment: Segment) -> None:
        self.segment = segment

    def _designator(self, field: int) -> HierarchicDesignator:
        get = self.segment.get
        return HierarchicDesignator(get(field, 1, 1), get(field, 1, 2), get(field, 1, 3))

    @property
    def sending_application(self) -> HierarchicDesignator:
        """MSH-3."""
        return self._designator(3)

    @property
    def sending_facility(self) -> HierarchicDesignator:
        """MSH-4."""
        return self._designator(4)

    @property
    def receiving_application(self) -> HierarchicDesignator:
        """MSH-5."""
        return self._designator(5)

    @property
    def receiving_facility(self) -> HierarchicDesignator:
        """MSH-6."""
        return self._designator(6)

    @property
    def timestamp(self) -> str:
        """MSH-7, as sent (``YYYYMMDDHHMMSS[.S][+ZZZZ]``, any precision)."""
        return self.segment.get(7)

    @property
    def message_type(self) -> MessageType:
        """MSH-9: type, trigger event and (2.3.1+, optional for ITI-8) structure."""
        get = self.segment.get
        return MessageType(get(9, 1, 1), get(9, 1, 2), get(9, 1, 3))

    @property
    def control_id(self) -> str:
        """MSH-10, echoed in MSA-2 of the answer."""
        return self.segment.get(10)

    @property
    def processing_id(self) -> str:
        """MSH-11.1: ``P`` production, ``T`` training, ``D`` debugging."""
        return self.segment.get(11)

    @property
    def version(self) -> str:
        """MSH-12.1, e.g. ``2.5`` or ``2.3.1``."""
        return self.segment.get(12)

    @property
    def accept_ack_type(self) -> str:
        """MSH-15 (``AL``, ``NE``, ``ER``, ``SU``); empty in original acknowledgement mode."""
        return self.segment.get(15)

    @property
    def application_ack_type(self) -> str:
        """MSH-16, same values as MSH-15."""
        return self.segment.get(16)

    @property
    def charset(self) -> str:
        """MSH-18 as sent (first repetition), e.g. ``UNICODE UTF-8`` or ``8859/1``; ``""`` if absent."""
        return self.segment.get(18)

    @property
    def key(self) -> tuple[str, str, str]:
        """(MSH-3, MSH-4, MSH-10) as sent: what identifies a resent message (INTEROP.md). The whole
        MSH-10, not its first component: ``K^1`` and ``K^2`` are two messages."""
        raw = self.segment.raw_value
        return raw(3), raw(4), raw(10).strip()
