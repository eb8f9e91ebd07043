"""The whole registry as plain values: what a store holds and what replaying the log rebuilds.

The blocking-key index is left out on purpose: it is derived from the records
by the matcher's blocking rules and rebuilt when the model changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mpi.domain.events import (
    Event,
    IdentifierChanged,
    LinkChanged,
    NotDuplicateAdded,
    PersonChanged,
    RecordChanged,
    ReviewChanged,
)
from mpi.domain.persons import Link, Person
from mpi.domain.records import RecordIdentifier, RecordVersion, SourceRecord
from mpi.domain.reviews import NotDuplicate, ReviewTask


@dataclass
class RegistryState:
    records: dict[int, SourceRecord] = field(default_factory=dict)
    versions: dict[int, list[RecordVersion]] = field(default_factory=dict)
    identifiers: dict[int, RecordIdentifier] = field(default_factory=dict)
    persons: dict[str, Person] = field(default_factory=dict)
    links: dict[int, Link] = field(default_factory=dict)
    reviews: dict[int, ReviewTask] = field(default_factory=dict)
    not_duplicates: dict[tuple[str, str], NotDuplicate] = field(default_factory=dict)

    def apply(self, event: Event) -> None:
        """Apply one event's changes, in order."""
        for change in event.changes:
            match change:
                case RecordChanged(record=record):
                    self.records[record.record_id] = record
                    self.versions.setdefault(record.record_id, []).append(
                        RecordVersion(
                            record_id=record.record_id,
                            version=record.version,
                            demographics=record.demographics,
                            matricule=record.matricule,
                            recorded_at=record.updated_at,
                            actor=event.actor,
                        )
                    )
                case PersonChanged(mpi_id=mpi_id, after=person):
                    self.persons[mpi_id] = person
                case LinkChanged(record_id=record_id, after=link):
                    self.links[record_id] = link
                case IdentifierChanged(identifier_id=identifier_id, after=identifier):
                    self.identifiers[identifier_id] = identifier
                case ReviewChanged(task_id=task_id, after=task):
                    self.reviews[task_id] = task
                case NotDuplicateAdded(decision=decision):
                    self.not_duplicates[decision.pair] = decision

    @classmethod
    def replayed(cls, events: Iterable[Event]) -> RegistryState:
        state = cls()
        for event in events:
            state.apply(event)
        return state
