"""Two feed connections update one patient at the same moment: neither update may undo the other.

A feed message carries only the fields it changes (an empty HL7 field means
unchanged), so each update applies to the record as stored. Two servers (or two
writer batches of one) receiving updates of one patient at once must apply them
one after the other, each to the version the other left.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from mpi.domain.records import Demographics, RecordKey
from mpi.service.bootstrap import bootstrap
from mpi.service.delivery import MessageKey
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.feed import DemographicChanges, Feed, FeedTransaction
from mpi.service.registry import RegistrationResult
from mpi.service.settings import Settings

KEY = RecordKey("CHL", "P-1")
ANNA = {"family_name": "Muller", "given_names": "Anna", "birth_date": "1980-01-02", "sex": "F"}


class SlowMatcher(FakeMatcher):
    """Takes its time over blocking keys: a registration is slow to prepare its probe, which
    widens the moment between reading the record and locking it."""

    def blocking_keys(self, records: Sequence[Demographics]) -> list[list[str]]:
        time.sleep(0.2)
        return super().blocking_keys(records)


def upsert(feed: Feed, control_id: str, changes: DemographicChanges) -> None:
    def change(transaction: FeedTransaction) -> RegistrationResult:
        return transaction.upsert(KEY, changes)

    feed.apply(MessageKey("HIS", "CHL", control_id), "feed", change, lambda _: b"ACK")


@pytest.mark.slow
def test_simultaneous_updates_of_one_patient_keep_both_changes(database_url: str) -> None:
    servers = []
    for migrate in (True, False):
        settings = Settings(database_url=database_url, auto_migrate=migrate, _env_file=None)  # type: ignore[call-arg]
        services = bootstrap(settings, SlowMatcher())
        servers.append((services, Feed(settings, services.store, SlowMatcher())))
    try:
        upsert(servers[0][1], "register", ANNA)
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def send(server: int, changes: DemographicChanges) -> None:
            try:
                start.wait()
                upsert(servers[server][1], f"update-{server}", changes)
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=send, args=(0, {"street": "Rue Neuve"})),
            threading.Thread(target=send, args=(1, {"phone": "+352 123456"})),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        record = servers[0][0].store.run(lambda uow: uow.find_record(KEY), write=False)
        assert record is not None
        assert (record.demographics.street, record.demographics.phone) == ("Rue Neuve", "+352 123456")
        assert record.demographics.family_name == "Muller"
        assert record.version == 3
    finally:
        for services, _ in servers:
            services.close()
