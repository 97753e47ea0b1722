"""Every change of who may do what is in the audit log, in the same transaction (issue 11).

The CLI's commands and the gateway's non-GET routes are enumerated by introspection: each
one either changes who may do what, and then one run of it writes exactly one
``admin-change`` entry (naming the actor), or it is listed below with the reason it writes
none. A new command or route in neither list fails here. Real SQLite and PostgreSQL, the
real CLI, a real gateway over mTLS.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.routing import APIRoute
from joserfc.jwk import ECKey
from sqlalchemy import text
from typer.testing import CliRunner

from gateway.admin.service import AdminChanges
from gateway.app import create_app
from gateway.audit.entry import Actor, AuditEntry
from gateway.audit.log import AuditLog, AuditReader
from gateway.cli.main import app as cli
from gateway.datasets.factory import create_connector
from gateway.datasets.service import DatasetService
from gateway.participants.schemas import ParticipantCreate, ParticipantUpdate
from gateway.participants.service import ParticipantService
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from tests.audit.logs import NOW, ORIGIN, SIGNER
from tests.audit.test_log import CrashBeforeCommit
from tests.support.databases import database_url
from tests.support.pki import Pki
from tests.support.registry import register_participants
from tests.support.server import gateway_settings, https, running_gateway, signing_key

OPERATOR = "EU.EORI.NL000000001"
MEMBER = "NTRNL-40000001"
POLICY = f"""
uid: urn:sluis:policy:maker:sensors
type: Offer
assigner: urn:sluis:participant:{OPERATOR}
target: urn:sluis:dataset:sensors
permissions:
  - action: read
    assignee: urn:sluis:participant:{MEMBER}
"""

#: CLI commands that write no entry, and why. Everything else must write exactly one.
CLI_WITHOUT_ENTRY = {
    "serve": "runs the gateway, whose routes are enumerated below",
    "version": "prints the version",
    "db upgrade": "the schema, not who may do what",
    "participants list": "read only",
    "participants show": "read only",
    "clients list": "read only",
    "datasets list": "read only",
    "certs list": "read only",
    "certs show": "read only",
    "certs init": "a new CA: nobody is registered with it yet",
    "certs csr": "a participant's own key and request: nothing in the gateway changes",
    "init": "a new home: its CA, keys and an empty log (the log's identity, no entries)",
    "certs issue": "a certificate alone grants nothing: roles are the registry's AND the "
    "certificate's, and the CA's index keeps the issue",
    "certs crl": "re-signs the same revocations with a new nextUpdate",
    "certs publish-crl": "signs the revocations the log holds into the CRL ConfigMap (the "
    "log is its source: tests/gateway/test_crl_publish.py)",
    "agreements list": "read only, over HTTP",
    "agreements request": "HTTP client: the gateway writes the agreement-changed entry",
    "agreements approve": "HTTP client: the gateway writes the agreement-changed entry",
    "agreements reject": "HTTP client: the gateway writes the agreement-changed entry",
    "agreements revoke": "HTTP client: the gateway writes the agreement-changed entry",
    "agreements terminate": "HTTP client: the gateway writes the agreement-changed entry",
    "fetch": "HTTP client: the gateway writes the access-decision entry",
    "dsp catalog": "HTTP client, read only: the gateway reads another provider's catalog",
    "dsp negotiate": "HTTP client: the gateway writes the dsp-consumer agreement-changed entries",
    "dsp negotiation": "read only, over HTTP",
    "dsp transfer": "HTTP client: the gateway writes the dsp-consumer agreement-changed entries",
    "dsp status": "read only, over HTTP",
    "dsp pull": "HTTP client: the gateway writes the exchange-completed entry (dsp-consumer-pull)",
    "dsp complete": "HTTP client: the gateway writes the dsp-consumer agreement-changed entry",
    "dsp terminate": "HTTP client: the gateway writes the dsp-consumer agreement-changed entry",
    "policy validate": "local files, no state",
    "policy eval": "local files, no state",
    "policy explain": "local files, no state",
    "policy test": "local files, no state",
    "audit export": "reads the log",
    "audit verify": "local files, no state",
    "audit prove": "reads the log",
    "audit verify-proof": "local files, no state",
    "audit key": "prints the public key",
    "audit rotate-key": "writes its own key-rotation entry, signed over by the old key "
    "(tests/gateway/test_audit_identity.py)",
}

#: Non-GET routes that are not admin-API changes, and the entry they write instead. The
#: agreement routes and /oauth2/revoke commit their entry with the change, exactly one each
#: (a repeated request answered with the live agreement, or a token revoked already, changes
#: nothing and writes none): tests/gateway/test_audited_changes.py.
ROUTES_WITHOUT_ADMIN_ENTRY = {
    ("POST", "/oauth2/token"): "token-issued / token-refused",
    ("POST", "/connect/token"): "token-issued / token-refused (iSHARE)",
    ("POST", "/dsp/catalog/request"): "reads the catalog",
    # the DSP consumer side (gateway/dsp/consumer_endpoints.py; tests/dsp/test_consumer.py)
    ("POST", "/v1/dsp/catalog"): "reads another provider's catalog",
    ("POST", "/v1/dsp/negotiations"): "agreement-changed (dsp-consumer-negotiation:<pid>)",
    ("POST", "/v1/dsp/transfers"): "agreement-changed (dsp-consumer-transfer:<pid>)",
    ("POST", "/v1/dsp/transfers/{pid}/completion"): "agreement-changed (dsp-consumer-transfer)",
    ("POST", "/v1/dsp/transfers/{pid}/pull"): "exchange-completed (dsp-consumer-pull)",
    ("POST", "/v1/dsp/negotiations/{pid}/termination"): "agreement-changed (dsp-consumer)",
    ("POST", "/v1/dsp/transfers/{pid}/termination"): "agreement-changed (dsp-consumer)",
    **{
        (
            "POST",
            f"/dsp/callback/negotiations/{{pid}}/{path}",
        ): "agreement-changed (dsp-consumer-negotiation:<pid>)"
        for path in ("offers", "agreement", "events", "termination")
    },
    **{
        (
            "POST",
            f"/dsp/callback/transfers/{{pid}}/{path}",
        ): "agreement-changed (dsp-consumer-transfer:<pid>)"
        for path in ("start", "completion", "termination", "suspension")
    },
    **{
        ("POST", f"/dsp/negotiations{path}"): "agreement-changed (dsp-negotiation:<pid>)"
        for path in (
            "/request",
            "/{pid}/request",
            "/{pid}/events",
            "/{pid}/agreement/verification",
            "/{pid}/termination",
        )
    },
    **{
        ("POST", f"/dsp/transfers{path}"): "token-issued / agreement-changed (dsp-transfer)"
        for path in (
            "/request",
            "/{pid}/start",
            "/{pid}/completion",
            "/{pid}/termination",
            "/{pid}/suspension",
        )
    },
    ("POST", "/oauth2/introspect"): "reads a token's state",
    ("POST", "/oauth2/revoke"): "admin-change revoke token:<hash>, in test_audited_changes",
    ("POST", "/v1/agreements"): "agreement-changed",
    ("POST", "/v1/agreements/{agreement_id}/approve"): "agreement-changed",
    ("POST", "/v1/agreements/{agreement_id}/reject"): "agreement-changed",
    ("POST", "/v1/agreements/{agreement_id}/revoke"): "agreement-changed",
    ("POST", "/v1/agreements/{agreement_id}/terminate"): "agreement-changed",
    ("POST", "/v1/datasets/{dataset_id}/query"): "access-decision",
    **{
        (method, "/v1/datasets/{dataset_id}/api/{path:path}"): "access-decision (pass-through)"
        for method in ("POST", "PUT", "PATCH", "DELETE")
    },
}


def _cli_commands() -> set[str]:
    """Every leaf command of ``sluis``, by introspecting the typer app (lazy groups too)."""

    def walk(group: Any, prefix: tuple[str, ...]) -> Iterator[str]:
        for name in group.list_commands(None):
            command = group.get_command(None, name)
            if hasattr(command, "list_commands"):
                yield from walk(command, (*prefix, name))
            else:
                yield " ".join((*prefix, name))

    return set(walk(typer.main.get_command(cli), ()))


def _changing_routes(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every non-GET route, by introspecting the app's routes."""
    for route in routes:
        included = getattr(route, "original_router", None)  # newer FastAPI nests routers
        if included is not None:
            yield from _changing_routes(included.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute):
            for method in route.methods - {"GET", "HEAD"}:
                yield method, prefix + route.path


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path / "db") as url:
        yield url


@dataclass
class Operator:
    """The CLI on one gateway's database, as the local operator."""

    runner: CliRunner
    url: str
    home: Path

    def run(self, *args: str) -> str:
        result = self.runner.invoke(cli, list(args))
        assert result.exit_code == 0, result.output
        return result.stdout

    def refused(self, *args: str) -> str:
        result = self.runner.invoke(cli, list(args))
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        (line,) = lines
        assert line.startswith("sluis: error: ")
        return line

    def entries(self) -> list[AuditEntry]:
        async def read() -> list[AuditEntry]:
            db = Database(self.url)
            try:
                reader = AuditReader(db)
                return [r.entry for r in await reader.entry_range(0, await reader.size())]
            finally:
                await db.dispose()

        return asyncio.run(read())


@pytest.fixture
def operator(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Operator:
    for name in list(os.environ):
        if name.startswith("SLUIS_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("SLUIS_HOME", str(home))
    monkeypatch.setenv("SLUIS_AUDIT_KEY_FILE", str(signing_key(home, "audit-key.pem")))
    monkeypatch.setenv("SLUIS_DATABASE_URL", backend)
    monkeypatch.chdir(tmp_path)
    return Operator(CliRunner(), backend, home)


def _files(tmp_path: Path) -> dict[str, str]:
    """A JWKS, and a dataset spec with its policy and CSV file."""
    key = ECKey.generate_key("P-256")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**key.as_dict(private=False), "kid": "k1"}]}))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sensors.csv").write_text("machine,temp_c\nm1,20.5\n")
    (tmp_path / "policy.yaml").write_text(POLICY)
    spec = {
        "id": "sensors",
        "title": "Sensors",
        "provider": OPERATOR,
        "policy": "policy.yaml",
        "approval": "automatic",
        "connector": {"type": "files", "root": "data", "path": "sensors.csv", "format": "csv"},
    }
    (tmp_path / "sensors.yaml").write_text(json.dumps(spec))
    return {"jwks": str(jwks), "spec": str(tmp_path / "sensors.yaml")}


def _cli_changes(files: dict[str, str], serial: str) -> list[tuple[str, list[str], str, str]]:
    """(command, arguments, action, target) for every CLI command that changes who may do what."""
    p, c = f"participant:{MEMBER}", f"client:{MEMBER}"
    return [
        ("participants add", ["--name", "Lab", "--role", "consumer", MEMBER], "create", p),
        ("participants set-roles", [MEMBER, "--role", "consumer"], "update", p),
        ("participants set-groups", [MEMBER, "--group", "urn:group:labs"], "update", p),
        ("participants suspend", [MEMBER], "update", p),
        ("participants activate", [MEMBER], "update", p),
        ("clients add", [MEMBER, "--auth-method", "private_key_jwt", "--jwks", files["jwks"]],
         "create", c),
        ("clients set-scopes", [MEMBER, "--scope", "dataset:sensors"], "update", c),
        ("clients set-keys", [MEMBER, "--jwks", files["jwks"]], "update", c),
        ("clients disable", [MEMBER], "update", c),
        ("clients enable", [MEMBER], "update", c),
        ("datasets add", [files["spec"]], "register", "dataset:sensors"),
        ("certs revoke", [serial, "--dir", "ca", "--reason", "keyCompromise"], "revoke",
         f"certificate:{serial}"),
    ]  # fmt: skip


def test_every_cli_command_is_audited_or_says_why_not(operator: Operator, tmp_path: Path) -> None:
    files = _files(tmp_path)
    operator.run("participants", "add", OPERATOR, "--name", "Maker", "--role", "provider")
    operator.run("certs", "init", "--dir", "ca")
    issued = operator.run(
        "certs", "issue", "--dir", "ca", "--org-id", MEMBER, "--org-name", "Lab",
        "--role", "consumer", "--out", "out",
    )  # fmt: skip
    serial = issued.split("serial:")[1].split()[0]
    changes = _cli_changes(files, serial)
    audited = {command for command, *_ in changes}
    assert not audited & CLI_WITHOUT_ENTRY.keys()
    assert _cli_commands() == audited | CLI_WITHOUT_ENTRY.keys(), "classify each new command"

    before = len(operator.entries())
    for command, args, action, target in changes:
        operator.run(*command.split(), *args)
        entries = operator.entries()
        (entry,) = entries[before:]  # exactly one entry per change
        before = len(entries)
        assert (entry.event, entry.action, entry.target) == ("admin-change", action, target)
        assert entry.actor.source is not None
        assert entry.actor.source.startswith("cli:")
    *_, dataset, revocation = operator.entries()
    assert dataset.decision is not None
    assert dataset.decision.policy_hash is not None
    assert dataset.decision.policy_id == "urn:sluis:policy:maker:sensors"
    assert revocation.decision is not None
    assert revocation.decision.reasons == (f"organization_id={MEMBER}", "reason=keyCompromise")


def test_a_refused_cli_change_writes_no_entry(operator: Operator, tmp_path: Path) -> None:
    files = _files(tmp_path)
    operator.run("participants", "add", MEMBER, "--name", "Lab", "--role", "consumer")
    operator.run("certs", "init", "--dir", "ca")
    before = operator.entries()
    operator.refused("participants", "add", MEMBER, "--name", "Again", "--role", "consumer")
    operator.refused("participants", "suspend", "NTRNL-49999999")
    operator.refused("clients", "add", "NTRNL-49999999", "--auth-method", "tls_client_auth")
    operator.refused("clients", "disable", MEMBER)
    operator.refused("datasets", "add", files["spec"])  # its provider is not registered
    assert "not issued" in operator.refused("certs", "revoke", "abcdef", "--dir", "ca")
    assert operator.entries() == before


def test_the_cli_refuses_a_change_it_cannot_sign(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLUIS_AUDIT_KEY_FILE")
    line = operator.refused("participants", "add", MEMBER, "--name", "Lab", "--role", "consumer")
    assert "no audit key" in line
    monkeypatch.setenv("SLUIS_AUDIT_KEY_FILE", str(signing_key(operator.home, "audit-key.pem")))
    shown = operator.refused("participants", "show", MEMBER)
    assert "no participant" in shown or "no database at" in shown  # SQLite: not even created


def test_every_admin_route_writes_exactly_one_entry(backend: str, tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    admin = pki.client("Machine Maker BV", OPERATOR, ["provider", "operator"])

    async def seed() -> None:
        db = Database(backend)
        await db.upgrade()
        await register_participants(db, [(OPERATOR, "Machine Maker BV", ["operator"])])
        await db.dispose()

    asyncio.run(seed())
    settings = gateway_settings(pki, tmp_path, backend)
    reader = Operator(CliRunner(), backend, tmp_path)
    changes: dict[tuple[str, str], tuple[str, dict[str, Any], str, str]] = {
        ("POST", "/v1/admin/participants"): (
            "/v1/admin/participants",
            {"id": MEMBER, "name": "Lab", "roles": ["consumer"]},
            "create",
            f"participant:{MEMBER}",
        ),
        ("PATCH", "/v1/admin/participants/{participant_id}"): (
            f"/v1/admin/participants/{MEMBER}",
            {"status": "suspended"},
            "update",
            f"participant:{MEMBER}",
        ),
        ("POST", "/v1/admin/clients"): (
            "/v1/admin/clients",
            {"client_id": MEMBER, "auth_method": "tls_client_auth", "scopes": ["dataset:a"]},
            "create",
            f"client:{MEMBER}",
        ),
        ("PATCH", "/v1/admin/clients/{client_id}"): (
            f"/v1/admin/clients/{MEMBER}",
            {"status": "disabled"},
            "update",
            f"client:{MEMBER}",
        ),
    }
    routes = set(_changing_routes(create_app(settings).routes))
    assert not changes.keys() & ROUTES_WITHOUT_ADMIN_ENTRY.keys()
    assert routes == changes.keys() | ROUTES_WITHOUT_ADMIN_ENTRY.keys(), "classify new routes"

    with running_gateway(settings) as url, https(pki, admin, url) as client:
        before = len(reader.entries())
        for (method, _), (target_path, body, action, target) in changes.items():
            assert client.request(method, target_path, json=body).status_code < 300
            entries = reader.entries()
            (entry,) = entries[before:]
            before = len(entries)
            assert (entry.event, entry.action, entry.target) == ("admin-change", action, target)
            assert entry.actor.participant == OPERATOR
            assert entry.actor.certificate is not None
        duplicate = client.post(
            "/v1/admin/participants", json=changes["POST", "/v1/admin/participants"][1]
        )
        assert duplicate.status_code == 409
        assert client.patch("/v1/admin/clients/NTRNL-49999999", json={}).status_code == 404
        assert len(reader.entries()) == before  # a refused change writes nothing


def test_a_change_whose_entry_cannot_be_committed_is_undone(backend: str) -> None:
    async def run() -> None:
        db = CrashBeforeCommit(backend)
        await db.upgrade()
        audit = AuditLog(db, SIGNER, ORIGIN)
        admin = AdminChanges(audit, DatasetService(db, create_connector))
        actor = Actor(source="cli:test@host")
        data = ParticipantCreate(id=MEMBER, name="Lab", roles=["consumer"])
        try:
            db.crash_next = True
            with pytest.raises(StorageUnavailable):
                await admin.create_participant(actor, data, now=NOW)
            assert await ParticipantService(db).list() == []
            await admin.create_participant(actor, data, now=NOW)
            db.crash_next = True
            suspend = ParticipantUpdate(status="suspended")
            with pytest.raises(StorageUnavailable):
                await admin.update_participant(actor, MEMBER, suspend, now=NOW)
            assert (await ParticipantService(db).get(MEMBER)).status == "active"
            assert [r.entry.target for r in await audit.entries()] == [f"participant:{MEMBER}"]
        finally:
            await audit.close()
            await db.dispose()

    asyncio.run(run())


def test_a_credential_lookalike_in_a_change_is_redacted_in_its_entry(
    backend: str, tmp_path: Path
) -> None:
    pki = Pki(tmp_path / "pki")
    admin = pki.client("Machine Maker BV", OPERATOR, ["provider", "operator"])

    async def seed() -> None:
        db = Database(backend)
        await db.upgrade()
        await register_participants(db, [(OPERATOR, "Machine Maker BV", ["operator"])])
        await db.dispose()

    asyncio.run(seed())
    settings = gateway_settings(pki, tmp_path, backend)
    reader = Operator(CliRunner(), backend, tmp_path)
    with running_gateway(settings) as url, https(pki, admin, url) as client:
        before = reader.entries()
        group = "urn:eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln"  # reads as a raw JWT
        response = client.patch(f"/v1/admin/participants/{OPERATOR}", json={"groups": [group]})
        assert response.status_code == 200, response.text
        after = reader.entries()
        assert len(after) == len(before) + 1  # the change and exactly one entry
        assert after[-1].event == "admin-change"
        assert after[-1].redacted  # the log says something was cut, and where
        assert "eyJhbGciOiJFZERTQSJ9" not in after[-1].model_dump_json()


async def _refuse_audit_inserts(url: str) -> None:
    """A real trigger that makes the store refuse every new audit entry."""
    db = Database(url)
    async with db.engine.begin() as conn:
        if db.dialect == "sqlite":
            await conn.execute(
                text(
                    "CREATE TRIGGER no_audit BEFORE INSERT ON audit_entries "
                    "BEGIN SELECT RAISE(ABORT, 'audit store refuses'); END"
                )
            )
        else:
            await conn.execute(
                text(
                    "CREATE FUNCTION no_audit() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'audit store refuses'; END $$ LANGUAGE plpgsql"
                )
            )
            await conn.execute(
                text(
                    "CREATE TRIGGER no_audit BEFORE INSERT ON audit_entries "
                    "FOR EACH ROW EXECUTE FUNCTION no_audit()"
                )
            )
    await db.dispose()


def test_no_change_is_made_when_its_entry_cannot_be_written(
    backend: str, tmp_path: Path, operator: Operator
) -> None:
    pki = Pki(tmp_path / "pki")
    admin = pki.client("Machine Maker BV", OPERATOR, ["provider", "operator"])

    async def seed() -> None:
        db = Database(backend)
        await db.upgrade()
        await register_participants(
            db, [(OPERATOR, "Machine Maker BV", ["operator"]), (MEMBER, "Lab", ["consumer"])]
        )
        await db.dispose()

    asyncio.run(seed())
    # One log, one audit key: the gateway and the operator's CLI sign as the same log.
    key = operator.home / "audit-key.pem"
    settings = gateway_settings(pki, tmp_path, backend, audit_key_file=key)
    with running_gateway(settings) as url, https(pki, admin, url) as client:
        # Refused after the start: starting records the token key, with its own entry.
        asyncio.run(_refuse_audit_inserts(backend))
        suspended = client.patch(f"/v1/admin/participants/{MEMBER}", json={"status": "suspended"})
        assert suspended.status_code == 503
        assert client.get(f"/v1/admin/participants/{MEMBER}").json()["status"] == "active"
        body = {"id": "NTRNL-40000002", "name": "New", "roles": ["consumer"]}
        assert client.post("/v1/admin/participants", json=body).status_code == 503
        assert client.get("/v1/admin/participants/NTRNL-40000002").status_code == 404
    assert "database unavailable" in operator.refused("participants", "suspend", MEMBER)
    assert "active" in operator.run("participants", "show", MEMBER)


def test_a_revocation_whose_entry_fails_after_the_files_changed_says_so(
    operator: Operator,
) -> None:
    operator.run("participants", "add", MEMBER, "--name", "Lab", "--role", "consumer")
    operator.run("certs", "init", "--dir", "ca")
    issued = operator.run(
        "certs", "issue", "--dir", "ca", "--org-id", MEMBER, "--org-name", "Lab",
        "--role", "consumer", "--out", "out",
    )  # fmt: skip
    serial = issued.split("serial:")[1].split()[0]
    before = operator.entries()
    asyncio.run(_refuse_audit_inserts(operator.url))
    line = operator.refused("certs", "revoke", serial, "--dir", "ca")
    assert f"certificate {serial} is revoked in the CA files" in line
    assert "the audit log does not show this revocation" in line
    assert "revoked" in operator.run("certs", "list", "--dir", "ca")
    assert operator.entries() == before


#: The registry services' own-transaction mutators write no entry: seeding and tests only.
UNAUDITED_CALLS = re.compile(
    r"\b(participants|clients|ParticipantService\([^)]*\)|ClientService\([^)]*\))"
    r"\.(create|update)\(|\b(datasets|DatasetService\([^)]*\))\.register\("
)


def test_no_entry_point_calls_an_unaudited_mutator() -> None:
    gateway = Path(__file__).resolve().parents[2] / "gateway"
    calls = [
        f"{path.relative_to(gateway)}:{number}"
        for path in sorted(gateway.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if UNAUDITED_CALLS.search(line)
    ]
    assert calls == [], "go through gateway.admin.service.AdminChanges"
