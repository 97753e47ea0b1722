"""Hypothesis properties: adding a prohibition never turns a deny into a permit; deny is closed."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from policies import Action, Constraint, Policy, Ref, Request, Rule, RuleKind, State, evaluate
from policies.vocab import ODRL
from tests.policies.helpers import NOW, request

ACTIONS = st.sampled_from(["use", "read", "write", "sell", "distribute", "print"])
TARGETS = st.sampled_from(["urn:dataset:meters", "urn:dataset:other"])
PARTIES = st.sampled_from(["urn:org:uni", "urn:org:other"])
LIMITS = st.integers(min_value=0, max_value=5)


@st.composite
def rules(draw: st.DrawFn, kind: RuleKind) -> Rule:
    actions = tuple(Action(ODRL + a) for a in draw(st.lists(ACTIONS, max_size=2)))
    targets = tuple(Ref(t) for t in draw(st.lists(TARGETS, max_size=1)))
    parties = tuple(Ref(p) for p in draw(st.lists(PARTIES, max_size=1)))
    counts = draw(st.lists(LIMITS, max_size=1))
    constraints = tuple(Constraint(ODRL + "count", ODRL + "lteq", (n,)) for n in counts)
    return Rule(kind, None, actions, targets, parties, (), constraints)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    return Policy(
        uid="urn:p:generated",
        type=ODRL + "Set",
        permissions=tuple(draw(st.lists(rules(RuleKind.PERMISSION), max_size=3))),
        prohibitions=tuple(draw(st.lists(rules(RuleKind.PROHIBITION), max_size=2))),
        conflict=draw(st.sampled_from([None, ODRL + "prohibit"])),
    )


def _case(draw: st.DrawFn) -> tuple[Request, State]:
    asked = request(action=draw(ACTIONS), target=draw(TARGETS), party=draw(PARTIES))
    return asked, State(use_count=draw(LIMITS))


@settings(max_examples=150, deadline=None)
@given(policies(), rules(RuleKind.PROHIBITION), st.data())
def test_adding_a_prohibition_never_permits_more(
    policy: Policy, extra: Rule, data: st.DataObject
) -> None:
    asked, state = _case(data.draw)
    before = evaluate(policy, asked, state, now=NOW)
    stricter = dataclasses.replace(policy, prohibitions=(*policy.prohibitions, extra))
    after = evaluate(stricter, asked, state, now=NOW)
    assert before.permitted or not after.permitted


@settings(max_examples=100, deadline=None)
@given(policies(), st.data())
def test_without_permissions_everything_is_denied(policy: Policy, data: st.DataObject) -> None:
    asked, state = _case(data.draw)
    closed = dataclasses.replace(policy, permissions=())
    assert not evaluate(closed, asked, state, now=NOW + timedelta(days=1)).permitted


@settings(max_examples=100, deadline=None)
@given(policies(), st.data())
def test_permits_name_the_granting_rule_and_limits(policy: Policy, data: st.DataObject) -> None:
    asked, state = _case(data.draw)
    decision = evaluate(policy, asked, state, now=NOW)
    assert decision.permitted == (decision.limits is not None)
    assert decision.policy_hash.startswith("sha256:")
