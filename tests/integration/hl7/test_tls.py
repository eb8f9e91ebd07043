"""MLLP over TLS against a real `mpi serve`: certificates made here, by a throw-away CA.

With ``client_ca`` set, a client presenting a certificate that CA signed gets its
ACK; one without a certificate, or with one from another CA, gets no answer and
no change is made; plain MLLP sent to the TLS port is dropped, and the listener
keeps serving. Without ``client_ca``, a client needs no certificate. The listener's cases
run with one server process and with two sharing the socket (``--processes 2``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import signal
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mllp_listener import Listener, er7, start_listener, write_config

from mpi.hl7v2.framing import Frame, MLLPDecoder, frame

x509 = pytest.importorskip("cryptography.x509", reason="the test extra installs cryptography")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Issued:
    certificate: Path
    key: Path


class Authority:
    """A self-signed CA that issues server and client certificates into a folder."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.name = name
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self._subject = subject
        self._certificate = (
            self._builder(subject, self._key.public_key())
            .issuer_name(subject)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                    key_encipherment=False, data_encipherment=False, key_agreement=False,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )  # fmt: skip
        self.certificate = folder / f"{name}.crt"
        self.certificate.write_bytes(self._certificate.public_bytes(serialization.Encoding.PEM))

    @staticmethod
    def _builder(subject: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
        )

    def issue(self, common_name: str, *, server: bool) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            self._builder(subject, key.public_key())
            .issuer_name(self._subject)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
        )
        if server:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(self._key, hashes.SHA256())
        issued = Issued(self.folder / f"{common_name}.crt", self.folder / f"{common_name}.key")
        issued.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        issued.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return issued


@dataclass(frozen=True)
class Pki:
    authority: Authority
    server: Issued
    client: Issued
    stranger: Issued  # a client certificate from a CA the listener does not trust


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    folder = tmp_path / "tls"
    folder.mkdir()
    authority = Authority(folder, "test-ca")
    stranger = Authority(folder, "other-ca").issue("stranger", server=False)
    return Pki(authority, authority.issue("mpi", server=True), authority.issue("his", server=False), stranger)


def tls_config(pki: Pki, *, client_certificates: bool) -> str:
    lines = [
        "\n[listener.tls]",
        f'certificate = "{pki.server.certificate}"',
        f'private_key = "{pki.server.key}"',
    ]
    if client_certificates:
        lines.append(f'client_ca = "{pki.authority.certificate}"')
    # The TOML of mllp_listener puts [listener] first: a sub-table may follow the whole file.
    return "\n".join(lines) + "\n"


@pytest.fixture(params=[1, 2], ids=["one process", "two processes"])
def tls_listener(tmp_path: Path, pki: Pki, request: pytest.FixtureRequest) -> Iterator[Listener]:
    """A listener requiring client certificates; with two processes, its connections are
    accepted on the socket they share (``mpi serve --processes 2``)."""
    config = write_config(tmp_path, tls_config(pki, client_certificates=True))
    processes = ["--processes", str(request.param)]
    running = start_listener(config, f"sqlite:///{tmp_path / 'mpi.db'}", extra_args=processes)
    try:
        yield running
    finally:
        running.stop(signal.SIGKILL)


def client_context(pki: Pki, certificate: Issued | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.authority.certificate))
    if certificate is not None:
        context.load_cert_chain(certificate.certificate, certificate.key)
    return context


def tls_exchange(port: int, context: ssl.SSLContext, payload: bytes) -> bytes:
    """Send one framed message over TLS and return the payload of the answer."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=20) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(frame(payload))
        decoder = MLLPDecoder(1_000_000)
        while True:
            data = tls.recv(65536)
            if not data:
                raise ConnectionError("the listener closed the connection without answering")
            for event in decoder.feed(data):
                if isinstance(event, Frame):
                    return event.payload


def a04(control_id: str, local_id: str) -> bytes:
    return er7(
        f"MSH|^~\\&|HIS|CHL|MPI|ESANTE|20240101||ADT^A04^ADT_A01|{control_id}|P|2.5\n"
        f"PID|||{local_id}^^^CHL||Schmit^Jean||19800101|M"
    )


def pix(control_id: str, local_id: str) -> bytes:
    return er7(
        f"MSH|^~\\&|PORTAL|ESANTE|MPI|ESANTE|20240101||QBP^Q23^QBP_Q21|{control_id}|P|2.5\n"
        f"QPD|IHE PIX Query|{control_id}|{local_id}^^^CHL\nRCP|I"
    )


def msa(answer: bytes) -> list[str]:
    segment = next(s for s in answer.split(b"\r") if s.startswith(b"MSA|"))
    return segment.decode().split("|")[1:3]


def test_a_client_with_a_certificate_of_the_trusted_ca_is_served(tls_listener: Listener, pki: Pki) -> None:
    context = client_context(pki, pki.client)
    assert msa(tls_exchange(tls_listener.port, context, a04("T1", "C1"))) == ["AA", "T1"]
    answer = tls_exchange(tls_listener.port, context, pix("Q1", "C1"))
    assert msa(answer) == ["AA", "Q1"] and b"QAK|Q1|OK" in answer


@pytest.mark.parametrize("who", ["no certificate", "another CA's certificate"])
def test_a_client_without_a_trusted_certificate_is_refused(
    tls_listener: Listener, pki: Pki, who: str
) -> None:
    certificate = None if who == "no certificate" else pki.stranger
    with pytest.raises((ssl.SSLError, ConnectionError)):
        # TLS 1.3 may finish the client's side of the handshake before the listener has
        # checked the certificate: the refusal then arrives as the first thing read.
        tls_exchange(tls_listener.port, client_context(pki, certificate), a04("T2", "C2"))
    trusted = client_context(pki, pki.client)
    answer = tls_exchange(tls_listener.port, trusted, pix("Q2", "C2"))
    assert msa(answer) == ["AE", "Q2"]  # C2 was never registered


def test_plain_mllp_to_the_tls_port_is_dropped_and_the_listener_keeps_serving(
    tls_listener: Listener, pki: Pki
) -> None:
    for garbage in (frame(a04("P1", "C3")), b"\x16\x03\x01\x00\x05hello", b"\x00" * 4096):
        with socket.create_connection(("127.0.0.1", tls_listener.port), timeout=20) as plain:
            plain.sendall(garbage)
            plain.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := plain.recv(65536):
                received += chunk
            assert b"MSA|" not in received  # nothing is ever answered in the clear
    assert tls_listener.process.poll() is None
    context = client_context(pki, pki.client)
    assert msa(tls_exchange(tls_listener.port, context, a04("T3", "C4"))) == ["AA", "T3"]
    assert msa(tls_exchange(tls_listener.port, context, pix("Q3", "C3"))) == ["AE", "Q3"]


def test_without_a_client_ca_a_client_needs_no_certificate(tmp_path: Path, pki: Pki) -> None:
    config = write_config(tmp_path, tls_config(pki, client_certificates=False))
    running = start_listener(config, f"sqlite:///{tmp_path / 'mpi.db'}")
    try:
        context = client_context(pki, None)
        assert msa(tls_exchange(running.port, context, a04("T4", "C5"))) == ["AA", "T4"]
        with pytest.raises(ssl.SSLCertVerificationError):
            # and the client, for its part, checks the listener's certificate
            tls_exchange(running.port, ssl.create_default_context(), a04("T5", "C6"))
    finally:
        running.stop(signal.SIGKILL)
