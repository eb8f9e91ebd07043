"""Several connections register the same persons at the same moment: no race may create a duplicate."""

from __future__ import annotations

import random
import threading
from collections import defaultdict

import pytest

from mpi.domain.commands import RegisterRecord
from mpi.domain.persons import PersonStatus
from mpi.domain.records import Demographics, RecordKey
from mpi.service.audit import verify
from mpi.service.bootstrap import Services, bootstrap
from mpi.service.fake_matcher import FakeMatcher
from mpi.service.settings import Settings

WORKERS = 6
GIVEN = ["Jean", "Anne", "Marc", "Sofia", "Luc", "Eva", "Paul", "Ines", "Tom", "Lea"]
FAMILY = ["Weber", "Schmit", "Santos", "Muller", "Hoffmann"]
IDENTITIES = [
    Demographics(
        family_name=FAMILY[i % 5],
        given_names=GIVEN[i % 10],
        birth_date=f"19{50 + i}-0{1 + i % 9}-1{i % 10}",
        sex="F" if i % 2 else "M",
    )
    for i in range(24)
]


def connect(url: str, migrate: bool) -> Services:
    settings = Settings(database_url=url, auto_migrate=migrate, _env_file=None)  # type: ignore[call-arg]
    return bootstrap(settings, FakeMatcher())


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_racing_registrations_of_the_same_persons_create_each_person_once(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url: str = request.getfixturevalue(f"{backend}_url")
    first = connect(url, migrate=True)
    workers = [first, *(connect(url, migrate=False) for _ in range(WORKERS - 1))]
    start = threading.Barrier(WORKERS)
    results: dict[int, list[str]] = defaultdict(list)
    errors: list[BaseException] = []
    guard = threading.Lock()

    def run(worker: int) -> None:
        order = list(range(len(IDENTITIES)))
        random.Random(worker).shuffle(order)
        try:
            start.wait()
            for identity in order:
                key = RecordKey(f"SOURCE-{worker}", f"patient-{identity}")
                result = workers[worker].registry.register(RegisterRecord(key, IDENTITIES[identity]))
                with guard:
                    results[identity].append(result.mpi_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    try:
        assert errors == []
        assert all(len(ids) == WORKERS for ids in results.values())
        assert all(len(set(ids)) == 1 for ids in results.values()), (
            "a race produced two persons for one patient"
        )
        state = first.store.run(lambda uow: uow.snapshot(), write=False)
        active = [p for p in state.persons.values() if p.status is PersonStatus.ACTIVE]
        assert len(active) == len(IDENTITIES)
        assert len(state.records) == len(IDENTITIES) * WORKERS
        assert verify(first.store).ok
    finally:
        for services in workers:
            services.close()
