"""The gateway's limits: refusal sampling and summaries, token-endpoint rate limits.

Built once in the app's lifespan (:func:`build_limits`), reached as
``app.state.services.limits``. The clock is injected; the only task it runs writes the
summaries of closed windows (every ``FLUSH_EVERY`` seconds at most), and :meth:`close`
writes whatever is still open before the process stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from gateway.audit.entry import Actor, AuditEntry, DecisionRecord
from gateway.audit.errors import EntryError
from gateway.audit.log import AuditLog
from gateway.ratelimit.counters import (
    Counters,
    DatabaseCounters,
    MemoryCounters,
    RedisCounters,
)
from gateway.ratelimit.limiter import RateLimiter
from gateway.ratelimit.refusals import RefusalSampler, Summary
from gateway.ratelimit.window import Verdict
from gateway.settings import Settings
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database

log = logging.getLogger("sluis.ratelimit")

Clock = Callable[[], datetime]
FLUSH_EVERY = 5.0  # seconds between looks for closed windows
UNKNOWN_SOURCE = "unknown"
IPV6_PREFIX = 64  # one IPv6 host or site: counted as one source


def _utcnow() -> datetime:
    return datetime.now(UTC)


def source_key(source: str | None) -> str:
    """What limits count a source address as: itself, or for IPv6 its /64.

    One IPv6 host commonly holds a whole /64, so counting single addresses would let it
    spread its refusals over 2**64 counters and its entries over as many summaries.
    """
    if source is None:
        return UNKNOWN_SOURCE
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        return source
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


def counters_for(settings: Settings, db: Database) -> Counters:
    """The backend ``settings.rate_limit_backend`` names."""
    if settings.rate_limit_backend == "redis":
        assert settings.redis_url is not None  # noqa: S101 - the settings validator says so
        return RedisCounters(settings.redis_url)
    if settings.rate_limit_backend == "memory":
        return MemoryCounters()
    return DatabaseCounters(db)


class Limits:
    """See the module docstring."""

    def __init__(
        self, counters: Counters, settings: Settings, audit: AuditLog, clock: Clock = _utcnow
    ) -> None:
        seconds = settings.rate_limit_window
        self.counters = counters
        self.audit = audit
        self.clock = clock
        self.refusals = RefusalSampler(
            counters,
            seconds=seconds,
            entries=settings.refusal_entries_per_window,
            block_after=settings.refusal_limit_per_window,
        )
        self.tokens = RateLimiter(
            counters, name="token", limit=settings.token_requests_per_window, seconds=seconds
        )
        self.trusted_proxies = tuple(settings.trusted_proxies)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start writing the summaries of closed windows in the background."""
        self._task = asyncio.create_task(self._flush_loop(), name="sluis-refusal-summaries")

    async def close(self) -> None:
        """Stop the task, write every open summary, release the backend."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._write(self.refusals.pending())
        await self.counters.aclose()

    async def admit_refusal(
        self, source: str | None, event: str, participant: str | None = None
    ) -> bool:
        """Whether this refusal is written as its own entry (else it is summarised)."""
        now = self.clock()
        await self._write(self.refusals.due(now))
        return await self.refusals.admit(source_key(source), event, now, participant=participant)

    def blocked(self, source: str | None) -> int | None:
        """Retry-After seconds for a throttled source (tallied as ``rate-limited``), or None.

        A trusted proxy is never throttled: every client behind it shares its address, and
        one of them must not be able to shut all the others out.
        """
        if self.is_trusted_proxy(source):
            return None
        return self._throttled(f"source:{source_key(source)}", source)

    def participant_blocked(self, participant: str, source: str | None) -> int | None:
        """Retry-After seconds for a throttled participant (tallied under ``source``), or None."""
        return self._throttled(f"participant:{participant}", source)

    def _throttled(self, key: str, source: str | None) -> int | None:
        now = self.clock()
        retry_after = self.refusals.blocked(key, now)
        if retry_after is not None:
            self.refusals.tally(source_key(source), "rate-limited", now)
        return retry_after

    async def token_request(self, client: str, source: str | None) -> Verdict:
        """One token request by ``client`` from ``source``; StorageUnavailable if uncountable.

        Behind a trusted proxy only the per-client limit applies (the address is the proxy's).
        """
        keys: tuple[str, ...] = (f"client:{client}",)
        if not self.is_trusted_proxy(source):
            keys += (f"source:{source_key(source)}",)
        return await self.tokens.hit_all(keys, self.clock())

    def is_trusted_proxy(self, source: str | None) -> bool:
        """Whether ``source`` is inside ``trusted_proxies``."""
        if not self.trusted_proxies or source is None:
            return False
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return False
        return any(address in network for network in self.trusted_proxies)

    async def flush(self) -> None:
        """Write the summaries of every window closed by now."""
        await self._write(self.refusals.due(self.clock()))

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(min(FLUSH_EVERY, self.refusals.seconds))
            await self.flush()

    async def _write(self, summaries: list[Summary]) -> None:
        for summary in summaries:
            try:
                await self.audit.append(summary_entry(summary, self.clock()))
            except (StorageUnavailable, EntryError):
                log.critical("refusal summary NOT in the audit log: %s", summary.sentence())


class RateLimited(Exception):
    """The caller is throttled; the HTTP layer answers 429 with ``Retry-After``."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited for {retry_after} s")
        self.retry_after = retry_after


def summary_entry(summary: Summary, now: datetime) -> AuditEntry:
    """The ``refusals-summarised`` entry for ``summary``."""
    reasons = (
        summary.sentence(),
        f"count={summary.total}",
        f"interval={summary.window.label()}",
        *(f"{event}={count}" for event, count in summary.counts.items()),
    )
    source = None if summary.source == UNKNOWN_SOURCE else summary.source
    return AuditEntry(
        time=now,
        event="refusals-summarised",
        actor=Actor(source=source),
        decision=DecisionRecord(result="deny", reasons=reasons),
    )
