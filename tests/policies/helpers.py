"""Small builders shared by the engine tests."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

from policies import Iri, Request
from policies.model import Value
from policies.vocab import ODRL, SLUIS

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
UNI = "urn:org:uni"
DATASET = "urn:dataset:meters"


def request(
    *, party: str = UNI, action: str = "read", target: str = DATASET, **context: list[Value]
) -> Request:
    """A request; context keys are ODRL left operand names, or ``sluis_<name>``."""
    resolved = {
        (SLUIS + k[6:] if k.startswith("sluis_") else ODRL + k): tuple(v)
        for k, v in context.items()
    }
    return Request(party, ODRL + action, target, MappingProxyType(resolved))


def iri(text: str) -> Iri:
    """Shorthand for an IRI value."""
    return Iri(text)
