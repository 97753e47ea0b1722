"""``GET /v1/datasets/{dataset_id}/data`` without FastAPI's route search and dependency
resolution, for the requests the declared route would take unchanged (issue 10).

FastAPI finds a route by asking every included router in turn (twice: to match, then to
handle) and resolves the route's dependencies and parameters per request; for the small
audited query that was a sixth of the server's CPU. :class:`DataRoute` is put first in
the app's routes. It matches only a ``GET`` on the data path whose query parameters are
plainly valid (each at most once where the route takes one value, within the declared
bounds, a known format); it then resolves the same dependencies by hand, in FastAPI's
order (the certificate's participant, then the bearer token), and calls the same endpoint
code. Every other request (another method, a parameter FastAPI must judge) falls through
to the declared route, which keeps its 405s, 422s and OpenAPI entry; so do errors: they
are raised, not answered here, and the app's handlers make them problem+json.
"""

from __future__ import annotations

import re
from typing import get_args

from starlette._utils import get_route_path  # what Starlette's routes match (root_path off)
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from gateway.exchange.endpoints import data_response
from gateway.exchange.schemas import DataParams, FormatName
from gateway.http.bearer import bearer
from gateway.http.deps import authenticated, get_services

PATH = "/v1/datasets/{dataset_id}/data"
_PATH = re.compile(r"/v1/datasets/([^/]+)/data")
_PARAMS_KEY = "sluis.data_params"  # in the child scope: the parameters, parsed once
_FORMATS: frozenset[str] = frozenset(get_args(FormatName))
_LIMIT = re.compile(r"[1-9][0-9]{0,8}")  # the route's bounds: 1 to 100,000,000
_MAX_LIMIT = 100_000_000
_MAX_COLUMNS = 4096  # characters, as the route's Query(max_length=4096)
_MAX_WHERE = 64  # values, as the route's Query(max_length=64)


def plain_params(query: QueryParams) -> DataParams | None:
    """The parameters when FastAPI would accept them as they are; None when it must judge
    (a repeated single value, a limit out of bounds or not plain digits, an unknown
    format, too long a column list, too many conditions)."""
    for name in ("columns", "limit", "format"):
        if len(query.getlist(name)) > 1:
            return None
    columns, limit, fmt = query.get("columns", ""), query.get("limit"), query.get("format")
    where = query.getlist("where")
    if len(columns) > _MAX_COLUMNS or len(where) > _MAX_WHERE:
        return None
    if limit is not None and (not _LIMIT.fullmatch(limit) or int(limit) > _MAX_LIMIT):
        return None
    if fmt is not None and fmt not in _FORMATS:
        return None
    return DataParams(
        columns=columns,
        where=where or None,
        limit=int(limit) if limit is not None else None,
        format=fmt if fmt is not None else "jsonl",  # type: ignore[arg-type]  # checked above
    )


class DataRoute(BaseRoute):
    """The data route's fast path (see the module docstring); not in the OpenAPI document
    (the declared route is)."""

    path = path_format = PATH
    methods = frozenset({"GET"})
    include_in_schema = False

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] != "GET":
            return Match.NONE, {}
        found = _PATH.fullmatch(get_route_path(scope))
        if found is None:
            return Match.NONE, {}
        params = plain_params(QueryParams(scope["query_string"]))
        if params is None:
            return Match.NONE, {}
        path_params = {**scope.get("path_params", {}), "dataset_id": found[1]}
        return Match.FULL, {"path_params": path_params, _PARAMS_KEY: params}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        services = await get_services(request)
        caller = await bearer(request, await authenticated(request, services), services)
        params: DataParams = scope[_PARAMS_KEY]
        dataset_id: str = scope["path_params"]["dataset_id"]
        response = await data_response(request, dataset_id, caller, services, params)
        await response(scope, receive, send)
