"""IRIs of ODRL 2.2, the compliance-report / state-of-the-world terms, and the Sluis profile."""

from __future__ import annotations

from typing import Final

ODRL: Final = "http://www.w3.org/ns/odrl/2/"
SLUIS: Final = "https://w3id.org/sluis/odrl#"
RDF_TYPE: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDF_VALUE: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#value"
XSD: Final = "http://www.w3.org/2001/XMLSchema#"
SOTW: Final = "https://w3id.org/force/sotw#"
REPORT: Final = "https://w3id.org/force/compliance-report#"
DCT: Final = "http://purl.org/dc/terms/"

POLICY_TYPES: Final = frozenset(
    ODRL + t for t in ("Policy", "Set", "Offer", "Agreement", "Privacy", "Ticket", "Assertion")
)
RULE_KINDS: Final = ("permission", "prohibition", "obligation")

# Operators (ODRL 2.2 section 3.2.3) and logical operators.
OPERATOR_NAMES: Final = (
    "eq",
    "neq",
    "lt",
    "lteq",
    "gt",
    "gteq",
    "isA",
    "hasPart",
    "isPartOf",
    "isAllOf",
    "isAnyOf",
    "isNoneOf",
)
OPERATORS: Final = frozenset(ODRL + o for o in OPERATOR_NAMES)
LOGICAL: Final = tuple(ODRL + o for o in ("and", "or", "xone", "andSequence"))
CONFLICT_PERM: Final = ODRL + "perm"

# The ODRL 2.2 action hierarchy (odrl:includedIn), plus odrl:write as SolidLab uses it.
_INCLUDED_IN: Final = {
    "use": None,
    "transfer": None,
    "give": "transfer",
    "sell": "transfer",
    "present": "use",
    "display": "present",
    "play": "present",
    "print": "present",
    **dict.fromkeys(
        [
            "acceptTracking",
            "aggregate",
            "annotate",
            "anonymize",
            "archive",
            "attribute",
            "compensate",
            "concurrentUse",
            "delete",
            "derive",
            "digitize",
            "distribute",
            "ensureExclusivity",
            "execute",
            "extract",
            "grantUse",
            "include",
            "index",
            "inform",
            "install",
            "modify",
            "move",
            "nextPolicy",
            "obtainConsent",
            "read",
            "reproduce",
            "reviewPolicy",
            "stream",
            "synchronize",
            "textToSpeech",
            "transform",
            "translate",
            "uninstall",
            "watermark",
            "write",
        ],
        "use",
    ),
}
ACTION_NAMES: Final = tuple(_INCLUDED_IN)  # the ODRL 2.2 action names, short form
ACTION_PARENT: Final = {ODRL + a: (ODRL + p if p else None) for a, p in _INCLUDED_IN.items()}


def action_ancestors(action: str) -> tuple[str, ...]:
    """``action`` and every action it is included in, nearest first."""
    chain = [action]
    parent = ACTION_PARENT.get(action)
    while parent is not None and parent not in chain:
        chain.append(parent)
        parent = ACTION_PARENT.get(parent)
    return tuple(chain)


def short(iri: str) -> str:
    """A readable name for reports: ``odrl:read`` rather than the full IRI."""
    for prefix, ns in (("odrl", ODRL), ("sluis", SLUIS), ("xsd", XSD)):
        if iri.startswith(ns):
            return f"{prefix}:{iri[len(ns) :]}"
    return iri
