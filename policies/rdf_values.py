"""rdflib terms to engine values: IRIs, typed literals, date-times (UTC when no zone)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from rdflib import BNode, Literal, URIRef
from rdflib.term import Node

from policies.model import Iri, TypedLiteral, Value
from policies.vocab import XSD

_INTEGERS = frozenset(
    XSD + t
    for t in [
        "integer",
        "int",
        "long",
        "short",
        "byte",
        "nonNegativeInteger",
        "positiveInteger",
        "unsignedInt",
    ]
)
_DECIMALS = frozenset(XSD + t for t in ("decimal", "double", "float"))


def node_id(node: Node) -> str:
    """A stable string for a subject: the IRI, or ``_:`` and the blank node id."""
    return f"_:{node}" if isinstance(node, BNode) else str(node)


def to_value(node: Node) -> Value:
    """The engine value of an object term."""
    if isinstance(node, URIRef):
        return Iri(str(node))
    if isinstance(node, Literal):
        return literal_value(str(node), str(node.datatype) if node.datatype else None)
    return Iri(node_id(node))


def literal_value(lexical: str, datatype: str | None) -> Value:
    """Interpret ``lexical`` by its XSD datatype; unknown datatypes stay typed literals."""
    text = lexical.strip()
    try:
        return _interpret(text, datatype)
    except (ValueError, InvalidOperation):
        return TypedLiteral(lexical, datatype or XSD + "string")


def _interpret(text: str, datatype: str | None) -> Value:  # noqa: PLR0911 -- one return per XSD type reads best
    if datatype is None or datatype == XSD + "string":
        return text
    if datatype == XSD + "dateTime":
        return parse_datetime(text)
    if datatype == XSD + "date":
        return date.fromisoformat(text[:10])
    if datatype in _INTEGERS:
        return int(text)
    if datatype in _DECIMALS:
        return Decimal(text)
    if datatype == XSD + "boolean":
        return text in ("true", "1")
    return TypedLiteral(text, datatype)


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 date-time; a value without a zone is read as UTC."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
