"""Issue 18: an export range read from the log a page at a time (``gateway.audit.streams``).

On SQLite, with the page made small: the range's bounds exactly (an empty range, one past
the log), each refusal's sentence, a bundle's end on the smallest checkpoint covering it,
the checkpoints it carries (the first without a consistency proof, each next with the proof
from the one before), and a hand-over found on an early page kept to the end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.audit import streams
from gateway.audit.bundle import read_bundle
from gateway.audit.identity import establish
from gateway.audit.log import AuditLog
from gateway.audit.rotation import rotate_key
from gateway.audit.streams import RangeError, open_export
from gateway.audit.verify import ExportedCheckpoint
from gateway.storage.db import Database
from tests.audit.logs import NOW, ORIGIN, SIGNER, opened, sample
from tests.audit.test_handover import CONFIGURED, NEW, _grow


def _url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"


async def _chunks(body: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in body]


async def _filled(log: AuditLog) -> None:
    """7 entries: checkpoints of 1 and 5 entries, the last 2 not signed."""
    await log.append(sample(0))
    await log.checkpoint_now()
    for n in range(1, 5):
        await log.append(sample(n))
    await log.checkpoint_now()
    for n in range(5, 7):
        await log.append(sample(n))
    await log.settled()


async def _refused(log: AuditLog, fmt: streams.AnyFormat, start: int, end: int | None) -> str:
    with pytest.raises(RangeError) as caught:
        await open_export(log, fmt, start, end, now=NOW)
    return f"{caught.value.code}: {caught.value.detail}"


def test_a_range_s_bounds_and_its_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams, "PAGE", 2)

    async def scenario() -> None:
        async with opened(_url(tmp_path), sign_batches=False) as log:
            await _filled(log)
            empty = await open_export(log, "jsonl", 7, None, now=NOW)
            assert (empty.start, empty.end, await _chunks(empty.body)) == (7, 7, [])
            outside = "range-out-of-range: the log holds 7 entries: give 0 <= start <= end <= 7"
            assert await _refused(log, "jsonl", 8, None) == outside
            assert await _refused(log, "jsonl", -1, 3) == outside
            assert await _refused(log, "jsonl", 4, 3) == outside
            assert await _refused(log, "jsonl", 0, 8) == outside
            assert await _refused(log, "bundle", 2, 8) == outside
            some = await open_export(log, "jsonl", 1, 6, now=NOW)
            assert (some.start, some.end) == (1, 6)
            pages = [
                [json.loads(line)["index"] for line in chunk.decode().splitlines()]
                for chunk in await _chunks(some.body)
            ]
            assert pages == [[1, 2], [3, 4], [5]]

    asyncio.run(scenario())


def test_a_bundle_ends_on_the_smallest_checkpoint_covering_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with opened(_url(tmp_path), sign_batches=False) as log:
            await _filled(log)
            for start, end, signed in ((0, 0, 1), (0, 1, 1), (1, 2, 5), (0, 5, 5)):
                export = await open_export(log, "bundle", start, end, now=NOW)
                assert (export.start, export.end) == (start, signed), (start, end)
            assert await _refused(log, "bundle", 0, 6) == (
                "range-not-signed: no signed checkpoint covers entry 5 yet: "
                "try again in a few seconds"
            )
            assert await _refused(log, "bundle", 7, None) == (
                "range-not-signed: no signed checkpoint covers entry 6 yet: "
                "try again in a few seconds"
            )

    asyncio.run(scenario())


def test_the_checkpoints_a_bundle_carries(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with opened(_url(tmp_path), sign_batches=False) as log:
            await _filled(log)
            first = await log.checkpoint_at_least(1)
            last = await log.checkpoint_at_least(5)
            assert first is not None
            assert last is not None
            assert (first.size, last.size) == (1, 5)
            alone = await streams.checkpoints(log, last, [])
            assert alone == [ExportedCheckpoint(5, last.note, ())]
            proof = (await log.consistency_proof(1, 5)).hashes
            assert proof
            chain = await streams.checkpoints(log, last, [0])
            assert chain == [
                ExportedCheckpoint(1, first.note, ()),
                ExportedCheckpoint(5, last.note, proof),
            ]
            # A rotation whose checkpoint is the range's own adds nothing.
            assert await streams.checkpoints(log, last, [3]) == alone

    asyncio.run(scenario())


def test_a_hand_over_on_an_early_page_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams, "PAGE", 2)

    async def scenario() -> bytes:
        db = Database(_url(tmp_path))
        await db.upgrade()
        try:
            identity = await establish(db, CONFIGURED, now=NOW)
            await _grow(db, SIGNER, 5)
            await rotate_key(db, identity, SIGNER, NEW, now=NOW)  # entry 5, signed at 6
            await _grow(db, NEW, 3)  # 9 entries: pages [0, 1] ... [8], the rotation in [4, 5]
            reader = AuditLog(db, NEW, ORIGIN, checkpoint_delay=3600)
            try:
                export = await open_export(reader, "bundle", 0, None, now=NOW)
                return b"".join(await _chunks(export.body))
            finally:
                await reader.close()
        finally:
            await db.dispose()

    entries, checkpoints, start = read_bundle(asyncio.run(scenario()))
    assert start is None
    assert [json.loads(line)["index"] for line in entries] == list(range(9))
    assert [json.loads(line)["size"] for line in checkpoints] == [6, 9]


def test_a_stored_record_reads_back_as_the_typed_entry_appended(tmp_path: Path) -> None:
    """``AuditRecord.entry`` decodes the stored bytes into the very entry appended."""

    async def scenario() -> None:
        async with opened(_url(tmp_path)) as log:
            await _filled(log)
            records = await log.entry_range(2, 4)
        assert [record.index for record in records] == [2, 3]
        assert [record.entry for record in records] == [sample(2), sample(3)]

    asyncio.run(scenario())
