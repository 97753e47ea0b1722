"""A provider's counter-offer, read by the consumer side (pure).

Sluis as a consumer accepts a ContractOfferMessage only when it offers what the consumer
asked for: the same Offer ``@id``, for the same dataset, with the same rules (permissions,
prohibitions and obligations, compared as canonical JSON whatever their order). Anything else
is a different contract, which no local participant asked for: the negotiation is terminated
with the reason :func:`difference` gives.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

RULES: Final = ("permission", "prohibition", "obligation")


def _rules(found: Any) -> list[str]:
    """A rule list as sorted canonical JSON texts (a single rule counts as a list of one)."""
    items = found if isinstance(found, list) else [] if found is None else [found]
    return sorted(json.dumps(item, sort_keys=True, separators=(",", ":")) for item in items)


def difference(
    asked: Mapping[str, Any] | None, offered: Mapping[str, Any], dataset: str
) -> str | None:
    """Why ``offered`` is not the Offer ``asked`` for ``dataset``; None when it is the same."""
    if asked is None:
        return "the offer asked for is not known here"
    if offered.get("@id") != asked.get("@id"):
        return "the counter-offer names another offer"
    if offered.get("target", dataset) != dataset:
        return "the counter-offer is for another dataset"
    for key in RULES:
        if _rules(offered.get(key)) != _rules(asked.get(key)):
            return f"the counter-offer changes the {key} rules"
    return None
