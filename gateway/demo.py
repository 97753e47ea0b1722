"""``make demo``: a throwaway dev PKI, the gateway on SQLite, whoami over mTLS, the refusals.

Every step runs the real ``sluis`` command line (shown as ``$ sluis ...``) and a real
mTLS client (curl when installed, httpx otherwise). The demo exits non-zero when any
step does not give the answer it should.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.table import Table

from gateway.background import SLUIS, free_port, serving

console = Console(highlight=False, width=None if sys.stdout.isatty() else 110)
HOME = Path(".sluis/demo").resolve()
PKI = HOME / "pki"


@dataclass(frozen=True)
class Org:
    """A demo organisation and where its certificate lives."""

    key: str
    org_id: str
    name: str
    roles: tuple[str, ...]

    @property
    def directory(self) -> Path:
        return HOME / "clients" / self.key

    @property
    def cert(self) -> Path:
        return next(self.directory.glob("*.pem"))

    @property
    def private_key(self) -> Path:
        return next(self.directory.glob("*.key"))


MAKER = Org("maker", "EU.EORI.NL000000001", "Machine Maker BV", ("provider", "operator"))
UNIVERSITY = Org("university", "NTRNL-40000001", "Universiteit Oost", ("consumer",))
OFFICER = Org("officer", "NTRNL-40000002", "Fieldlab Security Office", ("officer",))
OLD_LAB = Org("old-lab", "NTRNL-40000003", "Closed Fieldlab", ("consumer",))
STRANGER = Org("stranger", "NTRNL-49999999", "Unregistered BV", ("consumer",))
LOST = Org("lost-laptop", "NTRNL-40000001", "Universiteit Oost", ("consumer",))


def step(title: str) -> None:
    console.rule(f"[bold]{title}")


def sluis(*args: str, env: dict[str, str]) -> str:
    """Run one ``sluis`` command, show it, fail the demo if it fails."""
    console.print(f"[dim]$ sluis {shlex.join(args)}")
    done = subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        [SLUIS, *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        console.print(done.stdout + done.stderr)
        raise SystemExit(f"demo step failed: sluis {' '.join(args)}")
    return done.stdout


@contextmanager
def gateway(env: dict[str, str], port: int) -> Iterator[str]:
    """``sluis serve`` in the background until the block ends."""
    log_path = HOME / "gateway.log"
    console.print(f"[dim]$ sluis serve --insecure-dev --port {port}   (log: {log_path})")
    with log_path.open("wb") as log:
        try:
            with serving(env, port, PKI / "trust-bundle.pem", log=log) as url:
                yield url
        except RuntimeError as exc:
            raise SystemExit(f"{exc}; see {log_path}") from None


def call(url: str, org: Org | None, headers: dict[str, str] | None = None) -> tuple[str, str]:
    """GET /v1/whoami as ``org``; returns (outcome, body)."""
    curl = shutil.which("curl")
    if curl is not None:
        args = [curl, "-sS", "--cacert", str(PKI / "trust-bundle.pem"), "-w", "\n%{http_code}"]
        if org is not None:
            args += ["--cert", str(org.cert), "--key", str(org.private_key)]
        for name, value in (headers or {}).items():
            args += ["-H", f"{name}: {value}"]
        done = subprocess.run(  # noqa: S603 - curl with arguments we built
            [*args, f"{url}/v1/whoami"], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            return "handshake refused", done.stderr.strip().splitlines()[-1]
        body, _, status = done.stdout.rpartition("\n")
        return status, body
    context = ssl.create_default_context(cafile=str(PKI / "trust-bundle.pem"))
    if org is not None:
        context.load_cert_chain(org.cert, org.private_key)
    try:
        response = httpx.get(f"{url}/v1/whoami", verify=context, headers=headers, timeout=5)
    except httpx.HTTPError as exc:
        return "handshake refused", str(exc)
    return str(response.status_code), response.text


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
    console.print("The university reports a lost laptop: its second certificate is revoked.")
    sluis("certs", "revoke", serial, "--dir", str(PKI), "--reason", "keyCompromise", env=env)

    step("2. The operator registers the participants")
    for org in (MAKER, UNIVERSITY, OFFICER, OLD_LAB):
        roles = [arg for role in org.roles for arg in ("--role", role)]
        sluis("participants", "add", org.org_id, "--name", org.name, *roles, env=env)
    sluis("participants", "suspend", OLD_LAB.org_id, env=env)
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


def main() -> None:
    """Run the demo end to end."""
    started = time.monotonic()
    if HOME.exists():
        shutil.rmtree(HOME)
    HOME.mkdir(parents=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SLUIS_")},
        "SLUIS_HOME": str(HOME),
        "SLUIS_TLS_CERT": str(PKI / "server.pem"),
        "SLUIS_TLS_KEY": str(PKI / "server.key"),
        "SLUIS_TLS_CLIENT_CA": str(PKI / "trust-bundle.pem"),
        "SLUIS_TLS_CRL": str(PKI / "crl.pem"),
    }
    set_up(env)
    foreign_org()
    with gateway(env, free_port()) as url:
        whoami_ok = show_whoami(url)
        refusals_ok = show_refusals(url)
    elapsed = time.monotonic() - started
    if not (whoami_ok and refusals_ok):
        raise SystemExit(f"demo FAILED after {elapsed:.0f} s: see the table above")
    console.rule(f"[bold green]demo passed in {elapsed:.0f} s; files are in {HOME}")


if __name__ == "__main__":
    main()
