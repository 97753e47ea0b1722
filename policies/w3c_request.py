"""The W3C Formal Semantics ``EvaluationRequest`` (JSON-LD), read as the examples write it.

``requestParameters`` become the request context keyed by the feature they describe;
``sotw:CurrentXSDDateTime`` is the time of the request. Read as plain JSON because the
examples give integer values as ``{"@id": "1000", "@type": "xsd:integer"}``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from types import MappingProxyType
from typing import Any

from policies.errors import PolicyStructureError, PolicySyntaxError
from policies.model import Value
from policies.rdf_values import literal_value
from policies.request import Request
from policies.vocab import ODRL, SOTW, XSD

_PREFIXES = {"odrl:": ODRL, "sotw:": SOTW, "xsd:": XSD}
CURRENT_TIME = SOTW + "CurrentXSDDateTime"


def parse_evaluation_request(data: str | bytes) -> tuple[Request, datetime | None]:
    """The request and the time it states (``None`` when it states none)."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise PolicySyntaxError(f"not JSON: {exc}", code="json_syntax") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("evaluatedAction"), str):
        raise _bad("an EvaluationRequest names its evaluatedAction")
    context: dict[str, list[Value]] = defaultdict(list)
    for param in _as_list(doc.get("requestParameters")):
        feature, value = _parameter(param)
        context[feature].append(value)
    now = next((v for v in context.pop(CURRENT_TIME, []) if isinstance(v, datetime)), None)
    request = Request(
        party=_iri(doc.get("evaluatedParty")),
        action=_iri(doc["evaluatedAction"]) or "",
        target=_iri(doc.get("evaluatedTarget")),
        context=MappingProxyType({k: tuple(v) for k, v in context.items()}),
    )
    return request, now


def _parameter(param: Any) -> tuple[str, Value]:
    if not isinstance(param, dict) or not isinstance(param.get("describesFeature"), str):
        raise _bad("a request parameter needs describesFeature")
    raw = param.get("value")
    if isinstance(raw, dict):
        lexical = raw.get("@value", raw.get("@id"))
        datatype = _iri(raw.get("@type"))
    else:
        lexical, datatype = raw, None
    if not isinstance(lexical, str | int | float):
        raise _bad("a request parameter needs a value")
    return _iri(param["describesFeature"]) or "", literal_value(str(lexical), datatype)


def _iri(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    for prefix, ns in _PREFIXES.items():
        if value.startswith(prefix):
            return ns + value[len(prefix) :]
    return value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _bad(reason: str) -> PolicyStructureError:
    return PolicyStructureError(reason, code="request_structure")
