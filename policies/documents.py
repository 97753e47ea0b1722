"""Turn Turtle / JSON-LD text into an rdflib graph, or a ``PolicyError`` with a stable code."""

from __future__ import annotations

import json
import warnings
from typing import Any, Literal

from rdflib import Graph

from policies.errors import PolicySchemaError, PolicySyntaxError
from policies.jsonld_contexts import inline_contexts

RdfFormat = Literal["turtle", "json-ld"]


def sniff_format(text: str) -> RdfFormat:
    """JSON-LD when the document starts like JSON, else Turtle (N-Triples is Turtle)."""
    return "json-ld" if text.lstrip().startswith(("{", "[")) else "turtle"


def parse_graph(data: str | bytes, fmt: RdfFormat | None = None) -> Graph:
    """Parse ``data``; never reads files or the network."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8", errors="strict")
        except UnicodeDecodeError as exc:  # a PolicyError like every other unreadable document
            fmt = fmt or sniff_format(data.decode("utf-8", errors="replace"))
            code = "jsonld_syntax" if fmt == "json-ld" else "turtle_syntax"
            raise PolicySyntaxError(f"not UTF-8: {exc}", code=code) from exc
    else:
        text = data
    fmt = fmt or sniff_format(text)
    return _parse_jsonld(text) if fmt == "json-ld" else _parse_turtle(text)


def _parse_turtle(text: str) -> Graph:
    graph = Graph()
    try:
        graph.parse(data=text, format="turtle")
    except Exception as exc:
        raise PolicySyntaxError(_first_line(exc), code="turtle_syntax") from exc
    return graph


def _parse_jsonld(text: str) -> Graph:
    try:
        document = json.loads(text, object_pairs_hook=_unique)
    except PolicySchemaError:
        raise
    except ValueError as exc:
        raise PolicySyntaxError(f"not JSON: {exc}", code="jsonld_syntax") from exc
    inlined = inline_contexts(document)
    graph = Graph()
    try:
        with warnings.catch_warnings():
            # rdflib 7's JSON-LD parser builds a ConjunctiveGraph internally and warns that
            # the class is deprecated; the warning is about rdflib, not about the document.
            warnings.filterwarnings("ignore", "ConjunctiveGraph", DeprecationWarning)
            graph.parse(data=json.dumps(inlined), format="json-ld")
    except Exception as exc:
        raise PolicySyntaxError(_first_line(exc), code="jsonld_syntax") from exc
    return graph


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (``json`` would keep the last silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise PolicySchemaError("given twice", code="duplicate_key", key=key)
        out[key] = value
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else 'unreadable document'}"
