"""The server certificate re-read on change (gateway/http/cert_reload.py), without a server.

A real ``SSLContext`` and files replaced the way the kubelet swaps a Secret volume (new
files renamed in); which certificate the context presents is read from a TLS handshake in
memory. Unchanged files load nothing; a pair that does not load, a key readable by others
and files gone keep the old certificate, each with its log line; the next change is tried
again. The same through a running gateway: test_cert_reload.py (a gateway per test).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.http.cert_reload import ServerCertificate, _stamp
from tests.support.pki import write_key


def _pair(directory: Path, serial: int) -> tuple[Path, Path, x509.Certificate]:
    """A self-signed server certificate and its key, as files in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"server {serial}")])
    start = datetime.now(UTC) - timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / "tls.crt"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, write_key(directory / "tls.key", key), cert


def _served(context: ssl.SSLContext) -> int:
    """The serial number of the certificate ``context`` presents to a new handshake."""
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(to_client, to_server)
    server = context.wrap_bio(to_server, to_client, server_side=True)
    done: set[int] = set()
    for _ in range(10):
        for number, end in enumerate((client, server)):
            with contextlib.suppress(ssl.SSLWantReadError):
                end.do_handshake()
                done.add(number)
        if done == {0, 1}:
            break
    der = client.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


class Mounted:
    """A Secret volume's two files and a server context loaded from them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cert, self.key, _ = _pair(root / "live", 1)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(self.cert, self.key)
        self.reloader = ServerCertificate(self.context, self.cert, self.key)
        self.made = 1

    def new(self) -> tuple[Path, Path, int]:
        self.made += 1
        cert, key, _ = _pair(self.root / f"new-{self.made}", self.made)
        return cert, key, self.made

    def swap(self, cert: Path | None, key: Path | None) -> None:
        if cert is not None:
            cert.replace(self.cert)
        if key is not None:
            key.replace(self.key)


@pytest.fixture
def mounted(tmp_path: Path) -> Mounted:
    return Mounted(tmp_path)


def test_unchanged_files_load_nothing(mounted: Mounted) -> None:
    assert mounted.reloader.check() is False
    assert mounted.reloader.check() is False
    assert _served(mounted.context) == 1


def test_a_new_pair_is_presented_to_new_handshakes(
    mounted: Mounted, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key, serial = mounted.new()
    mounted.swap(cert, key)
    with caplog.at_level(logging.INFO, logger="sluis.server"):
        assert mounted.reloader.check() is True
    assert _served(mounted.context) == serial
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("sluis.server", logging.INFO, f"server certificate reloaded from {mounted.cert}")
    ]
    assert mounted.reloader.check() is False  # loaded once


def test_each_change_is_loaded(mounted: Mounted) -> None:
    for _ in range(2):
        cert, key, serial = mounted.new()
        mounted.swap(cert, key)
        assert mounted.reloader.check() is True
        assert _served(mounted.context) == serial


def test_a_certificate_without_its_key_keeps_the_old(
    mounted: Mounted, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key, serial = mounted.new()
    mounted.swap(cert, None)  # the certificate swapped in, its key not yet
    with caplog.at_level(logging.INFO, logger="sluis.server"):
        assert mounted.reloader.check() is False
    assert _served(mounted.context) == 1
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    prefix = "the changed server certificate cannot be loaded, keeping the old: "
    assert record.getMessage().startswith(prefix)
    assert "KEY_VALUES_MISMATCH" in record.getMessage()[len(prefix) :]  # the SSLError's words
    assert mounted.reloader.check() is False  # the same files: not tried again
    mounted.swap(None, key)  # the key follows: the next change is tried
    assert mounted.reloader.check() is True
    assert _served(mounted.context) == serial


def test_files_that_are_not_a_pair_keep_the_old(mounted: Mounted) -> None:
    mounted.cert.write_bytes(b"not a certificate")
    assert mounted.reloader.check() is False
    assert _served(mounted.context) == 1


def test_an_exposed_key_is_not_loaded(mounted: Mounted, caplog: pytest.LogCaptureFixture) -> None:
    cert, key, serial = mounted.new()
    key.chmod(0o644)
    mounted.swap(cert, key)
    with caplog.at_level(logging.INFO, logger="sluis.server"):
        assert mounted.reloader.check() is False
    assert _served(mounted.context) == 1
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.WARNING,
            f"the changed server key {mounted.key} is readable by others: chmod 600 it,"
            " keeping the old",
        )
    ]
    mounted.key.chmod(0o600)  # fixed: a change of mode only is no change of the files
    assert mounted.reloader.check() is False
    cert, key, serial = mounted.new()
    mounted.swap(cert, key)
    assert mounted.reloader.check() is True
    assert _served(mounted.context) == serial


def test_files_gone_keep_the_old_and_their_return_is_loaded(mounted: Mounted) -> None:
    mounted.key.unlink()
    assert mounted.reloader.check() is False
    assert _served(mounted.context) == 1
    cert, key, serial = mounted.new()
    mounted.swap(cert, key)
    assert mounted.reloader.check() is True
    assert _served(mounted.context) == serial


def test_files_missing_at_start_are_loaded_when_they_appear(tmp_path: Path) -> None:
    live_cert, live_key, _ = _pair(tmp_path / "first", 1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(live_cert, live_key)
    cert, key = tmp_path / "mount" / "tls.crt", tmp_path / "mount" / "tls.key"
    reloader = ServerCertificate(context, cert, key)
    assert reloader.check() is False
    new_cert, new_key, _ = _pair(tmp_path / "second", 2)
    cert.parent.mkdir()
    new_cert.replace(cert)
    assert reloader.check() is False  # the key is not there yet
    new_key.replace(key)
    assert reloader.check() is True
    assert _served(context) == 2


def test_the_stamp_is_each_files_inode_time_and_size(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"12345")
    second.write_bytes(b"1")
    stamp = _stamp((first, second))
    a, b = first.stat(), second.stat()
    assert stamp == ((a.st_ino, a.st_mtime_ns, 5), (b.st_ino, b.st_mtime_ns, 1))
    assert _stamp((first, tmp_path / "missing")) is None
    assert _stamp(()) == ()
