"""DSP 2025-1 message shapes: the context, the type names, and strict reading (pure).

Incoming messages are compacted JSON-LD as the specification's examples show: ``@context``
is a list of strings that names the DSP context, ``@type`` the message type (bare, as
``dspace:<Type>`` or as the full IRI). The context is never fetched: a message is read by
its compacted keys, which the protected DSP context fixes. Anything else (missing context,
type, ids, offer, callbackAddress, a wrong JSON type, not JSON at all) is a
:class:`MalformedMessage`, answered 400 with the DSP error object before any state changes.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from gateway.errors import BadRequest
from gateway.json_input import JsonInputError, loads_bounded

DSP_CONTEXT: Final = "https://w3id.org/dspace/2025/1/context.jsonld"
DSPACE: Final = "https://w3id.org/dspace/2025/1/"
VERSION: Final = "2025-1"
DSP_PATH: Final = "/dsp"
HTTP_PULL: Final = "HttpData-PULL"  # the one transfer format Sluis offers
WIRE: Final = logging.getLogger("sluis.dsp.wire")
MAX_DEPTH: Final = 24  # an Offer's logical constraints nest; nothing legitimate goes deeper


class MalformedMessage(BadRequest):
    """A DSP message that does not have its type's shape (400, changes nothing)."""

    def __init__(self, detail: str, *, pids: dict[str, str] | None = None) -> None:
        super().__init__("dsp-malformed-message", detail)
        self.dsp_pids = dict(pids or {})  # read by gateway.http.problems


def context() -> list[str]:
    """The ``@context`` of every message Sluis sends."""
    return [DSP_CONTEXT]


def _type_matches(found: object, expected: str) -> bool:
    return found in (expected, f"dspace:{expected}", DSPACE + expected)


def read(raw: bytes, expected: str, *, strings: tuple[str, ...] = ()) -> dict[str, Any]:
    """The message of type ``expected`` in ``raw``, with each of ``strings`` a non-empty string.

    Raises :class:`MalformedMessage` naming the first thing wrong.
    """
    try:
        message = loads_bounded(raw, max_depth=MAX_DEPTH)
    except JsonInputError as exc:
        raise MalformedMessage(f"the body is not a JSON object ({exc})") from exc
    if not isinstance(message, dict):
        raise MalformedMessage("the body is not a JSON object")
    log_message("received", message)
    pids = {k: v for k in ("providerPid", "consumerPid") if isinstance(v := message.get(k), str)}
    ctx = message.get("@context")
    if not (isinstance(ctx, list) and all(isinstance(c, str) for c in ctx) and DSP_CONTEXT in ctx):
        raise MalformedMessage(f"@context must be a list naming {DSP_CONTEXT}", pids=pids)
    if not _type_matches(message.get("@type"), expected):
        raise MalformedMessage(f"@type must be {expected}", pids=pids)
    for key in strings:
        found = message.get(key)
        if not isinstance(found, str) or not found.strip():
            raise MalformedMessage(f"{key} must be a non-empty string", pids=pids)
    return message


def log_message(direction: str, message: object) -> None:
    """Log a DSP message sent or received (DEBUG on ``sluis.dsp.wire``; the message itself in
    the record's ``dsp_message``), so that an operator, or a test, can see every message."""
    if WIRE.isEnabledFor(logging.DEBUG):
        kind = message.get("@type") if isinstance(message, dict) else None
        shown = _without_secrets(message)
        WIRE.debug(
            "dsp %s %s", direction, kind, extra={"dsp_message": shown, "dsp_direction": direction}
        )


def _without_secrets(message: object) -> object:
    """``message`` with a DataAddress's ``authorization`` value replaced: never log a token."""
    if not isinstance(message, dict) or not isinstance(message.get("dataAddress"), dict):
        return message
    address = dict(message["dataAddress"])
    props = address.get("endpointProperties")
    if isinstance(props, list):
        address["endpointProperties"] = [
            {**p, "value": "[redacted]"} if isinstance(p, dict)
            and p.get("name") == "authorization" else p
            for p in props
        ]  # fmt: skip
    return {**message, "dataAddress": address}
