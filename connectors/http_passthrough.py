"""Pass-through mode: allowed methods and paths proxied as they are, JSON fields narrowed.

Only a request whose method and path match an allowed route reaches the upstream; a route
is a path template whose ``{name}`` segments match one safe segment
(``[A-Za-z0-9_.~-]+``). The response must be JSON: top-level object keys, or the keys of
each object in a top-level array, outside the allowed columns are removed. Anything that
is not JSON is refused, since it cannot be narrowed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from connectors.errors import SourceRejected, TargetRefused
from connectors.http import Fetched, HttpConfig, HttpFetcher

_SEGMENT = "[A-Za-z0-9_.~-]+"


@dataclass(frozen=True)
class Route:
    """An allowed ``method`` and path ``template`` (``/orders/{id}``)."""

    method: str
    template: str

    def matches(self, method: str, path: str) -> bool:
        """True for exactly this method and a path the template describes."""
        pattern = re.sub(r"\\\{[A-Za-z_]+\\\}", _SEGMENT, re.escape(self.template))
        return method == self.method and re.fullmatch(pattern, path) is not None


@dataclass(frozen=True)
class Proxied:
    """What goes back to the consumer."""

    status: int
    content_type: str
    body: bytes


class HttpPassThrough:
    """Proxy allowed calls to an upstream API, keeping only the allowed JSON fields."""

    def __init__(
        self, config: HttpConfig, routes: tuple[Route, ...], fetcher: HttpFetcher | None = None
    ) -> None:
        self._routes = routes
        self._fetcher = fetcher or HttpFetcher(config)

    async def aclose(self) -> None:
        """Close the client."""
        await self._fetcher.aclose()

    def check(self, method: str, path: str) -> None:
        """TargetRefused unless ``method path`` is a plain path on an allowed route."""
        if ".." in path.split("/") or "%" in path or "//" in path or "\\" in path:
            raise TargetRefused("the path is not a plain path")
        if not any(r.matches(method.upper(), path) for r in self._routes):
            raise TargetRefused(f"{method.upper()} {path} is not an allowed route")

    async def call(
        self, method: str, path: str, columns: tuple[str, ...], *, body: bytes | None = None
    ) -> Proxied:
        """Proxy ``method path``; ``columns`` are the fields the policy lets through."""
        method = method.upper()
        self.check(method, path)
        fetched = await self._fetcher.fetch(method, path, body=body)
        return Proxied(fetched.status, "application/json", _narrowed(fetched, set(columns)))


def _narrowed(fetched: Fetched, allowed: set[str]) -> bytes:
    kind = fetched.headers.get("content-type", "").split(";")[0].strip().lower()
    if not fetched.body and fetched.status == 204:  # noqa: PLR2004 (No Content)
        return b""
    if kind != "application/json" and not kind.endswith("+json"):
        raise SourceRejected("the upstream did not answer JSON, which cannot be narrowed")
    try:
        parsed = json.loads(fetched.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceRejected("the upstream's JSON does not parse") from exc
    return json.dumps(_keep(parsed, allowed), separators=(",", ":")).encode()


def _keep(value: Any, allowed: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k in allowed}
    if isinstance(value, list):
        return [_keep(v, allowed) for v in value]
    return value
