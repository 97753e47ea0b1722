"""Issue 11: a Turtle or JSON-LD policy loses nothing silently either.

Before, an ODRL property the reader does not follow was ignored (``odrl:constraints``: an
unconditional permit), a JSON-LD key outside the context was dropped by JSON-LD itself, a
misspelt collection class made a prohibition miss the collection's members, and a right
operand that means nothing (``"tomorrow"^^xsd:dateTime``) validated.
"""

from __future__ import annotations

import json

import pytest

from policies import PolicyError, State, evaluate, parse_policy, validate
from policies.errors import PolicyStructureError
from tests.policies.helpers import NOW, request

TTL = """
@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
@prefix sluis: <https://w3id.org/sluis/odrl#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
<urn:p> a odrl:Set ; odrl:conflict odrl:{conflict} ;
  odrl:permission [ odrl:action odrl:read ; odrl:target <urn:d> ;
    odrl:{constraint} [ odrl:leftOperand {left} ; odrl:operator odrl:lt ;
                        odrl:rightOperand {right} ] ] ;
  odrl:prohibition [ odrl:action odrl:use ; odrl:target <urn:d> ; odrl:assignee <urn:rivals> ] .
<urn:rivals> a odrl:{collection} .
{extra}
"""
GOOD = {
    "conflict": "prohibit",
    "constraint": "constraint",
    "left": "odrl:dateTime",
    "right": '"2027-01-01T00:00:00Z"^^xsd:dateTime',
    "collection": "PartyCollection",
    "extra": "",
}


def test_the_good_policy_validates() -> None:
    validate(parse_policy(TTL.format(**GOOD)))


@pytest.mark.parametrize(
    ("change", "code", "named"),
    [
        ({"constraint": "constraints"}, "unknown_property", "odrl/2/constraints"),
        ({"collection": "PartyColection"}, "unknown_class", "odrl/2/PartyColection"),
        ({"conflict": "prem"}, "unknown_conflict", "odrl/2/prem"),
        ({"extra": "<urn:uni> odrl:partOf <urn:rivals> ."}, "unknown_property", "partOf"),
        ({"extra": "<urn:d> sluis:colums 'a' ."}, "unknown_property", "sluis/odrl#colums"),
        ({"right": '"tomorrow"^^xsd:dateTime'}, "invalid_value", "dateTime"),
        ({"left": "sluis:maxRows", "right": '"lots"'}, "invalid_value", "maxRows"),
        ({"left": "sluis:rateLimit", "right": '"often"'}, "invalid_value", "rateLimit"),
    ],
)
def test_a_turtle_typo_is_named(change: dict[str, str], code: str, named: str) -> None:
    with pytest.raises(PolicyError) as caught:
        validate(parse_policy(TTL.format(**{**GOOD, **change})))
    assert caught.value.code == code
    assert named in caught.value.reason


JSONLD = {
    "@context": "http://www.w3.org/ns/odrl.jsonld",
    "@type": "Set",
    "uid": "urn:p",
    "permission": [
        {
            "target": "urn:d",
            "action": "read",
            "constraint": [{"leftOperand": "dateTime", "operator": "lt", "rightOperand":
                            {"@value": "2027-01-01T00:00:00Z", "@type": "xsd:dateTime"}}],
        }
    ],
}  # fmt: skip


def test_the_good_jsonld_policy_validates() -> None:
    policy = validate(parse_policy(json.dumps(JSONLD)))
    assert len(policy.permissions[0].constraints) == 1


@pytest.mark.parametrize(
    ("old", "new"), [("constraint", "constraints"), ("permission", "permision")]
)
def test_a_jsonld_key_no_context_defines_is_named(old: str, new: str) -> None:
    text = json.dumps(JSONLD).replace(f'"{old}"', f'"{new}"')
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert (caught.value.code, caught.value.key) == ("unknown_key", new)


def test_a_jsonld_key_given_twice_is_named() -> None:
    """``json`` keeps the last of two equal keys: the first permission would vanish."""
    text = json.dumps(JSONLD).replace('"uid": "urn:p",', '"uid": "urn:p", "permission": [],')
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert (caught.value.code, caught.value.key) == ("duplicate_key", "permission")


def test_an_unusable_right_operand_denies_at_evaluation() -> None:
    """Fail closed even when nobody validated: ``isNoneOf ()`` would hold for everyone."""
    text = TTL.format(**{**GOOD, "left": "odrl:purpose", "right": "()"}).replace(
        "odrl:operator odrl:lt", "odrl:operator odrl:isNoneOf"
    )
    policy = parse_policy(text)
    decision = evaluate(policy, request(target="urn:d"), State(), now=NOW)
    assert (decision.permitted, decision.reason) == (False, "invalid_value")
    assert "right operand is empty" in decision.notes[0]


def test_a_recursive_rdf_list_is_a_policy_error() -> None:
    """An ``rdf:rest`` cycle is refused as a policy error, not a crash (rdflib raises)."""
    text = TTL.format(
        **{
            **GOOD,
            "left": "odrl:purpose",
            "right": "_:loop",
            "extra": '_:loop <http://www.w3.org/1999/02/22-rdf-syntax-ns#first> "x" ; '
            "<http://www.w3.org/1999/02/22-rdf-syntax-ns#rest> _:loop .",
        }
    ).replace("odrl:operator odrl:lt", "odrl:operator odrl:isAnyOf")
    with pytest.raises(PolicyStructureError, match="recursive RDF list"):
        parse_policy(text)
