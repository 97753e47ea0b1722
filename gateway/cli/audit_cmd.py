"""``sluis audit``: export the log, prove an entry, verify offline with the public key.

``export`` and ``prove`` read the database named by the settings; ``verify`` and
``verify-proof`` read only files and the public key string (C2SP verifier key,
``<name>+<key ID>+<base64 key>``, printed by ``sluis audit key``). See docs/audit.md.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, BinaryIO, TextIO, TypeVar

import typer

from gateway.audit.anchor import check_against
from gateway.audit.bundle import (
    CHECKPOINTS_FILE,
    ENTRIES_FILE,
    START_FILE,
    ExportStart,
    read_bundle,
    read_start,
)
from gateway.audit.encoding import encode_base64
from gateway.audit.errors import AuditError
from gateway.audit.export import ExportFormat, render
from gateway.audit.keys import Verifier
from gateway.audit.log import AuditReader
from gateway.audit.streams import AnyFormat, RangeError, open_export
from gateway.audit.verify import (
    ExportedCheckpoint,
    checkpoint_line,
    read_checkpoints,
    read_entries,
    verify_export,
    verify_proof_bundle,
)
from gateway.cli import audit_remote as remote
from gateway.cli.context import existing_database
from gateway.cli.output import CliError, console, err_console, reports_errors
from gateway.settings import Settings, load_audit_key
from gateway.storage.db import Database

app = typer.Typer(help="Export, prove and verify the audit log.", no_args_is_help=True)
T = TypeVar("T")
PAGE = 1000

KeyOption = Annotated[
    list[str],
    typer.Option("--key", "-k", help="Verifier key string (repeatable); any one must sign."),
]
GatewayOption = Annotated[
    str | None, typer.Option(help="Export over the officer API of this gateway (https://...).")
]
CertOption = Annotated[Path | None, typer.Option(help="Your client certificate (PEM), for mTLS.")]
CaOption = Annotated[Path | None, typer.Option(help="CA bundle that vouches for the gateway.")]
OriginOption = Annotated[
    str | None, typer.Option(help="The log's origin line; default: the first key's name.")
]


def _run(settings: Settings, action: Callable[[AuditReader], Awaitable[T]]) -> T:
    return _run_db(settings, lambda db: action(AuditReader(db)))


def _run_db(settings: Settings, action: Callable[[Database], Awaitable[T]]) -> T:
    existing_database(settings)  # an audit log is never made by reading (or rotating) one

    async def main() -> T:
        db = Database(settings.effective_database_url)
        try:
            if settings.auto_migrate:
                await db.upgrade()
            return await action(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


@contextmanager
def _opened(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield typer.get_text_stream("stdout")
        return
    try:
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            yield handle
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from exc


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc


def _verifiers(keys: list[str], *, option: str = "--key") -> list[Verifier]:
    if not keys and option == "--key":
        raise CliError("give the log's public key with --key")
    try:
        return [Verifier.from_key_string(key.strip()) for key in keys]
    except AuditError as exc:
        raise CliError(f"bad {option}: {exc.detail}") from exc


def _anchor(source: str, cert: Path | None, key: Path | None, cacert: Path | None) -> bytes:
    """The checkpoint to hold the export against: fetched over mTLS, or read from a file."""
    if source.startswith("http://"):
        raise CliError("fetch the checkpoint over https (mTLS), not http")
    if source.startswith("https://"):
        return remote.fetch_checkpoint(source, remote.tls_files(cert, key, cacert))
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {source}: {exc.strerror}") from exc


@app.command("export")
@reports_errors
def export(
    ctx: typer.Context,
    *,
    fmt: Annotated[
        AnyFormat,
        typer.Option("--format", "-f", help="Record format, or bundle: a zip verify reads."),
    ] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Entries file (default stdout).")
    ] = None,
    checkpoints: Annotated[
        Path | None, typer.Option(help="Also write the signed checkpoints (JSON lines) here.")
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help=f"Write {ENTRIES_FILE} and {CHECKPOINTS_FILE} here."),
    ] = None,
    gateway: GatewayOption = None,
    cert: CertOption = None,
    cert_key: Annotated[
        Path | None, typer.Option("--key", help="Your certificate's private key (PEM).")
    ] = None,
    cacert: CaOption = None,
    start: Annotated[int, typer.Option(min=0, help="First entry index of a range.")] = 0,
    end: Annotated[
        int | None, typer.Option(min=0, help="End of a range (exclusive); default: all.")
    ] = None,
) -> None:
    """Every entry, one record a line, each with its index (and the checkpoints).

    From the database the settings name, or with --gateway over the officer API (mTLS).
    With --start/--end, a range; with --format bundle, one zip (entries and checkpoints,
    a range from its frontier) that `sluis audit verify` checks, as the console downloads.
    """
    if fmt == "bundle" or start or end is not None:
        if directory is not None or checkpoints is not None:
            raise CliError("a range or bundle is one file: give --output, not --dir/--checkpoints")
        if gateway is not None:
            tls = remote.tls_files(cert, cert_key, cacert)
            remote.download_export(gateway, tls, output, fmt=fmt, start=start, end=end)
            return
        _export_range(ctx.obj.settings(), fmt, output, start, end)
        return
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        output = output or directory / ENTRIES_FILE
        checkpoints = checkpoints or directory / CHECKPOINTS_FILE
    if gateway is not None:
        tls = remote.tls_files(cert, cert_key, cacert)
        rows, chain = remote.export_from(gateway, tls)
        _write(fmt, output, checkpoints, rows, chain)
        _wrote(len(rows), output, len(chain), checkpoints)
        return

    async def dump(reader: AuditReader) -> tuple[int, int]:
        chain = await reader.export_checkpoints()  # first: the entries then cover them all
        if checkpoints is not None:
            with _opened(checkpoints) as out:
                for cp in chain:
                    out.write(checkpoint_line(cp.size, cp.note, cp.consistency) + "\n")
        size = await reader.size()
        with _opened(output) as out:
            for begin in range(0, size, PAGE):
                for record in await reader.entry_range(begin, min(begin + PAGE, size)):
                    out.write(render(fmt, record.index, record.data) + "\n")
        return size, len(chain)

    size, signed = _run(ctx.obj.settings(), dump)
    _wrote(size, output, signed, checkpoints)


def _export_range(
    settings: Settings, fmt: AnyFormat, output: Path | None, start: int, end: int | None
) -> None:
    """A range, or a bundle, from the database: streamed from the log to ``output``."""
    if fmt == "bundle" and output is None:
        raise CliError("a bundle is a zip file: give --output FILE")

    async def dump(reader: AuditReader) -> tuple[int, int]:
        try:
            found = await open_export(reader, fmt, start, end, now=datetime.now(UTC))
        except RangeError as exc:
            raise CliError(exc.detail) from exc
        with _opened_binary(output) as out:
            async for chunk in found.body:
                out.write(chunk)
        return found.start, found.end

    first, last = _run(settings, dump)
    if output is not None:
        err_console.print(f"wrote entries {first} to {last} to {output}", markup=False)


@contextmanager
def _opened_binary(path: Path | None) -> Iterator[BinaryIO]:
    if path is None:
        yield typer.get_binary_stream("stdout")
        return
    try:
        with path.open("wb") as handle:
            yield handle
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from exc


def _wrote(entries: int, output: Path | None, signed: int, checkpoints: Path | None) -> None:
    """Say which files were written, on stderr; entries on stdout speak for themselves."""
    parts = [f"{entries} entries to {output}"] if output is not None else []
    if checkpoints is not None:
        parts.append(f"{signed} checkpoints to {checkpoints}")
    if parts:
        err_console.print("wrote " + " and ".join(parts), markup=False, soft_wrap=True)


def _write(
    fmt: ExportFormat,
    output: Path | None,
    checkpoints: Path | None,
    rows: list[tuple[int, bytes]],
    chain: list[ExportedCheckpoint],
) -> None:
    if checkpoints is not None:
        with _opened(checkpoints) as out:
            for cp in chain:
                out.write(checkpoint_line(cp.size, cp.note, cp.consistency) + "\n")
    with _opened(output) as out:
        for index, data in rows:
            out.write(render(fmt, index, data) + "\n")


@app.command("verify")
@reports_errors
def verify(
    key: KeyOption,
    source: Annotated[
        Path | None,
        typer.Argument(
            help=f"Export directory ({ENTRIES_FILE}, {CHECKPOINTS_FILE}) or bundle (.zip)."
        ),
    ] = None,
    *,
    entries: Annotated[Path | None, typer.Option(help="Exported entries (jsonl).")] = None,
    checkpoints: Annotated[Path | None, typer.Option(help="Exported checkpoints.")] = None,
    origin: OriginOption = None,
    against: Annotated[
        str | None,
        typer.Option(
            "--against-checkpoint",
            help="A signed checkpoint the export must reach: a file saved earlier, or the "
            "gateway's https URL (fetched live over mTLS). Catches truncation.",
        ),
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option(
            help="Witness key string (repeatable): --against-checkpoint must carry its cosignature."
        ),
    ] = None,
    cert: CertOption = None,
    cert_key: Annotated[
        Path | None, typer.Option("--cert-key", help="Your certificate's private key (PEM).")
    ] = None,
    cacert: CaOption = None,
) -> None:
    """Offline: checkpoint signatures, their consistency, and that entries rebuild the root.

    From the first key (--key) on, following the log's key hand-overs. With
    --against-checkpoint, also that the export reaches a checkpoint obtained apart from it.
    """
    verifiers = _verifiers(key)
    witnesses = _verifiers(witness or [], option="--witness")
    entry_lines, checkpoint_lines, start = _export_files(source, entries, checkpoints)
    if start is not None and against is not None:
        raise CliError(
            f"--against-checkpoint needs an export from entry 0; this one starts at {start.index}"
        )
    anchor = None if against is None else _anchor(against, cert, cert_key, cacert)
    exported = read_entries(entry_lines)
    log_origin = origin or verifiers[0].name
    try:
        report = verify_export(
            exported, read_checkpoints(checkpoint_lines), verifiers, log_origin, start
        )
        if anchor is not None:
            check_against(
                exported, report.epochs, anchor, log_origin, label=str(against),
                witnesses=witnesses,
            )  # fmt: skip
    except AuditError as exc:
        raise CliError(f"verification failed: {exc.detail}") from exc
    latest = report.latest
    handed = ""
    if report.hand_overs:
        now_key = report.epochs[-1].keys[0].key_string()
        handed = f"; {report.hand_overs} key hand-over(s) followed, now signed by {now_key}"
    console.print(
        f"ok: {report.entries} entries, {report.checkpoints} checkpoints; "
        f"latest size {latest.size} root {encode_base64(latest.root_hash)}{handed}",
        markup=False,
        soft_wrap=True,
    )
    for index in report.void_rotations:
        console.print(f"note: key-rotation entry {index} was never handed over", markup=False)


def _export_files(
    source: Path | None, entries: Path | None, checkpoints: Path | None
) -> tuple[list[str], list[str], ExportStart | None]:
    """Entry and checkpoint lines, and a range's start: from a bundle (a zip the console
    downloads), an export directory, or the two files named."""
    if source is not None and source.is_file() and entries is None and checkpoints is None:
        try:
            return read_bundle(source.read_bytes())
        except OSError as exc:
            raise CliError(f"cannot read {source}: {exc.strerror}") from exc
        except AuditError as exc:
            raise CliError(f"{source}: {exc.detail}") from exc
    start = None
    if source is not None:
        entries = entries or source / ENTRIES_FILE
        checkpoints = checkpoints or source / CHECKPOINTS_FILE
        if (source / START_FILE).is_file():
            try:
                start = read_start((source / START_FILE).read_bytes())
            except AuditError as exc:
                raise CliError(f"{source / START_FILE}: {exc.detail}") from exc
    if entries is None or checkpoints is None:
        raise CliError("give an export directory or bundle, or --entries and --checkpoints")
    return _read_lines(entries), _read_lines(checkpoints), start


@app.command("prove")
@reports_errors
def prove(
    ctx: typer.Context,
    index: Annotated[int, typer.Argument(min=0, help="The entry's index.")],
) -> None:
    """A self-contained inclusion proof of one entry in the latest signed checkpoint."""

    async def build(reader: AuditReader) -> dict[str, Any]:
        latest = await reader.latest_checkpoint()
        if latest is None or latest.size <= index:
            raise CliError(f"no signed checkpoint includes entry {index} yet")
        proof = await reader.inclusion_proof(index, latest.size)
        (record,) = await reader.entry_range(index, index + 1)
        return {
            "index": index,
            "tree_size": proof.tree_size,
            "leaf_hash": encode_base64(proof.leaf_hash),
            "hashes": [encode_base64(h) for h in proof.hashes],
            "entry": record.json(),
            "checkpoint": latest.note.decode(),
        }

    bundle = _run(ctx.obj.settings(), build)
    typer.echo(json.dumps(bundle, indent=2, ensure_ascii=False))


@app.command("verify-proof")
@reports_errors
def verify_proof(
    key: KeyOption,
    bundle: Annotated[Path, typer.Argument(help="The JSON that `sluis audit prove` printed.")],
    origin: OriginOption = None,
) -> None:
    """Offline: the entry in a proof bundle is in the signed checkpoint."""
    verifiers = _verifiers(key)
    try:
        data = json.loads("\n".join(_read_lines(bundle)))
        checkpoint = verify_proof_bundle(data, verifiers, origin or verifiers[0].name)
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4,300 digits
        raise CliError(f"{bundle} is not JSON: {exc}") from exc
    except AuditError as exc:
        raise CliError(f"verification failed: {exc.detail}") from exc
    console.print(f"ok: entry {data['index']} is in the tree of {checkpoint.size}", markup=False)


@app.command("key")
@reports_errors
def key(
    ctx: typer.Context,
    first: Annotated[
        bool, typer.Option("--first", help="The key the log began with (verify starts there).")
    ] = False,
) -> None:
    """Print the log's public verifier key string (safe to publish)."""
    # Imported here: loading the signing key is only needed by this command.
    from gateway.audit.identity import read_identity, reconcile  # noqa: PLC0415
    from gateway.audit.wiring import configured_identity  # noqa: PLC0415

    settings = ctx.obj.settings()
    identity = _run_db(settings, read_identity)
    if first:
        if identity is None:
            raise CliError("the audit log has no identity yet: start the gateway once")
        typer.echo(identity.first_key.key_string())
        return
    configured = configured_identity(settings, load_audit_key(settings))
    origin = configured.origin
    if identity is not None:
        reconcile(identity, configured)
        origin = identity.origin
    typer.echo(Verifier(origin, configured.public_key).key_string())


@app.command("rotate-key")
@reports_errors
def rotate_key(
    ctx: typer.Context,
    new_key: Annotated[
        Path, typer.Option("--new-key", help="The new Ed25519 key (PEM, mode 0600).")
    ],
) -> None:
    """Hand the log over to a new checkpoint key, signed by the current one.

    Stop every gateway replica first; then configure the new key and start them.
    """
    from gateway.audit.rotation import HandOver  # noqa: PLC0415 - see key
    from gateway.audit.rotation import rotate_key as hand_over  # noqa: PLC0415
    from gateway.audit.wiring import log_identity, signer_from_key  # noqa: PLC0415

    settings = ctx.obj.settings()
    old = load_audit_key(settings)
    new = load_audit_key(ctx.obj.settings(audit_key_file=new_key))

    async def run(db: Database) -> HandOver:
        now = datetime.now(UTC)
        identity = await log_identity(db, settings, old, now=now)
        old_signer = signer_from_key(old, identity.origin)
        new_signer = signer_from_key(new, identity.origin)
        return await hand_over(db, identity, old_signer, new_signer, now=now)

    done = _run_db(settings, run)
    typer.echo(
        f"handed over: key-rotation entry {done.index}, checkpoint of size {done.size} "
        f"signed by the old key and the new one\nnew key: {done.new_key.key_string()}\n"
        f"now set SLUIS_AUDIT_KEY_FILE={new_key} on every replica and start them"
    )
