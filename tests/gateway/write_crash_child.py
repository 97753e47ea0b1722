"""Child process for the write-path kill test: exchanges on every dataset, forever.

Run as ``python -m tests.gateway.write_crash_child <database url>`` on a world set up by
``tests.support.exchange_world``; prints ``ok`` per finished request; the test SIGKILLs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from gateway.errors import Forbidden
from tests.support.exchange_world import DATASETS, replicas

OWNER = "crash-child"
WORKERS = 4  # per dataset


async def main(url: str) -> None:
    async with replicas(url, 1, owner=OWNER, fresh=False) as (replica,):

        async def worker(dataset: str) -> None:
            while True:
                with contextlib.suppress(Forbidden):  # the limited dataset runs out
                    await replica.query(dataset)
                sys.stdout.write("ok\n")
                sys.stdout.flush()

        await asyncio.gather(*(worker(d) for d in DATASETS for _ in range(WORKERS)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
