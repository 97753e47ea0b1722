"""The privacy terms of the Sluis profile: privacy unit, min/max, and the privacy budget."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import PolicyError, PrivacyLimits, State, build_state, evaluate, explain
from policies.operands.privacy import PRIVACY_BUDGET, parse_budget
from policies.yaml_policy import parse_yaml_policy
from tests.policies.helpers import NOW, request

PRIVATE = """
uid: urn:sluis:policy:salaries
permissions:
  - action: read
    target: urn:dataset:meters
    assignee: urn:org:uni
    data:
      min_group_size: 5
      privacy_unit: emp
      privacy_budget: 1.0/P30D
      query_epsilon: 0.3
      query_delta: 1.0e-6
      bounds: {salary: [0, 200000]}
      max_contributions: 2
      max_groups: 3
"""


def _state(*spent: tuple[int, str]) -> State:
    """Earlier queries: (days ago, epsilon)."""
    return build_state(privacy_spends=[(NOW - timedelta(days=d), Decimal(e)) for d, e in spent])


def test_the_permit_carries_the_privacy_terms() -> None:
    decision = evaluate(
        parse_yaml_policy(PRIVATE), request(sluis_aggregate=[True]), State(), now=NOW
    )
    assert decision.permitted, explain(decision)
    assert decision.limits is not None
    assert decision.limits.privacy_unit == ("emp",)
    assert decision.limits.privacy == PrivacyLimits(
        epsilon=Decimal("1.0"),
        period="P30D",
        query_epsilon=Decimal("0.3"),
        query_delta=Decimal("0.000001"),
        bounds=(("salary", Decimal(0), Decimal(200000)),),
        max_contributions=2,
        max_groups=3,
    )


def test_the_budget_counts_this_query_and_the_period_only() -> None:
    policy = parse_yaml_policy(PRIVATE)
    ask = request(sluis_aggregate=[True])
    assert evaluate(policy, ask, _state((1, "0.3"), (2, "0.3")), now=NOW).permitted
    refused = evaluate(policy, ask, _state((1, "0.3"), (2, "0.3"), (3, "0.3")), now=NOW)
    assert not refused.permitted
    assert "0.9 spent, this query costs 0.3" in explain(refused)
    # spends older than the period no longer count
    assert evaluate(policy, ask, _state((31, "0.3"), (40, "0.9"), (2, "0.3")), now=NOW).permitted


@settings(max_examples=60, deadline=None)
@given(spent=st.lists(st.integers(min_value=0, max_value=30), max_size=8), more=st.integers(0, 5))
def test_a_refused_query_stays_refused_as_more_is_spent(spent: list[int], more: int) -> None:
    """Spending more (within the period) never turns a refusal into a permit."""
    policy = parse_yaml_policy(PRIVATE)
    ask = request(sluis_aggregate=[True])
    spends = [(NOW - timedelta(days=d, seconds=1), Decimal("0.1")) for d in spent]
    before = evaluate(policy, ask, build_state(privacy_spends=spends), now=NOW)
    extra = [(NOW - timedelta(seconds=10 + i), Decimal("0.1")) for i in range(more)]
    after = evaluate(policy, ask, build_state(privacy_spends=spends + extra), now=NOW)
    assert before.permitted or not after.permitted
    assert before.permitted == (
        len([d for d in spent if d < 30]) * Decimal("0.1") <= Decimal("0.7")
    )


def test_rows_are_refused_under_a_privacy_unit() -> None:
    policy = parse_yaml_policy(PRIVATE)
    assert not evaluate(policy, request(sluis_aggregate=[False]), State(), now=NOW).permitted


def test_a_budget_without_a_per_query_cost_denies() -> None:
    text = PRIVATE.replace("      query_epsilon: 0.3\n", "")
    decision = evaluate(parse_yaml_policy(text), request(sluis_aggregate=[True]), State(), now=NOW)
    assert not decision.permitted
    assert "sets no queryEpsilon" in explain(decision)


@pytest.mark.parametrize(
    ("line", "bad"),
    [
        ("privacy_budget: 1.0/P30D", "privacy_budget: lots"),
        ("privacy_budget: 1.0/P30D", "privacy_budget: -1/P30D"),
        ("query_epsilon: 0.3", "query_epsilon: 0"),
        ("query_delta: 1.0e-6", "query_delta: 1.5"),
        ("bounds: {salary: [0, 200000]}", "bounds: {salary: [9, 1]}"),
        ("bounds: {salary: [0, 200000]}", "bounds: {salary: [0]}"),
        ("max_groups: 3", "max_groups: 0"),
        ("privacy_unit: emp", "privacy_units: emp"),
        ("min_group_size: 5", "allow_min_max: false"),
    ],
)
def test_unusable_privacy_terms_are_refused_on_write(line: str, bad: str) -> None:
    with pytest.raises(PolicyError):
        parse_yaml_policy(PRIVATE.replace(line, bad))


@pytest.mark.parametrize(
    "budget", ["1/P", "1/PT", "1/P0D", "1/PT0S", "1/P0Y0M0DT0H0M0.0S", "1/P30", "1/30D", "1/"]
)
def test_a_budget_over_no_period_is_refused_on_write_and_denies(budget: str) -> None:
    """A period of zero length counts no spend at all: the budget would never run out."""
    with pytest.raises(PolicyError, match="is not epsilon/duration"):
        parse_yaml_policy(PRIVATE.replace("1.0/P30D", budget))
    assert parse_budget((budget,)) is None
    # a policy that reached the engine without the parser still denies, and says why
    policy = parse_yaml_policy(PRIVATE)
    permission = policy.permissions[0]
    rule = replace(
        permission,
        constraints=tuple(
            replace(c, right_operand=(budget,)) if c.left_operand == PRIVACY_BUDGET else c
            for c in permission.constraints
        ),
    )
    decision = evaluate(
        replace(policy, permissions=(rule,)), request(sluis_aggregate=[True]), State(), now=NOW
    )
    assert not decision.permitted
    assert decision.reason == "invalid_value"
    assert f"sluis:privacyBudget: {budget} is not epsilon/duration" in explain(decision)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("1.0/P30D", (Decimal("1.0"), "P30D")),
        (" 0.5 / PT1S ", (Decimal("0.5"), "PT1S")),
        ("2/PT0.5S", (Decimal(2), "PT0.5S")),
        ("1/P1M", (Decimal(1), "P1M")),
    ],
)
def test_a_budget_over_a_period_parses(text: str, parsed: tuple[Decimal, str]) -> None:
    assert parse_budget((text,)) == parsed


@pytest.mark.parametrize(
    "right", [(), ("1/P1D", "1/P1D"), (1,), ("0/P1D",), ("NaN/P1D",), ("1/p1d",), ("1/P1D/P1D",)]
)
def test_other_malformed_budgets_parse_to_nothing(right: tuple[object, ...]) -> None:
    assert parse_budget(right) is None  # type: ignore[arg-type]
