"""Issue 18: requests, states of the world and target checks, read back and refused exactly.

``policies.world`` (SolidLab requests and states, ``build_state``, ``merge``),
``policies.w3c_request`` (the W3C ``EvaluationRequest``) and ``policies.targets`` (whether a
policy can govern the asset it is registered for), each refusal by code and sentence.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from policies import (
    CONFORMANCE_PROFILE,
    PolicyError,
    World,
    build_state,
    merge,
    parse_request,
    parse_world,
)
from policies.errors import PolicyStructureError, PolicySyntaxError, PolicyTestError
from policies.model import Action, Iri, Policy, Ref, Rule, RuleKind
from policies.policy_tests import parse_yaml_request, parse_yaml_state, run_policy_tests
from policies.request import DutyState, State
from policies.targets import check_targets, unreachable
from policies.vocab import ODRL, SLUIS, SOTW, XSD
from policies.w3c_request import parse_evaluation_request

T0 = datetime(2027, 1, 1, tzinfo=UTC)
PREFIXES = """
@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
@prefix sotw: <https://w3id.org/force/sotw#> .
@prefix report: <https://w3id.org/force/compliance-report#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
"""


def _refusal(call: object, *args: object) -> tuple[str, str]:
    with pytest.raises(PolicyError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.code, caught.value.reason


# SolidLab requests.


def test_a_request_read_whole() -> None:
    request, world = parse_request(
        PREFIXES
        + """
<urn:req> a odrl:Request ; odrl:permission <urn:perm> .
<urn:perm> odrl:assignee <urn:alice> ; odrl:action odrl:read ; odrl:target <urn:d> ;
  sotw:context <urn:c1>, <urn:c2>, <urn:c3> .
<urn:c1> odrl:leftOperand odrl:purpose ; odrl:rightOperand <urn:research>, "x" .
<urn:c2> odrl:leftOperand odrl:purpose ; odrl:rightOperand "y" .
<urn:c3> odrl:rightOperand "lost" .
<urn:alice> odrl:partOf <urn:team> ; a <urn:Person> .
<urn:Person> rdfs:subClassOf <urn:Agent> .
<urn:d> odrl:partOf "a literal is no collection" .
"""
    )
    assert (request.party, request.action, request.target) == ("urn:alice", ODRL + "read", "urn:d")
    assert dict(request.context) == {ODRL + "purpose": (Iri("urn:research"), "x", "y")}
    assert dict(world.state.broader) == {
        "urn:req": {ODRL + "Request"},
        "urn:alice": {"urn:team", "urn:Person"},
        "urn:Person": {"urn:Agent"},
    }
    assert world.now is None
    assert world.state.duty_states == {}


def test_a_request_without_party_or_target() -> None:
    request, _ = parse_request(
        PREFIXES + "<urn:req> a odrl:Request ; odrl:permission [ odrl:action odrl:use ] ."
    )
    assert (request.party, request.action, request.target) == (None, ODRL + "use", None)
    assert dict(request.context) == {}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<urn:x> odrl:action odrl:use .", "expected one odrl:Request, found 0"),
        (
            "<urn:a> a odrl:Request ; odrl:permission [ odrl:action odrl:use ] ."
            "<urn:b> a odrl:Request ; odrl:permission [ odrl:action odrl:use ] .",
            "expected one odrl:Request, found 2",
        ),
        ("<urn:a> a odrl:Request .", "a request needs exactly one permission"),
        (
            "<urn:a> a odrl:Request ; odrl:permission [ odrl:action odrl:use ], "
            "[ odrl:action odrl:read ] .",
            "a request needs exactly one permission",
        ),
        (
            "<urn:a> a odrl:Request ; odrl:permission [ odrl:target <urn:d> ] .",
            "a request needs exactly one action",
        ),
        (
            "<urn:a> a odrl:Request ; odrl:permission [ odrl:action odrl:use, odrl:read ] .",
            "a request needs exactly one action",
        ),
    ],
)
def test_a_malformed_request_is_refused(body: str, reason: str) -> None:
    assert _refusal(parse_request, PREFIXES + body) == ("request_structure", reason)


def test_a_request_reads_the_format_it_is_told() -> None:
    with pytest.raises(PolicySyntaxError) as caught:
        parse_request("[]", "turtle")
    assert caught.value.code == "turtle_syntax"


# SolidLab states.


def test_a_state_of_the_world_read_whole() -> None:
    world = parse_world(
        PREFIXES
        + """
<http://example.com/request/currentTime> dct:issued "2027-01-01T10:00:00Z"^^xsd:dateTime .
<urn:alice> odrl:partOf <urn:team> .
<urn:r1> a report:DutyReport ; report:rule <urn:d1> ; report:deonticState report:Fulfilled .
<urn:r2> a report:DutyReport ; report:rule <urn:d2> ; report:deonticState report:Violated .
<urn:r3> a report:DutyReport ; report:rule <urn:d3> ; report:deonticState report:NonSet .
<urn:r4> a report:DutyReport ; report:rule <urn:d4> ; report:deonticState report:Unknown .
<urn:r5> a report:DutyReport ; report:deonticState report:Violated .
<urn:r6> a report:DutyReport ; report:rule <urn:d6> .
<urn:e1> sotw:conditionID <urn:d7> .
<urn:e2> sotw:conditionId <urn:d8> .
"""
    )
    assert world.now == datetime(2027, 1, 1, 10, tzinfo=UTC)
    duty_report = {"https://w3id.org/force/compliance-report#DutyReport"}
    assert dict(world.state.broader) == {
        "urn:alice": {"urn:team"},
        **{f"urn:r{i}": duty_report for i in range(1, 7)},
    }
    assert dict(world.state.duty_states) == {
        "urn:d1": DutyState.FULFILLED,
        "urn:d2": DutyState.VIOLATED,
        "urn:d3": DutyState.PENDING,
        "urn:d7": DutyState.FULFILLED,
        "urn:d8": DutyState.FULFILLED,
    }


def test_a_time_that_is_not_a_date_time_is_no_time() -> None:
    world = parse_world(PREFIXES + '<http://example.com/request/currentTime> dct:issued "soon" .')
    assert world.now is None
    assert parse_world(PREFIXES + "<urn:a> odrl:partOf <urn:b> .").now is None


# build_state and merge.


def test_build_state_normalises_its_facts() -> None:
    later, earlier = T0 + timedelta(hours=1), T0
    state = build_state(
        broader={"a": ["b", "b", "c"]},
        duty_states={"d": DutyState.VIOLATED},
        use_count=2,
        rule_counts={"r": 1},
        request_times=[later, earlier],
        agreement_start=T0,
        privacy_spends=[(later, Decimal("0.5")), (earlier, Decimal(0))],
    )
    assert state == State(
        broader={"a": frozenset({"b", "c"})},
        duty_states={"d": DutyState.VIOLATED},
        use_count=2,
        rule_counts={"r": 1},
        request_times=(earlier, later),
        agreement_start=T0,
        privacy_spends=((earlier, Decimal(0)), (later, Decimal("0.5"))),
    )
    assert build_state() == State()
    assert build_state(rule_counts={"r": 0}).rule_counts == {"r": 0}


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        ({"use_count": -1}, "use counts are never negative"),
        ({"rule_counts": {"r": 0, "s": -1}}, "use counts are never negative"),
        ({"privacy_spends": [(T0, Decimal("-0.1"))]}, "privacy spends are never negative"),
        # A naive time among aware ones: refused, not a TypeError from sorting them.
        ({"request_times": [T0, T0.replace(tzinfo=None)]}, "state times need a time zone"),
        (
            {"privacy_spends": [(T0, Decimal(1)), (T0.replace(tzinfo=None), Decimal(1))]},
            "state times need a time zone",
        ),
        ({"agreement_start": T0.replace(tzinfo=None)}, "state times need a time zone"),
        (
            {"privacy_spends": [(T0.replace(tzinfo=None), Decimal(1))]},
            "state times need a time zone",
        ),
    ],
)
def test_build_state_refuses_impossible_facts(facts: dict[str, object], reason: str) -> None:
    assert _refusal(lambda: build_state(**facts)) == ("request_structure", reason)  # type: ignore[arg-type]


def test_merge_keeps_every_fact_the_first_world_wins() -> None:
    one = World(
        build_state(
            broader={"a": ["b"]},
            duty_states={"d": DutyState.FULFILLED},
            use_count=0,
            rule_counts={"r": 1},
            request_times=[T0],
            privacy_spends=[(T0, Decimal(1))],
        ),
        None,
    )
    two = World(
        build_state(
            broader={"a": ["c"], "x": ["y"]},
            duty_states={"d": DutyState.VIOLATED, "e": DutyState.PENDING},
            use_count=3,
            rule_counts={"r": 5, "s": 2},
            request_times=[T0 + timedelta(1)],
            agreement_start=T0,
            privacy_spends=[(T0 + timedelta(1), Decimal(2))],
        ),
        T0,
    )
    three = World(build_state(use_count=7, agreement_start=T0 + timedelta(2)), T0 + timedelta(3))
    merged = merge(one, two, three)
    assert merged.now == T0
    assert merged.state == State(
        broader={"a": frozenset({"b", "c"}), "x": frozenset({"y"})},
        duty_states={"d": DutyState.FULFILLED, "e": DutyState.PENDING},
        use_count=3,
        rule_counts={"r": 1, "s": 2},
        request_times=(T0, T0 + timedelta(1)),
        agreement_start=T0,
        privacy_spends=((T0, Decimal(1)), (T0 + timedelta(1), Decimal(2))),
    )
    assert merge() == World()
    assert merge(World(now=T0)).now == T0


# The W3C EvaluationRequest.


def test_an_evaluation_request_read_whole() -> None:
    doc = {
        "evaluatedParty": "ex:alice",
        "evaluatedAction": "odrl:use",
        "evaluatedTarget": "ex:data",
        "requestParameters": [
            {"describesFeature": "odrl:count", "value": {"@id": "1000", "@type": "xsd:integer"}},
            {"describesFeature": "odrl:count", "value": {"@value": "7", "@type": "xsd:integer"}},
            {"describesFeature": "odrl:purpose", "value": "research"},
            {"describesFeature": "odrl:payAmount", "value": 1.5},
            {
                "describesFeature": "sotw:CurrentXSDDateTime",
                "value": {"@value": "2027-01-01T10:00:00Z", "@type": "xsd:dateTime"},
            },
        ],
    }
    request, now = parse_evaluation_request(json.dumps(doc))
    assert (request.party, request.action, request.target) == ("ex:alice", ODRL + "use", "ex:data")
    assert dict(request.context) == {
        ODRL + "count": (1000, 7),
        ODRL + "purpose": ("research",),
        ODRL + "payAmount": ("1.5",),
    }
    assert now == datetime(2027, 1, 1, 10, tzinfo=UTC)


def test_an_evaluation_request_with_one_parameter_and_no_time() -> None:
    doc = {
        "evaluatedAction": "use",
        "requestParameters": {"describesFeature": "xsd:thing", "value": 3},
    }
    request, now = parse_evaluation_request(json.dumps(doc).encode())
    assert (request.party, request.action, request.target, now) == (None, "use", None, None)
    assert dict(request.context) == {XSD + "thing": ("3",)}
    # A time that is no date-time is no time (and not a context value either).
    doc["requestParameters"] = {"describesFeature": SOTW + "CurrentXSDDateTime", "value": "x"}
    request, now = parse_evaluation_request(json.dumps(doc))
    assert (now, dict(request.context)) == (None, {})


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ([], "an EvaluationRequest names its evaluatedAction"),
        ({"evaluatedAction": 5}, "an EvaluationRequest names its evaluatedAction"),
        (
            {"evaluatedAction": "use", "requestParameters": [5]},
            "a request parameter needs describesFeature",
        ),
        (
            {"evaluatedAction": "use", "requestParameters": [{"describesFeature": 1}]},
            "a request parameter needs describesFeature",
        ),
        (
            {"evaluatedAction": "use", "requestParameters": [{"describesFeature": "f"}]},
            "a request parameter needs a value",
        ),
        (
            {
                "evaluatedAction": "use",
                "requestParameters": [{"describesFeature": "f", "value": {"@type": "x"}}],
            },
            "a request parameter needs a value",
        ),
    ],
)
def test_a_malformed_evaluation_request_is_refused(doc: object, reason: str) -> None:
    assert _refusal(parse_evaluation_request, json.dumps(doc)) == ("request_structure", reason)


def test_an_evaluation_request_that_is_not_json() -> None:
    assert _refusal(parse_evaluation_request, "{") == (
        "json_syntax",
        "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    )


# Targets.


def _rule(kind: RuleKind, uid: str, *targets: Ref) -> Rule:
    return Rule(kind, uid, targets=targets)


def _policy(*rules: Rule) -> Policy:
    return Policy(
        "urn:p",
        ODRL + "Set",
        permissions=tuple(r for r in rules if r.kind is RuleKind.PERMISSION),
        prohibitions=tuple(r for r in rules if r.kind is RuleKind.PROHIBITION),
        obligations=tuple(r for r in rules if r.kind is RuleKind.DUTY),
    )


P, N, D = RuleKind.PERMISSION, RuleKind.PROHIBITION, RuleKind.DUTY


def test_a_policy_that_reaches_its_asset() -> None:
    in_all = State(broader={"urn:d": frozenset({"urn:all"})})
    good = _policy(
        _rule(P, "p1", Ref("urn:other")),
        _rule(P, "p2", Ref("urn:all", collection=True)),
        _rule(N, "n1"),
        _rule(D, "o1", Ref("urn:x"), Ref("urn:d")),
    )
    assert check_targets(good, "urn:d", in_all) is good
    assert unreachable(good, "urn:d", in_all) == []
    assert unreachable(_policy(), "urn:d", State()) == []
    assert check_targets(_policy(_rule(P, "p")), "urn:d") is not None


def test_a_policy_that_cannot_reach_its_asset_says_why() -> None:
    bad = _policy(
        _rule(P, "p1", Ref("urn:z")),
        _rule(P, "p2", Ref("urn:all", collection=True), Ref("urn:b")),
        _rule(N, "n1", Ref("urn:x"), Ref("urn:y")),
        _rule(D, "o1", Ref("urn:x")),
        _rule(N, "n2", Ref("urn:d")),
    )
    # Not in the collection: a Ref that is no collection does not reach through the state.
    state = State(broader={"urn:d": frozenset({"urn:z", "urn:x"})})
    assert unreachable(bad, "urn:d", state) == [
        "no permission targets urn:d (they target urn:all, urn:b, urn:z)",
        "prohibition n1 targets urn:x, urn:y, never urn:d",
        "duty o1 targets urn:x, never urn:d",
    ]
    with pytest.raises(PolicyStructureError) as caught:
        check_targets(bad, "urn:d", state)
    assert (caught.value.code, caught.value.reason) == (
        "target_mismatch",
        "no permission targets urn:d (they target urn:all, urn:b, urn:z)",
    )
    # Without a state, no asset is in any collection.
    collection_only = _policy(_rule(P, "p", Ref("urn:all", collection=True)))
    assert unreachable(collection_only, "urn:d", State()) == [
        "no permission targets urn:d (they target urn:all)"
    ]
    with pytest.raises(PolicyStructureError):
        check_targets(collection_only, "urn:d")


def test_count_for_a_rule() -> None:
    state = State(use_count=4, rule_counts={"r": 1})
    assert (state.count_for("r"), state.count_for("s"), state.count_for(None)) == (1, 4, 4)


# The YAML shapes of policy tests, and ``sluis policy eval``'s request and state files.


def test_a_yaml_state_read_whole() -> None:
    world = parse_yaml_state(
        """
prefixes: {ex: "urn:ex:"}
now: 2027-01-01T12:00:00Z
broader: {ex:alice: [ex:team, ex:lab], ex:bob: ex:team}
duty_states: {ex:d1: fulfilled, ex:d2: violated, ex:d3: pending}
use_count: 3
rule_counts: {ex:r: 2}
request_times: [2027-01-01T11:00:00Z, 2027-01-01T10:00:00Z]
agreement_start: 2026-12-01T00:00:00Z
privacy_spends: [{at: 2027-01-01T09:00:00Z, epsilon: 0.25}]
"""
    )
    assert world.now == datetime(2027, 1, 1, 12, tzinfo=UTC)
    assert world.state == State(
        broader={
            "urn:ex:alice": frozenset({"urn:ex:team", "urn:ex:lab"}),
            "urn:ex:bob": frozenset({"urn:ex:team"}),
        },
        # Rule uids as written: a YAML policy's rule uids are not expanded either.
        duty_states={
            "ex:d1": DutyState.FULFILLED,
            "ex:d2": DutyState.VIOLATED,
            "ex:d3": DutyState.PENDING,
        },
        use_count=3,
        rule_counts={"ex:r": 2},
        request_times=(datetime(2027, 1, 1, 10, tzinfo=UTC), datetime(2027, 1, 1, 11, tzinfo=UTC)),
        agreement_start=datetime(2026, 12, 1, tzinfo=UTC),
        privacy_spends=((datetime(2027, 1, 1, 9, tzinfo=UTC), Decimal("0.25")),),
    )
    assert parse_yaml_state("use_count: 0\n") == World()


def test_a_yaml_request_read_whole() -> None:
    request = parse_yaml_request(
        """
prefixes: {ex: "urn:ex:"}
party: ex:uni
action: read
target: ex:meters
context: {purpose: [ex:research, ex:teaching], columns: a, maxRows: [5], aggregate: [sum]}
"""
    )
    assert (request.party, request.action, request.target) == (
        "urn:ex:uni",
        ODRL + "read",
        "urn:ex:meters",
    )
    assert dict(request.context) == {
        ODRL + "purpose": (Iri("urn:ex:research"), Iri("urn:ex:teaching")),
        SLUIS + "columns": ("a",),
        SLUIS + "maxRows": (5,),
        SLUIS + "aggregate": ("sum",),
    }
    anonymous = parse_yaml_request("action: use\n")
    assert (anonymous.party, anonymous.target, dict(anonymous.context)) == (None, None, {})


def test_a_yaml_request_refuses_what_its_profile_lacks() -> None:
    with pytest.raises(PolicyStructureError) as caught:
        parse_yaml_request("action: read\ncontext:\n  purpose: [a]\n  colour: [red]\n")
    error = caught.value
    assert (error.code, error.reason, error.line, error.key) == (
        "unknown_key",
        f"unknown context key: {ODRL}colour",
        4,
        "context.colour",
    )
    # The profile given is the one asked: the conformance profile knows payAmount.
    text = "action: read\ncontext: {payAmount: [5]}\n"
    with pytest.raises(PolicyStructureError, match="payAmount"):
        parse_yaml_request(text)
    assert parse_yaml_request(text, CONFORMANCE_PROFILE).values(ODRL + "payAmount") == (5,)


def test_a_bad_value_is_named_where_it_is() -> None:
    with pytest.raises(PolicyStructureError) as caught:
        parse_yaml_request("action: read\ncontext:\n  purpose: [a, {x: 1}]\n")
    error = caught.value
    assert (error.code, error.line, error.key) == ("invalid_value", 3, "context.purpose[1]")
    with pytest.raises(PolicyStructureError) as caught:
        parse_yaml_request("action: read\ncontext:\n  purpose: {x: 1}\n")
    assert (caught.value.code, caught.value.line, caught.value.key) == (
        "invalid_value",
        3,
        "context.purpose",
    )


@pytest.mark.parametrize(
    ("parse", "noun", "family", "code"),
    [
        (parse_yaml_request, "request or state", PolicyStructureError, "request_structure"),
        (parse_yaml_state, "request or state", PolicyStructureError, "request_structure"),
        (
            lambda text: run_policy_tests(text, {}),
            "policy test",
            PolicyTestError,
            "policy_test",
        ),
    ],
)
def test_a_document_that_is_not_a_mapping(
    parse: object, noun: str, family: type[PolicyError], code: str
) -> None:
    with pytest.raises(family) as caught:
        parse("- a\n- b\n")  # type: ignore[operator]
    assert (caught.value.code, caught.value.reason) == (code, f"a YAML {noun} is a mapping")
    assert type(caught.value) is family


def test_a_policy_test_file_that_does_not_parse_is_a_policy_test_error() -> None:
    with pytest.raises(PolicyTestError) as caught:
        run_policy_tests("a: [\n", {})
    assert (caught.value.code, caught.value.line, caught.value.column) == ("yaml_syntax", 2, 1)
    with pytest.raises(PolicySyntaxError) as syntax:
        parse_yaml_request("a: [\n")
    assert syntax.value.code == "yaml_syntax"


CASES = """
policy: {policy}
prefixes: {{ex: "urn:ex:"}}
cases:
  - name: reads
    now: 2027-01-01T12:00:00Z
    request: {{party: ex:uni, action: read, target: ex:d}}
    expect: permit
  - name: wrong reason
    now: 2027-01-01T12:00:00Z
    request: {{party: ex:uni, action: read, target: ex:d}}
    expect: permit
    reason: no_permission
  - now: 2027-01-01T12:00:00Z
    request: {{party: ex:other, action: read, target: ex:d}}
    state: {{use_count: 1}}
    expect: deny
"""


def test_policy_tests_run_each_case() -> None:
    policy = Policy(
        "urn:p",
        ODRL + "Set",
        permissions=(
            Rule(
                RuleKind.PERMISSION,
                "urn:r",
                actions=(Action(ODRL + "read"),),
                targets=(Ref("urn:ex:d"),),
                assignees=(Ref("urn:ex:uni"),),
            ),
        ),
    )
    results = run_policy_tests(CASES.format(policy="meters"), {"meters": policy})
    assert [(r.name, r.passed, r.expected, r.decision.effect.value) for r in results] == [
        ("reads", True, "permit", "permit"),
        ("wrong reason", False, "permit", "permit"),
        ("?", True, "deny", "deny"),
    ]
    with pytest.raises(PolicyTestError) as caught:
        run_policy_tests(CASES.format(policy="other"), {"meters": policy})
    error = caught.value
    assert (error.code, error.reason, error.line, error.key) == (
        "policy_test",
        "no loaded policy 'other'",
        2,
        "policy",
    )


def test_a_request_reads_only_its_own_permission() -> None:
    """Other nodes of the document (an offer beside the request, a note pointing at
    ``odrl:Request``) add no request, permission, party, target, action or context."""
    see_also = "<http://www.w3.org/2000/01/rdf-schema#seeAlso>"
    request, _ = parse_request(
        PREFIXES
        + f"""
<urn:req> a odrl:Request ; odrl:permission <urn:perm> .
<urn:perm> odrl:action odrl:read .
<urn:note> {see_also} odrl:Request .
<urn:offer> odrl:permission <urn:other> .
<urn:other> odrl:action odrl:use ; odrl:assignee <urn:bob> ; odrl:target <urn:e> ;
  sotw:context [ odrl:leftOperand odrl:purpose ; odrl:rightOperand "x" ] .
"""
    )
    assert (request.party, request.action, request.target) == (None, ODRL + "read", None)
    assert dict(request.context) == {}


def test_a_state_reads_only_the_current_time_and_duty_reports() -> None:
    see_also = "<http://www.w3.org/2000/01/rdf-schema#seeAlso>"
    world = parse_world(
        PREFIXES
        + f"""
<urn:doc> dct:issued "2027-01-01T10:00:00Z"^^xsd:dateTime .
<http://example.com/request/currentTime> dct:modified "2027-01-01T11:00:00Z"^^xsd:dateTime .
<urn:x> {see_also} report:DutyReport ; report:rule <urn:d1> ;
  report:deonticState report:Violated .
<urn:y> a <urn:Other> ; report:rule <urn:d2> ; report:deonticState report:Violated .
"""
    )
    assert world.now is None
    assert dict(world.state.duty_states) == {}


def test_a_state_reads_the_format_it_is_told() -> None:
    with pytest.raises(PolicySyntaxError) as caught:
        parse_world("[]", "turtle")
    assert caught.value.code == "turtle_syntax"


def test_a_prohibition_reaches_its_asset_through_a_collection() -> None:
    state = State(broader={"urn:d": frozenset({"urn:all"})})
    policy = _policy(_rule(N, "n1", Ref("urn:all", collection=True)))
    assert unreachable(policy, "urn:d", state) == []
    assert unreachable(policy, "urn:e", state) == ["prohibition n1 targets urn:all, never urn:e"]
