"""A verifiable export as one file: a zip that ``sluis audit verify`` reads (pure).

The bundle holds the files of an export directory (:mod:`gateway.audit.verify`)::

    entries.jsonl       the entries of the range, one a line, index order
    checkpoints.jsonl   the checkpoints to verify them by, each with its consistency proof
    start.json          {"index": s, "frontier": ["<base64>", ...]}: only when s > 0

A range that begins at entry ``s > 0`` carries the *frontier* of the tree of ``s``
entries: the roots of the perfect subtrees covering ``[0, s)`` (RFC 9162's left edge, one
per set bit of ``s``). They are not trusted: the verifier appends the range's leaves to
them and compares every signed root it reaches. A wrong frontier or a changed entry gives
another root, so the range verifies only if it is the log's, at those indices.

:class:`ZipStream` writes a zip to memory piece by piece (data descriptors, no seeking),
so the gateway streams a bundle of any size in bounded memory.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from gateway.audit.compact import Frontier, frontier_ids
from gateway.audit.encoding import decode_base64, encode_base64
from gateway.audit.errors import AuditError, VerificationError
from gateway.audit.jcs import canonical, loads
from gateway.audit.merkle import HASH_SIZE

ENTRIES_FILE = "entries.jsonl"
CHECKPOINTS_FILE = "checkpoints.jsonl"
START_FILE = "start.json"
MAX_START = 64 * 1024  # a frontier is at most 63 hashes: anything longer is not one


@dataclass(frozen=True)
class ExportStart:
    """Where a range export begins: index ``index`` and the frontier of the tree before it."""

    index: int
    frontier: tuple[bytes, ...]

    def tree(self) -> Frontier:
        """The frontier to append the range's leaves to."""
        return Frontier.from_hashes(self.index, self.frontier)


def start_json(index: int, frontier: Sequence[bytes]) -> bytes:
    """The ``start.json`` of a range beginning at ``index``."""
    return canonical({"index": index, "frontier": [encode_base64(h) for h in frontier]})


def read_start(data: bytes) -> ExportStart:
    """Parse ``start.json`` strictly: an index and exactly its frontier's hashes."""
    if len(data) > MAX_START:
        raise VerificationError("bad-export", f"{START_FILE}: too long for a frontier")
    try:
        record: Any = loads(data)
        index, hashes = record["index"], record["frontier"]
        frontier = tuple(decode_base64(h) for h in hashes)
    except (AuditError, KeyError, TypeError, ValueError) as exc:
        raise VerificationError("bad-export", f"{START_FILE}: {exc}") from exc
    if not isinstance(index, int) or isinstance(index, bool) or not isinstance(hashes, list):
        raise VerificationError("bad-export", f"{START_FILE}: needs an index and its frontier")
    if not 0 <= index < 2**63 or len(frontier) != len(frontier_ids(index)):
        raise VerificationError("bad-export", f"{START_FILE}: not the frontier of {index}")
    if any(len(h) != HASH_SIZE for h in frontier):
        raise VerificationError("bad-export", f"{START_FILE}: a hash is not {HASH_SIZE} bytes")
    return ExportStart(index, frontier)


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream that keeps what was written until drained."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.chunks.append(bytes(data))
        return len(data)


class ZipStream:
    """A zip written in pieces: open a member, write to it, :meth:`drain` what is ready."""

    def __init__(self, moment: datetime) -> None:
        self._sink = _Sink()
        self._zip = zipfile.ZipFile(self._sink, "w")
        self._stamp = moment.timetuple()[:6]

    def member(self, name: str) -> IO[bytes]:
        """A new member (deflated; zip64, so a member may exceed 4 GiB)."""
        info = zipfile.ZipInfo(name, date_time=self._stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        return self._zip.open(info, "w", force_zip64=True)

    def drain(self) -> bytes:
        """The bytes written since the last drain."""
        data = b"".join(self._sink.chunks)
        self._sink.chunks.clear()
        return data

    def close(self) -> bytes:
        """Write the central directory; the last bytes of the zip."""
        self._zip.close()
        return self.drain()


#: Canonical JSON lines deflate about 5-10 to 1; far beyond that is a compression bomb.
MAX_RATIO = 100
_SMALL = 1 << 20  # a member this small is never refused for its ratio


def _check_sizes(bundle: zipfile.ZipFile) -> None:
    """Refuse, before anything is inflated, a member that would inflate out of proportion
    (zipfile never inflates past the declared size, so the declared size is the bound)."""
    for name in (ENTRIES_FILE, CHECKPOINTS_FILE, START_FILE):
        try:
            info = bundle.getinfo(name)
        except KeyError:
            continue
        if info.file_size > _SMALL and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise VerificationError(
                "bad-export",
                f"{name} would inflate from {info.compress_size} to {info.file_size} bytes "
                f"(more than {MAX_RATIO} to 1): not an export of this gateway",
            )


def read_bundle(data: bytes) -> tuple[list[str], list[str], ExportStart | None]:
    """Entry lines, checkpoint lines and the start of a bundle (a zip in memory)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as bundle:
            names = set(bundle.namelist())
            if not {ENTRIES_FILE, CHECKPOINTS_FILE} <= names:
                raise VerificationError(
                    "bad-export", f"the bundle lacks {ENTRIES_FILE} or {CHECKPOINTS_FILE}"
                )
            _check_sizes(bundle)
            entries = bundle.read(ENTRIES_FILE).decode("utf-8").splitlines()
            checkpoints = bundle.read(CHECKPOINTS_FILE).decode("utf-8").splitlines()
            start = read_start(bundle.read(START_FILE)) if START_FILE in names else None
    except (zipfile.BadZipFile, UnicodeDecodeError, OSError, EOFError) as exc:
        raise VerificationError("bad-export", f"not a readable bundle: {exc}") from exc
    return entries, checkpoints, start
