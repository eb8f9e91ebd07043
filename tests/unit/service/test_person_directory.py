"""The PDQ person directory follows the registry through many small catch-ups and their merges."""

from __future__ import annotations

import pytest

from mpi.domain.commands import RegisterRecord
from mpi.domain.records import Demographics, RecordKey
from mpi.errors import NotReady
from mpi.service.bootstrap import Services
from mpi.service.directory import Criteria, PersonDirectory
from mpi.service.fake_matcher import FakeMatcher


def anna(family_name: str, postcode: str) -> Demographics:
    return Demographics(
        family_name=family_name, given_names="Anna", birth_date="1980-01-02", sex="F", postcode=postcode
    )


def test_each_change_replaces_the_old_row_across_many_catch_ups(services: Services) -> None:
    directory = PersonDirectory(services.store, FakeMatcher())
    first = services.registry.register(RegisterRecord(RecordKey("CHL", "1"), anna("Muller", "4001")))
    directory.refresh()
    # Far more catch-ups than the directory keeps separate tables for, each changing the record,
    # with another person registered now and then.
    for number in range(80):
        services.registry.register(RegisterRecord(RecordKey("CHL", "1"), anna("Muller", f"{1000 + number}")))
        if number % 10 == 0:
            services.registry.register(
                RegisterRecord(
                    RecordKey("LABO", f"L{number}"), anna(f"Weber{chr(ord('a') + number // 10)}", "9201")
                )
            )
        directory.refresh()

    assert [h.mpi_id for h in directory.search(Criteria(family_name="Muller", postcode="1079"))] == [
        first.mpi_id
    ]
    for stale in ("4001", "1000", "1040", "1078"):
        assert directory.search(Criteria(family_name="Muller", postcode=stale)) == []
    assert len(directory.search(Criteria(family_name="Weberh*"))) == 1
    assert len(directory.search(Criteria(family_name="Weber*"))) == 8
    assert len(directory.search(Criteria(given_name="Anna", birth_date="1980-01-02"))) == 9


def test_a_directory_loaded_in_the_background_is_not_ready_until_it_has_loaded(services: Services) -> None:
    first = services.registry.register(RegisterRecord(RecordKey("CHL", "1"), anna("Muller", "4001")))
    directory = PersonDirectory(services.store, FakeMatcher(), loads_in_background=True)
    with pytest.raises(NotReady, match="still loading"):
        directory.search(Criteria(family_name="Muller"))
    assert not directory.loaded  # the search neither loaded it nor waited for it
    directory.refresh()  # the server's refresher
    assert directory.loaded and len(directory) == 1
    assert [h.mpi_id for h in directory.search(Criteria(family_name="Muller"))] == [first.mpi_id]


def test_a_directory_of_its_own_loads_at_its_first_search(services: Services) -> None:
    first = services.registry.register(RegisterRecord(RecordKey("CHL", "1"), anna("Muller", "4001")))
    directory = PersonDirectory(services.store, FakeMatcher())
    assert [h.mpi_id for h in directory.search(Criteria(family_name="Muller"))] == [first.mpi_id]
    assert directory.loaded
