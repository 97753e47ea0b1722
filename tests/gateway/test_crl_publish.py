"""The CRL job of cert-manager's client CA: ``sluis certs publish-crl`` (issue 13).

The real CLI, a real gateway database (SQLite; PostgreSQL when it answers) whose audit log
holds the revocations, and a Kubernetes API server on loopback over real TLS
(tests/support/kube_api.py) that checks paths, verbs, the bearer token, the patch type and
the resource version, and refuses what the chart's Role does not grant. The service account
directory is laid out as the kubelet mounts it (token, ca.crt, namespace), and the client
trusts only that ca.crt, as client-go's in-cluster configuration does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from certs import CertificateRejected, TrustStore, issue_participant, load_crls, verify
from gateway.admin.revocations import RevocationLogError, revocations_in
from gateway.audit.entry import Actor, AuditEntry, DecisionRecord, encode_entry
from gateway.cli.main import app as cli
from gateway.kube import ConfigMaps, InCluster, KubeError
from tests.certs.test_cert_manager_ca import _cert_manager_ca
from tests.support.databases import database_url
from tests.support.kube_api import FakeKubeApi
from tests.support.pki import Pki, pem
from tests.support.server import signing_key

NAMESPACE = "gw"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.service-account-token.sig"  # what the kubelet projects
CONFIG_MAP = "sluis-crl"
PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{CONFIG_MAP}"
NOW = datetime.now(UTC)


@dataclass
class Cluster:
    api: FakeKubeApi
    account: Path  # the service account directory, as the kubelet mounts it
    ca_cert: Path  # the client CA's Secret: tls.crt, tls.key
    ca_key: Path
    ca: x509.Certificate
    ca_private: ec.EllipticCurvePrivateKey
    runner: CliRunner

    def publish(self, *extra: str) -> tuple[int, str]:
        result = self.runner.invoke(
            cli,
            ["certs", "publish-crl", "--ca-cert", str(self.ca_cert), "--ca-key", str(self.ca_key),
             "--configmap", CONFIG_MAP, "--service-account-dir", str(self.account), *extra],
        )  # fmt: skip
        return result.exit_code, result.output

    def run(self, *args: str) -> str:
        result = self.runner.invoke(cli, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    def participant(self, directory: Path, org_id: str) -> x509.Certificate:
        leaf = issue_participant(
            organization_id=org_id,
            organization_name="Lab",
            roles=["consumer"],
            public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
            issuer=self.ca,
            issuer_key=self.ca_private,
            now=NOW,
        )
        (directory / f"{org_id}.pem").write_bytes(pem(leaf))
        return leaf

    def published(self) -> list[x509.CertificateRevocationList]:
        return load_crls(self.api.config_maps[CONFIG_MAP]["data"]["crl.pem"].encode())


def _service_account(directory: Path, ca_bundle: Path) -> Path:
    directory.mkdir()
    (directory / "token").write_text(TOKEN + "\n")
    (directory / "ca.crt").write_bytes(ca_bundle.read_bytes())
    (directory / "namespace").write_text(NAMESPACE)
    return directory


def _client_ca_secret(
    directory: Path,
) -> tuple[Path, Path, x509.Certificate, ec.EllipticCurvePrivateKey]:
    """cert-manager's Secret for the client CA: tls.crt and a SEC1 ``EC PRIVATE KEY``."""
    directory.mkdir()
    key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert_manager_ca(key)
    cert_path = directory / "tls.crt"
    cert_path.write_bytes(pem(ca))
    key_path = directory / "tls.key"
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return cert_path, key_path, ca, key


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture
def cluster(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cluster]:
    for name in list(os.environ):
        if name.startswith(("SLUIS_", "KUBERNETES_")):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    api_pki = Pki(tmp_path / "api-pki")  # the API server's certificate (SAN 127.0.0.1)
    api = FakeKubeApi(api_pki, NAMESPACE, TOKEN, grants={CONFIG_MAP: {"get", "patch"}})
    api.put(
        CONFIG_MAP, {"crl.pem": ""}
    )  # kubectl create configmap sluis-crl --from-literal=crl.pem=
    cert_path, key_path, ca, ca_key = _client_ca_secret(tmp_path / "client-ca")
    backend = getattr(request, "param", "sqlite")  # both only where the log is read
    with database_url(backend, tmp_path) as url, api.serving():
        monkeypatch.setenv("SLUIS_HOME", str(home))
        monkeypatch.setenv("SLUIS_DATABASE_URL", url)
        monkeypatch.setenv("SLUIS_AUDIT_KEY_FILE", str(signing_key(home, "audit-key.pem")))
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(api.port))
        monkeypatch.chdir(tmp_path)
        account = _service_account(tmp_path / "serviceaccount", api_pki.bundle)
        made = Cluster(api, account, cert_path, key_path, ca, ca_key, CliRunner())
        made.run("db", "upgrade")  # the gateway's database, with an empty log
        yield made


@pytest.mark.parametrize("cluster", BACKENDS, indirect=True)
def test_revocations_in_the_log_are_signed_into_the_config_map(
    cluster: Cluster, tmp_path: Path
) -> None:
    lost = cluster.participant(tmp_path, "NTRNL-40000001")
    kept = cluster.participant(tmp_path, "NTRNL-40000002")
    out = cluster.run(
        "certs", "revoke", "--cert", "NTRNL-40000001.pem", "--log-only", "--reason", "keyCompromise"
    )
    assert f"revoked {lost.serial_number:x} in the audit log" in out

    code, output = cluster.publish()
    assert code == 0, output
    assert f"CRL published to configmaps/{CONFIG_MAP} (key crl.pem) in {NAMESPACE}" in output
    assert "1 revoked" in output

    get, patch = cluster.api.requests
    assert (get.method, get.path, patch.method, patch.path) == ("GET", PATH, "PATCH", PATH)
    for request in (get, patch):
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert patch.headers["content-type"] == "application/merge-patch+json"
    body = json.loads(patch.body)
    assert body["metadata"] == {"resourceVersion": "101"}  # the version it read
    assert list(body["data"]) == ["crl.pem"]  # nothing else in the ConfigMap is touched

    (crl,) = cluster.published()
    assert crl.issuer == cluster.ca.subject
    assert crl.get_revoked_certificate_by_serial_number(lost.serial_number) is not None
    trust = TrustStore.from_pem(pem(cluster.ca))
    with pytest.raises(CertificateRejected) as refused:
        verify([lost], trust, [crl], now=datetime.now(UTC))
    assert refused.value.code == "revoked"
    assert verify([kept], trust, [crl], now=datetime.now(UTC)).organization_id == "NTRNL-40000002"


@pytest.mark.parametrize("cluster", BACKENDS, indirect=True)
def test_a_second_run_keeps_every_revocation_and_a_higher_number(
    cluster: Cluster, tmp_path: Path
) -> None:
    first = cluster.participant(tmp_path, "NTRNL-40000001")
    cluster.run("certs", "revoke", f"{first.serial_number:x}", "--log-only")
    assert cluster.publish()[0] == 0
    (crl_1,) = cluster.published()
    second = cluster.participant(tmp_path, "NTRNL-40000002")
    cluster.run("certs", "revoke", f"{second.serial_number:x}", "--log-only")
    code, output = cluster.publish()
    assert code == 0, output
    (crl_2,) = cluster.published()
    assert {r.serial_number for r in crl_2} == {first.serial_number, second.serial_number}
    assert _number(crl_2) > _number(crl_1) >= int(NOW.timestamp())


def test_the_api_server_is_verified_against_the_service_account_ca(cluster: Cluster) -> None:
    other = Pki(cluster.account.parent / "other-pki")  # a CA that did not sign the API server
    (cluster.account / "ca.crt").write_bytes(other.bundle.read_bytes())
    code, output = cluster.publish()
    assert code == 1
    assert "Kubernetes API: GET https://127.0.0.1:" in output
    assert "CERTIFICATE_VERIFY_FAILED" in output
    assert cluster.api.requests == []  # not one byte of the token went out
    assert cluster.api.config_maps[CONFIG_MAP]["data"] == {"crl.pem": ""}


def test_what_the_role_does_not_grant_is_refused_clearly(cluster: Cluster) -> None:
    cluster.api.grants[CONFIG_MAP] = {"get"}  # a Role without patch
    code, output = cluster.publish()
    assert code == 1
    assert "403" in output
    assert "must allow get and patch on configmaps/sluis-crl" in output
    assert cluster.api.config_maps[CONFIG_MAP]["data"] == {"crl.pem": ""}


def test_another_config_map_name_is_not_granted(cluster: Cluster) -> None:
    code, output = cluster.publish("--configmap", "kube-root-ca.crt")
    assert code == 1
    assert 'configmaps "kube-root-ca.crt" is forbidden' in output


def test_a_missing_config_map_says_how_to_create_it(cluster: Cluster) -> None:
    del cluster.api.config_maps[CONFIG_MAP]
    code, output = cluster.publish()
    assert code == 1
    assert "kubectl create configmap sluis-crl --from-literal=crl.pem=" in output


def test_a_wrong_token_is_refused(cluster: Cluster) -> None:
    cluster.api.token = "another"
    code, output = cluster.publish()
    assert (code, "401" in output) == (1, True)


def test_the_token_is_read_again_for_every_request(cluster: Cluster) -> None:
    assert cluster.publish()[0] == 0
    cluster.api.token = "rotated.by.the.kubelet"
    (cluster.account / "token").write_text("rotated.by.the.kubelet")
    code, output = cluster.publish()
    assert code == 0, output
    assert cluster.api.requests[-1].headers["authorization"] == "Bearer rotated.by.the.kubelet"


def test_a_change_between_read_and_patch_is_a_conflict(cluster: Cluster) -> None:
    cluster.api.before_patch = lambda: cluster.api.put(CONFIG_MAP, {"crl.pem": "", "x": "y"})
    code, output = cluster.publish()
    assert code == 1
    assert "409" in output
    assert "the next run tries again" in output
    assert cluster.api.config_maps[CONFIG_MAP]["data"] == {"crl.pem": "", "x": "y"}


def test_an_unreadable_published_bundle_is_not_overwritten(cluster: Cluster) -> None:
    cluster.api.put(CONFIG_MAP, {"crl.pem": "not a CRL"})
    code, output = cluster.publish()
    assert code == 1
    assert "no PEM 'X509 CRL' block" in output
    assert cluster.api.config_maps[CONFIG_MAP]["data"] == {"crl.pem": "not a CRL"}


def test_outside_a_pod_it_says_so(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    code, output = cluster.publish()
    assert code == 1
    assert "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set" in output


def test_log_only_needs_the_gateway_database(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SLUIS_DATABASE_URL")
    monkeypatch.setenv("SLUIS_HOME", str(tmp_path / "empty-home"))
    result = cluster.runner.invoke(cli, ["certs", "revoke", "abcdef", "--log-only"])
    assert result.exit_code == 1
    assert "--log-only needs the gateway's database" in result.output


def test_in_cluster_config_as_client_go_builds_it(tmp_path: Path) -> None:
    account = _service_account(tmp_path / "sa", Pki(tmp_path / "pki").bundle)
    env = {"KUBERNETES_SERVICE_HOST": "fd00:10:96::1", "KUBERNETES_SERVICE_PORT": "443"}
    cluster = InCluster.from_environment(env, account)
    assert cluster.base_url == "https://[fd00:10:96::1]:443"
    assert (cluster.namespace, cluster.token_file, cluster.ca_file) == (
        NAMESPACE,
        account / "token",
        account / "ca.crt",
    )
    (account / "token").unlink()
    with pytest.raises(KubeError) as missing:
        InCluster.from_environment(env, account)
    assert missing.value.code == "not-in-cluster"


def test_config_maps_client_refuses_what_is_not_a_config_map(tmp_path: Path) -> None:
    api = FakeKubeApi(Pki(tmp_path / "pki"), NAMESPACE, TOKEN, grants={"a": {"get"}})
    account = _service_account(tmp_path / "sa", api.pki.bundle)
    with api.serving():
        env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(api.port)}
        maps = ConfigMaps(InCluster.from_environment(env, account))
        api.answer = lambda *_: (200, {"kind": "Secret", "metadata": {}})  # type: ignore[method-assign]
        with pytest.raises(KubeError) as wrong:
            maps.get("a")
    assert wrong.value.code == "bad-response"


def _revocation(target: str, reasons: tuple[str, ...] = ()) -> bytes:
    entry = AuditEntry(
        time=NOW,
        event="admin-change",
        actor=Actor(source="cli:op@host"),
        action="revoke",
        target=target,
        decision=DecisionRecord(result="permit", reasons=reasons),
    )
    return encode_entry(entry)


def test_the_log_is_read_fail_closed() -> None:
    rows = [
        (0, _revocation("certificate:ab", ("organization_id=X", "reason=keyCompromise"))),
        (1, _revocation("token:abc")),
        (2, _revocation("certificate:cd", ("reason=unspecified",))),
    ]
    found = revocations_in(rows)
    assert [(r.serial_number, r.reason) for r in found] == [
        (0xAB, x509.ReasonFlags.key_compromise),
        (0xCD, None),
    ]
    with pytest.raises(RevocationLogError) as bad:
        revocations_in([*rows, (3, _revocation("certificate:zz"))])
    assert bad.value.detail == "audit entry 3: 'zz' is not a hexadecimal serial"


def _number(crl: x509.CertificateRevocationList) -> int:
    return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)


def test_the_job_runs_with_only_what_the_chart_gives_it(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CronJob's environment: the database URL as a file, no audit or signing key."""
    lost = cluster.participant(tmp_path, "NTRNL-40000001")
    cluster.run("certs", "revoke", f"{lost.serial_number:x}", "--log-only")
    url_file = tmp_path / "database-url"
    fd = os.open(url_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "w") as handle:
        handle.write(os.environ["SLUIS_DATABASE_URL"])
    monkeypatch.delenv("SLUIS_DATABASE_URL")
    monkeypatch.delenv("SLUIS_AUDIT_KEY_FILE")
    monkeypatch.setenv("SLUIS_DATABASE_URL_FILE", str(url_file))
    monkeypatch.setenv("SLUIS_AUTO_MIGRATE", "false")
    monkeypatch.setenv("SLUIS_PUBLIC_URL", "https://sluis.example.org")
    code, output = cluster.publish("--days", "3")
    assert code == 0, output
    (crl,) = cluster.published()
    assert [r.serial_number for r in crl] == [lost.serial_number]
    assert crl.next_update_utc is not None
    assert crl.last_update_utc is not None
    assert (crl.next_update_utc - crl.last_update_utc).days == 3
