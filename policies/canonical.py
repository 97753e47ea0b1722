"""A policy's canonical form (RFC 8785 JSON Canonicalization Scheme) and its SHA-256.

The canonical form is the JSON of the model, not of the source text: a policy written in
Turtle, JSON-LD or the YAML shorthand that means the same has the same hash. Field names
are a wire format (STYLE.md 7): new fields are appended with defaults, never renamed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from policies.model import Iri, Policy, TypedLiteral


def to_json(value: Any) -> Any:  # noqa: PLR0911 -- one return per model type reads best
    """The model as JSON values (typed values tagged, so that "5" and 5 differ)."""
    if isinstance(value, Iri):
        return {"@id": value.value}
    if isinstance(value, TypedLiteral):
        return {"@value": value.lexical, "@type": value.datatype}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, Decimal):
        return {"@value": str(value.normalize()), "@type": "decimal"}
    if isinstance(value, datetime | date):
        kind = "dateTime" if isinstance(value, datetime) else "date"
        return {"@value": value.isoformat(), "@type": kind}
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in fields(value)}
    raise TypeError(f"not part of the policy model: {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    """RFC 8785: keys sorted by UTF-16 code units, no whitespace, UTF-8."""
    return _encode(value).encode("utf-8")


def _encode(value: Any) -> str:
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return "{" + ",".join(f"{_encode(k)}:{_encode(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    if isinstance(value, float):
        raise TypeError("floats have no place in a canonical policy")  # decimals are tagged
    return json.dumps(value, ensure_ascii=False)


def policy_hash(policy: Policy) -> str:
    """``sha256:`` and the hex digest of the policy's canonical form."""
    return "sha256:" + hashlib.sha256(canonical_json(to_json(policy))).hexdigest()
