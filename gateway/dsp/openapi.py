"""The DSP request bodies as the OpenAPI document describes them (pure).

The endpoints read their bodies as DSP messages (:func:`gateway.dsp.messages.read`), not
through pydantic, so FastAPI cannot describe them; these schemas say what ``read`` and the
services require: a JSON object whose ``@context`` names the DSP context, whose ``@type`` is
the message type, with its ids as non-empty strings. Whether an Offer, an Agreement or a
process exists, and whether a ``callbackAddress`` passes the SSRF guard, no schema can say:
those are 404 and 400 ``dsp-callback-refused`` (docs/dataspace.md).
"""

from __future__ import annotations

from typing import Any

from gateway.dsp.messages import DSP_CONTEXT, DSPACE, HTTP_PULL

_TEXT = {"type": "string", "pattern": r"\S"}
_MORE: dict[str, dict[str, Any]] = {
    "offer": {
        "type": "object",
        "required": ["@id"],
        "properties": {"@id": {"type": "string", "pattern": "^urn:sluis:offer:[^:]+:.+$"}},
    },
    "callbackAddress": {"type": "string", "pattern": "^https://"},
    "agreementId": {"type": "string", "pattern": "^urn:sluis:agreement:.+$"},
    "format": {"const": HTTP_PULL},
    "eventType": {"enum": ["ACCEPTED", "dspace:ACCEPTED"]},
    "filter": {"type": "array"},
}


def request_body(kind: str, *fields: str, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """``openapi_extra`` of an endpoint that reads a ``kind`` message with ``fields``."""
    properties: dict[str, Any] = {
        "@context": {
            "type": "array",
            "items": {"type": "string"},
            "contains": {"const": DSP_CONTEXT},
        },
        "@type": {"enum": [kind, f"dspace:{kind}", DSPACE + kind]},
    }
    for name in (*fields, *optional):
        properties[name] = {**_TEXT, **_MORE.get(name, {})}
        if _MORE.get(name, {}).get("type") in ("object", "array"):
            properties[name] = _MORE[name]
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["@context", "@type", *fields],
        "properties": properties,
    }
    if kind == "ContractRequestMessage" and "providerPid" not in fields:
        schema["not"] = {"required": ["providerPid"]}  # an initiating request has none
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }
