"""The Sluis data profile, conflict handling, fail-closed behaviour, versions and the runner."""

from __future__ import annotations

from datetime import timedelta

import pytest

from policies import (
    CONFORMANCE_PROFILE,
    DataLimits,
    PolicyError,
    PolicyTestError,
    RateLimit,
    State,
    UnknownTerm,
    evaluate,
    explain,
    parse_policy,
    policy_hash,
    validate,
)
from policies.explain import limits_lines
from policies.operands.data import parse_rate
from policies.policy_tests import run_policy_tests
from policies.yaml_policy import parse_yaml_policy
from tests.policies.helpers import NOW, request

DATA_POLICY = """
uid: urn:sluis:policy:meters
type: Agreement
assigner: urn:org:provider
permissions:
  - action: read
    target: urn:dataset:meters
    assignee: urn:org:uni
    data:
      columns: [meter, kwh]
      row_filter: "region = 'NL'"
      min_group_size: 10
      max_rows: 1000
      rate_limit: 3/PT1H
    duties: [{notify: urn:org:provider}, {delete_after: P30D}]
"""


def test_permit_carries_typed_limits() -> None:
    policy = parse_yaml_policy(DATA_POLICY)
    decision = evaluate(policy, request(sluis_aggregate=[True]), State(), now=NOW)
    assert decision.permitted, explain(decision)
    assert decision.limits == DataLimits(
        columns=("meter", "kwh"),
        row_filter="region = 'NL'",
        min_group_size=10,
        max_rows=1000,
        rate_limit=RateLimit(3, "PT1H"),
        notify=("urn:org:provider",),
        delete_after="P30D",
        duties=("#permission-0-duty-0", "#permission-0-duty-1"),
    )
    assert decision.policy_id == "urn:sluis:policy:meters"
    assert decision.policy_hash == policy_hash(policy)


@pytest.mark.parametrize(
    "context",
    [
        {},  # not an aggregate: k applies to aggregates only
        {"sluis_aggregate": [True], "sluis_columns": ["meter", "address"]},
        {"sluis_aggregate": [True], "sluis_maxRows": [5000]},
    ],
)
def test_data_limits_deny_what_they_do_not_allow(context: dict[str, list[object]]) -> None:
    policy = parse_yaml_policy(DATA_POLICY)
    assert not evaluate(policy, request(**context), State(), now=NOW).permitted  # type: ignore[arg-type]


def test_rate_limit_counts_the_window() -> None:
    policy = parse_yaml_policy(DATA_POLICY)
    recent = tuple(NOW - timedelta(minutes=m) for m in (5, 10))
    old = tuple(NOW - timedelta(hours=h) for h in (2, 3, 4))
    asked = request(sluis_aggregate=[True])
    assert evaluate(policy, asked, State(request_times=recent + old), now=NOW).permitted
    busy = (*recent, NOW - timedelta(minutes=1))
    assert not evaluate(policy, asked, State(request_times=busy), now=NOW).permitted


@pytest.mark.parametrize("rate", ["3/P", "3/PT", "3/PT0S", "3/P0D", "²/PT1H", "3/1H", "x/PT1H"])
def test_a_rate_over_no_window_is_refused_on_write(rate: str) -> None:
    """A zero-length window counts no earlier request: the limit would never bind."""
    with pytest.raises(PolicyError, match="a rate is N/duration"):
        parse_yaml_policy(DATA_POLICY.replace("3/PT1H", rate))
    assert parse_rate((rate,)) is None


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("3/PT1H", (3, "PT1H")), (" 0 / P1D ", (0, "P1D")), ("10/PT0.5S", (10, "PT0.5S"))],
)
def test_a_rate_over_a_window_parses(text: str, parsed: tuple[int, str]) -> None:
    assert parse_rate((text,)) == parsed


CLASH = """
uid: urn:sluis:policy:clash
conflict: {conflict}
permissions: [{{action: use, target: urn:dataset:meters}}]
prohibitions: [{{action: read, target: urn:dataset:meters}}]
"""


@pytest.mark.parametrize(
    ("conflict", "permitted"), [("perm", True), ("prohibit", False), ("invalid", False)]
)
def test_clash_denies_unless_conflict_is_perm(conflict: str, permitted: bool) -> None:
    policy = parse_yaml_policy(CLASH.format(conflict=conflict))
    decision = evaluate(policy, request(), State(), now=NOW)
    assert decision.permitted is permitted
    assert decision.reason == ("permitted" if permitted else "prohibited")


def test_empty_permission_set_denies() -> None:
    policy = parse_yaml_policy("uid: urn:p:empty")
    assert evaluate(policy, request(), State(), now=NOW).reason == "no_active_permission"


TURTLE = """
@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
<urn:p:1> a odrl:Set ; odrl:permission [ odrl:action odrl:{action} ;
  odrl:constraint [ odrl:leftOperand {left} ; odrl:operator odrl:{op} ; odrl:rightOperand 3 ] ] .
"""


@pytest.mark.parametrize(
    ("action", "left", "op", "code", "term"),
    [
        (
            "read",
            "odrl:shoeSize",
            "lt",
            "unknown_left_operand",
            "http://www.w3.org/ns/odrl/2/shoeSize",
        ),
        ("read", "odrl:count", "approx", "unknown_operator", "http://www.w3.org/ns/odrl/2/approx"),
        ("teleport", "odrl:count", "lt", "unknown_action", "http://www.w3.org/ns/odrl/2/teleport"),
    ],
)
def test_unknown_terms_are_rejected_by_name(
    action: str, left: str, op: str, code: str, term: str
) -> None:
    policy = parse_policy(TURTLE.format(action=action, left=left, op=op))
    with pytest.raises(UnknownTerm) as caught:
        validate(policy)
    assert (caught.value.code, caught.value.term) == (code, term)
    assert term in caught.value.reason


def test_unknown_left_operand_denies_at_evaluation() -> None:
    policy = parse_policy(TURTLE.format(action="read", left="odrl:shoeSize", op="gt"))
    decision = evaluate(policy, request(), State(), now=NOW)
    assert (decision.permitted, decision.reason) == (False, "unknown_left_operand")
    assert "shoeSize" in decision.notes[0]


@pytest.mark.parametrize(
    ("parse", "text", "code"),
    [
        (
            parse_policy,
            "@prefix odrl: <http://www.w3.org/ns/odrl/2/> . <a> odrl:x",
            "turtle_syntax",
        ),
        (parse_policy, '{"@context": "http://www.w3.org/ns/odrl.jsonld", "uid": ', "jsonld_syntax"),
        (parse_policy, '{"@context": "https://evil.example/ctx.jsonld"}', "jsonld_remote_context"),
        (
            parse_policy,
            "@prefix odrl: <http://www.w3.org/ns/odrl/2/> . <a> <b> <c> .",
            "policy_structure",
        ),
        (parse_yaml_policy, "uid: [unclosed", "yaml_syntax"),
        (parse_yaml_policy, "- just a list", "policy_structure"),
        (
            parse_yaml_policy,
            "uid: x\npermissions: [{action: read, constraints: [[a, b]]}]",
            "invalid_value",
        ),
    ],
)
def test_malformed_input_is_a_policy_error(parse: object, text: str, code: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse(text)  # type: ignore[operator]
    assert caught.value.code == code
    assert "\n" not in caught.value.reason


def test_hash_names_the_version() -> None:
    first = parse_yaml_policy(DATA_POLICY)
    again = parse_yaml_policy(DATA_POLICY + "\n# a comment changes nothing\n")
    changed = parse_yaml_policy(DATA_POLICY.replace("1000", "1001"))
    assert policy_hash(first) == policy_hash(again) != policy_hash(changed)
    assert policy_hash(first).startswith("sha256:")


def test_conformance_profile_extends_sluis() -> None:
    assert "ex:dayOfWeek" in CONFORMANCE_PROFILE.left_operands


RUNNER = """
policy: meters
cases:
  - name: aggregate read is permitted
    now: 2025-06-01T12:00:00Z
    request:
      {party: urn:org:uni, action: read, target: urn:dataset:meters, context: {aggregate: true}}
    expect: permit
  - name: row-level read is denied
    now: 2025-06-01T12:00:00Z
    request: {party: urn:org:uni, action: read, target: urn:dataset:meters}
    expect: deny
  - name: a wrong expectation fails
    now: 2025-06-01T12:00:00Z
    request: {party: urn:org:other, action: read, target: urn:dataset:meters}
    expect: permit
"""


def test_policy_test_runner() -> None:
    results = run_policy_tests(RUNNER, {"meters": parse_yaml_policy(DATA_POLICY)})
    assert [r.passed for r in results] == [True, True, False]


@pytest.mark.parametrize(
    "text", ["policy: nope\ncases: []", "policy: meters\ncases: [{expect: maybe}]", ": ["]
)
def test_policy_test_runner_rejects_malformed_tests(text: str) -> None:
    with pytest.raises(PolicyTestError):
        run_policy_tests(text, {"meters": parse_yaml_policy(DATA_POLICY)})


BLANK_NODES = """
@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
<urn:p:blank> a odrl:Set ;
  odrl:permission [ odrl:action odrl:read ; odrl:target <urn:x> ;
    odrl:constraint [ odrl:leftOperand odrl:count ; odrl:operator odrl:lt ;
                      odrl:rightOperand 3 ] ] ,
    [ odrl:action odrl:write ; odrl:target <urn:y> ] .
"""


def test_blank_nodes_do_not_change_the_hash() -> None:
    """rdflib labels blank nodes afresh on every parse; the policy's version must not move."""
    first, again = parse_policy(BLANK_NODES), parse_policy(BLANK_NODES)
    assert first == again
    assert policy_hash(first) == policy_hash(again)


def test_explained_limits_read_like_the_policy() -> None:
    limits = DataLimits(row_filter="k = 'x'", rate_limit=RateLimit(5, "PT1H"), duties=("#d",))
    assert limits_lines(limits) == [
        "limits:",
        "  columns: all",
        "  row_filter: \"k = 'x'\"",
        "  rate_limit: 5/PT1H",
        "  duties to discharge: [#d]",
    ]


NO_ACTION = """
uid: urn:sluis:policy:no-action
type: Offer
target: urn:sluis:dataset:x
permissions: [{}]
"""


@pytest.mark.parametrize(
    "text",
    [
        NO_ACTION,
        NO_ACTION.replace("[{}]", "[{assignee: urn:org:uni}]"),
        NO_ACTION.replace("[{}]", "[{action: read}, {constraints: [[purpose, eq, x]]}]"),
    ],
)
def test_a_permission_without_an_action_is_refused_on_write(text: str) -> None:
    # ODRL reads an absent action as "any action": a permission that names none would grant
    # delete and modify as well as read. The Sluis profile asks for it on write.
    with pytest.raises(PolicyError) as refused:
        parse_yaml_policy(text)
    assert refused.value.code == "invalid_value"
    assert "names no action" in str(refused.value)
    assert refused.value.line == 5  # the rule, in the file


def test_rules_without_an_action_that_cannot_grant_are_kept() -> None:
    # A prohibition without one forbids every action: nothing more is granted.
    text = NO_ACTION.replace("[{}]", "[{action: read}]\nprohibitions: [{assignee: urn:org:x}]")
    assert parse_yaml_policy(text).prohibitions[0].actions == ()


def test_the_conformance_profile_reads_an_absent_action_as_odrl_does() -> None:
    policy = parse_yaml_policy(NO_ACTION, profile=CONFORMANCE_PROFILE)
    assert policy.permissions[0].actions == ()


def test_an_rdf_permission_without_an_action_is_refused_on_write_too() -> None:
    text = """{
      "@context": "http://www.w3.org/ns/odrl.jsonld",
      "@type": "Offer", "uid": "urn:sluis:policy:no-action-ld",
      "permission": [{"target": "urn:sluis:dataset:x", "assigner": "urn:org:p"}]
    }"""
    policy = parse_policy(text)
    assert policy.permissions[0].actions == ()
    with pytest.raises(PolicyError, match="names no action"):
        validate(policy)
    assert validate(policy, CONFORMANCE_PROFILE) is policy
