"""An export range read from the log a page at a time, as bytes to send or write (IO).

Used by ``GET /v1/audit/export`` and ``sluis audit export``: records in a SIEM format
(:mod:`gateway.audit.export`), or a verifiable bundle (:mod:`gateway.audit.bundle`) whose
checkpoints are the range's own and those of the key hand-overs inside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from gateway.audit.bundle import (
    CHECKPOINTS_FILE,
    ENTRIES_FILE,
    START_FILE,
    ZipStream,
    start_json,
)
from gateway.audit.errors import AuditError
from gateway.audit.export import ExportFormat, render
from gateway.audit.handover import find_rotations
from gateway.audit.log import AuditReader
from gateway.audit.records import SignedCheckpoint
from gateway.audit.verify import ExportedCheckpoint, checkpoint_line, entry_line

PAGE = 1000
AnyFormat = Literal["jsonl", "ocsf", "syslog", "bundle"]  # ExportFormat and the bundle


class RangeError(AuditError):
    """An export range the log cannot give: ``range-out-of-range`` (not within the log),
    ``range-not-signed`` (a bundle's end is not covered by a signed checkpoint yet)."""


@dataclass(frozen=True)
class Export:
    """An export about to be read: its range ``[start, end)`` and its bytes, a page at a time."""

    start: int
    end: int
    body: AsyncIterator[bytes]


async def open_export(
    audit: AuditReader, fmt: AnyFormat, start: int, end: int | None, *, now: datetime
) -> Export:
    """Entries ``[start, end)`` (``end`` by default the log's size) in ``fmt``; a bundle
    runs on to the first signed checkpoint at or after ``end``, so that it verifies."""
    size = await audit.size()
    end = size if end is None else end
    if not 0 <= start <= end <= size:
        raise RangeError(
            "range-out-of-range", f"the log holds {size} entries: give 0 <= start <= end <= {size}"
        )
    if fmt != "bundle":
        return Export(start, end, records(audit, fmt, start, end))
    signed = await audit.checkpoint_at_least(max(end, 1))
    if signed is None:
        raise RangeError(
            "range-not-signed",
            f"no signed checkpoint covers entry {end - 1} yet: try again in a few seconds",
        )
    frontier = await audit.frontier_hashes(start)
    return Export(start, signed.size, bundle(audit, start, signed, frontier, now))


async def records(
    audit: AuditReader, fmt: ExportFormat, start: int, end: int
) -> AsyncIterator[bytes]:
    """Entries ``[start, end)`` in ``fmt``, one record a line, a page at a time."""
    for begin in range(start, end, PAGE):
        records = await audit.entry_range(begin, min(begin + PAGE, end))
        yield "".join(render(fmt, r.index, r.data) + "\n" for r in records).encode()


async def bundle(
    audit: AuditReader,
    start: int,
    signed: SignedCheckpoint,
    frontier: list[bytes],
    now: datetime,
) -> AsyncIterator[bytes]:
    """The zip of entries ``[start, signed.size)`` verified by ``signed``, on ``frontier``
    (the tree of ``start`` entries): entries.jsonl first, then the checkpoints (the range's
    key hand-overs are known by then), then start.json."""
    stream = ZipStream(now)
    handed_over: list[int] = []
    with stream.member(ENTRIES_FILE) as out:
        for begin in range(start, signed.size, PAGE):
            records = await audit.entry_range(begin, min(begin + PAGE, signed.size))
            handed_over += [r.index for r in find_rotations((r.index, r.data) for r in records)]
            out.write("".join(entry_line(r.index, r.data) + "\n" for r in records).encode())
            yield stream.drain()
    chain = await checkpoints(audit, signed, handed_over)
    with stream.member(CHECKPOINTS_FILE) as out:
        for cp in chain:
            out.write((checkpoint_line(cp.size, cp.note, cp.consistency) + "\n").encode())
    if start:
        with stream.member(START_FILE) as out:
            out.write(start_json(start, frontier))
    yield stream.drain()
    yield stream.close()


async def checkpoints(
    audit: AuditReader, signed: SignedCheckpoint, rotations: list[int]
) -> list[ExportedCheckpoint]:
    """The range's checkpoint and each hand-over checkpoint in it, each with the
    consistency proof from the one before (as ``sluis audit export --gateway`` takes them)."""
    notes = {signed.size: signed.note}
    for index in rotations:
        handover = await audit.checkpoint_at_least(index + 1)
        if handover is not None and handover.size <= signed.size:
            notes.setdefault(handover.size, handover.note)
    chain: list[ExportedCheckpoint] = []
    previous = 0
    for size in sorted(notes):
        proof: tuple[bytes, ...] = ()
        if previous:
            proof = (await audit.consistency_proof(previous, size)).hashes
        chain.append(ExportedCheckpoint(size, notes[size], proof))
        previous = size
    return chain
