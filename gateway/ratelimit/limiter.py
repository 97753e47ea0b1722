"""A fixed-window rate limit over a counter backend (the token endpoint uses two)."""

from __future__ import annotations

from datetime import datetime

from gateway.ratelimit.counters import Counters
from gateway.ratelimit.window import Verdict, verdict, window_at


class RateLimiter:
    """At most ``limit`` hits per key and window of ``seconds``."""

    def __init__(self, counters: Counters, *, name: str, limit: int, seconds: int) -> None:
        self.counters = counters
        self.name = name
        self.limit = limit
        self.seconds = seconds

    async def hit(self, key: str, now: datetime) -> Verdict:
        """Count one hit for ``key``; StorageUnavailable if the backend cannot be reached."""
        window = window_at(now, self.seconds)
        count = await self.counters.hit(f"{self.name}:{key}", window)
        return verdict(count, self.limit, window, now)

    async def hit_all(self, keys: tuple[str, ...], now: datetime) -> Verdict:
        """Count one hit for each of ``keys``; refused if any of them is over the limit."""
        verdicts = [await self.hit(key, now) for key in keys]
        refused = [v for v in verdicts if not v.allowed]
        return max(refused, key=lambda v: v.retry_after) if refused else verdicts[0]
