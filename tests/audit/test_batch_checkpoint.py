"""One signed checkpoint per batch, stored by the writer in the batch's own transaction.

The writer knows the size and root the batch grows the tree to, so it signs them once and
commits the note with the entries: every receipt is covered by a stored checkpoint of its
batch's size, without a signature or an insert per request (issue 10).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.audit.checkpoint import verify_checkpoint
from gateway.audit.merkle import verify_inclusion
from tests.audit.logs import ORIGIN, SIGNER, opened, sample
from tests.support.databases import database_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as value:
        yield value


def test_every_batch_commits_its_own_checkpoint(url: str) -> None:
    async def run() -> None:
        async with opened(url, checkpoint_delay=3600) as log:  # no background signing
            receipts = await asyncio.gather(*(log.append(sample(n)) for n in range(64)))
            batches = {r.tree_size: r.root_hash for r in receipts}
            stored = {c.size: c for c in await log.checkpoints()}
            assert set(stored) == set(batches)  # one per batch, none per request
            for receipt in receipts:
                signed = stored[receipt.tree_size]
                checkpoint = verify_checkpoint(signed.note, [SIGNER.verifier()], ORIGIN)
                assert checkpoint.root_hash == receipt.root_hash
                proof = await log.inclusion_proof(receipt.index, checkpoint.size)
                verify_inclusion(
                    receipt.leaf_hash, receipt.index, checkpoint.size, proof.hashes,
                    checkpoint.root_hash,
                )  # fmt: skip
                assert (await log.checkpoint_for(receipt)).size >= receipt.tree_size

    asyncio.run(run())
