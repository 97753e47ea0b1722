"""Fixed windows, limits and refusal sampling, with the clock passed in (no IO)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from gateway.ratelimit.counters import MemoryCounters
from gateway.ratelimit.limiter import RateLimiter
from gateway.ratelimit.refusals import RefusalSampler
from gateway.ratelimit.service import Limits, source_key, summary_entry
from gateway.ratelimit.window import Window, window_at
from gateway.settings import Settings

T0 = datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)


def test_windows_are_fixed_and_aligned() -> None:
    window = window_at(T0 + timedelta(seconds=59.9), 60)
    assert window == Window(int(T0.timestamp()), 60)
    assert window_at(T0 + timedelta(seconds=60), 60).start == window.end
    assert window.retry_after(T0 + timedelta(seconds=10)) == 50
    assert window.retry_after(T0 + timedelta(seconds=59.9)) == 1
    assert window.label() == "2026-12-02T10:00:00Z/2026-12-02T10:01:00Z"
    with pytest.raises(ValueError, match="at least one second"):
        window_at(T0, 0)


def test_a_limit_counts_per_key_and_window() -> None:
    async def run() -> None:
        limiter = RateLimiter(MemoryCounters(), name="token", limit=2, seconds=60)
        verdicts = [await limiter.hit("a", T0 + timedelta(seconds=i)) for i in range(3)]
        assert [v.allowed for v in verdicts] == [True, True, False]
        assert verdicts[2].retry_after == 58
        assert (await limiter.hit("b", T0)).allowed  # another key
        assert (await limiter.hit("a", T0 + timedelta(seconds=60))).allowed  # next window
        both = await limiter.hit_all(("a", "c"), T0 + timedelta(seconds=61))
        assert both.allowed
        third = await limiter.hit_all(("c", "a"), T0 + timedelta(seconds=62))
        assert not third.allowed  # "a" is at its third hit in this window

    asyncio.run(run())


def test_refusals_past_the_quota_are_summarised_and_throttled() -> None:
    async def run() -> None:
        sampler = RefusalSampler(MemoryCounters(), seconds=60, entries=2, block_after=4)
        now = T0 + timedelta(seconds=5)
        admitted = [await sampler.admit("192.0.2.1", "certificate-refused", now) for _ in range(5)]
        assert admitted == [True, True, False, False, False]
        assert await sampler.admit("192.0.2.2", "token-refused", now)  # sources apart
        assert sampler.blocked("source:192.0.2.1", now) == 55
        assert sampler.blocked("source:192.0.2.2", now) is None
        sampler.tally("192.0.2.1", "rate-limited", now)
        assert sampler.due(T0 + timedelta(seconds=59)) == []  # the window is still open
        later = T0 + timedelta(seconds=60)
        assert sampler.blocked("source:192.0.2.1", later) is None
        (summary,) = sampler.due(later)
        assert summary.source == "192.0.2.1"
        assert summary.counts == {"certificate-refused": 3, "rate-limited": 1}
        assert summary.sentence() == (
            "4 further refusals from source 192.0.2.1 in interval "
            "2026-12-02T10:00:00Z/2026-12-02T10:01:00Z"
        )
        assert sampler.due(later) == []  # written once
        assert await sampler.admit("192.0.2.1", "certificate-refused", later)  # a new window

    asyncio.run(run())


def test_pending_summaries_are_written_at_shutdown() -> None:
    async def run() -> None:
        sampler = RefusalSampler(MemoryCounters(), seconds=60, entries=1, block_after=100)
        for _ in range(3):
            await sampler.admit("198.51.100.7", "token-refused", T0)
        (summary,) = sampler.pending()
        assert summary.total == 2
        entry = summary_entry(summary, T0)
        assert entry.event == "refusals-summarised"
        assert entry.actor.source == "198.51.100.7"
        assert entry.decision is not None
        assert entry.decision.reasons[:2] == (summary.sentence(), "count=2")
        assert sampler.pending() == []

    asyncio.run(run())


def test_a_trusted_proxy_is_never_throttled_and_shares_no_token_limit() -> None:
    settings = Settings(
        trusted_proxies=["10.0.0.0/8"],
        refusal_entries_per_window=1,
        refusal_limit_per_window=1,
        token_requests_per_window=1,
    )

    async def run() -> None:
        limits = Limits(MemoryCounters(), settings, audit=None, clock=lambda: T0)  # type: ignore[arg-type]  # no entry is written here
        for source in ("10.1.2.3", "192.0.2.1"):
            for _ in range(3):
                await limits.admit_refusal(source, "certificate-refused")
        assert limits.blocked("10.1.2.3") is None  # the proxy: every client behind it
        assert limits.blocked("192.0.2.1") == 60
        assert (await limits.token_request("A", "10.1.2.3")).allowed
        assert (await limits.token_request("B", "10.1.2.3")).allowed  # no shared source limit
        assert not (await limits.token_request("A", "10.1.2.3")).allowed  # per client still
        assert (await limits.token_request("C", "192.0.2.9")).allowed
        assert not (await limits.token_request("D", "192.0.2.9")).allowed  # per source

    asyncio.run(run())


def test_a_participant_is_throttled_wherever_it_comes_from() -> None:
    settings = Settings(refusal_entries_per_window=1, refusal_limit_per_window=2)

    async def run() -> None:
        limits = Limits(MemoryCounters(), settings, audit=None, clock=lambda: T0)  # type: ignore[arg-type]  # no entry is written here
        for i in range(3):  # three addresses, one participant
            await limits.admit_refusal(f"192.0.2.{i}", "token-refused", "NTRNL-40000001")
        assert limits.participant_blocked("NTRNL-40000001", "192.0.2.9") == 60
        assert limits.participant_blocked("NTRNL-40000002", "192.0.2.9") is None
        assert all(limits.blocked(f"192.0.2.{i}") is None for i in range(3))
        (summary,) = limits.refusals.pending()
        assert summary.source == "192.0.2.9"
        assert summary.counts == {"rate-limited": 1}  # the 429 is tallied where it came from

    asyncio.run(run())


@pytest.mark.parametrize(
    ("source", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        (None, "unknown"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_an_ipv6_host_counts_as_its_64(source: str | None, key: str) -> None:
    assert source_key(source) == key


def test_addresses_in_one_ipv6_64_share_one_limit() -> None:
    settings = Settings(refusal_entries_per_window=1, refusal_limit_per_window=2)

    async def run() -> None:
        limits = Limits(MemoryCounters(), settings, audit=None, clock=lambda: T0)  # type: ignore[arg-type]  # no entry is written here
        admitted = [
            await limits.admit_refusal(f"2001:db8::{i:x}", "certificate-refused") for i in range(3)
        ]
        assert admitted == [True, False, False]
        assert limits.blocked("2001:db8::ffff") == 60

    asyncio.run(run())
