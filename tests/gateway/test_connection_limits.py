"""The connection counter: total and per-address caps, trusted proxies exempt from the latter."""

from __future__ import annotations

import ipaddress

from gateway.http.connection_limits import (
    MAX_REFUSING,
    Admission,
    ConnectionCounter,
    ConnectionLimits,
)
from gateway.http.head_meter import HeadLimits


def _counter(total: int, per_source: int, *proxies: str) -> ConnectionCounter:
    limits = ConnectionLimits(
        head=HeadLimits(max_request_line=8192, max_head_bytes=32768, max_headers=100),
        header_timeout=10,
        body_timeout=30,
        idle_timeout=5,
        send_timeout=30,
        max_connections=total,
        max_connections_per_source=per_source,
        unlimited_sources=tuple(ipaddress.ip_network(p) for p in proxies),
    )
    return ConnectionCounter(limits)


def test_per_source_cap_and_release() -> None:
    counter = _counter(10, 2)
    assert counter.admit("192.0.2.1")
    assert counter.admit("192.0.2.1")
    assert not counter.admit("192.0.2.1")
    assert counter.admit("192.0.2.2")  # another address has its own allowance
    counter.release("192.0.2.1")
    assert counter.admit("192.0.2.1")
    assert counter.total == 3


def test_total_cap_counts_everyone() -> None:
    counter = _counter(2, 2, "10.0.0.0/8")
    assert counter.admit("192.0.2.1")
    assert counter.admit("10.0.0.7")
    assert not counter.admit("192.0.2.9")
    assert not counter.admit("10.0.0.7")  # proxies are not exempt from the total


def test_trusted_proxies_have_no_per_source_cap() -> None:
    counter = _counter(100, 1, "10.0.0.0/8")
    assert all(counter.admit("10.0.0.7") for _ in range(5))
    assert counter.per_source == {}
    for _ in range(5):
        counter.release("10.0.0.7")
    assert counter.total == 0


def test_a_refused_connection_is_not_counted() -> None:
    counter = _counter(10, 1)
    assert counter.admit("192.0.2.1")
    assert not counter.admit("192.0.2.1")
    counter.release("192.0.2.1")
    assert counter.total == 0
    assert counter.per_source == {}


def test_over_the_cap_a_few_are_refused_with_503_then_dropped() -> None:
    counter = _counter(10, 1)
    assert counter.accept("192.0.2.1") is Admission.ADMITTED
    refused = [counter.accept("192.0.2.1") for _ in range(MAX_REFUSING)]
    assert refused == [Admission.REFUSED] * MAX_REFUSING
    assert counter.accept("192.0.2.1") is Admission.DROPPED
    counter.forget(Admission.REFUSED, "192.0.2.1")  # one refusal written: room for another
    assert counter.accept("192.0.2.1") is Admission.REFUSED
    counter.forget(Admission.ADMITTED, "192.0.2.1")
    assert counter.accept("192.0.2.1") is Admission.ADMITTED
    assert (counter.total, counter.refusing) == (1, MAX_REFUSING)
