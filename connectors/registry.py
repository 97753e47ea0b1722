"""Connector kinds by name: the built-ins plus third-party ones from the ``sluis.connectors``
entry-point group.

A plugin's entry point names a ``Connector`` subclass::

    [project.entry-points."sluis.connectors"]
    acme-erp = "acme_sluis.erp:ErpConnector"

A plugin that fails to load, or is not a ``Connector``, is a ``ConnectorConfigError``
(fail closed: the dataset is not served); a plugin cannot replace a built-in kind.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from connectors.base import Connector
from connectors.errors import ConnectorConfigError
from connectors.files import FilesConnector
from connectors.http import HttpTableConnector
from connectors.sql import SqlConnector
from connectors.testing import InMemoryConnector

GROUP = "sluis.connectors"
BUILT_IN: dict[str, type[Connector]] = {
    "files": FilesConnector,
    "sql": SqlConnector,
    "http": HttpTableConnector,
    "memory": InMemoryConnector,
}


def available() -> dict[str, str]:
    """Every kind and where it comes from (``built-in`` or the entry point's value)."""
    found = dict.fromkeys(BUILT_IN, "built-in")
    for point in entry_points(group=GROUP):
        found.setdefault(point.name, point.value)
    return found


def connector_type(kind: str) -> type[Connector]:
    """The class for ``kind``, loading a plugin when it is not built in."""
    if kind in BUILT_IN:
        return BUILT_IN[kind]
    points = [p for p in entry_points(group=GROUP) if p.name == kind]
    if not points:
        raise ConnectorConfigError(f"no connector kind {kind!r} (see connectors.registry)")
    try:
        loaded = points[0].load()
    except Exception as exc:
        raise ConnectorConfigError(f"connector plugin {kind!r} failed to load") from exc
    if not isinstance(loaded, type) or not issubclass(loaded, Connector):
        raise ConnectorConfigError(f"connector plugin {kind!r} is not a Connector subclass")
    return loaded
