"""Read evaluation requests and states of the world as the ODRL suites write them.

* SolidLab / FORCE: an ``odrl:Request`` whose permission names assignee, action, target and
  (``sotw:context``) constraints declaring the request's context; a state of the world with
  ``temp:currentTime dct:issued`` (the time), ``odrl:partOf`` memberships and
  ``report:DutyReport`` deontic states.
* W3C Formal Semantics: an ``EvaluationRequest`` (JSON-LD) with ``requestParameters``; a
  state whose ``sotw:context`` events name the duty they perform (``sotw:conditionID``).

Only strings are parsed here; the caller reads the files.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from rdflib import RDF, RDFS, Graph, Literal, URIRef
from rdflib.term import Node

from policies.documents import RdfFormat, parse_graph
from policies.errors import PolicyStructureError
from policies.model import Value
from policies.rdf_policy import objects
from policies.rdf_values import node_id, to_value
from policies.request import DutyState, Request, State
from policies.vocab import DCT, ODRL, REPORT, SOTW

CURRENT_TIME = URIRef("http://example.com/request/currentTime")
_BROADER = (ODRL + "partOf", str(RDF.type), str(RDFS.subClassOf))
_DEONTIC = {
    REPORT + "Fulfilled": DutyState.FULFILLED,
    REPORT + "Violated": DutyState.VIOLATED,
    REPORT + "NonSet": DutyState.PENDING,
}


@dataclass(frozen=True)
class World:
    """A state of the world and the time it records (``None`` when it records none)."""

    state: State = field(default_factory=State)
    now: datetime | None = None


def parse_request(data: str | bytes, fmt: RdfFormat | None = None) -> tuple[Request, World]:
    """An ``odrl:Request`` and the facts its document states (types, memberships)."""
    graph = parse_graph(data, fmt)
    nodes = list(graph.subjects(RDF.type, URIRef(ODRL + "Request")))
    if len(nodes) != 1:
        raise _bad(f"expected one odrl:Request, found {len(nodes)}")
    perms = objects(graph, nodes[0], ODRL + "permission")
    if len(perms) != 1:
        raise _bad("a request needs exactly one permission")
    perm = perms[0]
    actions = objects(graph, perm, ODRL + "action")
    if len(actions) != 1:
        raise _bad("a request needs exactly one action")
    request = Request(
        party=_one(graph, perm, ODRL + "assignee"),
        action=str(actions[0]),
        target=_one(graph, perm, ODRL + "target"),
        context=_declared(graph, objects(graph, perm, SOTW + "context")),
    )
    return request, World(State(broader=_broader(graph)))


def parse_world(data: str | bytes, fmt: RdfFormat | None = None) -> World:
    """A state of the world: time, memberships, duty states."""
    graph = parse_graph(data, fmt)
    times = list(graph.objects(CURRENT_TIME, URIRef(DCT + "issued")))
    now = to_value(times[0]) if times else None
    state = State(broader=_broader(graph), duty_states=_duty_states(graph))
    return World(state, now if isinstance(now, datetime) else None)


def merge(*worlds: World) -> World:
    """Facts of every world; the first recorded time wins."""
    broader: dict[str, set[str]] = defaultdict(set)
    duties: dict[str, DutyState] = {}
    for world in worlds:
        for term, above in world.state.broader.items():
            broader[term] |= above
        duties.update(world.state.duty_states)
    now = next((w.now for w in worlds if w.now is not None), None)
    frozen = {k: frozenset(v) for k, v in broader.items()}
    return World(State(MappingProxyType(frozen), MappingProxyType(duties)), now)


def _one(graph: Graph, node: Node, prop: str) -> str | None:
    found = objects(graph, node, prop)
    return node_id(found[0]) if found else None


def _declared(graph: Graph, constraints: list[Node]) -> MappingProxyType[str, tuple[Value, ...]]:
    context: dict[str, list[Value]] = defaultdict(list)
    for c in constraints:
        left = objects(graph, c, ODRL + "leftOperand")
        right = objects(graph, c, ODRL + "rightOperand")
        if left:
            context[str(left[0])].extend(to_value(r) for r in right)
    return MappingProxyType({k: tuple(v) for k, v in context.items()})


def _broader(graph: Graph) -> MappingProxyType[str, frozenset[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for prop in _BROADER:
        for s, o in graph.subject_objects(URIRef(prop)):
            if not isinstance(o, Literal):
                found[node_id(s)].add(node_id(o))
    return MappingProxyType({k: frozenset(v) for k, v in found.items()})


def _duty_states(graph: Graph) -> MappingProxyType[str, DutyState]:
    states: dict[str, DutyState] = {}
    for report in graph.subjects(RDF.type, URIRef(REPORT + "DutyReport")):
        rules = objects(graph, report, REPORT + "rule")
        deontic = objects(graph, report, REPORT + "deonticState")
        if rules and deontic and str(deontic[0]) in _DEONTIC:
            states[node_id(rules[0])] = _DEONTIC[str(deontic[0])]
    for prop in ("conditionID", "conditionId"):
        for _, duty in graph.subject_objects(URIRef(SOTW + prop)):
            states[node_id(duty)] = DutyState.FULFILLED
    return MappingProxyType(states)


def _bad(reason: str) -> PolicyStructureError:
    return PolicyStructureError(reason, code="request_structure")
