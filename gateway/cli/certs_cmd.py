"""``sluis certs``: the dev and fieldlab PKI on the command line.

The wall clock is read here, at the edge; everything below takes ``now``. Every
:class:`~certs.errors.CertsError` becomes one ``sluis: error: ...`` line and exit code 1.
CA keys are encrypted when ``SLUIS_CA_PASSPHRASE`` is set (participant and server keys never).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certs.errors import CertsError, PKIError
from certs.files import write_private_key
from certs.identity import identity_of
from certs.keys import KEY_TYPES, KeyType, generate_key, signing_hash
from certs.store import CADirectory
from certs.trust import load_pem_chain
from gateway.cli.context import CliState, cli_actor, run_admin
from gateway.cli.crl_publish import publish_crl
from gateway.cli.output import (
    CliError,
    JsonOption,
    console,
    err_console,
    fail,
    print_json,
    reports_errors,
)
from gateway.cli.output import table as make_table
from gateway.settings import Settings, load_settings

app = typer.Typer(
    help="Dev and fieldlab PKI: CA, participant certificates, revocation, CRL.",
    no_args_is_help=True,
)

REASONS = tuple(r.value for r in x509.ReasonFlags if r is not x509.ReasonFlags.remove_from_crl)


def _default_dir() -> Path:
    return Path(os.environ.get("SLUIS_HOME", ".sluis")) / "pki"


def _passphrase() -> bytes | None:
    value = os.environ.get("SLUIS_CA_PASSPHRASE")
    return value.encode() if value else None


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _reported() -> Iterator[None]:
    """Turn a :class:`CertsError` into a one-line failure."""
    try:
        yield
    except CertsError as exc:
        fail(f"{exc.detail}")


DirOption = Annotated[
    Path | None, typer.Option("--dir", help="CA directory [default: $SLUIS_HOME/pki]")
]


def _ca(directory: Path | None) -> CADirectory:
    return CADirectory(directory or _default_dir(), passphrase=_passphrase())


@app.command()
def init(
    *,
    directory: DirOption = None,
    name: Annotated[str, typer.Option(help="CA name (used in the CA common names)")] = "Sluis Dev",
    key_type: Annotated[str, typer.Option(help=f"one of {', '.join(KEY_TYPES)}")] = "ec-p256",
    server_name: Annotated[
        list[str] | None, typer.Option(help="DNS name for server.pem [default: localhost]")
    ] = None,
    server_ip: Annotated[
        list[str] | None, typer.Option(help="IP for server.pem [default: 127.0.0.1, ::1]")
    ] = None,
) -> None:
    """Create a root CA, an issuing CA, a server certificate, a trust bundle and a CRL."""
    if key_type not in KEY_TYPES:
        fail(f"--key-type must be one of {', '.join(KEY_TYPES)}")
    path = directory or _default_dir()
    with _reported():
        ca = CADirectory.init(
            path,
            name=name,
            key_type=_key_type(key_type),
            now=_now(),
            server_names=server_name if server_name is not None else ("localhost",),
            server_ips=server_ip if server_ip is not None else ("127.0.0.1", "::1"),
            passphrase=_passphrase(),
        )
    console.print(f"CA created in {ca.path}", markup=False)
    console.print(f"trust bundle: {ca.trust_bundle_path}", markup=False)
    console.print(f"server: {ca.server_cert_path} {ca.server_key_path}", markup=False)
    console.print(f"CRL: {ca.crl_path}", markup=False)


def _key_type(value: str) -> KeyType:
    return "ed25519" if value == "ed25519" else "ec-p256"


@app.command()
def issue(
    *,
    org_id: Annotated[str, typer.Option(help="organisation identifier, e.g. EU.EORI.NL000000001")],
    org_name: Annotated[str, typer.Option(help="organisation name")],
    role: Annotated[list[str], typer.Option(help="provider, consumer, officer or operator")],
    days: Annotated[int, typer.Option(min=1, help="validity in days")] = 365,
    csr: Annotated[Path | None, typer.Option(help="sign this CSR instead of making a key")] = None,
    out: Annotated[Path, typer.Option(help="where to write <slug>.pem / <slug>.key")] = Path(),
    directory: DirOption = None,
) -> None:
    """Issue a participant (client) certificate."""
    with _reported():
        request = _read(csr) if csr is not None else None
        files = _ca(directory).issue(
            organization_id=org_id,
            organization_name=org_name,
            roles=role,
            now=_now(),
            days=days,
            csr=request,
            out_dir=out,
        )
    console.print(f"serial: {files.serial_number:x}", markup=False)
    console.print(f"thumbprint (x5t#S256): {files.thumbprint_sha256}", markup=False)
    console.print(f"certificate: {files.certificate_path}", markup=False)
    if files.key_path is not None:
        console.print(f"key: {files.key_path}", markup=False)


@app.command()
@reports_errors
def revoke(
    ctx: typer.Context,
    serial: Annotated[str | None, typer.Argument(help="serial number in hex")] = None,
    *,
    cert: Annotated[Path | None, typer.Option(help="revoke this certificate (PEM)")] = None,
    reason: Annotated[str | None, typer.Option(help=f"one of {', '.join(REASONS)}")] = None,
    directory: DirOption = None,
    log_only: Annotated[
        bool,
        typer.Option(
            "--log-only",
            help="no CA directory here (cert-manager's client CA): record the revocation in "
            "the audit log only; the CRL job (sluis certs publish-crl) signs it into the CRL",
        ),
    ] = False,
) -> None:
    """Revoke a certificate by serial (hex) or by --cert FILE, and re-sign the CRL.

    With a gateway database configured (``database_url``, or the SQLite file in
    ``SLUIS_HOME``), the revocation is the effect of its audit entry: both or neither.
    """
    if (serial is None) == (cert is None):
        fail("give exactly one of SERIAL_HEX or --cert FILE")
    if reason is not None and reason not in REASONS:
        fail(f"--reason must be one of {', '.join(REASONS)}")
    flag = x509.ReasonFlags(reason) if reason is not None else None
    if log_only:
        _revoke_in_log(ctx, serial, cert, flag)
        return
    with _reported():
        number = _serial(serial) if serial is not None else _cert_serial(cert)
        ca = _ca(directory)
        now = _now()
        settings = _gateway_settings(ctx)
        if settings is None:
            ca.revoke(number, now=now, reason=flag)
            err_console.print(
                "sluis: note: no gateway database configured: the revocation is recorded "
                "in the CA index and CRL only, not in an audit log",
                soft_wrap=True,
            )
        else:
            _revoke_audited(settings, ca, number, now=now, reason=flag)
    console.print(f"revoked {number:x}; CRL updated: {ca.crl_path}", markup=False)


def _revoke_in_log(
    ctx: typer.Context, serial: str | None, cert: Path | None, reason: x509.ReasonFlags | None
) -> None:
    """``--log-only``: the audit entry is the revocation; the CRL job publishes it."""
    with _reported():
        number = _serial(serial) if serial is not None else _cert_serial(cert)
        organization = identity_of(load_pem_chain(_read(cert))[0]) if cert else None
    settings = _gateway_settings(ctx)
    if settings is None:
        fail("--log-only needs the gateway's database (SLUIS_DATABASE_URL[_FILE] or SLUIS_HOME)")
    run_admin(
        settings,
        lambda admin: admin.revoke_certificate(
            cli_actor(),
            number,
            lambda: None,
            now=_now(),
            organization_id=organization.organization_id if organization else None,
            reason=reason.value if reason else None,
        ),
    )
    console.print(
        f"revoked {number:x} in the audit log; it is in the CRL once the CRL job has run "
        "(kubectl create job --from=cronjob/<release>-crl ...)",
        markup=False,
        soft_wrap=True,
    )


def _gateway_settings(ctx: typer.Context) -> Settings | None:
    """The gateway's settings when it has a database here (else None: a CA on its own)."""
    settings = ctx.obj.settings() if isinstance(ctx.obj, CliState) else load_settings()
    if settings.database_url is None and not (settings.home / "sluis.db").exists():
        return None
    return settings


def _revoke_audited(
    settings: Settings,
    ca: CADirectory,
    number: int,
    *,
    now: datetime,
    reason: x509.ReasonFlags | None,
) -> None:
    """Revoke in the CA's files as the effect of the entry (see gateway.admin.service)."""
    from gateway.storage import StorageUnavailable  # noqa: PLC0415 - SQLAlchemy when needed

    organization = next(
        (r.organization_id for r in ca.list_issued() if r.serial_number == number), None
    )
    done: list[bool] = []

    def change() -> None:
        ca.revoke(number, now=now, reason=reason)
        done.append(True)

    try:
        run_admin(
            settings,
            lambda admin: admin.revoke_certificate(
                cli_actor(),
                number,
                change,
                now=now,
                organization_id=organization,
                reason=reason.value if reason else None,
            ),
        )
    except StorageUnavailable as exc:
        if not done:
            raise
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CliError(
            f"certificate {number:x} is revoked in the CA files, but the audit log does not "
            f"show this revocation: its entry could not be committed ({cause})"
        ) from exc


def _serial(text: str) -> int:
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "")
    try:
        return int(cleaned, 16)
    except ValueError:
        raise PKIError("unknown-serial", f"{text!r} is not a hexadecimal serial") from None


def _cert_serial(path: Path | None) -> int:
    if path is None:
        raise PKIError("unknown-serial", "no certificate given")
    return load_pem_chain(_read(path))[0].serial_number


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PKIError("unreadable-file", f"cannot read {path}: {exc.strerror}") from exc


@app.command()
def crl(
    days: Annotated[int, typer.Option(min=1, help="CRL validity (nextUpdate) in days")] = 7,
    directory: DirOption = None,
) -> None:
    """Re-sign the CRL with a new number and nextUpdate."""
    with _reported():
        path = _ca(directory).refresh_crl(now=_now(), days=days)
    console.print(f"CRL re-signed: {path}", markup=False)


@app.command("list")
def list_cmd(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """List the certificates this CA issued."""
    with _reported():
        records = _ca(directory).list_issued()
    if as_json:
        print_json([{**dataclasses.asdict(r), "serial_number": f"{r.serial_number:x}"}
                    for r in records])  # fmt: skip
        return
    table = make_table("serial", "organisation id", "subject", "not after", "status")
    for r in records:
        status = r.status if r.revoked_at is None else f"{r.status} {r.revoked_at:%Y-%m-%d}"
        status += f" ({r.reason})" if r.reason else ""
        table.add_row(
            f"{r.serial_number:x}", r.organization_id, r.subject, f"{r.not_after:%Y-%m-%d}", status
        )
    console.print(table)


@app.command()
def show(file: Annotated[Path, typer.Argument(help="a participant certificate (PEM)")]) -> None:
    """Print the identity a participant certificate claims (it is NOT verified)."""
    with _reported():
        identity = identity_of(load_pem_chain(_read(file))[0])
    console.print("[bold]unverified[/bold] certificate identity:")
    for field in dataclasses.fields(identity):
        value = getattr(identity, field.name)
        if isinstance(value, frozenset):
            value = ", ".join(sorted(value))
        elif isinstance(value, int):
            value = f"{value:x}"
        console.print(f"  {field.name}: {value}", markup=False)


@app.command("csr")
def csr_cmd(
    *,
    key: Annotated[Path, typer.Option(help="private key to create (0600, never overwritten)")],
    out: Annotated[Path, typer.Option(help="where to write the CSR (PEM)")],
    name: Annotated[str, typer.Option(help="your organisation's name (the CA decides the rest)")],
    key_type: Annotated[str, typer.Option(help=f"one of {', '.join(KEY_TYPES)}")] = "ec-p256",
) -> None:
    """Make a private key and a certificate signing request to send to the operator.

    The key never leaves your machine; the operator signs the CSR with ``sluis certs issue
    --csr``, which takes only the public key from it (the CA decides subject and roles).
    """
    if key_type not in KEY_TYPES:
        fail(f"--key-type must be one of {', '.join(KEY_TYPES)}")
    if out.exists():
        fail(f"{out} exists: refusing to overwrite it")
    private = generate_key(_key_type(key_type))
    with _reported():
        write_private_key(key, private)
    subject = x509.Name([x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, name)])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject)
    pem = request.sign(private, signing_hash(private)).public_bytes(serialization.Encoding.PEM)
    try:
        out.write_bytes(pem)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")
    console.print(f"key: {key}", markup=False)
    console.print(f"certificate signing request: {out}", markup=False)


# The CRL job of a CA kept in a Kubernetes Secret (the Helm chart's CronJob).
app.command("publish-crl")(publish_crl)
