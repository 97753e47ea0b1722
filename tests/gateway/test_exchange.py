"""The exchange end to end over real mTLS with bound tokens, on SQLite and PostgreSQL.

A provider's Parquet file behind the files connector, a usage policy, agreements,
queries: permitted columns, a refused column, a wrong purpose, aggregate-only answers,
a count limit running out; every decision audited before data leaves, with a receipt.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization
from pyarrow import ipc

from gateway.audit.checkpoint import verify_checkpoint
from gateway.audit.keys import Verifier
from gateway.audit.merkle import verify_inclusion
from gateway.client import mtls_context
from gateway.storage.db import Database
from tests.support.databases import database_url
from tests.support.pki import ClientCert, Pki
from tests.support.registry import register_dataset, register_participants
from tests.support.server import gateway_settings, running_gateway

MAKER = "EU.EORI.NL000000001"
UNIVERSITY = "NTRNL-40000001"
LAB = "NTRNL-40000002"
OFFICER = "NTRNL-40000005"
RESEARCH = "https://w3id.org/dpv#AcademicResearch"
MARKETING = "https://w3id.org/dpv#Marketing"

POLICY = f"""
uid: urn:sluis:policy:maker:sensors
type: Offer
assigner: urn:sluis:participant:{MAKER}
target: urn:sluis:dataset:sensors
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - uid: urn:sluis:policy:maker:sensors#research
    action: read
    assignee: [urn:sluis:participant:{UNIVERSITY}, urn:sluis:participant:{LAB}]
    constraints:
      - [purpose, isAnyOf, [dpv:AcademicResearch]]
      - [count, lteq, 6]
    data:
      columns: [machine, temp_c, vibration]
      max_rows: 1000
"""

AGGREGATE_POLICY = f"""
uid: urn:sluis:policy:maker:sensors-agg
type: Offer
target: urn:sluis:dataset:sensors-agg
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]]]
    data:
      columns: [machine, temp_c]
      min_group_size: 3
"""


GROUP_POLICY = """
uid: urn:sluis:policy:maker:sensors-group
type: Offer
target: urn:sluis:dataset:sensors-group
prefixes: {dpv: "https://w3id.org/dpv#"}
permissions:
  - action: read
    assignee: [{collection: urn:group:universities}]
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]]]
"""

DOWN_POLICY = f"""
uid: urn:sluis:policy:maker:down
type: Offer
target: urn:sluis:dataset:down
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]]]
"""

TWO_USES_POLICY = f"""
uid: urn:sluis:policy:maker:sensors-two
type: Offer
target: urn:sluis:dataset:sensors-two
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]], [count, lteq, 2]]
"""

OPEN_POLICY = f"""
uid: urn:sluis:policy:maker:sensors-open
type: Offer
target: urn:sluis:dataset:sensors-open
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]]]
"""


@dataclass
class World:
    url: str
    pki: Pki
    home: Path
    certs: dict[str, ClientCert]


def _write_data(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    machines = ["X200"] * 4 + ["X300"] * 3 + ["Z9"] * 1
    table = pa.table(
        {
            "machine": machines,
            "temp_c": [60.0 + i for i in range(8)],
            "vibration": [0.1 * i for i in range(8)],
            "serial": [f"SN-{i:04d}" for i in range(8)],
        }
    )
    pq.write_table(table, directory / "sensors.parquet")


async def _setup_db(url: str, home: Path) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(
        db,
        [
            (MAKER, "Machine Maker BV", ["provider", "operator"]),
            (UNIVERSITY, "Universiteit Oost", ["consumer"]),
            (LAB, "Fieldlab Noord", ["consumer"]),
            (OFFICER, "Security Office", ["officer"]),
        ],
    )
    files = {
        "type": "files",
        "root": str(home / "data"),
        "path": "sensors.parquet",
        "format": "parquet",
    }
    down = {"type": "sql", "url": "postgresql+asyncpg://nobody@127.0.0.1:1/none", "table": "t"}
    for dataset_id, policy, approval, source in [
        ("sensors", POLICY, "manual", files),
        ("sensors-agg", AGGREGATE_POLICY, "automatic", files),
        ("down", DOWN_POLICY, "automatic", down),
        ("sensors-group", GROUP_POLICY, "automatic", files),
        ("sensors-two", TWO_USES_POLICY, "automatic", files),
        ("sensors-open", OPEN_POLICY, "automatic", files),
    ]:
        await register_dataset(
            db, dataset_id, provider=MAKER, policy=policy, connector=source, approval=approval
        )
    await db.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    home = tmp_path_factory.mktemp(f"exchange-{request.param}")
    _write_data(home / "data")
    pki = Pki(home / "pki")
    certs = {
        "maker": pki.client("Machine Maker BV", MAKER, ["provider", "operator"]),
        "university": pki.client("Universiteit Oost", UNIVERSITY),
        "lab": pki.client("Fieldlab Noord", LAB),
        "officer": pki.client("Security Office", OFFICER, ["officer"]),
    }
    with database_url(request.param, home) as url:
        asyncio.run(_setup_db(url, home))
        with running_gateway(gateway_settings(pki, home, url)) as base:
            world = World(base, pki, home, certs)
            with _client(world, "maker") as admin:
                for pid, scopes in [
                    (
                        UNIVERSITY,
                        [
                            "dataset:sensors",
                            "dataset:sensors-agg",
                            "dataset:down",
                            "dataset:sensors-two",
                            "dataset:sensors-open",
                        ],
                    ),
                    (LAB, ["dataset:sensors"]),
                ]:
                    body = {"client_id": pid, "auth_method": "tls_client_auth", "scopes": scopes}
                    assert admin.post("/v1/admin/clients", json=body).status_code == 201
            yield world


def _client(world: World, who: str, token: str | None = None) -> httpx.Client:
    cert = world.certs[who]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    context = mtls_context(world.pki.bundle, cert.cert_path, cert.key_path)
    return httpx.Client(base_url=world.url, verify=context, headers=headers, timeout=30)


def _token(world: World, who: str, client_id: str, scope: str | None = None) -> str:
    form = {"grant_type": "client_credentials", "client_id": client_id}
    if scope:
        form["scope"] = scope
    with _client(world, who) as client:
        response = client.post("/oauth2/token", data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _code(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return str(response.json()["type"]).removeprefix("urn:sluis:problem:")


def _agreement(world: World, who: str, dataset: str, purpose: str) -> dict[str, Any]:
    with _client(world, who) as client:
        response = client.post("/v1/agreements", json={"dataset": dataset, "purpose": purpose})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _rows(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines() if line]


def _query(world: World, token: str, dataset: str, body: dict[str, Any]) -> httpx.Response:
    with _client(world, "university", token) as client:
        return client.post(f"/v1/datasets/{dataset}/query", json=body)


@pytest.fixture(scope="module")
def active(world: World) -> dict[str, Any]:
    """The university's approved agreement for 'sensors'."""
    agreement = _agreement(world, "university", "sensors", RESEARCH)
    assert agreement["state"] == "requested"
    with _client(world, "maker") as provider:
        approved = provider.post(f"/v1/agreements/{agreement['id']}/approve")
    assert approved.json()["state"] == "active", approved.text
    return dict(approved.json())


def test_catalog_shows_schema_and_policy(world: World) -> None:
    with _client(world, "university") as client:
        response = client.get("/v1/catalog")
    assert response.headers["content-type"] == "application/ld+json"
    datasets = {d["dct:identifier"]: d for d in response.json()["dcat:dataset"]}
    sensors = datasets["sensors"]
    assert [c["name"] for c in sensors["sluis:schema"]] == [
        "machine",
        "temp_c",
        "vibration",
        "serial",
    ]
    assert sensors["odrl:hasPolicy"]["sluis:policyHash"].startswith("sha256:")
    assert sensors["dct:publisher"]["@id"] == f"urn:sluis:participant:{MAKER}"


def test_a_wrong_purpose_is_refused_with_a_reason(world: World) -> None:
    agreement = _agreement(world, "university", "sensors", MARKETING)
    assert agreement["state"] == "rejected"
    assert "does not allow" in agreement["reason"]


def test_no_agreement_no_data(world: World) -> None:
    lab_token = _token(world, "lab", LAB)
    with _client(world, "lab", lab_token) as client:
        response = client.post("/v1/datasets/sensors/query", json={})
    assert response.status_code == 403
    assert _code(response) == "no-agreement"
    assert "data" not in response.text.lower() or "agreement" in response.text


def test_permitted_query_with_receipt(world: World, active: dict[str, Any]) -> None:
    token = _token(world, "university", UNIVERSITY, "dataset:sensors")
    response = _query(
        world, token, "sensors", {"where": [{"column": "machine", "op": "eq", "value": "X200"}]}
    )
    rows = _rows(response)
    assert len(rows) == 4
    assert set(rows[0]) == {"machine", "temp_c", "vibration"}  # 'serial' withheld by the policy
    index = int(response.headers["sluis-audit-index"])
    note = base64.b64decode(response.headers["sluis-audit-checkpoint"])
    checkpoint = verify_checkpoint(note, [_audit_verifier(world)], "localhost:8443/audit")
    assert checkpoint.size > index  # the receipt's checkpoint includes the decision entry
    with _client(world, "university") as client:
        proof = client.get(
            "/v1/audit/proofs/inclusion", params={"index": index, "tree_size": checkpoint.size}
        ).json()
    hashes = [base64.b64decode(h) for h in proof["hashes"]]
    verify_inclusion(
        base64.b64decode(proof["leaf_hash"]), index, checkpoint.size, hashes, checkpoint.root_hash
    )
    assert active["state"] == "active"


def test_a_column_outside_the_policy_is_refused(world: World, active: dict[str, Any]) -> None:
    token = _token(world, "university", UNIVERSITY, "dataset:sensors")
    refused = _query(world, token, "sensors", {"columns": ["machine", "serial"]})
    assert refused.status_code == 403
    assert _code(refused) == "column-not-allowed"  # the consumer's own choice, named
    assert "'serial'" in refused.json()["detail"]
    assert "vibration" not in refused.json()["detail"]  # never the columns it does release
    unknown = _query(world, token, "sensors", {"columns": ["nope"]})
    assert unknown.status_code == 400  # misspelt: the catalog lists the names, nothing spent
    assert _code(unknown) == "unknown-column"
    assert unknown.json()["column"] == "nope"
    bad_type = _query(
        world, token, "sensors", {"where": [{"column": "temp_c", "op": "gt", "value": "hot"}]}
    )
    assert bad_type.status_code == 400
    assert _code(bad_type) == "wrong-value-type"
    assert bad_type.json()["column"] == "temp_c"
    assert active


def test_formats(world: World, active: dict[str, Any]) -> None:
    token = _token(world, "university", UNIVERSITY, "dataset:sensors")
    csv = _query(world, token, "sensors", {"columns": ["machine"], "limit": 2, "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].strip('"') == "machine"
    arrow = _query(world, token, "sensors", {"columns": ["machine", "temp_c"], "format": "arrow"})
    table = ipc.open_stream(io.BytesIO(arrow.content)).read_all()
    assert table.num_rows == 8
    assert active


def test_aggregate_only_dataset(world: World) -> None:
    agreement = _agreement(world, "university", "sensors-agg", RESEARCH)
    assert agreement["state"] == "active"  # approved automatically
    token = _token(world, "university", UNIVERSITY, "dataset:sensors-agg")
    rows_request = _query(world, token, "sensors-agg", {"columns": ["machine"]})
    assert rows_request.status_code == 403
    assert _code(rows_request) == "aggregate-required"  # said, without the policy's k
    assert "3" not in rows_request.json()["detail"]
    grouped = _query(
        world, token, "sensors-agg",
        {"group_by": ["machine"], "aggregates": [{"func": "avg", "column": "temp_c"},
                                                  {"func": "count"}]},
    )  # fmt: skip
    groups = {row["machine"]: row for row in _rows(grouped)}
    assert set(groups) == {"X200", "X300"}  # Z9 has 1 row < k=3: suppressed
    assert groups["X200"]["count_rows"] == 4


def test_scope_is_required(world: World, active: dict[str, Any]) -> None:
    token = _token(world, "university", UNIVERSITY, "dataset:sensors-agg")
    response = _query(world, token, "sensors", {})
    assert response.status_code == 403
    assert _code(response) == "token-insufficient-scope"
    assert active


def test_a_token_without_scope_for_a_dataset_that_does_not_exist(world: World) -> None:
    """The catalog shows every verified participant which datasets exist: say it is not one."""
    token = _token(world, "university", UNIVERSITY, "dataset:sensors-agg")
    response = _query(world, token, "sensorz", {})
    assert response.status_code == 404, response.text
    assert _code(response) == "dataset-not-found"


def test_get_data_with_url_parameters(world: World, active: dict[str, Any]) -> None:
    token = _token(world, "university", UNIVERSITY, "dataset:sensors")
    with _client(world, "university", token) as client:
        response = client.get(
            "/v1/datasets/sensors/data",
            params={"columns": "machine,temp_c", "where": "temp_c,ge,66", "format": "jsonl"},
        )
        bad = client.get("/v1/datasets/sensors/data", params={"where": "temp_c"})
    assert [r["temp_c"] for r in _rows(response)] == [66.0, 67.0]
    assert bad.status_code == 400
    assert active


def _audit_verifier(world: World) -> Verifier:
    key = serialization.load_pem_private_key((world.home / "audit-key.pem").read_bytes(), None)
    raw = key.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return Verifier("localhost:8443/audit", raw)


def test_count_limit_runs_out_and_everything_is_audited(
    world: World, active: dict[str, Any]
) -> None:
    token = _token(world, "university", UNIVERSITY, "dataset:sensors")
    statuses = []
    for _ in range(8):
        response = _query(world, token, "sensors", {"columns": ["machine"], "limit": 1})
        statuses.append(response.status_code)
        if response.status_code == 403:
            assert _code(response) == "policy-denied"
    assert 403 in statuses
    assert 200 not in statuses[statuses.index(403) :]  # once spent, it stays spent
    with _client(world, "university") as client:
        used = client.get(f"/v1/agreements/{active['id']}").json()["use_count"]
    assert used == 6  # the policy's [count, lteq, 6], over all the tests in this module
    with _client(world, "officer") as officer:
        entries = officer.get("/v1/audit/entries", params={"dataset": "sensors", "limit": 1000})
    events = [e["entry"] for e in entries.json()["entries"]]
    decisions = [e for e in events if e["event"] == "access-decision"]
    completed = [e for e in events if e["event"] == "exchange-completed"]
    assert sum(1 for e in decisions if e["decision"]["result"] == "permit") == 6
    assert any("count" in " ".join(e["decision"]["reasons"]) for e in decisions
               if e["decision"]["result"] == "deny")  # fmt: skip
    assert len(completed) == 6
    assert all(re.fullmatch(r"[0-9a-f]{32}", e["trace_id"]) for e in decisions + completed)
    assert all(
        e["decision"]["policy_hash"].startswith("sha256:")
        for e in decisions
        if "policy_hash" in e["decision"]
    )


def test_a_source_that_is_down_is_a_502_and_audited(world: World) -> None:
    """The 'down' dataset's SQL source listens nowhere: the refusal is audited, no data."""
    agreement = _agreement(world, "university", "down", RESEARCH)
    assert agreement["state"] == "active"
    token = _token(world, "university", UNIVERSITY, "dataset:down")
    response = _query(world, token, "down", {})
    assert response.status_code == 502
    assert _code(response) == "source-unavailable"
    with _client(world, "officer") as officer:
        entries = officer.get("/v1/audit/entries", params={"dataset": "down"}).json()["entries"]
    reasons = [e["entry"]["decision"]["reasons"][0] for e in entries]
    assert "source_unavailable" in reasons


def test_policies_can_assign_party_collections(world: World) -> None:
    with _client(world, "maker") as admin:
        grouped = admin.patch(
            f"/v1/admin/participants/{UNIVERSITY}", json={"groups": ["urn:group:universities"]}
        )
    assert grouped.json()["groups"] == ["urn:group:universities"]
    assert _agreement(world, "university", "sensors-group", RESEARCH)["state"] == "active"
    assert _agreement(world, "lab", "sensors-group", RESEARCH)["state"] == "rejected"


def _post(world: World, who: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    with _client(world, who) as client:
        return client.post(path, json=body)


def _ask(world: World, dataset: str) -> httpx.Response:
    return _post(world, "university", "/v1/agreements", {"dataset": dataset, "purpose": RESEARCH})


def _count_rows(world: World, dataset: str) -> httpx.Response:
    token = _token(world, "university", UNIVERSITY, f"dataset:{dataset}")
    return _query(world, token, dataset, {"aggregates": [{"func": "count"}]})


def test_asking_again_does_not_reset_the_count(world: World) -> None:
    """[count, lteq, 2], automatic approval: two uses, then none, however often one asks."""
    first = _ask(world, "sensors-two")
    assert (first.status_code, first.json()["state"]) == (201, "active")
    assert [_count_rows(world, "sensors-two").status_code for _ in range(3)] == [200, 200, 403]
    again = _ask(world, "sensors-two")  # while the agreement is live: that one answers
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    assert again.json()["use_count"] == 2
    assert _code(_count_rows(world, "sensors-two")) == "policy-denied"
    ended = _post(world, "university", f"/v1/agreements/{first.json()['id']}/terminate", {})
    assert ended.json()["state"] == "terminated"
    fresh = _ask(world, "sensors-two")  # a new agreement continues the same usage state
    assert fresh.status_code == 201
    assert fresh.json()["state"] == "rejected"
    assert "no_active_permission" in fresh.json()["reason"]
    assert _code(_count_rows(world, "sensors-two")) == "no-agreement"


def test_after_a_revocation_the_provider_approves_again(world: World) -> None:
    """Automatic approval, but after a revocation the next agreement waits for the provider."""
    first = _ask(world, "sensors-open").json()
    assert first["state"] == "active"
    assert _count_rows(world, "sensors-open").status_code == 200
    revoked = _post(world, "maker", f"/v1/agreements/{first['id']}/revoke", {"reason": "misuse"})
    assert revoked.json()["state"] == "revoked"
    held = _ask(world, "sensors-open").json()
    assert held["state"] == "requested"
    assert "revoked" in held["reason"]
    assert _code(_count_rows(world, "sensors-open")) == "no-agreement"
    withdrawn = _post(world, "university", f"/v1/agreements/{held['id']}/terminate", {})
    assert withdrawn.json()["state"] == "terminated"
    still = _ask(world, "sensors-open").json()  # withdrawing and asking again changes nothing
    assert still["state"] == "requested"
    approved = _post(world, "maker", f"/v1/agreements/{still['id']}/approve")
    assert approved.json()["state"] == "active"
    assert approved.json()["use_count"] == 1  # the use before the revocation still counts
    assert _count_rows(world, "sensors-open").status_code == 200
    _post(world, "university", f"/v1/agreements/{still['id']}/terminate", {})
    assert _ask(world, "sensors-open").json()["state"] == "active"  # the provider approved


def test_a_rejected_agreement_is_audited_with_policy_and_report(world: World) -> None:
    rejected = _agreement(world, "lab", "sensors-two", RESEARCH)  # the lab is not an assignee
    assert rejected["state"] == "rejected"
    with _client(world, "officer") as officer:
        entries = officer.get(
            "/v1/audit/entries", params={"dataset": "sensors-two", "participant": LAB}
        ).json()["entries"]
    [entry] = [e["entry"] for e in entries if e["entry"]["target"] == f"agreement:{rejected['id']}"]
    decision = entry["decision"]
    assert (entry["event"], entry["purpose"], decision["result"]) == (
        "agreement-changed", RESEARCH, "deny",
    )  # fmt: skip
    assert decision["policy_id"] == "urn:sluis:policy:maker:sensors-two"
    assert decision["policy_hash"] == rejected["policy_hash"]
    assert "no_active_permission" in decision["reasons"]
    assert any("assignee" in r or "party" in r for r in decision["reasons"][3:])  # the report
