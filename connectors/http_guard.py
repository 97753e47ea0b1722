"""The SSRF guard: resolve a target and refuse private, loopback and link-local addresses.

A target whose addresses are all public passes. Any non-public address (private, loopback,
link-local, multicast, reserved, unspecified, IPv4-mapped forms of those) passes only when
it lies in a network the dataset's configuration names exactly. The connection is then made
to the vetted address, so a DNS answer that changes in between cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

from connectors.errors import SourceUnavailable, TargetRefused

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    """``["127.0.0.1/32", "10.1.0.0/16"]`` as networks (strict: host bits must be zero)."""
    return tuple(ipaddress.ip_network(t, strict=True) for t in texts)


def check_address(address: Address, allowed: tuple[Network, ...]) -> None:
    """Pass a public address or one inside ``allowed``; refuse anything else."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in net for net in allowed if net.version == address.version):
        return
    if not address.is_global or address.is_multicast:
        raise TargetRefused(f"{address} is not a public address and not allowed by the dataset")


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
