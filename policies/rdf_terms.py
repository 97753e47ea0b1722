"""The ODRL and Sluis terms a Turtle or JSON-LD policy may use, so that none is silently lost.

The reader (``policies.rdf_policy``) follows a fixed set of ODRL properties. A property it
does not follow (``odrl:constraints`` for ``odrl:constraint``, ``odrl:partOf`` stating a
membership the engine would not see) would drop part of the policy without a word: an
unconditional permit, or a prohibition that reaches no one. So every ODRL or Sluis property
in the document must be one the reader follows, every ODRL class one it knows, and
``odrl:conflict`` one of its three values; else ``UnknownTerm`` names it. Properties of
other vocabularies (``dct:description``, ``rdfs:label``) are annotations and stay allowed.

JSON-LD drops a key its context does not define before any triple exists; ``undefined_keys``
finds those in the document itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rdflib import RDF, Graph, URIRef

from policies.errors import UnknownTerm
from policies.vocab import ODRL, SLUIS

FOLLOWED: frozenset[str] = frozenset(
    ODRL + p
    for p in [
        "permission", "prohibition", "obligation", "duty", "remedy", "consequence",
        "action", "target", "assignee", "assigner", "constraint", "refinement",
        "leftOperand", "operator", "rightOperand", "rightOperandReference", "unit",
        "uid", "conflict", "profile", "and", "or", "xone", "andSequence",
        "source",  # where a collection is defined: informative, membership is the state's
    ]
)  # fmt: skip
CLASSES: frozenset[str] = frozenset(
    ODRL + c
    for c in [
        "Policy", "Set", "Offer", "Agreement", "Privacy", "Ticket", "Assertion", "Rule",
        "Permission", "Prohibition", "Duty", "Constraint", "LogicalConstraint", "Action",
        "Asset", "AssetCollection", "Party", "PartyCollection",
    ]
)  # fmt: skip
CONFLICTS: frozenset[str] = frozenset(ODRL + c for c in ("perm", "prohibit", "invalid"))
_OURS = (ODRL, SLUIS)
_CONFLICT = URIRef(ODRL + "conflict")


def unknown_terms(graph: Graph) -> Iterator[UnknownTerm]:
    """Every ODRL/Sluis property, class or conflict value the reader would not understand."""
    for prop in sorted({str(p) for p in graph.predicates()}):
        if prop.startswith(_OURS) and prop not in FOLLOWED:
            yield UnknownTerm("property", prop)
    for cls in sorted({str(o) for o in graph.objects(None, RDF.type)}):
        if cls.startswith(_OURS) and cls not in CLASSES:
            yield UnknownTerm("class", cls)
    for value in sorted({str(o) for o in graph.objects(None, _CONFLICT)}):
        if value not in CONFLICTS:
            yield UnknownTerm("conflict", value)


def undefined_keys(document: Any) -> Iterator[str]:
    """Keys of a JSON-LD document that no context defines (JSON-LD would drop them)."""
    contexts = list(_contexts(document))
    if any("@vocab" in c for c in contexts):
        return  # every key expands under the vocabulary; unknown_terms sees the result
    terms = {term for context in contexts for term in context}
    yield from _undefined(document, terms)


def _contexts(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _contexts(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "@context":
                yield from _context_dicts(value)
            else:
                yield from _contexts(value)


def _context_dicts(context: Any) -> Iterator[dict[str, Any]]:
    if isinstance(context, list):
        for item in context:
            yield from _context_dicts(item)
    elif isinstance(context, dict):
        yield context


def _undefined(node: Any, terms: set[str]) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _undefined(item, terms)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "@context":
                continue
            if not (key.startswith("@") or key in terms or ":" in key):
                yield key
            yield from _undefined(value, terms)
