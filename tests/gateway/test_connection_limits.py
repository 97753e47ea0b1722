"""The connection counter: total and per-address caps, trusted proxies exempt from the latter."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from gateway.http.connection_limits import (
    MAX_REFUSING,
    Admission,
    ConnectionCounter,
    ConnectionLimits,
)
from gateway.http.head_meter import HeadLimits
from gateway.settings import Settings


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


def test_each_cap_exactly_at_its_limit() -> None:
    counter = _counter(3, 2)
    assert [counter.admit("192.0.2.1") for _ in range(3)] == [True, True, False]
    assert counter.per_source == {"192.0.2.1": 2}
    assert counter.admit("192.0.2.2")  # the third in all: at the total cap
    assert not counter.admit("192.0.2.3")
    assert (counter.total, counter.per_source) == (3, {"192.0.2.1": 2, "192.0.2.2": 1})


def test_a_connection_without_an_address_counts_only_in_the_total() -> None:
    counter = _counter(2, 1)
    assert counter.admit(None)
    assert counter.admit(None)  # no per-source cap without a source
    assert not counter.admit(None)  # the total still binds
    assert counter.per_source == {}
    counter.release(None)
    assert (counter.total, counter.per_source) == (1, {})


def test_a_source_that_is_not_an_address_is_capped() -> None:
    counter = _counter(10, 1, "0.0.0.0/0", "::/0")  # every address exempt, not this one
    assert counter.admit("unix:/run/sluis.sock")
    assert not counter.admit("unix:/run/sluis.sock")
    assert counter.admit("192.0.2.1")
    assert counter.admit("192.0.2.1")


def test_an_ipv6_proxy_is_exempt_only_inside_its_network() -> None:
    counter = _counter(10, 1, "2001:db8::/64")
    assert counter.admit("2001:db8::1")
    assert counter.admit("2001:db8::1")
    assert counter.admit("2001:db8:0:1::1")
    assert not counter.admit("2001:db8:0:1::1")
    assert counter.per_source == {"2001:db8:0:1::1": 1}


def test_release_forgets_a_source_at_zero_only() -> None:
    counter = _counter(10, 3)
    counter.admit("192.0.2.1")
    counter.admit("192.0.2.1")
    counter.release("192.0.2.1")
    assert counter.per_source == {"192.0.2.1": 1}
    counter.release("192.0.2.1")
    assert counter.per_source == {}
    assert counter.total == 0


def test_forgetting_a_dropped_connection_changes_nothing() -> None:
    counter = _counter(1, 1)
    assert counter.accept("192.0.2.1") is Admission.ADMITTED
    assert counter.accept("192.0.2.1") is Admission.REFUSED
    counter.forget(Admission.DROPPED, "192.0.2.1")
    assert (counter.total, counter.refusing, counter.per_source) == (1, 1, {"192.0.2.1": 1})
    counter.forget(Admission.REFUSED, "192.0.2.1")
    assert (counter.total, counter.refusing) == (1, 0)
    counter.forget(Admission.ADMITTED, "192.0.2.1")
    assert (counter.total, counter.refusing, counter.per_source) == (0, 0, {})


def test_the_refusals_under_way_are_capped_exactly() -> None:
    counter = _counter(1, 1)
    counter.accept("192.0.2.1")
    for _ in range(MAX_REFUSING):
        assert counter.accept("192.0.2.9") is Admission.REFUSED  # over the total cap
    assert counter.refusing == MAX_REFUSING
    assert counter.accept("192.0.2.9") is Admission.DROPPED
    assert counter.refusing == MAX_REFUSING
    assert MAX_REFUSING == 16


def test_the_limits_come_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        http_max_request_line=1001,
        http_max_header_bytes=20002,
        http_max_headers=33,
        http_header_timeout=4.5,
        http_body_timeout=5.5,
        http_idle_timeout=6.5,
        http_send_timeout=7.5,
        http_max_connections=88,
        http_max_connections_per_source=9,
        trusted_proxies=["10.0.0.0/8"],
    )
    assert ConnectionLimits.from_settings(settings) == ConnectionLimits(
        head=HeadLimits(max_request_line=1001, max_head_bytes=20002, max_headers=33),
        header_timeout=4.5,
        body_timeout=5.5,
        idle_timeout=6.5,
        send_timeout=7.5,
        max_connections=88,
        max_connections_per_source=9,
        unlimited_sources=(ipaddress.ip_network("10.0.0.0/8"),),
    )
