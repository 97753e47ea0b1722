"""The catalog as DCAT-AP 3.0.1 (issue 14, step 4), checked with pyshacl against the official
shapes from ../shared/vectors/dcat-ap: the mandatory shapes and the ranges conform, as
JSON-LD and as Turtle (content negotiation), over real mTLS."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from rdflib import Graph, URIRef
from rdflib.compare import isomorphic

from gateway.datasets.dcat import graph_of
from tests.dsp.conftest import Provider
from tests.support.shared import VECTORS

SHAPES = VECTORS / "dcat-ap"
DCAT = "http://www.w3.org/ns/dcat#"


@cache
def _shapes() -> Graph:
    graph = Graph()
    for name in ("shapes.ttl", "range.ttl"):  # mandatory + cardinalities, and the ranges
        graph.parse(SHAPES / name, format="turtle")
    return graph


def _conforms(data: Graph, shapes: Graph) -> tuple[bool, str]:
    from pyshacl import validate  # noqa: PLC0415 - dev dependency, imported where used

    conforms, _, text = validate(data, shacl_graph=shapes, inference="rdfs")
    return bool(conforms), str(text)


def _get(provider: Provider, accept: str) -> Any:
    with provider.client("university") as client:
        return client.get("/v1/catalog/dcat", headers={"Accept": accept})


@pytest.fixture(scope="module")
def graph(provider: Provider) -> Graph:
    if not SHAPES.is_dir():
        pytest.skip(f"DCAT-AP shapes not present at {SHAPES}")
    response = _get(provider, "application/ld+json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/ld+json"
    return graph_of(response.json())


def test_the_catalog_conforms_to_the_mandatory_shapes_and_ranges(graph: Graph) -> None:
    conforms, report = _conforms(graph, _shapes())
    assert conforms, report


def test_turtle_by_content_negotiation_is_the_same_graph(provider: Provider, graph: Graph) -> None:
    response = _get(provider, "text/turtle")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/turtle")
    turtle = Graph()
    turtle.parse(data=response.text, format="turtle")
    assert isomorphic(turtle, graph)


def test_media_types_are_iana_iris_one_per_distribution(graph: Graph) -> None:
    media = list(graph.objects(None, URIRef(DCAT + "mediaType")))
    assert URIRef("http://www.iana.org/assignments/media-types/text/csv") in media
    for distribution in graph.subjects(URIRef(DCAT + "mediaType"), None):
        assert len(list(graph.objects(distribution, URIRef(DCAT + "mediaType")))) == 1


def test_columns_expand_to_sluis_terms(graph: Graph) -> None:
    names = set(graph.objects(None, URIRef("https://w3id.org/sluis/odrl#name")))
    assert {str(n) for n in names} == {"machine"}
