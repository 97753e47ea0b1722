"""The limits one connection guard enforces, and the count of open connections. Pure: no IO.

Used by :mod:`gateway.http.guard`; see there (and docs/deployment.md) for what they mean.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass
from enum import Enum

from gateway.http.head_meter import HeadLimits
from gateway.settings import IPNetwork, Settings


@dataclass(frozen=True)
class ConnectionLimits:
    """Everything the guard enforces, read once from the settings."""

    head: HeadLimits
    header_timeout: float
    body_timeout: float
    idle_timeout: float
    send_timeout: float
    max_connections: int
    max_connections_per_source: int
    unlimited_sources: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        """The limits ``settings`` configure; trusted proxies have no per-source cap."""
        return cls(
            head=HeadLimits(
                max_request_line=settings.http_max_request_line,
                max_head_bytes=settings.http_max_header_bytes,
                max_headers=settings.http_max_headers,
            ),
            header_timeout=settings.http_header_timeout,
            body_timeout=settings.http_body_timeout,
            idle_timeout=settings.http_idle_timeout,
            send_timeout=settings.http_send_timeout,
            max_connections=settings.http_max_connections,
            max_connections_per_source=settings.http_max_connections_per_source,
            unlimited_sources=tuple(settings.trusted_proxies),
        )


class Admission(Enum):
    """What becomes of a connection counted at accept time (before its TLS handshake)."""

    ADMITTED = "admitted"  # counted; served once its handshake is done
    REFUSED = "refused"  # over a cap: handshake, then 503 and close (at most MAX_REFUSING)
    DROPPED = "dropped"  # over a cap and too many refusals under way: closed at once


#: Connections over a cap that may be in their handshake at once to be told 503; beyond,
#: connections over a cap are closed before any TLS work is done.
MAX_REFUSING = 16


class ConnectionCounter:
    """Open connections of one server, in total and per peer address; with TLS, counted from
    the moment they are accepted (so connections still in the handshake count too)."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.total = 0
        self.per_source: Counter[str] = Counter()
        self.refusing = 0

    def accept(self, source: str | None) -> Admission:
        """Count a connection just accepted: admitted, refused (a 503 to come) or dropped."""
        if self.admit(source):
            return Admission.ADMITTED
        if self.refusing < MAX_REFUSING:
            self.refusing += 1
            return Admission.REFUSED
        return Admission.DROPPED

    def forget(self, admission: Admission, source: str | None) -> None:
        """Stop counting a connection :meth:`accept` counted."""
        if admission is Admission.ADMITTED:
            self.release(source)
        elif admission is Admission.REFUSED:
            self.refusing -= 1

    def admit(self, source: str | None) -> bool:
        """Count a new connection from ``source``; False (and not counted) if over a cap."""
        if self.total >= self.limits.max_connections:
            return False
        if source is not None and self._capped(source):
            if self.per_source[source] >= self.limits.max_connections_per_source:
                return False
            self.per_source[source] += 1
        self.total += 1
        return True

    def release(self, source: str | None) -> None:
        """Forget a connection :meth:`admit` counted."""
        self.total -= 1
        if source is not None and self._capped(source):
            self.per_source[source] -= 1
            if self.per_source[source] <= 0:
                del self.per_source[source]

    def _capped(self, source: str) -> bool:
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return True
        return not any(address in network for network in self.limits.unlimited_sources)
