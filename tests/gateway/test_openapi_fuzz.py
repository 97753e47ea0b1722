"""The API does what its OpenAPI document says, checked by schemathesis (issue 14).

Every operation of ``/openapi.json`` gets generated requests that are valid by the document,
sent to a real gateway over mTLS (a participant's certificate) with a token bound to that
certificate, and every answer is checked: no 5xx, no status code or media type the document
does not declare, the body matches the declared schema, and no request the document admits
is refused as malformed (400 or 422: positive data acceptance). Bounded: a fixed number of
examples per operation, derandomized, without shrinking.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks

from gateway.storage.db import Database
from tests.support.pki import ClientCert, Pki
from tests.support.registry import files_connector, register_dataset, register_participants
from tests.support.server import gateway_settings, https, running_gateway

FUZZER = "NTRNL-40000009"
MAKER = "EU.EORI.NL000000001"
EXAMPLES = 6  # per operation: the whole test stays under a minute on 2 cores
POLICY = f"""
uid: urn:sluis:policy:maker:machines
type: Offer
assigner: urn:sluis:participant:{MAKER}
target: urn:sluis:dataset:machines
permissions:
  - action: read
    assignee: urn:sluis:participant:{FUZZER}
    constraints:
      - [purpose, isAnyOf, ["https://w3id.org/dpv#AcademicResearch"]]
    data:
      columns: [machine]
      max_rows: 1000
"""
#: Answers a request valid by the document may get: the caller may not (401, 403), the
#: thing is not there or in another state (404, 409), too much (413, 429), never 400/422.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "413", "429"]


@dataclass
class Target:
    url: str
    pki: Pki
    cert: ClientCert
    token: str


async def _seed(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(db, [
        (MAKER, "Machine Maker BV", ["provider"]),
        (FUZZER, "Fuzz Lab", ["consumer", "operator", "officer"]),
    ])  # fmt: skip
    await register_dataset(db, "machines", provider=MAKER, policy=POLICY,
                           connector=files_connector())  # fmt: skip
    await db.dispose()


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    home: Path = tmp_path_factory.mktemp("fuzz")
    pki = Pki(home / "pki")
    cert = pki.client("Fuzz Lab", FUZZER, ["consumer", "operator", "officer"])
    url = f"sqlite+aiosqlite:///{home / 'sluis.db'}"
    asyncio.run(_seed(url))
    with running_gateway(gateway_settings(pki, home, url)) as base, https(pki, cert, base) as c:
        body = {"client_id": FUZZER, "auth_method": "tls_client_auth",
                "scopes": ["dataset:machines"]}  # fmt: skip
        assert c.post("/v1/admin/clients", json=body).status_code == 201
        asked = {"dataset": "machines", "purpose": "https://w3id.org/dpv#AcademicResearch"}
        assert c.post("/v1/agreements", json=asked).status_code == 201
        form = {"grant_type": "client_credentials", "client_id": FUZZER,
                "scope": "dataset:machines"}  # fmt: skip
        issued = c.post("/oauth2/token", data=form)
        assert issued.status_code == 200, issued.text
        yield Target(base, pki, cert, issued.json()["access_token"])


def _schema(target: Target) -> Any:
    with https(target.pki, target.cert, target.url) as client:
        document = client.get("/openapi.json").json()
    config = schemathesis.Config.from_dict(
        {"checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}}}
    )
    return schemathesis.openapi.from_dict(document, config=config)


#: Operations where a request valid by the document may still be refused (400), each only
#: for the reasons named here, none of which a schema can state. Every other refusal fails.
#: - a JWK set's keys are checked by importing them: random text in the shape of a JWK is
#:   no key (the problem's detail names ``body.jwks``);
#: - a listing's ``cursor`` is the server's own, opaque: only one it handed out (for the
#:   same sort) pages on, so a made-up one is ``bad-cursor``;
#: - a DSP consumer call names a provider's address, which is checked by resolving it (the
#:   SSRF guard): whether a host resolves to a public address is no property of the text.
KEY_MATERIAL = {"POST /v1/admin/clients", "PATCH /v1/admin/clients/{client_id}"}
REFUSED_FOR = {
    "GET /v1/audit/entries": "urn:sluis:problem:bad-cursor",
    "POST /v1/dsp/catalog": "urn:sluis:problem:dsp-provider-address",
    "POST /v1/dsp/negotiations": "urn:sluis:problem:dsp-provider-address",
}


def refused_only_for_key_material(_ctx: Any, response: Any, case: Any) -> None:
    """Positive data acceptance, less the refusal of random key material (``body.jwks``)."""
    if not case.meta.generation.mode.is_positive or response.status_code not in (400, 422):
        return
    detail = str(response.json().get("detail", ""))
    assert detail.startswith("body.jwks"), f"valid data refused: {response.status_code} {detail}"


def _refused_only_as(problem: str) -> Any:
    def check(_ctx: Any, response: Any, case: Any) -> None:
        """Positive data acceptance, less one named refusal (``REFUSED_FOR``)."""
        if not case.meta.generation.mode.is_positive or response.status_code not in (400, 422):
            return
        found = response.json().get("type")
        assert response.status_code == 400, f"valid data refused: 422 {response.text[:300]}"
        assert found == problem, f"valid data refused: 400 {found}: {response.text[:300]}"

    return check


def _checks(operation: Any) -> list[Any]:
    acceptance = checks.positive_data_acceptance
    if operation.label in KEY_MATERIAL:
        acceptance = refused_only_for_key_material
    elif operation.label in REFUSED_FOR:
        acceptance = _refused_only_as(REFUSED_FOR[operation.label])
    return [
        not_a_server_error,
        checks.status_code_conformance,
        checks.content_type_conformance,
        checks.response_schema_conformance,
        acceptance,
    ]


def _run(operation: Any, session: Any, target: Target) -> None:
    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(case=operation.as_strategy())
    def one(case: Any) -> None:
        case.call_and_validate(
            base_url=target.url, session=session, checks=_checks(operation),
            headers={"Authorization": f"Bearer {target.token}"},
            verify=str(target.pki.bundle),
            cert=(str(target.cert.cert_path), str(target.cert.key_path)),
        )  # fmt: skip

    one()


def test_the_api_does_what_its_document_says(target: Target) -> None:
    session = requests.Session()
    failures = []
    for result in _schema(target).get_all_operations():
        operation = result.ok()
        try:
            _run(operation, session, target)
        except (AssertionError, BaseExceptionGroup) as exc:  # all run; listed together
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
