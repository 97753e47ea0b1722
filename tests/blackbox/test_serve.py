"""Black box: the findings of issues 11 and 12 replayed against ``sluis serve`` over mTLS.

Nothing here reaches inside the process. The registry is seeded with the ``sluis`` CLI (so
every change is audited by the CLI's own path), the gateway runs as ``sluis serve`` in a
child process, the attacks travel over real TLS sockets from httpx and raw ``ssl`` sockets,
and at the end the officer exports the log with ``sluis audit export`` and verifies it
offline with ``sluis audit verify``: every refusal must be in the verified log.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.client import mtls_context
from tests.support.pki import ClientCert, Pki
from tests.support.server import signing_key
from tests.support.upstream import Upstream, counting_upstream

SLUIS = str(Path(sys.executable).with_name("sluis"))
MAKER = "EU.EORI.NL000000001"
UNIVERSITY = "NTRNL-40000001"
RESEARCH = "https://w3id.org/dpv#AcademicResearch"
ORDER = {
    "order": 1,
    "machine": {"model": "X200", "customer": "Secret BV"},
    "lines": [{"qty": 3, "customer": "Hidden NV"}],
}

SENSORS_POLICY = f"""
uid: urn:sluis:policy:maker:sensors
type: Offer
target: urn:sluis:dataset:sensors
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]], [count, lteq, 2]]
    data: {{columns: [machine, temp_c]}}
"""

ORDERS_POLICY = f"""
uid: urn:sluis:policy:maker:orders
type: Offer
target: urn:sluis:dataset:orders
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]]]
    data: {{columns: [order, machine.model, "lines[].qty"]}}
"""


def _upstream() -> Upstream:
    cookie = {"set-cookie": "session=consumer-a; Path=/"}  # must never reach a consumer
    return counting_upstream(lambda path: ([ORDER] if path == "/orders/" else ORDER, cookie))


@dataclass
class Served:
    url: str
    port: int
    home: Path
    env: dict[str, str]
    pki: Pki
    maker: ClientCert
    university: ClientCert
    upstream: Upstream

    def client(self, who: ClientCert | None, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if who is None:
            verify: Any = ssl.create_default_context(cafile=str(self.pki.bundle))
        else:
            verify = mtls_context(self.pki.bundle, who.cert_path, who.key_path)
        return httpx.Client(base_url=self.url, verify=verify, headers=headers, timeout=30)

    def token(self) -> str:
        form = {"grant_type": "client_credentials", "client_id": UNIVERSITY}
        with self.client(self.university) as client:
            response = client.post("/oauth2/token", data=form)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


def _sluis(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [SLUIS, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"sluis {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _write_datasets(home: Path, upstream: Upstream) -> list[Path]:
    data = home / "data"
    data.mkdir()
    rows = ["machine,temp_c,serial"] + [f"X{i},{60 + i}.5,SN-{i}" for i in range(5)]
    (data / "sensors.csv").write_text("\n".join(rows) + "\n")
    (home / "sensors-policy.yaml").write_text(SENSORS_POLICY)
    (home / "orders-policy.yaml").write_text(ORDERS_POLICY)
    sensors = {
        "id": "sensors",
        "title": "Spindle sensors",
        "provider": MAKER,
        "policy": "sensors-policy.yaml",
        "approval": "automatic",
        "connector": {"type": "files", "root": str(data), "path": "sensors.csv", "format": "csv"},
    }
    orders = {
        "id": "orders",
        "title": "Orders API",
        "provider": MAKER,
        "policy": "orders-policy.yaml",
        "approval": "automatic",
        "connector": {
            "type": "http-passthrough",
            "base_url": upstream.url,
            "routes": [{"method": "GET", "path": "/orders/{id}"}],
            "allow_networks": ["127.0.0.1/32"],
        },
    }
    specs = []
    for spec in (sensors, orders):
        path = home / f"{spec['id']}.yaml"
        path.write_text(json.dumps(spec))  # JSON is YAML
        specs.append(path)
    return specs


def _wait_until_up(url: str, pki: Pki, cert: ClientCert, process: subprocess.Popen[str]) -> None:
    context = mtls_context(pki.bundle, cert.cert_path, cert.key_path)
    for _ in range(300):  # at most ~30 s
        if process.poll() is not None:
            raise RuntimeError(
                f"sluis serve exited: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            if httpx.get(f"{url}/healthz", verify=context, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("sluis serve did not answer /healthz")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("blackbox")
    pki = Pki(home / "pki")
    maker = pki.client("Machine Maker BV", MAKER, ["provider", "operator"])
    university = pki.client("Universiteit Oost", UNIVERSITY)
    upstream = _upstream()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUIS_")}
    env |= {
        "SLUIS_HOME": str(home),
        "SLUIS_DATABASE_URL": f"sqlite+aiosqlite:///{home / 'sluis.db'}",
        "SLUIS_PORT": str(port),
        "SLUIS_PUBLIC_URL": f"https://localhost:{port}",
        "SLUIS_TLS_CERT": str(pki.server_cert),
        "SLUIS_TLS_KEY": str(pki.server_key),
        "SLUIS_TLS_CLIENT_CA": str(pki.bundle),
        "SLUIS_TLS_CRL": str(pki.crl_path),
        "SLUIS_TLS_CLIENT_AUTH": "optional",
        "SLUIS_SIGNING_KEY_FILE": str(signing_key(home)),
        "SLUIS_AUDIT_KEY_FILE": str(signing_key(home, "audit-key.pem")),
    }
    _sluis(env, "participants", "add", MAKER, "--name", "Maker", "--role", "provider",
           "--role", "operator")  # fmt: skip
    _sluis(env, "participants", "add", UNIVERSITY, "--name", "Uni", "--role", "consumer")
    _sluis(env, "clients", "add", UNIVERSITY, "--auth-method", "tls_client_auth",
           "--scope", "dataset:sensors", "--scope", "dataset:orders")  # fmt: skip
    for spec in _write_datasets(home, upstream):
        _sluis(env, "datasets", "add", str(spec))
    process = subprocess.Popen(
        [SLUIS, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    url = f"https://localhost:{port}"
    try:
        _wait_until_up(url, pki, maker, process)
        served = Served(url, port, home, env, pki, maker, university, upstream)
        with served.client(university) as client:
            for dataset in ("sensors", "orders"):
                made = client.post("/v1/agreements", json={"dataset": dataset, "purpose": RESEARCH})
                assert made.status_code == 201, made.text
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
        upstream.close()


def _problem(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.text
    return str(response.json()["type"]).removeprefix("urn:sluis:problem:")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- issue 11: refusals that never reached the log, limits reset by agreements ---------------


def test_a_lone_surrogate_in_a_column_name_is_refused(served: Served) -> None:
    body = b'{"columns": ["machine", "\\ud800"]}'
    with served.client(served.university, served.token()) as client:
        response = client.post(
            "/v1/datasets/sensors/query", content=body, headers={"content-type": "application/json"}
        )
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("where", ["/v1/session", "/v1/datasets/sensors/data"])
def test_a_token_of_5000_nested_arrays_is_refused(served: Served, where: str) -> None:
    nested = _b64(b"[" * 5000 + b"]" * 5000)
    with served.client(served.university, f"{nested}.{nested}.x") as client:
        response = client.get(where)
    assert _problem(response, 401).startswith("token-")


@pytest.mark.parametrize("dataset", ["%E2%82%AC", "%FF%FE", "a%00b", "a%0D%0AX-Injected:%201"])
def test_caller_text_never_reaches_a_response_header(served: Served, dataset: str) -> None:
    with served.client(served.university, served.token()) as client:
        response = client.get(f"/v1/datasets/{dataset}/data")
    assert 400 <= response.status_code < 500, response.text
    assert "x-injected" not in response.headers
    for value in response.headers.values():
        assert value.isascii()
        assert "\r" not in value
        assert "\n" not in value


def test_a_jose_header_with_hostile_text_is_refused(served: Served) -> None:
    token = served.token()
    _, payload, signature = token.split(".")
    for alg in ("HS€", "ES\r\nX-Injected: 1"):
        header = _b64(json.dumps({"typ": "at+jwt", "alg": alg}).encode())
        with served.client(served.university, f"{header}.{payload}.{signature}") as client:
            response = client.get("/v1/session")
        assert _problem(response, 401).startswith("token-")
        assert "x-injected" not in response.headers


def test_asking_again_does_not_reset_a_count(served: Served) -> None:
    token = served.token()
    query = {"columns": ["machine", "temp_c"]}
    with served.client(served.university, token) as client:
        answers = [client.post("/v1/datasets/sensors/query", json=query) for _ in range(3)]
        again = client.post("/v1/agreements", json={"dataset": "sensors", "purpose": RESEARCH})
        after = client.post("/v1/datasets/sensors/query", json=query)
    assert [a.status_code for a in answers] == [200, 200, 403]
    assert again.status_code == 200, again.text  # the live agreement, not a new one
    assert after.status_code == 403


def test_jwks_and_metadata_are_public_and_nothing_else_is(served: Served) -> None:
    with served.client(None) as anonymous:
        assert anonymous.get("/.well-known/oauth-authorization-server").status_code == 200
        assert anonymous.get("/oauth2/jwks").status_code == 200
        refused = anonymous.post("/oauth2/token", data={"grant_type": "client_credentials"})
    assert _problem(refused, 401) == "certificate-no-certificate"


# --- issue 12: hostile input and hostile sources -----------------------------------------------


def test_nested_fields_outside_the_policy_never_leave(served: Served) -> None:
    with served.client(served.university, served.token()) as client:
        response = client.get("/v1/datasets/orders/api/orders/1")
    assert response.status_code == 200, response.text
    assert response.json() == {"order": 1, "machine": {"model": "X200"}, "lines": [{"qty": 3}]}
    assert "customer" not in response.text
    assert "set-cookie" not in response.headers


def test_dot_segments_do_not_reach_the_listing(served: Served) -> None:
    before = list(served.upstream.hits)
    with served.client(served.university, served.token()) as client:
        for path in ("orders/.", "orders/./", "orders//1", "orders/%2E"):
            response = client.get(f"/v1/datasets/orders/api/{path}")
            assert 400 <= response.status_code < 500, (path, response.text)
    assert "/orders/" not in served.upstream.hits[len(before) :]


def test_a_huge_header_gets_431_before_any_parsing(served: Served) -> None:
    with served.client(served.university) as client:
        response = client.get("/healthz", headers={"x-big": "a" * 64 * 1024})
    assert response.status_code == 431


def test_a_chunked_body_over_the_limit_gets_413(served: Served) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"columns": ["'
        for _ in range(2 * 1024):
            yield b"a" * 1024
        yield b'"]}'

    with served.client(served.university, served.token()) as client:
        response = client.post(
            "/v1/datasets/sensors/query",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
    assert _problem(response, 413) == "body-too-large"


def test_a_limit_beyond_what_sources_take_is_a_4xx(served: Served) -> None:
    with served.client(served.university, served.token()) as client:
        response = client.post(
            "/v1/datasets/sensors/query", json={"columns": ["machine"], "limit": 2**40}
        )
    assert _problem(response, 422) == "validation-error"


# --- the officer's view: every refusal above is in the verified log ----------------------------


def test_the_log_verifies_offline_and_holds_the_refusals(served: Served) -> None:
    nested = _b64(b"[" * 5000 + b"]" * 5000)
    with served.client(served.university, f"{nested}.{nested}.x") as client:
        assert client.get("/v1/session").status_code == 401
    with served.client(served.university, "not-a-token") as client:
        assert client.get("/v1/session").status_code == 401
    with served.client(served.university, served.token()) as client:
        refused = client.post("/v1/datasets/sensors/query", json={"columns": ["serial"]})
        assert refused.status_code == 403, refused.text
    export = served.home / "audit-export"
    _sluis(served.env, "audit", "export", "--dir", str(export))
    first_key = _sluis(served.env, "audit", "key", "--first").strip()
    verified = _sluis(served.env, "audit", "verify", str(export), "--key", first_key)
    assert verified.startswith("ok: "), verified
    lines = (export / "entries.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.strip()]
    events = [e.get("entry", e).get("event") for e in entries]
    assert events.count("token-refused") >= 2
    denials = [
        e.get("entry", e)
        for e in entries
        if e.get("entry", e).get("event") == "access-decision"
        and (e.get("entry", e).get("decision") or {}).get("result") == "deny"
    ]
    assert denials
    assert events.count("admin-change") >= 5  # the CLI's registrations, each audited
