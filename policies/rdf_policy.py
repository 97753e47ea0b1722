"""Read an ODRL 2.2 policy out of an rdflib graph (from Turtle or JSON-LD alike)."""

from __future__ import annotations

import json

from rdflib import RDF, Graph, URIRef
from rdflib.compare import to_canonical_graph
from rdflib.term import Node

from policies.documents import RdfFormat, parse_graph, sniff_format
from policies.errors import PolicySchemaError, PolicyStructureError
from policies.jsonld_contexts import inline_contexts
from policies.model import Action, AnyConstraint, Constraint, LogicalConstraint, Policy, Ref, Rule
from policies.model import RuleKind as K
from policies.rdf_terms import undefined_keys, unknown_terms
from policies.rdf_values import node_id, to_value
from policies.vocab import LOGICAL, ODRL, POLICY_TYPES, RDF_VALUE

_INHERITED = ("assigner", "assignee", "target", "action")
_NESTED = {K.PERMISSION: "duty", K.PROHIBITION: "remedy", K.DUTY: "consequence"}


def parse_policy(data: str | bytes, fmt: RdfFormat | None = None) -> Policy:
    """The single ODRL policy in a Turtle or JSON-LD document.

    Blank nodes are relabelled from the graph's content first (RDF canonicalisation), so a
    rule written as ``[ ... ]`` gets the same uid, order and policy hash on every parse.
    Nothing is dropped silently: a JSON-LD key no context defines, or an ODRL / Sluis term
    the reader does not follow, is an error naming it (``policies.rdf_terms``).
    """
    graph = parse_graph(data, fmt)
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    if (fmt or sniff_format(text)) == "json-ld":
        for key in undefined_keys(inline_contexts(json.loads(text))):
            reason = "no JSON-LD context defines it, so it would be dropped"
            raise PolicySchemaError(reason, code="unknown_key", key=key)
    canonical = Graph()
    canonical += to_canonical_graph(graph)
    return policy_from_graph(canonical)


def policy_from_graph(graph: Graph) -> Policy:
    """The single policy node of ``graph``, read into the model."""
    nodes = sorted({s for t in POLICY_TYPES for s in graph.subjects(RDF.type, URIRef(t))}, key=str)
    if len(nodes) != 1:
        raise PolicyStructureError(f"expected one ODRL policy, found {len(nodes)}")
    for unknown in unknown_terms(graph):
        raise unknown
    return _Reader(graph).policy(nodes[0])


def objects(graph: Graph, subject: Node, prop: str) -> list[Node]:
    """Objects of ``prop``, with RDF lists (JSON-LD ``@list``) unrolled, in a stable order."""
    out: list[Node] = []
    for obj in sorted(graph.objects(subject, URIRef(prop)), key=str):
        if obj == RDF.nil:
            continue  # the empty list, read as such (rdflib 7.0's Collection calls it recursive)
        if (obj, RDF.first, None) in graph:
            out.extend(_rdf_list(graph, obj, prop))
        else:
            out.append(obj)
    return out


def _rdf_list(graph: Graph, head: Node, prop: str) -> list[Node]:
    """The items of the RDF list at ``head``, as rdflib's ``Graph.items`` reads them.

    Our own walk, not rdflib's ``Collection``: rdflib 7.0 follows an ``rdf:rest`` cycle
    forever; here a cycle is a PolicyStructureError, whatever rdflib's version.
    """
    items: list[Node] = []
    seen: set[Node | None] = {head}
    node: Node | None = head
    while node is not None and node != RDF.nil:
        item = graph.value(node, RDF.first)
        if item is not None:
            items.append(item)
        node = graph.value(node, RDF.rest)
        if node in seen:
            raise PolicyStructureError(f"{prop} holds a recursive RDF list")
        seen.add(node)
    return items


class _Reader:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.inherit: dict[str, list[Node]] = {}

    def policy(self, node: Node) -> Policy:
        g = self.graph
        self.inherit = {p: objects(g, node, ODRL + p) for p in _INHERITED}
        uids = objects(g, node, ODRL + "uid")
        types = sorted(str(t) for t in g.objects(node, RDF.type) if str(t) in POLICY_TYPES)
        conflict = objects(g, node, ODRL + "conflict")
        return Policy(
            uid=str(uids[0]) if uids else node_id(node),
            type=types[0],
            permissions=self.rules(node, "permission", K.PERMISSION),
            prohibitions=self.rules(node, "prohibition", K.PROHIBITION),
            obligations=self.rules(node, "obligation", K.DUTY),
            conflict=str(conflict[0]) if conflict else None,
            profiles=tuple(str(p) for p in objects(g, node, ODRL + "profile")),
        )

    def rules(self, node: Node, prop: str, kind: K) -> tuple[Rule, ...]:
        return tuple(self.rule(r, kind) for r in objects(self.graph, node, ODRL + prop))

    def rule(self, node: Node, kind: K) -> Rule:
        nested = _NESTED.get(kind)
        return Rule(
            kind=kind,
            uid=node_id(node),
            actions=tuple(self.action(a) for a in self.prop(node, "action")),
            targets=self.refs(node, "target", "AssetCollection"),
            assignees=self.refs(node, "assignee", "PartyCollection"),
            assigners=self.refs(node, "assigner", "PartyCollection"),
            constraints=self.constraints(node, "constraint"),
            duties=self.rules(node, nested, K.DUTY) if nested else (),
        )

    def prop(self, node: Node, name: str) -> list[Node]:
        own = objects(self.graph, node, ODRL + name)
        return own or self.inherit.get(name, [])

    def refs(self, node: Node, name: str, collection: str) -> tuple[Ref, ...]:
        coll = URIRef(ODRL + collection)
        return tuple(
            Ref(node_id(n), collection=(n, RDF.type, coll) in self.graph)
            for n in self.prop(node, name)
        )

    def action(self, node: Node) -> Action:
        values = objects(self.graph, node, RDF_VALUE)
        if not values and isinstance(node, URIRef):
            return Action(str(node))
        if not values or not isinstance(values[0], URIRef):
            raise PolicyStructureError(f"action {node_id(node)} names no action (rdf:value)")
        return Action(str(values[0]), self.constraints(node, "refinement"))

    def constraints(self, node: Node, prop: str) -> tuple[AnyConstraint, ...]:
        return tuple(self.constraint(c) for c in objects(self.graph, node, ODRL + prop))

    def constraint(self, node: Node) -> AnyConstraint:
        g = self.graph
        for op in LOGICAL:
            members = objects(g, node, op)
            if members:
                inner = tuple(self.constraint(m) for m in members)
                return LogicalConstraint(op, inner, node_id(node))
        left = objects(g, node, ODRL + "leftOperand")
        oper = objects(g, node, ODRL + "operator")
        if len(left) != 1 or len(oper) != 1:
            raise PolicyStructureError(f"constraint {node_id(node)} needs one leftOperand/operator")
        right = objects(g, node, ODRL + "rightOperand") + objects(
            g, node, ODRL + "rightOperandReference"
        )
        unit = objects(g, node, ODRL + "unit")
        return Constraint(
            left_operand=str(left[0]),
            operator=str(oper[0]),
            right_operand=tuple(to_value(r) for r in right),
            uid=node_id(node),
            unit=str(unit[0]) if unit else None,
        )
