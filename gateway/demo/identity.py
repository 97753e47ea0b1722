"""Demo steps 1-4: the dev PKI, the participants, whoami over mTLS, and the refusals."""

from __future__ import annotations

import json
import os
import subprocess
from urllib.parse import quote

from rich.table import Table

from gateway.background import SLUIS
from gateway.demo.common import (
    HOME,
    LOST,
    MAKER,
    OFFICER,
    OLD_LAB,
    PKI,
    STRANGER,
    UNIVERSITY,
    Org,
    call,
    console,
    sluis,
    step,
)


def set_up(env: dict[str, str]) -> None:
    step("1. A throwaway dev PKI (root + issuing CA, server certificate, CRL)")
    sluis("certs", "init", "--dir", str(PKI), "--name", "Sluis Demo", env=env)
    for org in (MAKER, UNIVERSITY, OFFICER, OLD_LAB, STRANGER, LOST):
        roles = [arg for role in org.roles for arg in ("--role", role)]
        out = sluis(
            "certs", "issue", "--dir", str(PKI), "--org-id", org.org_id, "--org-name", org.name,
            *roles, "--days", "30", "--out", str(org.directory), env=env,
        )  # fmt: skip
        if org is LOST:
            serial = out.split("serial:")[1].split()[0]

    step("2. The operator registers the participants (each change is an audit entry)")
    for org in (MAKER, UNIVERSITY, OFFICER, OLD_LAB):
        roles = [arg for role in org.roles for arg in ("--role", role)]
        sluis("participants", "add", org.org_id, "--name", org.name, *roles, env=env)
    sluis("participants", "suspend", OLD_LAB.org_id, env=env)
    console.print("The university reports a lost laptop: its second certificate is revoked.")
    sluis("certs", "revoke", serial, "--dir", str(PKI), "--reason", "keyCompromise", env=env)
    console.print(sluis("participants", "list", env=env))


def show_whoami(url: str) -> bool:
    step("3. whoami over mTLS, as the university")
    outcome, body = call(url, UNIVERSITY)
    console.print(f"[dim]$ curl --cert {UNIVERSITY.cert.name} --key ... {url}/v1/whoami")
    try:
        console.print_json(body)
    except json.JSONDecodeError:
        console.print(body, markup=False)
    return outcome == "200"


def show_refusals(url: str) -> bool:
    step("4. What is refused, and how")
    forged = {"x-forwarded-client-cert": f'Cert="{quote(MAKER.cert.read_text())}"'}
    cases = [
        ("no client certificate", None, None, "401"),
        ("certificate from another CA", "foreign", None, "handshake refused"),
        ("revoked certificate (lost laptop)", LOST, None, "401"),
        ("registered nowhere", STRANGER, None, "403"),
        ("suspended participant", OLD_LAB, None, "403"),
        ("forged x-forwarded-client-cert, untrusted peer", None, forged, "401"),
    ]
    table = Table("case", "expected", "got", "problem type (urn:sluis:problem:...) or reason")
    ok = True
    for title, who, headers, expected in cases:
        org = foreign_org() if who == "foreign" else who
        outcome, body = call(url, org if isinstance(org, Org) else None, headers)
        try:
            reason = str(json.loads(body)["type"]).removeprefix("urn:sluis:problem:")
        except (json.JSONDecodeError, KeyError, TypeError):
            reason = body[-70:]
        good = outcome == expected
        ok = ok and good
        mark = "[green]✓" if good else "[red]✗"
        table.add_row(title, expected, f"{mark} {outcome}", reason)
    console.print(table)
    return ok


def foreign_org() -> Org:
    """A certificate from a CA the gateway does not trust."""
    other = HOME / "foreign-pki"
    org = Org("foreign", UNIVERSITY.org_id, UNIVERSITY.name, ("consumer",))
    if not org.directory.exists():
        env = {**os.environ, "SLUIS_HOME": str(HOME)}
        subprocess.run(  # noqa: S603 - our own console script, fixed arguments
            [SLUIS, "certs", "init", "--dir", str(other), "--name", "Impostor"],
            env=env, capture_output=True, check=True,
        )  # fmt: skip
        subprocess.run(  # noqa: S603 - our own console script, fixed arguments
            [SLUIS, "certs", "issue", "--dir", str(other), "--org-id", org.org_id,
             "--org-name", org.name, "--role", "consumer", "--out", str(org.directory)],
            env=env, capture_output=True, check=True,
        )  # fmt: skip
    return org
