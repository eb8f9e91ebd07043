"""A PDQ directory reloading every record (seconds per million) keeps answering searches from
the tables in place, caught up with the log, on each database."""

from __future__ import annotations

import threading
import time

from mpi.domain.commands import RegisterRecord
from mpi.domain.records import Demographics, RecordKey
from mpi.service.bootstrap import bootstrap
from mpi.service.directory import Criteria, PersonDirectory
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.held_store import HeldDirectoryLoads
from mpi.service.settings import Settings


def anna(family_name: str, postcode: str) -> Demographics:
    return Demographics(
        family_name=family_name, given_names="Anna", birth_date="1980-01-02", sex="F", postcode=postcode
    )


def test_searches_are_answered_from_the_tables_in_place_while_the_directory_reloads(
    database_url: str,
) -> None:
    services = bootstrap(Settings(database_url=database_url, _env_file=None), FakeMatcher())  # type: ignore[call-arg]
    store = HeldDirectoryLoads(services.store)
    directory = PersonDirectory(store, FakeMatcher(), loads_in_background=True)
    first = services.registry.register(RegisterRecord(RecordKey("CHL", "0"), anna("Muller", "4001")))
    directory.refresh()
    for number in range(1, 120):  # more changes than a tenth of the base: a reload is due
        key = RecordKey("CHL", str(number))
        someone = Demographics(family_name=f"Weber{number}", given_names=f"Given{number}", sex="M")
        services.registry.register(RegisterRecord(key, someone))
        directory.refresh(may_reload=False)  # caught up by searches meanwhile
    late = services.registry.register(RegisterRecord(RecordKey("LABO", "L1"), anna("Kremer", "1234")))

    store.hold.set()
    reloader = threading.Thread(target=directory.refresh)  # the server's refresher
    reloader.start()
    try:
        assert store.loading.wait(5)
        asked = time.monotonic()
        assert [h.mpi_id for h in directory.search(Criteria(family_name="Muller"))] == [first.mpi_id]
        assert [h.mpi_id for h in directory.search(Criteria(family_name="Kremer"))] == [late.mpi_id]
        assert time.monotonic() - asked < 2  # caught up, without waiting for the reload
    finally:
        store.release.set()
        reloader.join(10)
    directory.refresh()
    assert len(directory) == 121
    assert [h.mpi_id for h in directory.search(Criteria(family_name="Kremer"))] == [late.mpi_id]
    services.close()
