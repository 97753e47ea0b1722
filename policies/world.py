"""Read evaluation requests and states of the world as the ODRL suites write them.

* SolidLab / FORCE: an ``odrl:Request`` whose permission names assignee, action, target and
  (``sotw:context``) constraints declaring the request's context; a state of the world with
  ``temp:currentTime dct:issued`` (the time), ``odrl:partOf`` memberships and
  ``report:DutyReport`` deontic states.
* W3C Formal Semantics: an ``EvaluationRequest`` (JSON-LD) with ``requestParameters``; a
  state whose ``sotw:context`` events name the duty they perform (``sotw:conditionID``).

Only strings are parsed here; the caller reads the files.

``build_state`` is the one way a ``State`` is made from facts: the gateway's exchange, the
YAML states of ``sluis policy eval --state`` and of policy tests all go through it, and
``merge`` combines every field of ``State`` (none is dropped), so the same facts give the
same state, and so the same decision, wherever they come from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
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
    return request, World(build_state(broader=_broader(graph)))


def parse_world(data: str | bytes, fmt: RdfFormat | None = None) -> World:
    """A state of the world: time, memberships, duty states."""
    graph = parse_graph(data, fmt)
    times = list(graph.objects(CURRENT_TIME, URIRef(DCT + "issued")))
    now = to_value(times[0]) if times else None
    state = build_state(broader=_broader(graph), duty_states=_duty_states(graph))
    return World(state, now if isinstance(now, datetime) else None)


def build_state(
    *,
    broader: Mapping[str, Iterable[str]] | None = None,
    duty_states: Mapping[str, DutyState] | None = None,
    use_count: int = 0,
    rule_counts: Mapping[str, int] | None = None,
    request_times: Iterable[datetime] = (),
    agreement_start: datetime | None = None,
    privacy_spends: Iterable[tuple[datetime, Decimal]] = (),
) -> State:
    """A ``State`` from its facts, normalised (times sorted) and checked (counts >= 0,
    times with a zone); ``PolicyStructureError`` (``request_structure``) otherwise."""
    times, spends = tuple(request_times), tuple(privacy_spends)
    counts = dict(rule_counts or {})
    if use_count < 0 or any(c < 0 for c in counts.values()):
        raise _bad("use counts are never negative")
    if any(e < 0 for _, e in spends):
        raise _bad("privacy spends are never negative")
    instants = (*times, *([agreement_start] if agreement_start else []), *(t for t, _ in spends))
    if any(t.tzinfo is None for t in instants):  # before sorting: naive and aware do not compare
        raise _bad("state times need a time zone")
    times, spends = tuple(sorted(times)), tuple(sorted(spends))
    return State(
        broader=MappingProxyType({k: frozenset(v) for k, v in (broader or {}).items()}),
        duty_states=MappingProxyType(dict(duty_states or {})),
        use_count=use_count,
        rule_counts=MappingProxyType(counts),
        request_times=times,
        agreement_start=agreement_start,
        privacy_spends=spends,
    )


def merge(*worlds: World) -> World:
    """Facts of every world, every ``State`` field: memberships united, duty states and
    per-rule counts combined (the first world's wins), request times joined; a count or
    start only one world records is kept (the first wins); the first recorded time wins."""
    broader: dict[str, set[str]] = defaultdict(set)
    merged: dict[str, object] = {}
    for world in worlds:
        for term, above in world.state.broader.items():
            broader[term] |= above
        for spec in fields(State):
            if spec.name != "broader":
                merged[spec.name] = _combine(merged.get(spec.name), getattr(world.state, spec.name))
    now = next((w.now for w in worlds if w.now is not None), None)
    state = build_state(**{**merged, "broader": broader})  # type: ignore[arg-type]  # State's own fields
    return World(state, now)


def _combine(first: object, second: object) -> object:
    """One field of two states: mappings united (first wins), tuples joined, else first set."""
    if first is None:
        return second
    if isinstance(first, Mapping) and isinstance(second, Mapping):
        return {**second, **first}
    if isinstance(first, tuple) and isinstance(second, tuple):
        return first + second
    return second if first in (0, None) else first


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
