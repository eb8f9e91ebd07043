"""What the registry cannot store is refused with the field it is in, on every database, and
the longest values it can store register, whatever blocking keys they make."""

from __future__ import annotations

import pytest

from mpi.domain.commands import RegisterRecord, UpdateRecord
from mpi.domain.limits import MAX_VALUE_LENGTH
from mpi.domain.records import Demographics, RecordKey
from mpi.errors import InvalidValue
from mpi.service.bootstrap import bootstrap
from mpi.service.settings import Settings

WEBER = Demographics(family_name="Weber", given_names="Jean", birth_date="1982-08-02", sex="M")


@pytest.mark.parametrize(
    ("key", "demographics", "field"),
    [
        (RecordKey("CHL", "1"), Demographics(family_name="W" * (MAX_VALUE_LENGTH + 1)), "family_name"),
        (RecordKey("CHL", "1"), Demographics(family_name="We\x00ber"), "family_name"),
        (RecordKey("CHL", "L" * (MAX_VALUE_LENGTH + 1)), WEBER, "local_id"),
        (RecordKey("C" * 101, "1"), WEBER, "source"),
    ],
)
def test_a_value_the_registry_cannot_store_is_refused_naming_its_field(
    database_url: str, key: RecordKey, demographics: Demographics, field: str
) -> None:
    services = bootstrap(Settings(database_url=database_url, _env_file=None))  # type: ignore[call-arg]
    try:
        with pytest.raises(InvalidValue, match=field) as refused:
            services.registry.register(RegisterRecord(key, demographics))
        assert refused.value.field == field
        assert services.registry.count_records() == 0
        services.registry.register(RegisterRecord(RecordKey("CHL", "1"), WEBER))
        with pytest.raises(InvalidValue):
            services.registry.update(UpdateRecord(key, demographics))
        assert services.registry.count_records() == 1
    finally:
        services.close()


def test_the_longest_values_register_and_find_each_other(database_url: str) -> None:
    # Street and house number both as long as stored make a blocking key wider than its column.
    longest = Demographics(
        family_name="Weber" + "x" * (MAX_VALUE_LENGTH - 5),
        given_names="Jean",
        birth_date="1982-08-02",
        sex="M",
        street="Rue " + "a" * (MAX_VALUE_LENGTH - 4),
        house_number="1" * MAX_VALUE_LENGTH,
        city="C" * MAX_VALUE_LENGTH,
        postcode="L-1234",
    )
    services = bootstrap(Settings(database_url=database_url, _env_file=None))  # type: ignore[call-arg]
    try:
        first = services.registry.register(RegisterRecord(RecordKey("CHL", "1"), longest))
        again = services.registry.register(RegisterRecord(RecordKey("LABO", "9"), longest))
        assert again.mpi_id == first.mpi_id
    finally:
        services.close()
