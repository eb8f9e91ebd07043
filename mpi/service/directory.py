"""The person directory: demographic search over every current source record, in memory, vectorised.

A demographics query (PDQ, "who is SCHMIT, born 1980?") names a few traits,
often without a birth date, sometimes with a wildcard (``SCHM*``); the
blocking keys of the matcher need more than that. The directory keeps, per
current record, its person and its search keys as integer codes into sorted
vocabularies of distinct values: folded family, birth and given names (accents
and case ignored), their Double Metaphone codes, birth date, sex, postcode and
city. A criterion is then one comparison over an integer array (an exact or
phonetic value is one code, a prefix a range of codes found by binary search),
and a query is the AND of its criteria. Keys are computed once per distinct
value and broadcast.

It follows the registry, whichever process changes it: :meth:`refresh` reads
the event log after its cursor, re-reads the records the new events touched
into a small delta table and hides their old rows; when the delta grows past a
tenth of the base, every record is loaded again, without the lock searches take.

On PostgreSQL a later event can commit before an earlier one, so the cursor
passing an event does not mean it was read: a hole in the sequence may be a
transaction still to commit. The directory does not wait for it (a search
would lag behind every change meanwhile); it remembers the hole and looks back
at it at each catch-up, until it is filled or has lasted long enough to be a
rolled-back transaction's.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mpi.domain.events import Event, IdentifierChanged, LinkChanged, RecordChanged
from mpi.domain.records import Demographics, SourceRecord
from mpi.errors import NotReady
from mpi.matching.phonetics import double_metaphone
from mpi.matching.standardise import fold
from mpi.service.log_holes import (
    HOLE_GRACE_SECONDS,
    Hole,
    distinct_holes,
    filled_holes,
    holes_before,
    look_back,
)
from mpi.service.ports import SEARCHED_FIELDS, Matcher, Store, UnitOfWork

WILDCARD = "*"
_REBUILD_SHARE = 0.1
_MAX_DELTA_TABLES = 32
_EVENT_BATCH = 5000
_READ_BATCH = 50_000  # records per fetch when the whole directory is read
# A load of every record looks this many sequence numbers below its cursor for transactions
# not committed yet: far more events than writers can have in flight.
_LOAD_LOOK_BACK = 2000
_ATTRIBUTES = (
    "family",
    "family_dm",
    "family_compact",
    "family_last",
    "birth_name",
    "birth_name_dm",
    "given",
    "given_dm",
    "birth_date",
    "sex",
    "postcode",
    "city",
)
_PREFIX_ATTRIBUTES = {"family", "birth_name", "given"}

Codes = npt.NDArray[np.int32]


@dataclass(frozen=True)
class Criteria:
    """What a query asks for; ``None`` is "any". In names and the city ``*`` stands for any letters."""

    family_name: str | None = None
    given_name: str | None = None
    birth_date: str | None = None  # YYYY-MM-DD; 00 month or day for "any"
    sex: str | None = None
    postcode: str | None = None
    city: str | None = None

    def probe(self) -> Demographics:
        """The criteria as a record to score candidates against: only the exact ones. A name
        with a wildcard or a partial birth date is a filter every hit has met already; scored,
        ``Schm*`` would read as the name "Schm" and count against a Schmit it found."""

        def exact(value: str | None) -> str | None:
            return None if not value or WILDCARD in value else value.strip() or None

        full_date = self.birth_date if self.birth_date and "-00" not in self.birth_date else None
        return Demographics(
            family_name=exact(self.family_name),
            given_names=exact(self.given_name),
            birth_date=full_date,
            sex=self.sex,
            postcode=self.postcode,
            city=exact(self.city),
        )


@dataclass(frozen=True)
class Hit:
    mpi_id: str
    confidence: float  # 0..1: the candidate's match weight against a perfect match on the criteria


def _first_given(values: Sequence[str]) -> list[str]:
    return [value.split(" ")[0] if value else "" for value in values]


def _search_keys(traits: Mapping[str, Sequence[str | None]]) -> dict[str, list[str]]:
    """Per attribute, the folded or phonetic key of each record, computed once per distinct value
    (``traits``: the records' searched fields, one list per name of ``SEARCHED_FIELDS``).

    Plain lists and dicts: the directory builds a small table at every catch-up,
    where a data frame's fixed cost would be most of the work.
    """
    raw = {
        "family": [value or "" for value in traits["family_name"]],
        "birth_name": [value or "" for value in traits["birth_name"]],
        "given": [value or "" for value in traits["given_names"]],
        "city": [value or "" for value in traits["city"]],
    }
    keys: dict[str, list[str]] = {}
    for column, values in raw.items():
        folded_of = {value: fold(value) for value in set(values)}
        if column == "given":
            folded_of = {value: _first_given([folded])[0] for value, folded in folded_of.items()}
        folded = [folded_of[value] for value in values]
        keys[column] = folded
        if column != "city":
            distinct = list(set(folded))
            code_of = dict(zip(distinct, double_metaphone(distinct), strict=True))
            keys[f"{column}_dm"] = [code_of[value] for value in folded]
    # A surname with particles is found under its other spellings: "de la Cruz" by "Delacruz"
    # (the words run together) and by "Cruz" (its last word), "van der Berg" by "Berg".
    keys["family_compact"] = [value.replace(" ", "") for value in keys["family"]]
    keys["family_last"] = [value.rsplit(" ", 1)[-1] if " " in value else "" for value in keys["family"]]
    keys["birth_date"] = [value or "" for value in traits["birth_date"]]
    sexes = {value: (value or "").strip().upper()[:1] for value in set(traits["sex"])}
    keys["sex"] = [sexes[value] for value in traits["sex"]]
    postcodes = {value: (value or "").strip().upper() for value in set(traits["postcode"])}
    keys["postcode"] = [postcodes[value] for value in traits["postcode"]]
    return keys


def _coded(values: list[str]) -> tuple[npt.NDArray[np.str_], Codes]:
    """The sorted distinct ``values`` and each value's position among them.

    A dict finds the distinct values of a column (a few per thousand rows) in one pass;
    sorting those alone is far cheaper than sorting every row's string (``np.unique``).
    Python orders strings by code point, as numpy's binary search over the vocabulary does."""
    distinct = sorted(dict.fromkeys(values))
    position = dict(zip(distinct, range(len(distinct)), strict=True))
    codes = np.fromiter(map(position.__getitem__, values), dtype=np.int32, count=len(values))
    return np.array(distinct, dtype=str), codes


class _Table:
    """Rows of records with their person and a coded column per attribute."""

    def __init__(self, record_ids: Sequence[int], mpi_ids: Sequence[str], keys: dict[str, list[str]]) -> None:
        self.record_ids = np.array(record_ids, dtype=np.int64)
        # Fixed-width text rather than an array of str objects: the garbage collector never
        # walks a million entries (the directory loads after start-up froze what it built).
        self.mpi_ids = np.array(mpi_ids, dtype=str)
        self.visible = np.ones(len(record_ids), dtype=bool)
        # Rows by record id, so hiding a catch-up's few records costs a binary search each
        # rather than a pass over every row of the base.
        self._order = np.argsort(self.record_ids, kind="stable")
        self._sorted_ids = self.record_ids[self._order]
        self.vocabularies: dict[str, npt.NDArray[np.str_]] = {}
        self.codes: dict[str, Codes] = {}
        for attribute in _ATTRIBUTES:
            self.vocabularies[attribute], self.codes[attribute] = _coded(keys[attribute])

    @classmethod
    def of_records(cls, records: Sequence[tuple[SourceRecord, str]]) -> _Table:
        demographics = [record.demographics for record, _ in records]
        traits = {name: [getattr(d, name) for d in demographics] for name in SEARCHED_FIELDS}
        return cls([r.record_id for r, _ in records], [m for _, m in records], _search_keys(traits))

    def __len__(self) -> int:
        return len(self.record_ids)

    def hide(self, record_ids: npt.NDArray[np.int64]) -> None:
        low = np.searchsorted(self._sorted_ids, record_ids, side="left")
        counts = np.searchsorted(self._sorted_ids, record_ids, side="right") - low
        if not counts.any():
            return
        # Every row of each id (a table holds a record once, but nothing here relies on it).
        starts = np.repeat(low, counts)
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        self.visible[self._order[starts + offsets]] = False

    def match_pattern(self, attribute: str, pattern: re.Pattern[str]) -> npt.NDArray[np.bool_]:
        """Rows whose value matches ``pattern`` whole (tried once per distinct value)."""
        vocabulary = self.vocabularies[attribute]
        fits = np.fromiter(
            (pattern.fullmatch(v) is not None for v in vocabulary.tolist()), bool, len(vocabulary)
        )
        matched: npt.NDArray[np.bool_] = fits[self.codes[attribute]] if len(vocabulary) else fits
        return matched

    def match(self, attribute: str, wanted: str, prefix: bool = False) -> npt.NDArray[np.bool_]:
        vocabulary = self.vocabularies[attribute]
        codes = self.codes[attribute]
        if not wanted:
            return np.zeros(len(codes), dtype=bool)
        if prefix:
            low = int(np.searchsorted(vocabulary, wanted, side="left"))
            high = int(np.searchsorted(vocabulary, wanted + "\U0010ffff", side="left"))
            return (codes >= low) & (codes < high)
        position = int(np.searchsorted(vocabulary, wanted))
        if position >= len(vocabulary) or vocabulary[position] != wanted:
            return np.zeros(len(codes), dtype=bool)
        same: npt.NDArray[np.bool_] = codes == position
        return same


def _name_mask(table: _Table, attributes: tuple[str, ...], value: str) -> npt.NDArray[np.bool_]:
    """Folded-exact or phonetic agreement on any of ``attributes``; ``*`` stands for any letters
    (at the end: a prefix; elsewhere: a pattern)."""
    stem = value.rstrip(WILDCARD)
    if WILDCARD in stem:
        return _pattern_mask(table, attributes, value)
    is_prefix = stem != value
    folded = fold(stem)
    if attributes[0] == "given":
        folded = folded.split(" ")[0] if folded else ""
    mask = np.zeros(len(table), dtype=bool)
    if not folded:
        return ~mask if is_prefix else mask
    phonetic = "" if is_prefix else double_metaphone([folded])[0]
    for attribute in attributes:
        mask |= table.match(attribute, folded, prefix=is_prefix)
        if phonetic:
            mask |= table.match(f"{attribute}_dm", phonetic)
    if attributes[0] == "family":
        compact = folded.replace(" ", "")
        mask |= table.match("family_compact", compact, prefix=is_prefix)
        if " " not in folded:
            mask |= table.match("family_last", folded, prefix=is_prefix)
    return mask


def _pattern_mask(table: _Table, attributes: tuple[str, ...], value: str) -> npt.NDArray[np.bool_]:
    """``value`` with a ``*`` before its end: each part folded, ``*`` any letters in between."""
    parts = [fold(part) for part in value.split(WILDCARD)]
    pattern = re.compile(".*".join(re.escape(part) for part in parts))
    mask = np.zeros(len(table), dtype=bool)
    for attribute in attributes:
        mask |= table.match_pattern(attribute, pattern)
    return mask


def _date_mask(table: _Table, value: str) -> npt.NDArray[np.bool_]:
    year, _, rest = value.partition("-")
    month, _, day = rest.partition("-")
    if month in ("", "00") and day in ("", "00"):
        return table.match("birth_date", f"{year}-", prefix=True)
    if day in ("", "00"):
        return table.match("birth_date", f"{year}-{month}-", prefix=True)
    return table.match("birth_date", value)


def _criteria_mask(table: _Table, criteria: Criteria) -> npt.NDArray[np.bool_]:
    mask = table.visible.copy()
    if criteria.family_name:
        mask &= _name_mask(table, ("family", "birth_name"), criteria.family_name)
    if criteria.given_name:
        mask &= _name_mask(table, ("given",), criteria.given_name)
    if criteria.birth_date:
        mask &= _date_mask(table, criteria.birth_date)
    if criteria.sex:
        mask &= table.match("sex", criteria.sex.strip().upper()[:1])
    if criteria.postcode:
        mask &= table.match("postcode", criteria.postcode.strip().upper())
    if criteria.city:
        mask &= (
            _name_mask(table, ("city",), criteria.city)
            if WILDCARD in criteria.city
            else (table.match("city", fold(criteria.city)))
        )
    return mask


class PersonDirectory:
    def __init__(
        self,
        store: Store,
        matcher: Matcher,
        *,
        max_scored: int = 2000,
        loads_in_background: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``loads_in_background``: the first ``refresh`` runs elsewhere (a server's refresher);
        a search before it has finished gets ``NotReady`` at once rather than loading or waiting
        in the caller's thread, which a server shares with its feeds."""
        self._monotonic = monotonic
        self._store = store
        self._matcher = matcher
        self._max_scored = max_scored
        self._loads_in_background = loads_in_background
        self._lock = threading.Lock()  # the tables, the deltas and the cursor
        self._reloading = threading.Lock()  # one load of every record at a time
        self._base: _Table | None = None
        # One small table per catch-up, merged now and then: rebuilding a single delta table
        # at every catch-up would cost time in proportion to every change since the rebuild.
        self._deltas: list[_Table] = []
        self._delta_records: dict[int, tuple[SourceRecord, str]] = {}
        self._cursor = 0
        self._holes: list[Hole] = []  # below the cursor, events perhaps still to commit

    # -- keeping current ------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        """Whether the directory holds the registry (the first refresh has finished)."""
        return self._base is not None

    def __len__(self) -> int:
        """Records the directory can find."""
        with self._lock:
            tables = [t for t in (self._base, *self._deltas) if t is not None]
            return sum(int(t.visible.sum()) for t in tables)

    def refresh(self, *, may_reload: bool = True) -> None:
        """Catch up with the event log. The first call loads every current record, and so does
        a call (``may_reload``) once the changes since the last load pass a tenth of it."""
        if self._base is None or (may_reload and self._reload_due()):
            self._reload()
            return
        with self._lock:
            self._store.run(self._catch_up, write=False)

    def _reload_due(self) -> bool:
        base = self._base
        return base is None or len(self._delta_records) > _REBUILD_SHARE * max(len(base), 1000)

    def _reload(self) -> None:
        """Load every current record into a new base table, then put it in place. The load holds
        no lock searches take (seconds per million records): they use the tables in place."""
        with self._reloading:
            if self._base is not None and not self._reload_due():
                return  # another thread has just reloaded
            with self._lock:
                known = list(self._holes)
            base, cursor, holes = self._store.run(self._load, write=False)
            with self._lock:
                # Changes caught up meanwhile are after ``cursor``: the next catch-up reads them
                # again. A hole known before the load may have been filled after the load read
                # the records, and applied to the old tables only: it is looked at again.
                self._base, self._deltas, self._delta_records = base, [], {}
                self._cursor, self._holes = cursor, distinct_holes([*known, *self._holes, *holes])

    def _load(self, uow: UnitOfWork) -> tuple[_Table, int, list[Hole]]:
        cursor = uow.last_event_seq()
        # Read before the records: a transaction committing in between is then either a hole
        # or in the records, never neither.
        _, holes = look_back(uow, cursor, _LOAD_LOOK_BACK, self._monotonic())
        record_ids: list[int] = []
        mpi_ids: list[str] = []
        traits: dict[str, list[str | None]] = {name: [] for name in SEARCHED_FIELDS}
        for batch in uow.search_columns(_READ_BATCH):
            record_ids.extend(batch.record_ids)
            mpi_ids.extend(batch.mpi_ids)
            for name, values in batch.traits.items():
                traits[name].extend(values)
        return _Table(record_ids, mpi_ids, _search_keys(traits)), cursor, holes

    def _catch_up(self, uow: UnitOfWork) -> None:
        # The holes and the cursor move only once their events are applied: a catch-up that
        # fails half-way (a lost connection) leaves them for the next one to read again.
        late, left = filled_holes(uow, self._holes, self._monotonic(), HOLE_GRACE_SECONDS, _EVENT_BATCH)
        if late:
            self._apply(uow, late)
        self._holes = left
        while True:
            events = uow.events(after=self._cursor, limit=_EVENT_BATCH)
            if not events:
                return
            now = self._monotonic()
            self._apply(uow, events)
            self._holes.extend(holes_before(self._cursor, [e.seq or 0 for e in events], now))
            self._cursor = events[-1].seq or self._cursor

    def _apply(self, uow: UnitOfWork, events: Sequence[Event]) -> None:
        """Re-read the records ``events`` touched into a delta table, hiding their old rows."""
        # Every record of a person an event names: an event may change what a record means
        # without a change to the record itself (a local id superseded by its source's merge).
        subjects = {mpi_id for event in events for mpi_id in event.subjects}
        touched: set[int] = set(uow.records_of_persons(sorted(subjects))) if subjects else set()
        for event in events:
            for change in event.changes:
                match change:
                    case RecordChanged(record=record):
                        touched.add(record.record_id)
                    case LinkChanged(record_id=record_id):
                        touched.add(record_id)
                    case IdentifierChanged(after=identifier):
                        touched.add(identifier.record_id)
                    case _:
                        pass
        ids = np.array(sorted(touched), dtype=np.int64)
        for table in (self._base, *self._deltas):
            if table is not None:
                table.hide(ids)
        for record_id in touched:
            self._delta_records.pop(record_id, None)
        fresh = _current(uow, uow.linked_records(sorted(touched)))
        for record, mpi_id in fresh:
            self._delta_records[record.record_id] = (record, mpi_id)
        if fresh:
            self._deltas.append(_Table.of_records(fresh))
        if len(self._deltas) > _MAX_DELTA_TABLES:
            self._deltas = [_Table.of_records(list(self._delta_records.values()))]

    # -- searching ------------------------------------------------------------------
    def search(self, criteria: Criteria) -> list[Hit]:
        """Every person with a current record meeting all criteria, most confident first.

        The directory first catches up with the log, so a search sees every committed change.
        Loaded in the background and not loaded yet: ``NotReady``.
        """
        if self._base is None and self._loads_in_background:
            raise NotReady("the person directory is still loading; send the query again shortly")
        self.refresh(may_reload=not self._loads_in_background)  # a reload is the refresher's job
        with self._lock:
            tables = [t for t in (self._base, *self._deltas) if t is not None and len(t)]
            matched: dict[str, list[int]] = {}
            for table in tables:
                mask = _criteria_mask(table, criteria)
                for mpi_id, record_id in zip(table.mpi_ids[mask], table.record_ids[mask], strict=True):
                    matched.setdefault(str(mpi_id), []).append(int(record_id))
        if not matched:
            return []
        if sum(len(ids) for ids in matched.values()) > self._max_scored:
            # Too broad to score each candidate: every hit met every criterion.
            return [Hit(mpi_id, 1.0) for mpi_id in sorted(matched)]
        return self._ranked(criteria, matched)

    def _ranked(self, criteria: Criteria, matched: dict[str, list[int]]) -> list[Hit]:
        record_ids = [record_id for ids in matched.values() for record_id in ids]
        records = self._store.run(lambda uow: uow.get_records(record_ids), write=False)
        probe = criteria.probe()
        perfect = self._matcher.score(probe, [probe])[0].match_weight
        order = [record_id for record_id in record_ids if record_id in records]
        scores = self._matcher.score(probe, [records[record_id].demographics for record_id in order])
        weight_of = {record_id: score.match_weight for record_id, score in zip(order, scores, strict=True)}
        hits = []
        for mpi_id, ids in matched.items():
            best = max((weight_of[i] for i in ids if i in weight_of), default=0.0)
            confidence = 1.0 if perfect <= 0 else min(1.0, max(0.0, best / perfect))
            hits.append(Hit(mpi_id, round(confidence, 4)))
        hits.sort(key=lambda hit: (-hit.confidence, hit.mpi_id))
        return hits


def _current(uow: UnitOfWork, records: list[tuple[SourceRecord, str]]) -> list[tuple[SourceRecord, str]]:
    retired = uow.superseded_records([r.record_id for r, _ in records])
    return [(r, m) for r, m in records if r.record_id not in retired]
