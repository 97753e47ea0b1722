"""Private aggregates end to end: a privacy unit and a budget, over real mTLS, on SQLite and
PostgreSQL. The attacks of issue 17 run as a consumer would run them; the budget is spent
with the use, recorded in the decision entry, shown to the consumer, and not overspent by
32 concurrent requests to two gateway replicas sharing the database.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gateway.client import SluisClient, mtls_context
from gateway.storage.db import Database
from tests.support.databases import database_url
from tests.support.pki import ClientCert, Pki
from tests.support.registry import register_dataset, register_participants
from tests.support.server import gateway_settings, running_gateway

MAKER = "EU.EORI.NL000000001"
UNIVERSITY = "NTRNL-40000001"
OFFICER = "NTRNL-40000005"
RESEARCH = "https://w3id.org/dpv#AcademicResearch"
DATASETS = ("salaries", "salaries-race")


def _policy(dataset: str) -> str:
    return f"""
uid: urn:sluis:policy:maker:{dataset}
type: Offer
target: urn:sluis:dataset:{dataset}
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]]]
    data:
      columns: [dept, salary]
      min_group_size: 3
      privacy_unit: emp
      privacy_budget: 1.0/P30D
      query_epsilon: 0.25
      query_delta: 1.0e-6
      bounds: {{salary: [0, 100000]}}
"""


class World:
    def __init__(self, urls: tuple[str, str], pki: Pki, certs: dict[str, ClientCert]) -> None:
        self.urls, self.pki, self.certs = urls, pki, certs

    def client(self, who: str, token: str | None = None, replica: int = 0) -> httpx.Client:
        cert = self.certs[who]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        context = mtls_context(self.pki.bundle, cert.cert_path, cert.key_path)
        url = self.urls[replica]
        return httpx.Client(base_url=url, verify=context, headers=headers, timeout=60)

    def token(self, dataset: str) -> str:
        form = {"grant_type": "client_credentials", "client_id": UNIVERSITY}
        form["scope"] = f"dataset:{dataset}"
        with self.client("university") as client:
            response = client.post("/oauth2/token", data=form)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


async def _setup(url: str, data: Path) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(
        db,
        [
            (MAKER, "Machine Maker BV", ["provider", "operator"]),
            (UNIVERSITY, "Universiteit Oost", ["consumer"]),
            (OFFICER, "Security Office", ["officer"]),
        ],
    )
    files = {"type": "files", "root": str(data), "path": "salaries.parquet", "format": "parquet"}
    for dataset in DATASETS:
        await register_dataset(
            db, dataset, provider=MAKER, policy=_policy(dataset), connector=files
        )
    await db.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    home = tmp_path_factory.mktemp(f"private-{request.param}")
    (home / "data").mkdir()
    emp = list(range(1, 9))
    table = pa.table(
        {"emp": emp, "dept": ["A"] * 8, "salary": [1000 * e for e in emp[:-1]] + [99_000]}
    )
    pq.write_table(table, home / "data" / "salaries.parquet")
    pki = Pki(home / "pki")
    certs = {
        "maker": pki.client("Machine Maker BV", MAKER, ["provider", "operator"]),
        "university": pki.client("Universiteit Oost", UNIVERSITY),
        "officer": pki.client("Security Office", OFFICER, ["officer"]),
    }
    with database_url(request.param, home) as url:
        asyncio.run(_setup(url, home / "data"))
        settings = gateway_settings(pki, home, url)
        with running_gateway(settings) as base, running_gateway(settings) as replica:
            world = World((base, replica), pki, certs)  # two replicas on one database
            scopes = [f"dataset:{d}" for d in DATASETS]
            body = {"client_id": UNIVERSITY, "auth_method": "tls_client_auth", "scopes": scopes}
            with world.client("maker") as admin:
                assert admin.post("/v1/admin/clients", json=body).status_code == 201
            with world.client("university") as uni:
                for dataset in DATASETS:
                    made = uni.post(
                        "/v1/agreements", json={"dataset": dataset, "purpose": RESEARCH}
                    )
                    assert made.json()["state"] == "active", made.text
            yield world


SUM = {"aggregates": [{"func": "sum", "column": "salary"}]}


def _budget(client: httpx.Client, dataset: str) -> dict[str, Any]:
    response = client.get(f"/v1/datasets/{dataset}/privacy-budget")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _type(response: httpx.Response) -> str:
    return str(response.json()["type"]).removeprefix("urn:sluis:problem:")


def test_the_attacks_fail_and_the_budget_stops_repetition(world: World) -> None:
    with world.client("university", world.token("salaries")) as uni:
        assert _budget(uni, "salaries")["remaining"] == "1"
        # differencing: everyone but employee 8 (whose salary is 99,000)
        differencing = {**SUM, "where": [{"column": "emp", "op": "ne", "value": 8}]}
        refused = uni.post("/v1/datasets/salaries/query", json=differencing)
        assert refused.status_code == 403
        assert _type(refused) == "column-not-allowed"  # emp is not released at all
        assert _budget(uni, "salaries")["remaining"] == "1"  # a refusal spends nothing
        # min/max release one contributor's value: refused under a budget
        top = uni.post(
            "/v1/datasets/salaries/query",
            json={"aggregates": [{"func": "max", "column": "salary"}]},
        )
        assert (top.status_code, _type(top)) == (403, "aggregate-not-allowed")
        # the same sum again and again, to average the noise away: the budget stops it
        answers, remaining = [], []
        for _ in range(4):
            response = uni.post("/v1/datasets/salaries/query", json=SUM)
            assert response.status_code == 200, response.text
            assert response.headers["sluis-privacy-epsilon"] == "0.25"
            assert response.headers["sluis-privacy-noise-scale"] == "sum_salary=400000"
            remaining.append(response.headers["sluis-privacy-budget-remaining"])
            answers.append(json.loads(response.text.splitlines()[0])["sum_salary"])
        assert remaining == ["0.75/P30D", "0.5/P30D", "0.25/P30D", "0/P30D"]
        assert len(set(answers)) == 4  # noisy: no two Laplace samples coincide
        fifth = uni.post("/v1/datasets/salaries/query", json=SUM)
        assert (fifth.status_code, _type(fifth)) == (403, "policy-denied")
    cert = world.certs["university"]
    with SluisClient(
        world.urls[1], ca_bundle=world.pki.bundle, cert_file=cert.cert_path,
        key_file=cert.key_path, client_id=UNIVERSITY,
        scope="dataset:salaries",
    ) as sdk:  # fmt: skip
        budget = sdk.privacy_budget("salaries")
    assert (Decimal(budget["remaining"]), budget["queries_left"]) == (Decimal(0), 0)
    with world.client("officer") as officer:
        found = officer.get("/v1/audit/entries", params={"dataset": "salaries", "limit": 100})
    permits = [
        e["entry"]
        for e in found.json()["entries"]
        if e["entry"]["event"] == "access-decision" and e["entry"]["decision"]["result"] == "permit"
    ]
    assert [p["privacy"]["spent"] for p in permits] == ["0.25", "0.5", "0.75", "1"]
    assert all(p["privacy"]["epsilon"] == "0.25" for p in permits)


def test_32_concurrent_queries_on_two_replicas_cannot_overspend_the_budget(world: World) -> None:
    token = world.token("salaries-race")

    def one(i: int) -> int:
        with world.client("university", token, replica=i % 2) as uni:
            return uni.post("/v1/datasets/salaries-race/query", json=SUM).status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(one, range(32)))
    assert 1 <= statuses.count(200) <= 4  # 1.0 / 0.25
    assert set(statuses) <= {200, 403, 409}  # served, budget spent, or busy: retry
    with world.client("university", token) as uni:
        budget = _budget(uni, "salaries-race")
    assert Decimal(budget["spent"]) == Decimal("0.25") * statuses.count(200)
    assert Decimal(budget["spent"]) <= 1
