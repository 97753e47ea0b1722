"""The DSP 2025-1 JSON schemas from ``../shared/vectors/dsp``, with their cross-references.

Every schema refers to the others by ``$id`` (``https://w3id.org/dspace/2025/1/...``); the
registry here resolves those from the shared copy, never from the network.

Erratum of the 2025-1 schemas: the transfer error, suspension and termination schemas refer
to ``transfer-schema.json#definitions/AbstractTransferCodeMessage`` (no ``/`` after ``#``,
so not a JSON pointer); :func:`_load` reads it as ``#/definitions/...``, what it means.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.support.shared import VECTORS

SCHEMAS = VECTORS / "dsp" / "schemas"


def _load(path: Path) -> Any:
    """A schema, with the erratum above corrected."""
    return json.loads(path.read_text(encoding="utf-8").replace("#definitions/", "#/definitions/"))


@cache
def _registry() -> Any:
    from referencing import Registry, Resource  # noqa: PLC0415 - dev dependency, imported late

    resources = []
    for path in sorted(SCHEMAS.rglob("*-schema.json")):
        contents = _load(path)
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


def validate(message: Any, schema: str) -> None:
    """Raise jsonschema's ValidationError unless ``message`` has the shape of ``schema``
    (a path under schemas/, e.g. ``catalog/catalog-schema.json``); skip without the vectors."""
    if not SCHEMAS.is_dir():
        pytest.skip(f"DSP schemas not present at {SCHEMAS}")
    from jsonschema import Draft201909Validator  # noqa: PLC0415 - dev dependency

    contents = _load(SCHEMAS / schema)
    Draft201909Validator(contents, registry=_registry()).validate(message)


def validate_definition(message: Any, schema: str, definition: str) -> None:
    """Like :func:`validate`, against one definition of ``schema`` (``Offer`` of the contract
    schema: its top-level ``oneOf`` cannot tell an Offer from a MessageOffer)."""
    if not SCHEMAS.is_dir():
        pytest.skip(f"DSP schemas not present at {SCHEMAS}")
    from jsonschema import Draft201909Validator  # noqa: PLC0415 - dev dependency

    base = json.loads((SCHEMAS / schema).read_text(encoding="utf-8"))["$id"]
    wrapper = {"$ref": f"{base}#/definitions/{definition}"}
    Draft201909Validator(wrapper, registry=_registry()).validate(message)
