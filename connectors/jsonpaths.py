"""What a pass-through policy lets through, as JSON paths, and the recursive filter.

Pure. A policy's ``columns`` for a pass-through dataset are paths into the upstream's
JSON answer::

    order            the top-level field ``order`` with everything under it
    machine.model    only ``model`` inside the object ``machine``
    lines[].qty      only ``qty`` inside each object of the array ``lines``
    data[]           the whole array ``data`` (the same as ``data``)

A top-level array (a listing) is transparent: the paths apply to each of its items.
Filtering is by allow-list at every depth: a field is kept only when a path names it or
one of its ancestors; a value whose shape differs from the path (an array where the path
expects an object, a scalar where it expects either) is dropped. A key that holds ``.``,
``[`` or ``]`` cannot be named and is therefore never delivered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from connectors.errors import ConnectorConfigError

_SEGMENT = re.compile(r"([^.\[\]]+)((?:\[\])*)")
_DROP = object()  # the filter's "nothing may pass here"


@dataclass
class Allowed:
    """One node of the allow-list: the whole value, or some fields / array items of it."""

    whole: bool = False
    fields: dict[str, Allowed] = field(default_factory=dict)
    items: Allowed | None = None

    def field(self, name: str) -> Allowed:
        """The child node for ``name``, made on first use."""
        return self.fields.setdefault(name, Allowed())

    def item(self) -> Allowed:
        """The node for each item of an array, made on first use."""
        if self.items is None:
            self.items = Allowed()
        return self.items


def compile_paths(paths: Iterable[str]) -> Allowed:
    """The allow-list tree for ``paths``; ``ConnectorConfigError`` for a malformed path."""
    root = Allowed()
    for path in paths:
        node = root
        for segment in _segments(path):
            match = _SEGMENT.fullmatch(segment)
            if match is None:
                raise ConnectorConfigError(f"not a JSON path the policy can use: {path!r}")
            node = node.field(match.group(1))
            for _ in range(len(match.group(2)) // 2):
                node = node.item()
        node.whole = True
    return root


def _segments(path: str) -> list[str]:
    if not path or path != path.strip():
        raise ConnectorConfigError(f"not a JSON path the policy can use: {path!r}")
    return path.split(".")


def keep(value: Any, allowed: Allowed) -> Any:
    """``value`` with only what ``allowed`` names (a top-level array: each of its items)."""
    if isinstance(value, list) and not allowed.whole:
        return [_fields(v, allowed) for v in value if isinstance(v, dict)]
    if isinstance(value, dict) and not allowed.whole:
        return _fields(value, allowed)
    kept = _keep(value, allowed)
    return None if kept is _DROP else kept


def _keep(value: Any, allowed: Allowed) -> Any:
    if allowed.whole:
        return value
    if isinstance(value, dict) and allowed.fields:
        return _fields(value, allowed)
    if isinstance(value, list) and allowed.items is not None:
        return [kept for v in value if (kept := _keep(v, allowed.items)) is not _DROP]
    return _DROP


def _fields(value: dict[str, Any], allowed: Allowed) -> dict[str, Any]:
    out = {}
    for key, inner in value.items():
        node = allowed.fields.get(key)
        if node is not None and (kept := _keep(inner, node)) is not _DROP:
            out[key] = kept
    return out
