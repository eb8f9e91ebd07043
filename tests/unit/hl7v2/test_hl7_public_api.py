"""The hl7v2 package exports a deliberate, sorted public API."""

from __future__ import annotations

from mpi import hl7v2


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert hl7v2.__all__ == sorted(hl7v2.__all__, key=lambda name: (not name.isupper(), name))
    for name in hl7v2.__all__:
        assert getattr(hl7v2, name) is not None, name


def test_no_public_name_is_left_out_of_all() -> None:
    public = {
        name
        for name, value in vars(hl7v2).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "mpi.hl7v2").startswith("mpi.hl7v2")
        and not isinstance(value, type(hl7v2))
    }
    assert public <= set(hl7v2.__all__)
