"""The provider's moves that run after the answer has left (FastAPI background tasks)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("sluis.dsp")


async def after_answer(work: Callable[..., Awaitable[object]], *args: Any, **kwargs: Any) -> None:
    """Run ``work`` after the answer left; a failure is logged, since nobody is waiting for
    it (the state stays where it was committed; the consumer can GET it)."""
    try:
        await work(*args, **kwargs)
    except Exception:  # every failure: the answer is sent, so it is logged, never raised
        log.exception("dsp: the provider's move after the answer failed")
