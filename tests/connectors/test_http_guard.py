"""The SSRF guard (``connectors.http_guard``) on its own: pure, no sockets but the resolver's
answer for a literal address.

Each refusal by its exact reason (for the provider's log) and public sentence (for the
consumer), every IPv6 form that carries an IPv4 address read to the address it carries,
each NAT64 prefix length of RFC 6052 at its own layout, and the networks a dataset allows.
"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from connectors import ConnectorConfigError
from connectors.errors import SourceUnavailable, TargetRefused
from connectors.http_guard import (
    check_address,
    check_base_url,
    embedded_ipv4,
    parse_networks,
    resolve,
)

V4 = ipaddress.IPv4Address
PUBLIC_REFUSAL = "the upstream's address is not public and not allowed by the dataset"


def _refusal(address: str, allowed: tuple[str, ...] = ()) -> TargetRefused:
    with pytest.raises(TargetRefused) as refused:
        check_address(ipaddress.ip_address(address), parse_networks(allowed))
    return refused.value


@pytest.mark.parametrize(
    ("address", "carried"),
    [
        ("::ffff:10.1.2.3", ("10.1.2.3",)),  # IPv4-mapped
        ("2002:a01:203::1", ("10.1.2.3",)),  # 6to4
        ("64:ff9b::a01:203", ("10.1.2.3",)),  # NAT64, well-known /96
        ("::a01:203", ("10.1.2.3",)),  # IPv4-compatible
        ("::2", ("0.0.0.2",)),  # the smallest IPv4-compatible address that is not :: or ::1
        ("::1", ()),  # loopback itself, not 0.0.0.1
        ("::", ()),  # unspecified itself
        ("2001:0:5db8:d822:0:f227:80ff:fffe", ("93.184.216.34", "127.0.0.1")),  # Teredo
        ("2001:db8::1", ()),
        ("64:ff9b:0:1::a01:203", ()),  # outside both NAT64 prefixes
    ],
)
def test_the_ipv4_address_each_ipv6_form_carries(address: str, carried: tuple[str, ...]) -> None:
    assert embedded_ipv4(ipaddress.IPv6Address(address)) == tuple(V4(a) for a in carried)


@pytest.mark.parametrize(
    ("address", "position"),
    [
        ("64:ff9b:1:a01:2:300::", 0),  # /48: 10.1 | u | 2.3
        ("64:ff9b:1:a:1:203::", 1),  # /56: 10 | u | 1.2.3
        ("64:ff9b:1:0:a:102:300:0", 2),  # /64: u | 10.1.2.3
        ("64:ff9b:1::a01:203", 3),  # /96: the last 32 bits
    ],
)
def test_each_local_use_nat64_layout_is_read(address: str, position: int) -> None:
    """RFC 8215's prefix has no fixed length: the readings at 48, 56, 64 and 96 bits."""
    readings = embedded_ipv4(ipaddress.IPv6Address(address))
    assert len(readings) == 4
    assert readings[position] == V4("10.1.2.3")


def test_the_u_octet_of_a_nat64_address_is_dropped_whatever_it_holds() -> None:
    """Bits 64-71 ("u") must be zero, but a reader that kept them would misread the address."""
    readings = embedded_ipv4(ipaddress.IPv6Address("64:ff9b:1:a01:ff02:300::"))
    assert readings[0] == V4("10.1.2.3")  # the /48 layout, u = 0xff
    readings = embedded_ipv4(ipaddress.IPv6Address("64:ff9b:1:a:ff01:203::"))
    assert readings[1] == V4("10.1.2.3")  # the /56 layout, u = 0xff


def test_a_refusal_says_which_address_and_tells_the_consumer_less() -> None:
    refused = _refusal("10.0.0.1")
    assert refused.reason == "10.0.0.1 is not a public address and not allowed by the dataset"
    assert refused.public_reason == PUBLIC_REFUSAL
    assert refused.code == "target_refused"
    inner = _refusal("64:ff9b::a00:1")
    assert inner.reason == "10.0.0.1 is not a public address and not allowed by the dataset"


@pytest.mark.parametrize("address", ["ff0e::1", "224.0.1.1", "::ffff:224.0.1.1"])
def test_global_multicast_is_refused(address: str) -> None:
    assert _refusal(address).public_reason == PUBLIC_REFUSAL


def test_teredo_needs_both_its_server_and_its_client_to_pass() -> None:
    # server 93.184.216.34 (public), client 127.0.0.1: refused for the client
    assert _refusal("2001:0:5db8:d822:0:f227:80ff:fffe").reason.startswith("127.0.0.1 ")
    # server 127.0.0.1, client 93.184.216.34: refused for the server
    assert _refusal("2001:0:7f00:1:0:f227:a247:27dd").reason.startswith("127.0.0.1 ")
    check_address(
        ipaddress.ip_address("2001:0:5db8:d822:0:f227:80ff:fffe"), parse_networks(["127.0.0.1/32"])
    )


def test_public_addresses_and_their_ipv6_forms_pass() -> None:
    for address in ("93.184.216.34", "2606:2800:220:1::1", "::ffff:93.184.216.34"):
        check_address(ipaddress.ip_address(address), ())


def test_an_allowed_network_lets_its_own_addresses_through_and_no_others() -> None:
    allowed = ("10.1.0.0/16", "fd00::/8")
    for address in ("10.1.2.3", "::ffff:10.1.2.3", "64:ff9b::a01:203", "fd00::1"):
        check_address(ipaddress.ip_address(address), parse_networks(allowed))
    for address in ("10.2.0.1", "fe80::1", "127.0.0.1"):
        _refusal(address, allowed)
    # an IPv6 network never admits the IPv4 address a NAT64 address carries, and back
    check_address(ipaddress.ip_address("64:ff9b::7f00:1"), parse_networks(["64:ff9b::/96"]))
    _refusal("127.0.0.1", ("::ffff:0:0/96",))


def test_networks_parse_strictly() -> None:
    assert parse_networks(["10.0.0.0/8", "::1/128"]) == (
        ipaddress.IPv4Network("10.0.0.0/8"),
        ipaddress.IPv6Network("::1/128"),
    )
    assert parse_networks([]) == ()
    with pytest.raises(ConnectorConfigError) as refused:
        parse_networks(["10.0.0.0/8", "10.0.0.1/8"])
    assert refused.value.reason == "allow_networks: 10.0.0.1/8 has host bits set"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[::1", "base_url is not a usable URL (Invalid port: ':1')"),
        ("not a url", "base_url must be an http:// or https:// URL with a host"),
        ("ftp://example.com", "base_url must be an http:// or https:// URL with a host"),
        ("http://", "base_url must be an http:// or https:// URL with a host"),
        ("https://user:pw@example.com", "base_url must not carry credentials; use headers"),
        ("http://user@example.com", "base_url must not carry credentials; use headers"),
        ("http://0177.0.0.1", "base_url is not a usable URL (Invalid IPv4 address: '0177.0.0.1')"),
        ("http://127.1", "base_url host '127.1' is not a canonical IPv4 address"),
        ("http://0x7F.1", "base_url host '0x7f.1' is not a canonical IPv4 address"),
        ("http://2130706433", "base_url host '2130706433' is not a canonical IPv4 address"),
        ("http://127.0.0.1.", "base_url host '127.0.0.1.' is not a canonical IPv4 address"),
    ],
)
def test_each_unusable_base_url_says_why(url: str, reason: str) -> None:
    with pytest.raises(ConnectorConfigError) as refused:
        check_base_url(url)
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1", "https://example.com:8443", "http://10.0.0.1:8080", "http://a1.example"],
)
def test_usable_base_urls_pass_as_they_are(url: str) -> None:
    assert str(check_base_url(url)).rstrip("/") == url


def test_resolve_checks_the_address_it_returns() -> None:
    loopback = ipaddress.IPv4Network("127.0.0.0/8")
    assert asyncio.run(resolve("127.0.0.1", 80, (loopback,))) == V4("127.0.0.1")
    with pytest.raises(TargetRefused):
        asyncio.run(resolve("127.0.0.1", 80, ()))
    assert asyncio.run(resolve("93.184.216.34", 443, ())) == V4("93.184.216.34")


def test_a_name_that_does_not_resolve_is_unavailable() -> None:
    """``.invalid`` never resolves (RFC 6761): the resolver answers at once."""
    with pytest.raises(SourceUnavailable) as missing:
        asyncio.run(resolve("sluis-no-such-host.invalid", 80, ()))
    assert missing.value.reason == "cannot resolve 'sluis-no-such-host.invalid'"
