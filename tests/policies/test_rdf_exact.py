"""Issue 18: the Turtle / JSON-LD reader, read back field by field and refused word for word.

What ``parse_policy`` makes of each ODRL property (the rules and their nesting, what a rule
inherits from its policy, collections, actions with refinements, logical constraints, RDF
lists), how a literal becomes an engine value, and each refusal's code and sentence: the
document, the terms the reader does not follow, the JSON-LD keys and contexts.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from rdflib import BNode, Literal, URIRef

from policies import PolicyError, parse_policy, policy_hash
from policies.documents import RdfFormat, _first_line, parse_graph, sniff_format
from policies.errors import PolicySchemaError, PolicyStructureError, PolicySyntaxError
from policies.jsonld_contexts import ODRL_CONTEXT, inline_contexts
from policies.model import Action, Constraint, Iri, LogicalConstraint, Ref, RuleKind, TypedLiteral
from policies.rdf_terms import undefined_keys, unknown_terms
from policies.rdf_values import literal_value, node_id, parse_datetime, to_value
from policies.vocab import ODRL, SLUIS, XSD

PREFIXES = """
@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
@prefix sluis: <https://w3id.org/sluis/odrl#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
"""
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


def ttl(body: str) -> str:
    return PREFIXES + body


def refused(text: str, error: type[PolicyError] = PolicyError) -> PolicyError:
    with pytest.raises(error) as caught:
        parse_policy(text)
    return caught.value


# The document.


def test_every_part_of_a_policy_is_read() -> None:
    policy = parse_policy(
        ttl("""
<urn:p> a odrl:Agreement ; odrl:uid <urn:uid> ; odrl:conflict odrl:perm ;
  odrl:profile <urn:prof:b>, <urn:prof:a> ;
  odrl:permission <urn:r1> ; odrl:prohibition <urn:r2> ; odrl:obligation <urn:r3> .
<urn:r1> odrl:action odrl:read ; odrl:target <urn:d> ; odrl:assignee <urn:party> ;
  odrl:assigner <urn:prov> ; odrl:duty <urn:d1> .
<urn:d1> odrl:action odrl:inform ; odrl:consequence <urn:c1> .
<urn:c1> odrl:action odrl:delete .
<urn:r2> odrl:action odrl:use ; odrl:target <urn:d> ; odrl:assignee <urn:rivals> ;
  odrl:remedy <urn:rem> .
<urn:rem> odrl:action odrl:delete .
<urn:r3> odrl:action odrl:compensate ; odrl:assignee <urn:party> ;
  odrl:consequence <urn:c3> .
<urn:c3> odrl:action odrl:inform .
<urn:rivals> a odrl:PartyCollection .
""")
    )
    assert policy.uid == "urn:uid"
    assert policy.type == ODRL + "Agreement"
    assert policy.conflict == ODRL + "perm"
    assert policy.profiles == ("urn:prof:a", "urn:prof:b")
    (permit,) = policy.permissions
    assert permit.kind is RuleKind.PERMISSION
    assert permit.uid == "urn:r1"
    assert permit.actions == (Action(ODRL + "read"),)
    assert permit.targets == (Ref("urn:d"),)
    assert permit.assignees == (Ref("urn:party"),)
    assert permit.assigners == (Ref("urn:prov"),)
    (duty,) = permit.duties
    assert (duty.kind, duty.uid, duty.actions) == (
        RuleKind.DUTY,
        "urn:d1",
        (Action(ODRL + "inform"),),
    )
    assert [(c.kind, c.uid) for c in duty.duties] == [(RuleKind.DUTY, "urn:c1")]
    (prohibition,) = policy.prohibitions
    assert prohibition.kind is RuleKind.PROHIBITION
    assert prohibition.assignees == (Ref("urn:rivals", collection=True),)
    assert [(r.kind, r.uid) for r in prohibition.duties] == [(RuleKind.DUTY, "urn:rem")]
    (obligation,) = policy.obligations
    assert obligation.kind is RuleKind.DUTY
    assert [(c.kind, c.uid) for c in obligation.duties] == [(RuleKind.DUTY, "urn:c3")]
    # A permission's remedy or consequence, a prohibition's duty: not what ODRL nests there.
    assert policy.permissions[0].duties[0].duties[0].duties == ()


def test_a_policy_without_uid_conflict_or_profile() -> None:
    policy = parse_policy(ttl("<urn:p> a odrl:Set ."))
    assert (policy.uid, policy.type, policy.conflict, policy.profiles) == (
        "urn:p",
        ODRL + "Set",
        None,
        (),
    )
    assert (policy.permissions, policy.prohibitions, policy.obligations) == ((), (), ())


def test_a_policy_of_two_types_takes_the_first_in_order() -> None:
    policy = parse_policy(ttl("<urn:p> a odrl:Set, odrl:Offer, odrl:Action ."))
    assert policy.type == ODRL + "Offer"


def test_a_rule_inherits_what_it_does_not_state() -> None:
    policy = parse_policy(
        ttl("""
<urn:p> a odrl:Set ; odrl:assigner <urn:prov> ; odrl:assignee <urn:all> ;
  odrl:target <urn:d> ; odrl:action odrl:use ;
  odrl:permission <urn:r1>, <urn:r2> .
<urn:r1> odrl:target <urn:e> .
<urn:r2> odrl:action odrl:read ; odrl:assignee <urn:one> ; odrl:assigner <urn:other> .
<urn:all> a odrl:PartyCollection .
<urn:d> a odrl:AssetCollection .
""")
    )
    one, two = policy.permissions
    assert one.targets == (Ref("urn:e"),)
    assert one.actions == (Action(ODRL + "use"),)
    assert one.assignees == (Ref("urn:all", collection=True),)
    assert one.assigners == (Ref("urn:prov"),)
    assert two.targets == (Ref("urn:d", collection=True),)
    assert two.actions == (Action(ODRL + "read"),)
    assert two.assignees == (Ref("urn:one"),)
    assert two.assigners == (Ref("urn:other"),)


def test_a_blank_rule_is_named_by_its_canonical_label_the_same_on_every_parse() -> None:
    text = ttl("<urn:p> a odrl:Set ; odrl:permission [ odrl:action odrl:read ] .")
    first, second = parse_policy(text), parse_policy(text)
    assert first.permissions[0].uid is not None
    assert first.permissions[0].uid.startswith("_:")
    assert first.permissions[0].uid == second.permissions[0].uid
    assert policy_hash(first) == policy_hash(second)


@pytest.mark.parametrize(
    ("body", "found"),
    [
        ("<urn:x> odrl:action odrl:read .", 0),
        ("<urn:p> a odrl:Set . <urn:q> a odrl:Offer .", 2),
    ],
)
def test_one_policy_exactly(body: str, found: int) -> None:
    error = refused(ttl(body), PolicyStructureError)
    assert (error.code, error.reason) == (
        "policy_structure",
        f"expected one ODRL policy, found {found}",
    )


def test_a_policy_of_two_policy_types_is_one_policy() -> None:
    assert parse_policy(ttl("<urn:p> a odrl:Set, odrl:Policy .")).type == ODRL + "Policy"


def test_the_first_unknown_term_is_named() -> None:
    error = refused(
        ttl("<urn:p> a odrl:Set, odrl:Sett ; odrl:zz 1 ; odrl:aa 2 ; odrl:conflict odrl:x .")
    )
    assert (error.code, error.reason) == ("unknown_property", f"unknown property: {ODRL}aa")


def test_unknown_terms_each_kind_in_order() -> None:
    graph = parse_graph(
        ttl("""
<urn:p> a odrl:Set, odrl:Sett, sluis:Thing, <urn:Other> ; odrl:zz 1 ; sluis:aa 2 ;
  <urn:annotation> 3 ; odrl:conflict odrl:prohibit, odrl:bad, <urn:worse> .
""")
    )
    found = [(e.code, e.term) for e in unknown_terms(graph)]
    assert found == [
        ("unknown_property", ODRL + "zz"),
        ("unknown_property", SLUIS + "aa"),
        ("unknown_class", ODRL + "Sett"),
        ("unknown_class", SLUIS + "Thing"),
        ("unknown_conflict", ODRL + "bad"),
        ("unknown_conflict", "urn:worse"),
    ]


def test_every_followed_property_and_class_is_understood() -> None:
    graph = parse_graph(
        ttl("""
<urn:p> a odrl:Set ; odrl:conflict odrl:perm, odrl:invalid ; odrl:source <urn:s> ;
  odrl:uid <urn:u> ; odrl:profile <urn:prof> .
<urn:r> odrl:refinement <urn:c> ; odrl:rightOperandReference <urn:x> ; odrl:unit <urn:u> ;
  odrl:andSequence <urn:c> ; odrl:xone <urn:c> ; odrl:or <urn:c> ; odrl:and <urn:c> .
<urn:c> a odrl:LogicalConstraint, odrl:Constraint, odrl:Ticket, odrl:Privacy, odrl:Assertion,
  odrl:Rule, odrl:Asset, odrl:Party, odrl:Duty, odrl:Permission, odrl:Prohibition .
""")
    )
    assert list(unknown_terms(graph)) == []


# RDF lists.


def test_an_rdf_list_is_unrolled_in_order_and_the_empty_list_read_as_empty() -> None:
    policy = parse_policy(
        ttl("""
<urn:p> a odrl:Set ; odrl:permission [ odrl:action odrl:read ;
  odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:isAnyOf ;
                    odrl:rightOperand ( "c" "a" "b" ), "z" ] ,
                  [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:isAnyOf ;
                    odrl:rightOperand () ] ] .
""")
    )
    listed, empty = policy.permissions[0].constraints
    if not listed.right_operand:  # type: ignore[union-attr]
        listed, empty = empty, listed
    assert empty.right_operand == ()  # type: ignore[union-attr]
    right = listed.right_operand  # type: ignore[union-attr]
    assert right in (("c", "a", "b", "z"), ("z", "c", "a", "b"))


def test_a_list_item_without_rdf_first_is_skipped() -> None:
    policy = parse_policy(
        ttl("""
<urn:p> a odrl:Set ; odrl:permission [ odrl:action odrl:read ;
  odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:isAnyOf ;
                    odrl:rightOperand _:l1 ] ] .
_:l1 rdf:first "a" ; rdf:rest _:l2 .
_:l2 rdf:rest _:l3 .
_:l3 rdf:first "c" ; rdf:rest rdf:nil .
""")
    )
    assert policy.permissions[0].constraints[0].right_operand == ("a", "c")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "cells",
    [
        '_:l1 rdf:first "a" ; rdf:rest _:l2 . _:l2 rdf:first "b" ; rdf:rest _:l1 .',
        # A cycle that does not pass the head again.
        '_:l1 rdf:first "a" ; rdf:rest _:l2 . _:l2 rdf:first "b" ; rdf:rest _:l3 .'
        '_:l3 rdf:first "c" ; rdf:rest _:l2 .',
    ],
)
def test_a_recursive_rdf_list_names_its_property(cells: str) -> None:
    error = refused(
        ttl(f"""
<urn:p> a odrl:Set ; odrl:permission [ odrl:action odrl:read ;
  odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:isAnyOf ;
                    odrl:rightOperand _:l1 ] ] .
{cells}
"""),
        PolicyStructureError,
    )
    assert (error.code, error.reason) == (
        "policy_structure",
        f"{ODRL}rightOperand holds a recursive RDF list",
    )


# Actions and constraints.


def test_a_refined_action() -> None:
    policy = parse_policy(
        ttl("""
<urn:p> a odrl:Set ; odrl:permission <urn:r> .
<urn:r> odrl:action [ rdf:value odrl:read ;
  odrl:refinement <urn:c> ] .
<urn:c> odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ; odrl:rightOperand "x" .
""")
    )
    assert policy.permissions[0].actions == (
        Action(ODRL + "read", (Constraint(ODRL + "purpose", ODRL + "eq", ("x",), "urn:c"),)),
    )


def test_an_action_iri_with_rdf_value_is_read_from_its_value() -> None:
    policy = parse_policy(
        ttl("""
<urn:p> a odrl:Set ; odrl:permission [ odrl:action <urn:act> ] .
<urn:act> rdf:value odrl:use .
""")
    )
    assert policy.permissions[0].actions == (Action(ODRL + "use"),)


@pytest.mark.parametrize("value", ["", 'rdf:value "read" ;'])
def test_an_action_that_names_no_action(value: str) -> None:
    error = refused(
        ttl(f"""
<urn:p> a odrl:Set ; odrl:permission [ odrl:action _:a ] .
_:a {value} odrl:refinement <urn:c> .
<urn:c> odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ; odrl:rightOperand "x" .
"""),
        PolicyStructureError,
    )
    assert error.code == "policy_structure"
    assert error.reason.startswith("action _:")
    assert error.reason.endswith(" names no action (rdf:value)")


def test_a_constraint_read_whole() -> None:
    policy = parse_policy(
        ttl("""
<urn:p> a odrl:Set ; odrl:permission [ odrl:action odrl:read ; odrl:constraint <urn:c> ] .
<urn:c> odrl:leftOperand odrl:payAmount ; odrl:operator odrl:lteq ;
  odrl:rightOperand "5.0"^^xsd:decimal ; odrl:rightOperandReference <urn:ref> ;
  odrl:unit <urn:eur> .
""")
    )
    (constraint,) = policy.permissions[0].constraints
    assert constraint == Constraint(
        ODRL + "payAmount", ODRL + "lteq", (Decimal("5.0"), Iri("urn:ref")), "urn:c", "urn:eur"
    )


@pytest.mark.parametrize("op", ["and", "or", "xone", "andSequence"])
def test_a_logical_constraint(op: str) -> None:
    policy = parse_policy(
        ttl(f"""
<urn:p> a odrl:Set ; odrl:permission [ odrl:action odrl:read ; odrl:constraint <urn:l> ] .
<urn:l> odrl:{op} ( <urn:c2> <urn:c1> ) .
<urn:c1> odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ; odrl:rightOperand "x" .
<urn:c2> odrl:leftOperand odrl:count ; odrl:operator odrl:lt ; odrl:rightOperand 3 .
""")
    )
    assert policy.permissions[0].constraints == (
        LogicalConstraint(
            ODRL + op,
            (
                Constraint(ODRL + "count", ODRL + "lt", (3,), "urn:c2"),
                Constraint(ODRL + "purpose", ODRL + "eq", ("x",), "urn:c1"),
            ),
            "urn:l",
        ),
    )


@pytest.mark.parametrize(
    "body",
    [
        "odrl:operator odrl:eq",
        "odrl:leftOperand odrl:purpose",
        "odrl:leftOperand odrl:purpose, odrl:count ; odrl:operator odrl:eq",
        "odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq, odrl:neq",
    ],
)
def test_a_constraint_needs_one_left_operand_and_one_operator(body: str) -> None:
    error = refused(
        ttl(f"""
<urn:p> a odrl:Set ; odrl:permission [ odrl:action odrl:read ; odrl:constraint <urn:c> ] .
<urn:c> {body} ; odrl:rightOperand "x" .
"""),
        PolicyStructureError,
    )
    assert error.reason == "constraint urn:c needs one leftOperand/operator"


# JSON-LD.

JSONLD = {
    "@context": "http://www.w3.org/ns/odrl.jsonld",
    "@type": "Set",
    "uid": "urn:p",
    "permission": [{"target": "urn:d", "action": "read"}],
}


def test_a_jsonld_policy_is_the_same_policy_as_its_turtle() -> None:
    turtle = ttl("<urn:p> a odrl:Set ; odrl:permission [ odrl:action odrl:read ; "
                 "odrl:target <urn:d> ] .")  # fmt: skip
    from_json = parse_policy(json.dumps(JSONLD))
    assert from_json.permissions[0].targets == (Ref("urn:d"),)
    assert policy_hash(from_json) == policy_hash(parse_policy(turtle))
    assert policy_hash(parse_policy(json.dumps(JSONLD).encode())) == policy_hash(from_json)
    assert policy_hash(parse_policy(json.dumps(JSONLD), "json-ld")) == policy_hash(from_json)


def test_an_undefined_jsonld_key_is_refused_with_its_reason() -> None:
    text = json.dumps({**JSONLD, "permision": []})
    error = refused(text, PolicySchemaError)
    assert (error.code, error.key, error.reason) == (
        "unknown_key",
        "permision",
        "no JSON-LD context defines it, so it would be dropped",
    )
    # Also when the format is named rather than sniffed.
    assert refused(text, PolicySchemaError).key == "permision"
    with pytest.raises(PolicySchemaError):
        parse_policy(text, "json-ld")


def test_undefined_keys() -> None:
    document = {
        "@context": [{"a": "urn:a"}, {"b": {"@id": "urn:b"}}],
        "@id": "urn:x",
        "a": [{"b": 1, "c": 2, "ex:d": 3, "@type": "urn:T"}],
        "nested": {"@context": {"e": "urn:e"}, "e": 1, "f": 2},
    }
    assert list(undefined_keys(document)) == ["c", "nested", "f"]
    assert list(undefined_keys([document, {"g": 1}])) == ["c", "nested", "f", "g"]
    assert list(undefined_keys({"@context": {"@vocab": "urn:v#"}, "anything": 1})) == []
    assert list(undefined_keys({"@context": [{"@vocab": "urn:v#"}], "anything": 1})) == []
    assert list(undefined_keys({"@context": "urn:remote", "x": 1})) == ["x"]
    # A context's own term definitions are not keys of the document.
    scoped = {"@context": {"a": {"@id": "urn:a", "@context": {"b": "urn:b"}}}, "a": 1}
    assert list(undefined_keys(scoped)) == []


def test_a_remote_context_is_refused_by_name() -> None:
    text = json.dumps({**JSONLD, "@context": "https://example.org/odrl.jsonld"})
    error = refused(text, PolicySyntaxError)
    assert (error.code, error.reason) == (
        "jsonld_remote_context",
        "remote JSON-LD context https://example.org/odrl.jsonld is not embedded",
    )
    with pytest.raises(PolicySyntaxError, match="urn:nested is not embedded"):
        inline_contexts([{"a": {"@context": ["http://www.w3.org/ns/odrl.jsonld", "urn:nested"]}}])


def test_contexts_are_inlined_at_every_depth() -> None:
    document = [
        {
            "@context": ["http://www.w3.org/ns/odrl.jsonld", {"x": "urn:x"}],
            "a": {"@context": "https://www.w3.org/ns/odrl.jsonld", "b": 1},
            "c": [1, "d", None],
        },
        5,
    ]
    assert inline_contexts(document) == [
        {
            "a": {"b": 1, "@context": ODRL_CONTEXT},
            "c": [1, "d", None],
            "@context": [ODRL_CONTEXT, {"x": "urn:x"}],
        },
        5,
    ]
    # A context that is neither a URL, a list nor an object is left for JSON-LD to refuse.
    assert inline_contexts({"@context": None}) == {"@context": None}
    assert inline_contexts(
        {"@context": {"y": {"@context": "http://www.w3.org/ns/odrl.jsonld"}}}
    ) == {"@context": {"y": {"@context": ODRL_CONTEXT}}}


@pytest.mark.parametrize(
    ("text", "code", "reason"),
    [
        ("{", "jsonld_syntax", "not JSON: Expecting property name enclosed in double quotes: "
         "line 1 column 2 (char 1)"),
        ('{"a": 1, "a": 2}', "duplicate_key", "given twice"),
        ('{"@context": 5}', "jsonld_syntax", "AttributeError: 'int' object has no attribute 'get'"),
        ("<urn:p> <urn:q> .", "turtle_syntax", "BadSyntax: at line 1 of <>:"),
    ],
)  # fmt: skip
def test_a_document_that_does_not_parse(text: str, code: str, reason: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_graph(text)
    assert (caught.value.code, caught.value.reason) == (code, reason)


def test_an_error_is_named_by_its_first_line() -> None:
    assert _first_line(ValueError("  one\ntwo ")) == "ValueError: one"
    assert _first_line(ValueError("")) == "ValueError: unreadable document"


def test_a_duplicate_key_names_it() -> None:
    with pytest.raises(PolicySchemaError) as caught:
        parse_graph('{"@context": {}, "x": {"k": 1, "k": 2}}')
    assert (caught.value.code, caught.value.key) == ("duplicate_key", "k")


@pytest.mark.parametrize(
    ("text", "fmt"),
    [("{}", "json-ld"), ("  \n[]", "json-ld"), ("<a> <b> <c> .", "turtle"), ("", "turtle")],
)
def test_the_format_is_sniffed(text: str, fmt: str) -> None:
    assert sniff_format(text) == fmt


def test_a_named_format_wins_over_the_sniffed_one() -> None:
    with pytest.raises(PolicySyntaxError) as caught:
        parse_graph('{"@context": {}}', "turtle")
    assert caught.value.code == "turtle_syntax"
    assert len(parse_graph(b"[]", "json-ld")) == 0


# Literals to values.


@pytest.mark.parametrize(
    ("lexical", "datatype", "value"),
    [
        (" x ", None, "x"),
        (" x ", XSD + "string", "x"),
        ("2027-01-02T03:04:05Z", XSD + "dateTime", datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2027-01-02", XSD + "date", date(2027, 1, 2)),
        ("2027-01-02+02:00", XSD + "date", date(2027, 1, 2)),
        *((" 7 ", XSD + t, 7) for t in ["integer", "int", "long", "short", "byte",
                                         "nonNegativeInteger", "positiveInteger", "unsignedInt"]),
        ("1.50", XSD + "decimal", Decimal("1.50")),
        ("1.5", XSD + "double", Decimal("1.5")),
        ("1.5", XSD + "float", Decimal("1.5")),
        ("true", XSD + "boolean", True),
        ("1", XSD + "boolean", True),
        ("false", XSD + "boolean", False),
        ("0", XSD + "boolean", False),
        ("yes", XSD + "boolean", False),
        ("5", XSD + "gYear", TypedLiteral("5", XSD + "gYear")),
        # A value its datatype cannot read stays a typed literal, as written.
        (" soon ", XSD + "dateTime", TypedLiteral(" soon ", XSD + "dateTime")),
        ("x", XSD + "integer", TypedLiteral("x", XSD + "integer")),
        ("x", XSD + "decimal", TypedLiteral("x", XSD + "decimal")),
        # XSD's zone designator is an upper-case Z only.
        ("2027-01-02T03:04:05z", XSD + "dateTime",
         TypedLiteral("2027-01-02T03:04:05z", XSD + "dateTime")),
    ],
)  # fmt: skip
def test_a_literal_by_its_datatype(lexical: str, datatype: str | None, value: object) -> None:
    got = literal_value(lexical, datatype)
    assert got == value
    assert type(got) is type(value)


def test_terms_to_values() -> None:
    assert to_value(URIRef("urn:x")) == Iri("urn:x")
    assert to_value(Literal("x")) == "x"
    assert to_value(Literal("3", datatype=URIRef(XSD + "integer"))) == 3
    assert to_value(Literal("x", lang="en")) == "x"
    assert to_value(BNode("b1")) == Iri("_:b1")
    assert node_id(BNode("b1")) == "_:b1"
    assert node_id(URIRef("urn:x")) == "urn:x"


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2027-01-02T03:04:05Z", datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2027-01-02 03:04:05", datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (" 2027-01-02T03:04:05 ", datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (
            "2027-01-02T03:04:05+02:00",
            datetime(2027, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_a_datetime_without_a_zone_is_utc(text: str, moment: datetime) -> None:
    got = parse_datetime(text)
    assert got == moment
    assert got.utcoffset() == moment.utcoffset()


@pytest.mark.parametrize(
    ("data", "fmt", "code"),
    [
        (b"<urn:p> a \xff .", None, "turtle_syntax"),
        (b'{"@type": "\xff"}', None, "jsonld_syntax"),
        (b"\xfe\xff", "json-ld", "jsonld_syntax"),
        (b"\xfe\xff", "turtle", "turtle_syntax"),
    ],
)
def test_bytes_that_are_not_utf8_are_a_syntax_error(
    data: bytes, fmt: RdfFormat | None, code: str
) -> None:
    """Not a bare ``UnicodeDecodeError``: every document error is a ``PolicyError``."""
    with pytest.raises(PolicySyntaxError) as caught:
        parse_policy(data, fmt)
    assert caught.value.code == code
    assert caught.value.reason.startswith("not UTF-8: 'utf-8' codec can't decode byte 0x")


def test_only_a_collection_class_makes_a_collection() -> None:
    """A party typed ``odrl:Party`` (or anything else) is one party, not a collection."""
    policy = parse_policy(
        ttl("""
<urn:p> a odrl:Set ; odrl:permission [ odrl:action odrl:read ;
  odrl:target <urn:d>, <urn:ds> ; odrl:assignee <urn:a>, <urn:as> ; odrl:assigner <urn:b> ] .
<urn:d> a odrl:Asset . <urn:ds> a odrl:AssetCollection .
<urn:a> a odrl:Party . <urn:as> a odrl:PartyCollection .
<urn:b> a odrl:PartyCollection .
""")
    )
    (rule,) = policy.permissions
    assert rule.targets == (Ref("urn:d"), Ref("urn:ds", collection=True))
    assert rule.assignees == (Ref("urn:a"), Ref("urn:as", collection=True))
    assert rule.assigners == (Ref("urn:b", collection=True),)
    # A party collection named as a target is not an asset collection, and the reverse.
    swapped = parse_policy(
        ttl("""
<urn:p> a odrl:Set ; odrl:permission [ odrl:action odrl:read ;
  odrl:target <urn:as> ; odrl:assignee <urn:ds> ] .
<urn:ds> a odrl:AssetCollection . <urn:as> a odrl:PartyCollection .
""")
    )
    assert swapped.permissions[0].targets == (Ref("urn:as"),)
    assert swapped.permissions[0].assignees == (Ref("urn:ds"),)


def test_each_action_and_constraint_keeps_its_own_parts() -> None:
    """Refinements, references and units are read from their own node, not the graph's."""
    policy = parse_policy(
        ttl("""
<urn:p> a odrl:Set ; odrl:permission [ odrl:action _:a1, _:a2 ;
  odrl:constraint <urn:c1>, <urn:c2> ] .
_:a1 rdf:value odrl:read ; odrl:refinement <urn:r1> .
_:a2 rdf:value odrl:use .
<urn:r1> odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ; odrl:rightOperand "x" .
<urn:c1> odrl:leftOperand odrl:payAmount ; odrl:operator odrl:lteq ; odrl:rightOperand 5 ;
  odrl:unit <urn:eur> .
<urn:c2> odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ;
  odrl:rightOperandReference <urn:ref> .
""")
    )
    (rule,) = policy.permissions
    refined = Constraint(ODRL + "purpose", ODRL + "eq", ("x",), "urn:r1")
    assert sorted(rule.actions, key=lambda a: a.name) == [
        Action(ODRL + "read", (refined,)),
        Action(ODRL + "use"),
    ]
    assert rule.constraints == (
        Constraint(ODRL + "payAmount", ODRL + "lteq", (5,), "urn:c1", "urn:eur"),
        Constraint(ODRL + "purpose", ODRL + "eq", (Iri("urn:ref"),), "urn:c2"),
    )


def test_the_policy_reads_only_its_own_node() -> None:
    """Another node with ``odrl:permission``, ``uid``, ``conflict`` or ``profile`` (a rule, an
    asset) adds nothing to the policy; nor does an object that happens to be a policy class."""
    policy = parse_policy(
        ttl("""
<urn:p> a odrl:Set ; odrl:uid <urn:z> ; odrl:conflict odrl:prohibit ;
  odrl:profile <urn:prof:z>, odrl:Agreement ; odrl:permission <urn:r> .
<urn:r> odrl:action odrl:read ; odrl:target <urn:d> ; odrl:uid <urn:a> ;
  odrl:conflict odrl:perm ; odrl:profile <urn:prof:a> .
<urn:d> odrl:permission <urn:r2> ; odrl:prohibition <urn:r3> ; odrl:obligation <urn:r4> .
<urn:r2> odrl:action odrl:use .
<urn:r3> odrl:action odrl:use .
<urn:r4> odrl:action odrl:use .
""")
    )
    assert (policy.uid, policy.type, policy.conflict) == (
        "urn:z",
        ODRL + "Set",
        ODRL + "prohibit",
    )
    assert policy.profiles == (ODRL + "Agreement", "urn:prof:z")
    assert [r.uid for r in policy.permissions] == ["urn:r"]
    assert (policy.prohibitions, policy.obligations) == ((), ())


def test_values_are_in_the_order_of_their_text_whatever_their_kind() -> None:
    """Not rdflib's own order (blank nodes, then IRIs, then literals)."""
    policy = parse_policy(
        ttl("""
<urn:p> a odrl:Set ; odrl:permission [ odrl:action odrl:read ;
  odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:isAnyOf ;
                    odrl:rightOperand "a", <urn:y>, "zz" ] ] .
""")
    )
    assert policy.permissions[0].constraints[0].right_operand == (  # type: ignore[union-attr]
        "a",
        Iri("urn:y"),
        "zz",
    )


def test_the_empty_list_beside_other_values_is_skipped_not_the_end() -> None:
    policy = parse_policy(
        ttl("""
<urn:p> a odrl:Set ; odrl:permission [ odrl:action odrl:read ;
  odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:isAnyOf ;
                    odrl:rightOperand (), "z", <urn:y> ] ] .
""")
    )
    # In the order of their text: rdf:nil (http:...) first, then urn:y, then "z".
    assert policy.permissions[0].constraints[0].right_operand == (  # type: ignore[union-attr]
        Iri("urn:y"),
        "z",
    )


def test_parse_policy_reads_the_format_it_is_told() -> None:
    with pytest.raises(PolicySyntaxError) as caught:
        parse_policy(json.dumps(JSONLD), "turtle")
    assert caught.value.code == "turtle_syntax"


def test_a_policy_class_named_as_an_object_makes_no_policy() -> None:
    """Only ``rdf:type`` makes a policy: a note pointing at ``odrl:Offer`` is no second one."""
    see_also = "<http://www.w3.org/2000/01/rdf-schema#seeAlso>"
    policy = parse_policy(ttl(f"<urn:p> a odrl:Set . <urn:note> {see_also} odrl:Offer ."))
    assert (policy.uid, policy.type) == ("urn:p", ODRL + "Set")
