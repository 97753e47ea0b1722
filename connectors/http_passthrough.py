"""Pass-through mode: allowed methods and paths proxied as they are, JSON fields narrowed.

Only a request whose method and path match an allowed route reaches the upstream; a route
is a path template whose ``{name}`` segments match one safe segment
(``[A-Za-z0-9_.~-]+``). The path is matched as it will be sent: dot segments (``.``,
``..``), empty segments, percent signs, backslashes, ``?``, ``#`` and control characters
are refused before matching, and the fetch sends exactly that path. A redirect is followed
only to a path that passes the same check.

The request body goes up with the consumer's ``Content-Type``. A 2xx answer must be
JSON, read whole within the cap (``PASSTHROUGH_MAX_BYTES``, 16 MiB, unless the dataset sets
``max_bytes``; decoded bytes are counted, so a compressed bomb is refused) and narrowed by
the policy's JSON paths at every depth (``connectors.jsonpaths``); anything that is not
JSON is refused, since it cannot be narrowed. A 4xx is the consumer's call refused: its
status is passed on with an empty body (the gateway answers a problem of its own), the
upstream's body is never read. A 5xx (or any status other than 2xx and 4xx) is a
``SourceRejected`` (502) and its body is not passed on; no upstream header reaches the
consumer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from connectors.errors import SourceRejected, TargetRefused
from connectors.http import Fetched, HttpConfig, HttpFetcher
from connectors.jsonpaths import Allowed, compile_paths, keep

_SEGMENT = "[A-Za-z0-9_.~-]+"
_UNSAFE = re.compile(r"[%\\?#\x00-\x20\x7f-\U0010ffff]")
_DOTS = frozenset({"", ".", ".."})
PASSTHROUGH_MAX_BYTES = 16 * 1024 * 1024  # an answer is parsed whole to be narrowed


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
    content_type: str  # empty for a 4xx, whose body is the gateway's own problem
    body: bytes

    @property
    def refused(self) -> bool:
        """The upstream refused the call (4xx): the consumer's problem, not the source's."""
        return 400 <= self.status < 500  # noqa: PLR2004


def plain_path(path: str) -> None:
    """TargetRefused unless ``path`` is ``/`` or ``/seg/seg`` with no dot or empty segment."""
    if not path.startswith("/") or _UNSAFE.search(path):
        raise TargetRefused("the path is not a plain path")
    if path != "/" and any(s in _DOTS for s in path[1:].split("/")):
        raise TargetRefused("the path has a dot segment or an empty segment")


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
        plain_path(path)
        if not any(r.matches(method.upper(), path) for r in self._routes):
            raise TargetRefused(f"{method.upper()} {path} is not an allowed route")

    async def call(
        self,
        method: str,
        path: str,
        columns: tuple[str, ...],
        *,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> Proxied:
        """Proxy ``method path``; ``columns`` are the JSON paths the policy lets through."""
        method = method.upper()
        self.check(method, path)
        allowed = compile_paths(columns)
        async with self._fetcher.open(
            method, path, body=body, content_type=content_type, check=self.check
        ) as opened:
            if 400 <= opened.status < 500:  # noqa: PLR2004 (the body is never read)
                return Proxied(opened.status, "", b"")
            if not 200 <= opened.status < 300:  # noqa: PLR2004
                raise SourceRejected(f"the upstream answered {opened.status}")
            fetched = Fetched(opened.status, opened.headers, await opened.read())
        return Proxied(fetched.status, "application/json", _narrowed(fetched, allowed))


def _narrowed(fetched: Fetched, allowed: Allowed) -> bytes:
    kind = fetched.headers.get("content-type", "").split(";")[0].strip().lower()
    if not fetched.body and fetched.status == 204:  # noqa: PLR2004 (No Content)
        return b""
    if kind != "application/json" and not kind.endswith("+json"):
        raise SourceRejected("the upstream did not answer JSON, which cannot be narrowed")
    try:
        return json.dumps(keep(json.loads(fetched.body), allowed), separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceRejected("the upstream's JSON does not parse") from exc
    except RecursionError as exc:
        raise SourceRejected("the upstream's JSON is nested too deeply") from exc
