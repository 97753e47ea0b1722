"""The SSRF guard: resolve a target and refuse private, loopback and link-local addresses.

A target whose addresses are all public passes. Any non-public address (private, loopback,
link-local, multicast, reserved, unspecified) passes only when it lies in a network the
dataset's configuration names exactly. An IPv6 address that carries an IPv4 address
(IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, NAT64 ``64:ff9b::/96`` and
``64:ff9b:1::/48``, 6to4 ``2002::/16``, Teredo ``2001::/32``) is judged by the IPv4
address it reaches, so ``64:ff9b::7f00:1`` is loopback. The connection is then made to the
vetted address, so a DNS answer that changes in between cannot redirect it.

``check_base_url`` refuses, at registration, an origin that is not plain ``http(s)://host``
or whose host is an IPv4 address in a non-canonical spelling (octal ``0177.0.0.1``, hex
``0x7f.1``, a bare number ``2130706433``, short ``127.1``): resolvers disagree on those.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable

import httpx

from connectors.errors import ConnectorConfigError, SourceUnavailable, TargetRefused

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052
NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215, local-use NAT64
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291 2.5.5.1 (deprecated)
_NUMERIC_HOST = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?", re.IGNORECASE)


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    """``["127.0.0.1/32", "10.1.0.0/16"]`` as networks (strict: host bits must be zero)."""
    try:
        return tuple(ipaddress.ip_network(t, strict=True) for t in texts)
    except ValueError as exc:
        raise ConnectorConfigError(f"allow_networks: {exc}") from exc


def check_base_url(text: str) -> httpx.URL:
    """The upstream origin as a URL, or ``ConnectorConfigError`` saying what is wrong."""
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConnectorConfigError(f"base_url is not a usable URL ({exc})") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ConnectorConfigError("base_url must be an http:// or https:// URL with a host")
    if url.userinfo:
        raise ConnectorConfigError("base_url must not carry credentials; use headers")
    if _NUMERIC_HOST.fullmatch(url.host) and not _canonical_ipv4(url.host):
        raise ConnectorConfigError(f"base_url host {url.host!r} is not a canonical IPv4 address")
    return url


def _canonical_ipv4(host: str) -> bool:
    try:
        return str(ipaddress.IPv4Address(host)) == host
    except ValueError:
        return False


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address reaches through a translation or tunnel prefix."""
    value = int(address)
    if address.teredo is not None:
        return address.teredo  # (server, client): both must pass
    single = address.ipv4_mapped or address.sixtofour
    if single is None and address in NAT64_WELL_KNOWN:
        single = _rfc6052(value, 96)
    if single is None and address in IPV4_COMPATIBLE and value > 1:  # :: and ::1 are themselves
        single = ipaddress.IPv4Address(value)
    if single is not None:
        return (single,)
    if address in NAT64_LOCAL:  # the operator picks the prefix length: every reading must pass
        return tuple(_rfc6052(value, length) for length in (48, 56, 64, 96))
    return ()


def _rfc6052(value: int, length: int) -> ipaddress.IPv4Address:
    """The IPv4 address after a NAT64 prefix of ``length`` bits (RFC 6052 section 2.2)."""
    if length == 96:  # noqa: PLR2004 (the /96 layout: the last 32 bits)
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    squeezed = (value >> 64) << 56 | (value & (1 << 56) - 1)  # drop bits 64-71 ("u")
    return ipaddress.IPv4Address(squeezed >> (120 - length - 32) & 0xFFFFFFFF)


def check_address(address: Address, allowed: tuple[Network, ...]) -> None:
    """Pass a public address or one inside ``allowed``; refuse anything else."""
    if _listed(address, allowed):
        return
    if isinstance(address, ipaddress.IPv6Address):
        carried = embedded_ipv4(address)
        if carried:
            for inner in carried:
                check_address(inner, allowed)
            return
    if not address.is_global or address.is_multicast:
        raise TargetRefused(
            f"{address} is not a public address and not allowed by the dataset",
            public="the upstream's address is not public and not allowed by the dataset",
        )


def _listed(address: Address, allowed: tuple[Network, ...]) -> bool:
    return any(address in net for net in allowed if net.version == address.version)


async def resolve(host: str, port: int, allowed: tuple[Network, ...]) -> Address:
    """The first address of ``host``, after every address it resolves to has been checked."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise SourceUnavailable(f"cannot resolve {host!r}") from exc
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise SourceUnavailable(f"{host!r} has no addresses")
    for address in addresses:
        check_address(address, allowed)
    return addresses[0]
