"""Connector configs (from the operator's dataset spec) to connectors.

``type: files``, ``type: sql`` and ``type: http`` (tabular) are built in; any other type is
a plugin from the ``sluis.connectors`` entry-point group (``connectors.registry``), whose
``Connector`` subclass must offer ``from_config(dataset_id, config) -> Connector``. A config
that does not fit raises ``ConnectorConfigError`` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy.ext.asyncio import create_async_engine

from connectors import Connector, ConnectorConfigError, registry
from connectors.files import FileFormat, FilesConfig, FilesConnector
from connectors.http import HttpConfig, HttpTableConnector
from connectors.http_passthrough import PASSTHROUGH_MAX_BYTES, HttpPassThrough, Route
from connectors.spill import SpillConfig
from connectors.sql import SqlConfig, SqlConnector
from gateway.storage.db import replace_closed_connections


def _field(config: Mapping[str, Any], name: str, kind: type) -> Any:
    value = config.get(name)
    if not isinstance(value, kind):
        raise ConnectorConfigError(f"connector.{name} must be a {kind.__name__}")
    return value


def _max_bytes(config: Mapping[str, Any], default: int) -> int:
    """``max_bytes``: the cap on an upstream answer's decoded bytes, a positive integer."""
    value = config.get("max_bytes", default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConnectorConfigError("connector.max_bytes must be a positive integer")
    return value


#: The settings each built-in type reads; any other key is a mistake (e.g. ``delimiter``).
KNOWN_KEYS = {
    "files": {"type", "root", "path", "format"},
    "sql": {"type", "url", "table", "schema", "types"},
    "http": {"type", "base_url", "path", "columns", "lines", "allow_networks", "max_bytes"},
    "http-passthrough": {"type", "base_url", "routes", "allow_networks", "max_bytes"},
}


def check_keys(kind: str, config: Mapping[str, Any]) -> None:
    """ConnectorConfigError naming the first key a built-in ``kind`` does not read."""
    known = KNOWN_KEYS.get(kind)
    unknown = sorted(str(k) for k in config if known is not None and k not in known)
    if unknown:
        raise ConnectorConfigError(
            f"connector.{unknown[0]} is not a {kind} setting "
            f"(known: {', '.join(sorted(known or ()))})"
        )


def _files(dataset_id: str, config: Mapping[str, Any]) -> Connector:
    try:
        fmt = FileFormat(_field(config, "format", str))
    except ValueError as exc:
        raise ConnectorConfigError("connector.format must be csv, parquet or jsonl") from exc
    files = FilesConfig(
        root=Path(_field(config, "root", str)), path=_field(config, "path", str), format=fmt
    )
    return FilesConnector(dataset_id, files)


def _sql(dataset_id: str, config: Mapping[str, Any]) -> Connector:
    url = _field(config, "url", str)
    types = config.get("types") or {}
    if not isinstance(types, dict):
        raise ConnectorConfigError("connector.types must map column names to Arrow type names")
    sql = SqlConfig(
        table=_field(config, "table", str),
        schema=config.get("schema"),
        types=tuple(sorted((str(k), str(v)) for k, v in types.items())),
    )
    try:
        engine = create_async_engine(url)
    except Exception as exc:
        raise ConnectorConfigError(
            f"connector.url is not a usable database URL: {type(exc).__name__}"
        ) from exc
    replace_closed_connections(engine)  # a source restart costs no request an error
    return SqlConnector(dataset_id, engine, sql)


def _http(dataset_id: str, config: Mapping[str, Any]) -> Connector:
    columns = _field(config, "columns", dict)
    try:
        schema = pa.schema([(str(k), pa.type_for_alias(str(v))) for k, v in columns.items()])
    except (ValueError, KeyError) as exc:
        raise ConnectorConfigError(f"connector.columns: unknown Arrow type ({exc})") from exc
    allow = config.get("allow_networks") or []
    if not isinstance(allow, list):
        raise ConnectorConfigError("connector.allow_networks must be a list of CIDR networks")
    http = HttpConfig(
        base_url=_field(config, "base_url", str),
        path=str(config.get("path", "/")),
        schema=schema,
        lines=bool(config.get("lines", False)),
        allow_networks=tuple(str(n) for n in allow),
        max_bytes=_max_bytes(config, HttpConfig.max_bytes),
    )
    return HttpTableConnector(dataset_id, http)


BUILT_IN = {"files": _files, "sql": _sql, "http": _http}
PASSTHROUGH = "http-passthrough"


def create_passthrough(dataset_id: str, config: Mapping[str, Any]) -> HttpPassThrough:
    """A pass-through API dataset: ``base_url``, ``routes`` ([{method, path}]), networks."""
    del dataset_id  # the upstream does not need to know
    check_keys(PASSTHROUGH, config)
    routes = config.get("routes")
    if not isinstance(routes, list) or not routes:
        raise ConnectorConfigError("connector.routes must list {method, path} entries")
    try:
        allowed = tuple(Route(str(r["method"]).upper(), str(r["path"])) for r in routes)
    except (KeyError, TypeError) as exc:
        raise ConnectorConfigError("each of connector.routes needs a method and a path") from exc
    allow = config.get("allow_networks") or []
    if not isinstance(allow, list):
        raise ConnectorConfigError("connector.allow_networks must be a list of CIDR networks")
    http = HttpConfig(
        base_url=_field(config, "base_url", str),
        allow_networks=tuple(str(n) for n in allow),
        max_bytes=_max_bytes(config, PASSTHROUGH_MAX_BYTES),
    )
    return HttpPassThrough(http, allowed)


def create_connector(dataset_id: str, config: Mapping[str, Any]) -> Connector:
    """The connector ``config`` describes (see the module docstring)."""
    kind = config.get("type")
    if not isinstance(kind, str):
        raise ConnectorConfigError("connector.type is required")
    if kind == PASSTHROUGH:
        raise ConnectorConfigError("a pass-through API dataset is reached at /api/..., not queried")
    builder = BUILT_IN.get(kind)
    if builder is not None:
        check_keys(kind, config)
        return builder(dataset_id, config)
    plugin = registry.connector_type(kind)
    from_config = getattr(plugin, "from_config", None)
    if from_config is None:
        raise ConnectorConfigError(f"connector plugin {kind!r} has no from_config(name, config)")
    connector = from_config(dataset_id, dict(config))
    if not isinstance(connector, Connector):
        raise ConnectorConfigError(f"connector plugin {kind!r} did not return a connector")
    return connector


def spilling(
    factory: Callable[[str, Mapping[str, Any]], Connector], spill: SpillConfig
) -> Callable[[str, Mapping[str, Any]], Connector]:
    """``factory`` whose connectors group and order within ``spill``'s limits."""

    def build(dataset_id: str, config: Mapping[str, Any]) -> Connector:
        connector = factory(dataset_id, config)
        connector.spill = spill
        return connector

    return build
