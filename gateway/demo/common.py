"""What every demo step shares: where files go, the organisations, running ``sluis``."""

from __future__ import annotations

import shlex
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console

from gateway.background import SLUIS, serving

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
