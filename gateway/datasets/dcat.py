"""The catalog as DCAT-AP 3.0.1 (pure: values in, JSON-LD out; Turtle from the same graph).

Conformance is checked against the official SHACL shapes in the tests (mandatory
properties, cardinalities and ranges). What it carries:

- ``dcat:Catalog`` with ``dct:title``, ``dct:description`` and ``dct:publisher`` (the
  gateway's operator, a ``foaf:Agent`` with ``foaf:name``), ``dcat:service`` and every dataset;
- ``dcat:DataService``: the gateway (``dcat:endpointURL``, ``dct:title``,
  ``dcat:servesDataset``);
- ``dcat:Dataset``: ``dct:identifier``, ``dct:title``, ``dct:description`` (the provider's,
  or a generated sentence when it has none), ``dct:publisher`` (the provider, a
  ``foaf:Agent``), ``dct:issued`` and ``dct:modified`` (recommended), ``odrl:hasPolicy``
  (the stored policy version), ``sluis:schema`` (columns as ``sluis:Column`` with
  ``sluis:name``, ``sluis:type``, ``sluis:nullable``);
- one ``dcat:Distribution`` per output format, each with ``dcat:accessURL`` and
  ``dcat:accessService``, and ``dcat:mediaType`` as an IANA media-type IRI (a
  ``dct:MediaType``) for CSV, Parquet and Arrow; JSON lines has no IANA registration, so its
  Distribution names no media type rather than an invented one.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from rdflib import Graph

IANA: Final = "http://www.iana.org/assignments/media-types/"
CONTEXT: Final = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "odrl": "http://www.w3.org/ns/odrl/2/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "sluis": "https://w3id.org/sluis/odrl#",
}
#: Output format -> (title, IANA media type or None).
FORMATS: Final = {
    "csv": ("CSV", "text/csv"),
    "parquet": ("Apache Parquet", "application/vnd.apache.parquet"),
    "arrow": ("Apache Arrow IPC stream", "application/vnd.apache.arrow.stream"),
    "jsonl": ("JSON lines", None),
}


@dataclass(frozen=True)
class CatalogInfo:
    """Who runs the catalog and how it is described (from the settings)."""

    base: str
    title: str
    description: str
    publisher: str


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset as the catalog shows it."""

    id: str
    title: str
    description: str
    provider_id: str
    provider_name: str
    policy_hash: str
    access_url: str
    columns: Sequence[dict[str, Any]]
    tabular: bool
    issued: datetime
    modified: datetime


def _text(value: str) -> dict[str, str]:
    return {"@value": value, "@language": "en"}


def _when(moment: datetime) -> dict[str, str]:
    return {"@value": moment.astimezone(UTC).isoformat(), "@type": "xsd:dateTime"}


def _agent(iri: str, name: str) -> dict[str, Any]:
    return {"@id": iri, "@type": "foaf:Agent", "foaf:name": name}


def _distribution(base: str, d: DatasetInfo, fmt: str) -> dict[str, Any]:
    title, media = FORMATS[fmt]
    out: dict[str, Any] = {
        "@id": f"{base}/v1/datasets/{d.id}#{fmt}",
        "@type": "dcat:Distribution",
        "dct:title": _text(title),
        "dcat:accessURL": {"@id": d.access_url},
        "dcat:accessService": {"@id": f"{base}/v1"},
    }
    if media is not None:
        out["dcat:mediaType"] = {"@id": IANA + media, "@type": "dct:MediaType"}
    return out


def _column(column: dict[str, Any]) -> dict[str, Any]:
    return {
        "@type": "sluis:Column",
        "sluis:name": column["name"],
        "sluis:type": column["type"],
        "sluis:nullable": bool(column["nullable"]),
    }


def _api(base: str, d: DatasetInfo) -> dict[str, Any]:
    """A pass-through API's one Distribution (no file format to name)."""
    return {
        "@id": f"{base}/v1/datasets/{d.id}#api",
        "@type": "dcat:Distribution",
        "dct:title": _text("Pass-through API"),
        "dcat:accessURL": {"@id": d.access_url},
        "dcat:accessService": {"@id": f"{base}/v1"},
    }


def dataset(base: str, d: DatasetInfo) -> dict[str, Any]:
    """One ``dcat:Dataset``."""
    description = d.description.strip() or (
        f"{d.title}: shared by {d.provider_name} through Sluis under a usage policy "
        "decided on every request."
    )
    formats = list(FORMATS) if d.tabular else []
    out: dict[str, Any] = {
        "@id": f"{base}/v1/datasets/{d.id}",
        "@type": "dcat:Dataset",
        "dct:identifier": d.id,
        "dct:title": _text(d.title),
        "dct:description": _text(description),
        "dct:publisher": _agent(f"urn:sluis:participant:{d.provider_id}", d.provider_name),
        "dct:issued": _when(d.issued),
        "dct:modified": _when(d.modified),
        "odrl:hasPolicy": {
            "@id": f"{base}/v1/datasets/{d.id}#policy",
            "@type": "odrl:Offer",
            "sluis:policyHash": d.policy_hash,
        },
        "sluis:schema": [_column(c) for c in d.columns],
        "dcat:distribution": [_distribution(base, d, f) for f in formats] or [_api(base, d)],
    }
    return out


def catalog(info: CatalogInfo, datasets: Sequence[DatasetInfo]) -> dict[str, Any]:
    """The ``dcat:Catalog`` with its service and datasets, as compacted JSON-LD."""
    base = info.base
    return {
        "@context": CONTEXT,
        "@id": f"{base}/v1/catalog",
        "@type": "dcat:Catalog",
        "dct:title": _text(info.title),
        "dct:description": _text(info.description),
        "dct:publisher": _agent(f"{base}/#operator", info.publisher),
        "dcat:service": {
            "@id": f"{base}/v1",
            "@type": "dcat:DataService",
            "dct:title": _text(f"{info.title}: data endpoint"),
            "dcat:endpointURL": {"@id": base},
            "dcat:servesDataset": [{"@id": f"{base}/v1/datasets/{d.id}"} for d in datasets],
        },
        "dcat:dataset": [dataset(base, d) for d in datasets],
    }


def graph_of(document: dict[str, Any]) -> Graph:
    """The RDF graph of a JSON-LD document (the context is inline: nothing is fetched)."""
    graph = Graph()
    with warnings.catch_warnings():
        # rdflib 7's JSON-LD parser builds a ConjunctiveGraph internally and warns that the
        # class is deprecated; the warning is about rdflib, not about the document.
        warnings.filterwarnings("ignore", "ConjunctiveGraph", DeprecationWarning)
        graph.parse(data=json.dumps(document), format="json-ld")
    return graph


def turtle(document: dict[str, Any]) -> str:
    """The same graph as Turtle."""
    graph = graph_of(document)
    for prefix, namespace in CONTEXT.items():
        if isinstance(namespace, str):
            graph.bind(prefix, namespace)
    return graph.serialize(format="turtle")
