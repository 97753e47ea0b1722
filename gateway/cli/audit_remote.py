"""The audit API seen by an officer's CLI over mTLS: checkpoints and a full export (IO).

``export_from`` pages through ``/v1/audit/entries`` and takes the checkpoints a verifier
needs: the newest one, and the hand-over checkpoint of every key rotation before it
(``/v1/audit/checkpoint?at_least=r+1``), each with the consistency proof from the one
before (``/v1/audit/proofs/consistency``). Nothing fetched is trusted here:
``sluis audit verify`` checks it all with the log's key.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx

from gateway.audit.checkpoint import Checkpoint
from gateway.audit.encoding import decode_base64
from gateway.audit.errors import AuditError
from gateway.audit.handover import find_rotations
from gateway.audit.jcs import canonical
from gateway.audit.verify import ExportedCheckpoint
from gateway.cli.output import CliError
from gateway.client import mtls_context

PAGE = 1000
CHECKPOINT_PATH = "/v1/audit/checkpoint"
EXPORT_PATH = "/v1/audit/export"


@dataclass(frozen=True)
class TlsFiles:
    """The officer's certificate and key, and the CA bundle that vouches for the gateway."""

    cert: Path
    key: Path
    cacert: Path


def tls_files(cert: Path | None, key: Path | None, cacert: Path | None) -> TlsFiles:
    """All three, or a one-line CliError naming what is missing."""
    if cert is None or key is None or cacert is None:
        raise CliError("reaching the gateway needs --cert, its key and --cacert (mTLS)")
    return TlsFiles(cert, key, cacert)


def _client(base_url: str, tls: TlsFiles) -> httpx.Client:
    try:
        context = mtls_context(tls.cacert, tls.cert, tls.key)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot load the TLS files: {exc}") from exc
    return httpx.Client(base_url=base_url, verify=context, timeout=30)


def _get(client: httpx.Client, path: str, **params: Any) -> httpx.Response:
    try:
        response = client.get(path, params=params)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {client.base_url}: {exc}") from exc
    if response.status_code != httpx.codes.OK:
        _refused(path, response)
    return response


def _refused(path: str, response: httpx.Response) -> NoReturn:
    try:
        problem = response.json()
        reason = f"{problem.get('type')}: {problem.get('detail')}"
    except ValueError:
        reason = response.reason_phrase
    raise CliError(f"{path}: {response.status_code} {reason}")


def fetch_checkpoint(url: str, tls: TlsFiles) -> bytes:
    """The signed note at ``url`` (a gateway's base URL means its newest checkpoint)."""
    target = httpx.URL(url)
    if target.path in {"", "/"}:
        target = target.copy_with(path=CHECKPOINT_PATH)
    with _client(str(target.copy_with(path="/", query=None)), tls) as client:
        return _get(client, target.raw_path.decode("ascii")).content


def download_export(
    base_url: str,
    tls: TlsFiles,
    output: Path | None,
    *,
    fmt: str,
    start: int,
    end: int | None,
) -> None:
    """``GET /v1/audit/export`` streamed to ``output`` (stdout when None), as it arrives."""
    params: dict[str, Any] = {"format": fmt, "start": start}
    if end is not None:
        params["end"] = end
    if fmt == "bundle" and output is None:
        raise CliError("a bundle is a zip file: give --output FILE")
    with _client(base_url, tls) as client:
        try:
            with client.stream("GET", EXPORT_PATH, params=params) as response:
                if response.status_code != httpx.codes.OK:
                    response.read()
                    _refused(EXPORT_PATH, response)
                _save(response, output)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach {client.base_url}: {exc}") from exc


def _save(response: httpx.Response, output: Path | None) -> None:
    if output is None:
        for chunk in response.iter_bytes():
            sys.stdout.buffer.write(chunk)
        return
    try:
        with output.open("wb") as handle:
            for chunk in response.iter_bytes():
                handle.write(chunk)
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror}") from exc


def export_from(
    base_url: str, tls: TlsFiles
) -> tuple[list[tuple[int, bytes]], list[ExportedCheckpoint]]:
    """Entries ``(index, canonical bytes)`` and the checkpoints to verify them by."""
    with _client(base_url, tls) as client:
        latest = _get(client, CHECKPOINT_PATH).content
        entries = _entries(client)
        size = _size(latest)
        notes = {size: latest}
        for rotation in find_rotations(entries):
            if rotation.index < size:
                note = _get(client, CHECKPOINT_PATH, at_least=rotation.index + 1).content
                notes.setdefault(_size(note), note)
        return entries, _chain(client, notes)


def _entries(client: httpx.Client) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    after = -1
    while True:
        page = _get(client, "/v1/audit/entries", after=after, limit=PAGE).json()
        try:
            out.extend((int(e["index"]), canonical(e["entry"])) for e in page["entries"])
        except (AuditError, KeyError, TypeError, ValueError) as exc:
            raise CliError(f"the gateway sent a malformed entry page: {exc!r}") from exc
        if page.get("next_after") is None:
            return out
        after = int(page["next_after"])


def _chain(client: httpx.Client, notes: dict[int, bytes]) -> list[ExportedCheckpoint]:
    chain: list[ExportedCheckpoint] = []
    previous = 0
    for size in sorted(notes):
        proof: tuple[bytes, ...] = ()
        if 0 < previous < size:
            body = _get(client, "/v1/audit/proofs/consistency", size1=previous, size2=size)
            proof = tuple(decode_base64(h) for h in body.json()["hashes"])
        chain.append(ExportedCheckpoint(size, notes[size], proof))
        previous = size
    return chain


def _size(note: bytes) -> int:
    try:
        return Checkpoint.parse(note[: note.rindex(b"\n\n") + 1].decode()).size
    except (AuditError, ValueError) as exc:
        raise CliError("the gateway sent something that is not a checkpoint") from exc
