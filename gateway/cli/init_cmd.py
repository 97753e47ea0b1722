"""``sluis init``: everything a development gateway needs, made once under ``$SLUIS_HOME``.

The dev PKI (root and issuing CA, server certificate, trust bundle, CRL) in ``pki/``, the
token signing key and the audit key (Ed25519, 0600, one purpose each) in ``keys/``, the
database with the audit log's identity (``sluis audit key --first`` answers at once), and
``sluis.yaml`` naming them all: every later ``sluis`` command run with the
same home (``sluis serve`` included) reads that file when no other is given.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from certs.store import CADirectory
from gateway.cli.context import CliState
from gateway.cli.output import CliError, console, reports_errors
from gateway.settings import HOME_CONFIG, Settings

app = typer.Typer(add_completion=False)


@app.command()
@reports_errors
def init(
    ctx: typer.Context,
    server_name: Annotated[
        list[str] | None, typer.Option(help="DNS name for the server certificate [localhost]")
    ] = None,
    server_ip: Annotated[
        list[str] | None, typer.Option(help="IP for the server certificate [127.0.0.1, ::1]")
    ] = None,
    ca_name: Annotated[str, typer.Option(help="CA name (in the CA common names)")] = "Sluis Dev",
) -> None:
    """Create a development home: PKI, server certificate, CRL, keys, database, sluis.yaml."""
    settings = ctx.obj.settings() if isinstance(ctx.obj, CliState) else Settings()
    home = settings.home.resolve()
    config = home / HOME_CONFIG
    if config.exists():
        raise CliError(f"{config} exists: this home is already set up (use another SLUIS_HOME)")
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca = CADirectory.init(
        home / "pki",
        name=ca_name,
        key_type="ec-p256",
        now=datetime.now(UTC),
        server_names=server_name or ("localhost",),
        server_ips=server_ip or ("127.0.0.1", "::1"),
        passphrase=_passphrase(),
    )
    values = {
        "tls_cert": ca.server_cert_path,
        "tls_key": ca.server_key_path,
        "tls_client_ca": ca.trust_bundle_path,
        "tls_crl": ca.crl_path,
        "signing_key_file": _new_key(home / "keys" / "signing-key.pem"),
        "audit_key_file": _new_key(home / "keys" / "audit-key.pem"),
    }
    _write_config(config, {name: str(path.resolve()) for name, path in values.items()})
    ready = ctx.obj.settings() if isinstance(ctx.obj, CliState) else Settings()
    origin = _create_database(ready)
    console.print(f"CA and server certificate: {ca.path}", markup=False, soft_wrap=True)
    console.print(f"keys: {home / 'keys'}", markup=False, soft_wrap=True)
    console.print(f"database: {ready.effective_database_url}", markup=False, soft_wrap=True)
    console.print(f"audit log: {origin}", markup=False, soft_wrap=True)
    console.print(f"settings: {config}", markup=False, soft_wrap=True)


def _passphrase() -> bytes | None:
    value = os.environ.get("SLUIS_CA_PASSPHRASE")
    return value.encode() if value else None


def _new_key(path: Path) -> Path:
    """A new Ed25519 private key at ``path`` (mode 0600; never overwrites)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CliError(f"{path} exists: refusing to overwrite a key") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return path


def _write_config(path: Path, values: dict[str, str]) -> None:
    header = "# Written by `sluis init`: the development gateway's files (docs/first-hour.md).\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(header + yaml.safe_dump(values, sort_keys=False))


def _create_database(settings: Settings) -> str:
    """Migrate the database, give the audit log its identity; the log's origin."""
    from gateway.audit.wiring import check_audit_identity  # noqa: PLC0415 - SQLAlchemy when needed

    return asyncio.run(check_audit_identity(settings, now=datetime.now(UTC))).origin
