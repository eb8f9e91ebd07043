"""MPI ids catch typing errors; settings refuse what would silently go wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpi.domain.mpi_id import (
    BODY_ALPHABET,
    BODY_LENGTH,
    CHECK_ALPHABET,
    ID_LENGTH,
    is_valid_mpi_id,
    new_mpi_id,
)
from mpi.errors import InputError
from mpi.service.settings import load_settings

ids = st.builds(lambda _: new_mpi_id(), st.integers())


@given(ids, st.integers(0, ID_LENGTH - 1), st.integers(1, 35))
def test_every_single_substitution_is_caught(mpi_id: str, position: int, shift: int) -> None:
    alphabet = BODY_ALPHABET if position < BODY_LENGTH else CHECK_ALPHABET
    replacement = alphabet[(alphabet.index(mpi_id[position]) + shift) % len(alphabet)]
    typo = mpi_id[:position] + replacement + mpi_id[position + 1 :]
    assert is_valid_mpi_id(mpi_id)
    assert typo == mpi_id or not is_valid_mpi_id(typo)


@given(ids, st.integers(0, ID_LENGTH - 2))
def test_every_adjacent_transposition_is_caught(mpi_id: str, position: int) -> None:
    swapped = mpi_id[:position] + mpi_id[position + 1] + mpi_id[position] + mpi_id[position + 2 :]
    assert swapped == mpi_id or not is_valid_mpi_id(swapped)


def test_ids_are_random_and_typed_forms_are_accepted() -> None:
    generated = {new_mpi_id() for _ in range(1000)}
    assert len(generated) == 1000
    sample = next(iter(generated))
    assert is_valid_mpi_id(f" {sample[:4].lower()}-{sample[4:8]} {sample[8:]} ")


def test_settings_come_from_flags_over_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("MPI_DEFAULT_DOMAIN=from-dotenv\nMPI_DATABASE_URL=sqlite:///env.db\n")
    monkeypatch.setenv("MPI_SURVIVORSHIP__SOURCE_TRUST", '["RNPP", "CHL"]')
    settings = load_settings(database_url="postgresql://mpi@db:5432/mpi", default_domain=None)
    assert settings.database_url == "postgresql+psycopg://mpi@db:5432/mpi"
    assert settings.default_domain == "from-dotenv"
    assert settings.survivorship.source_trust == ["RNPP", "CHL"]


@pytest.mark.parametrize(
    ("url", "message"),
    [("mysql://x@y/z", "use sqlite"), ("sqlite:///:memory:", "in-memory"), ("sqlite:///", "in-memory")],
)
def test_unsafe_database_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_settings(database_url=url)
