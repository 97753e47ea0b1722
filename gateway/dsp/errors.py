"""DSP error objects inside problem+json (pure).

An error on a DSP path is one body that is both RFC 9457 problem+json (``type``, ``title``,
``status``, ``detail``) and the DSP error object for its protocol (``@context``, ``@type``,
``code``, ``reason``, and the process ids where the type has them). ``code`` is the Sluis
problem code, so both readings name the same stable reason.
"""

from __future__ import annotations

from typing import Any

from gateway.dsp.messages import DSP_PATH, context

#: The DSP error type for each protocol's paths, and whether it carries the process ids.
_ERROR_TYPES = (
    (f"{DSP_PATH}/catalog", "CatalogError", False),
    (f"{DSP_PATH}/negotiations", "ContractNegotiationError", True),
    (f"{DSP_PATH}/transfers", "TransferError", True),
    # the consumer side's callback endpoints (gateway/dsp/consumer_endpoints.py)
    (f"{DSP_PATH}/callback/negotiations", "ContractNegotiationError", True),
    (f"{DSP_PATH}/callback/transfers", "TransferError", True),
)


def dsp_error_fields(
    path: str, code: str, detail: str, pids: dict[str, str] | None = None
) -> dict[str, Any]:
    """The DSP error members for an error answered on ``path`` ({} outside the DSP paths)."""
    for prefix, dsp_type, with_pids in _ERROR_TYPES:
        if path == prefix or path.startswith(prefix + "/"):
            fields: dict[str, Any] = {
                "@context": context(),
                "@type": dsp_type,
                "code": code,
                "reason": [detail],
            }
            if with_pids:
                given = pids or {}
                fields["providerPid"] = given.get("providerPid", "")
                fields["consumerPid"] = given.get("consumerPid", "")
            return fields
    return {}
