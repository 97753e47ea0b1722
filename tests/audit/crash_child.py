"""Child process for the kill test: appends forever, printing each acknowledged receipt.

Run as ``python -m tests.audit.crash_child <database url>``; the test SIGKILLs it.
"""

from __future__ import annotations

import asyncio
import sys

from tests.audit.logs import opened, sample


async def main(url: str) -> None:
    async with opened(url, checkpoint_delay=0.05) as log:
        n = 0
        while True:
            receipts = await asyncio.gather(*(log.append(sample(n + i)) for i in range(25)))
            n += 25
            for r in receipts:
                sys.stdout.write(f"{r.index} {r.leaf_hash.hex()}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
