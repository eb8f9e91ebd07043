"""The listener configuration: the documented example loads; mistakes name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

import mpi.hl7v2
from mpi.errors import InputError
from mpi.hl7v2.config import DomainKind, load_config
from mpi.hl7v2.header import HierarchicDesignator

EXAMPLE = Path(mpi.hl7v2.__file__).parent / "example-config.toml"

MINIMAL = """
[[domain]]
namespace = "CHL"
[[sender]]
application = "HIS"
domains = ["CHL"]
"""


def test_the_documented_example_loads() -> None:
    config = load_config(EXAMPLE)
    assert (config.listener.host, config.listener.port) == ("127.0.0.1", 2575)
    assert (config.listener.workers, config.listener.writers) == (4, 1)
    matricule = config.domain_of_kind(DomainKind.MATRICULE)
    assert matricule is not None and matricule.universal_id == "1.3.182.4.4"
    sender = config.sender(HierarchicDesignator("HIS"), HierarchicDesignator("CHL"))
    assert sender is not None and sender.domains == ("CHL",)
    assert config.sender(HierarchicDesignator("HIS"), HierarchicDesignator("OTHER")) is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[listener]\nport = 70000\n", "listener.port: Input should be less than or equal to 65535"),
        ("[listener]\nprot = 1\n", "listener.prot: Extra inputs are not permitted"),
        ("[listener]\nwriters = 0\n", "listener.writers: Input should be greater than or equal to 1"),
        ('[[sender]]\napplication = "LIS"\ndomains = ["CHL"]\n', "one source per domain"),
        ('[[sender]]\napplication = "LIS"\ndomains = ["NOWHERE"]\n', "feeds unknown domain 'NOWHERE'"),
        (
            '[[consumer]]\nname = "c"\nhost = "h"\nport = 1\n'
            'application = "A"\nfacility = "F"\ndomains = ["X"]\n',
            "consumer c wants unknown domain 'X'",
        ),
        ('[[domain]]\nnamespace = "CHL"\n', "domain.authority 'CHL' appears twice"),
        (
            '[[domain]]\nauthority = "X"\nuniversal_id = "1.2"\n',
            "universal_id and universal_id_type go together",
        ),
    ],
)
def test_mistakes_name_the_file_and_the_key(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "hl7.toml"
    path.write_text(MINIMAL + extra, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_unreadable_toml_and_missing_tls_files_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[listener\n", encoding="utf-8")
    with pytest.raises(InputError, match="not valid TOML"):
        load_config(broken)
    tls = tmp_path / "tls.toml"
    tls.write_text(
        MINIMAL + '[listener.tls]\ncertificate = "c.pem"\nprivate_key = "k.pem"\n', encoding="utf-8"
    )
    with pytest.raises(InputError, match=r"listener\.tls\.certificate: no such file"):
        load_config(tls)
