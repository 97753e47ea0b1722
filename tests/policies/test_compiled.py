"""Issue 10: a compiled policy decides exactly as the engine did, without the per-call work.

* compiled vs uncompiled: the same ``Decision`` (effect, reason, limits, granting rule, notes
  and the full report) and the same explanation, on requests and states generated around the
  example and conformance policies' own;
* the policy's canonical hash is computed once per policy, not once per evaluation;
* a permit writes no reasons until they are read; a deny carries them written.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policies.canonical
import policies.compiled
import policies.operands.registry
from policies import (
    SLUIS_PROFILE,
    Constraint,
    DutyState,
    Iri,
    LogicalConstraint,
    Policy,
    Request,
    Rule,
    RuleKind,
    State,
    compile_policy,
    evaluate,
    explain,
    parse_yaml_policy,
)
from policies.engine import evaluate_reference
from policies.model import AnyConstraint, Value
from policies.vocab import ACTION_PARENT, ODRL, SLUIS
from tests.policies.compiled_cases import Case, conformance_cases, example_cases
from tests.policies.helpers import NOW, UNI, request

FOREIGN: tuple[Value, ...] = ("x", 5, Iri("urn:x"), True, NOW)


def _all_rules(rules: tuple[Rule, ...]) -> Iterator[Rule]:
    for rule in rules:
        yield rule
        yield from _all_rules(rule.duties)


def _leaves(constraints: tuple[AnyConstraint, ...]) -> Iterator[Constraint]:
    for c in constraints:
        if isinstance(c, LogicalConstraint):
            yield from _leaves(c.operands)
        else:
            yield c


def _vocabulary(case: Case) -> dict[str, Any]:
    """What the policy and its real request mention: the pools generated inputs draw from."""
    rules = list(_all_rules(case.policy.rules()))
    constraints = [
        leaf
        for r in rules
        for c in (*r.constraints, *(x for a in r.actions for x in a.refinements))
        for leaf in _leaves((c,))
    ]
    values: dict[str, set[Value]] = {}
    for c in constraints:
        values.setdefault(c.left_operand, set()).update(c.right_operand)
    for key, seen in case.request.context.items():
        values.setdefault(key, set()).update(seen)
    refs = {ref.uid for r in rules for ref in (*r.targets, *r.assignees, *r.assigners)}
    terms = sorted({str(v) for vs in values.values() for v in vs} | refs)
    return {
        "values": {k: sorted(v, key=repr) for k, v in values.items()},
        "parties": sorted({case.request.party or "urn:p", *refs, UNI}),
        "targets": sorted({case.request.target or "urn:t", *refs}),
        "actions": sorted({case.request.action, *ACTION_PARENT}),
        "terms": terms or ["urn:t"],
        "duties": sorted({r.uid for r in rules if r.uid}) or ["urn:d"],
    }


@st.composite
def variations(draw: st.DrawFn, case: Case) -> tuple[Request, State, datetime]:
    """A request and state near the case's own: other parties, values, counts, times."""
    pool = _vocabulary(case)
    context = dict(case.request.context)
    for key, known in pool["values"].items():
        if draw(st.booleans()):
            choice = st.sampled_from([*known, *FOREIGN])
            context[key] = tuple(draw(st.lists(choice, max_size=3)))
    asked = Request(
        draw(st.sampled_from([case.request.party, *pool["parties"]])),
        draw(st.sampled_from(pool["actions"])),
        draw(st.sampled_from([case.request.target, *pool["targets"]])),
        MappingProxyType(context),
    )
    now = case.now + timedelta(days=draw(st.integers(-900, 900)))
    return asked, _state(draw, case, pool, now), now


def _state(draw: st.DrawFn, case: Case, pool: dict[str, Any], now: datetime) -> State:
    terms = st.sampled_from(pool["terms"])
    broader = dict(case.state.broader)
    for _ in range(draw(st.integers(0, 3))):
        broader[draw(terms)] = frozenset(draw(st.lists(terms, min_size=1, max_size=2)))
    duty = st.sampled_from(pool["duties"])
    duties = draw(st.dictionaries(duty, st.sampled_from(list(DutyState)), max_size=2))
    minutes = draw(st.lists(st.integers(0, 3000), max_size=4))
    start = draw(st.sampled_from([None, case.state.agreement_start, now - timedelta(days=400)]))
    return State(
        broader=MappingProxyType(broader),
        duty_states=MappingProxyType({**case.state.duty_states, **duties}),
        use_count=draw(st.sampled_from([case.state.use_count, 0, 3, 1000])),
        rule_counts=MappingProxyType(draw(st.dictionaries(duty, st.integers(0, 5), max_size=1))),
        request_times=tuple(now - timedelta(minutes=m) for m in minutes),
        agreement_start=start,
    )


def _same(case: Case, asked: Request, state: State, now: datetime) -> None:
    compiled = compile_policy(case.policy, case.profile)
    expected = evaluate_reference(case.policy, asked, state, now=now, profile=case.profile)
    decided = evaluate(compiled, asked, state, now=now)
    assert decided == expected
    assert decided.rules == expected.rules
    assert explain(decided) == explain(expected)
    assert evaluate(case.policy, asked, state, now=now, profile=case.profile) == expected


@pytest.mark.parametrize("case", [*example_cases(), *conformance_cases()])
def test_the_case_itself_decides_alike(case: Case) -> None:
    _same(case, case.request, case.state, case.now)


@pytest.mark.parametrize("case", [*example_cases(), *conformance_cases()])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_compiled_decides_as_the_reference(case: Case, data: st.DataObject) -> None:
    asked, state, now = data.draw(variations(case))
    _same(case, asked, state, now)


POLICY = """
uid: urn:sluis:policy:compiled
type: Offer
target: urn:dataset:meters
permissions:
  - uid: urn:sluis:policy:compiled#read
    action: read
    assignee: urn:org:uni
    constraints:
      - [purpose, isAnyOf, [urn:purpose:research]]
      - [count, lteq, 3]
    data: {columns: [a, b], max_rows: 100, rate_limit: 10/PT1H}
"""


def _counting(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[object]:
    """Record each call of ``module.name`` (still calling it): a spy, not a stand-in."""
    calls: list[object] = []
    real = getattr(module, name)

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(args[0] if args else None)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


def test_one_policy_is_hashed_once_however_often_it_is_evaluated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy = parse_yaml_policy(POLICY)
    serialised = _counting(monkeypatch, policies.canonical, "to_json")
    asked = request(purpose=[Iri("urn:purpose:research")])
    for n in range(5):
        decision = evaluate(policy, asked, State(use_count=n % 3), now=NOW)
        assert decision.permitted
    assert sum(1 for value in serialised if value is policy) == 1


def test_a_compiled_policy_is_not_hashed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = compile_policy(parse_yaml_policy(POLICY), SLUIS_PROFILE)
    serialised = _counting(monkeypatch, policies.canonical, "to_json")
    asked = request(purpose=[Iri("urn:purpose:research")])
    assert evaluate(compiled, asked, State(), now=NOW).policy_hash == compiled.policy_hash
    assert evaluate(compiled, asked, State(use_count=5), now=NOW).reason == "no_active_permission"
    assert serialised == []


def test_a_permit_writes_its_reasons_only_when_they_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compiled = compile_policy(parse_yaml_policy(POLICY), SLUIS_PROFILE)
    written = _counting(monkeypatch, policies.operands.registry, "short")
    decision = evaluate(compiled, request(purpose=[Iri("urn:purpose:research")]), State(), now=NOW)
    assert decision.permitted
    assert decision.limits is not None
    assert decision.limits.columns == ("a", "b")
    assert written == []
    assert "odrl:purpose odrl:isAnyOf urn:purpose:research holds" in explain(decision)
    assert written


def test_a_deny_carries_its_reasons_written(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = compile_policy(parse_yaml_policy(POLICY), SLUIS_PROFILE)
    written = _counting(monkeypatch, policies.operands.registry, "short")
    decision = evaluate(compiled, request(purpose=[Iri("urn:purpose:ads")]), State(), now=NOW)
    assert not decision.permitted
    assert written
    failing = [c for r in decision.rules for c in r.constraints if not c.satisfied]
    assert [c.left_operand for c in failing] == [ODRL + "purpose"]
    assert "observed urn:purpose:ads" in failing[0].reason


def test_a_compiled_policy_refuses_another_profile() -> None:
    compiled = compile_policy(parse_yaml_policy(POLICY), SLUIS_PROFILE)
    other = SLUIS_PROFILE.extended("urn:other", left_operands=frozenset({SLUIS + "dayOfWeek"}))
    other = other.extended("urn:other", left_operands=frozenset({ODRL + "resolution"}))
    with pytest.raises(ValueError, match="another profile"):
        evaluate(compiled, request(), State(), now=NOW, profile=other)


def test_a_policy_the_profile_refuses_compiles_to_its_refusal() -> None:
    unknown = Constraint("urn:ex:mood", ODRL + "eq", ("happy",))
    rule = Rule(RuleKind.PERMISSION, "urn:p#r", constraints=(unknown,))
    policy = Policy("urn:p", ODRL + "Set", permissions=(rule,))
    compiled = compile_policy(policy, SLUIS_PROFILE)
    assert compiled.refusal is not None
    decision = evaluate(compiled, request(), State(), now=NOW)
    assert (decision.reason, decision.notes) == ("unknown_left_operand", compiled.refusal.notes)
    assert decision == evaluate_reference(policy, request(), State(), now=NOW)


def test_the_memo_of_policies_passed_as_such_is_bounded() -> None:
    first = parse_yaml_policy(POLICY)
    alive = weakref.ref(first)
    evaluate(first, request(), State(), now=NOW)
    del first
    for _ in range(policies.compiled.MEMO_SIZE):
        evaluate(parse_yaml_policy(POLICY), request(), State(), now=NOW)
    gc.collect()
    assert alive() is None
