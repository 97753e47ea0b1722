"""The count cap a use is spent under, and the rate limits a policy has (policies.bounds).

The cap must be exactly the first use count at which the same request is denied: the
conditional increment spends only below it, so a cap too high overspends and one too low
refuses uses the policy allows. Checked against evaluating at every count.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.agreements.usage import request_times
from policies import SLUIS_PROFILE, Request, build_state, compile_policy, evaluate
from policies.bounds import count_cap, rate_limits, stated_use_limit
from policies.yaml_policy import parse_yaml_policy

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ASK = Request("urn:sluis:participant:a", "http://www.w3.org/ns/odrl/2/read", "urn:d")


def _policy(constraints: str, prohibitions: str = "") -> str:
    return f"""
uid: urn:p
type: Set
target: urn:d
permissions: [{{action: read, constraints: {constraints}}}]
{prohibitions}
"""


CASES = {
    "lteq": "[[count, lteq, 5]]",
    "lt": "[[count, lt, 5]]",
    "eq": "[[count, eq, 3]]",
    "two": "[[count, lteq, 9], [count, lteq, 4]]",
    "or": "[{or: [[count, lteq, 2], [count, gteq, 6]]}]",
    "none": "[]",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_cap_is_the_first_count_that_denies(name: str) -> None:
    policy = compile_policy(parse_yaml_policy(_policy(CASES[name])), SLUIS_PROFILE)
    for seen in range(12):
        state = build_state(use_count=seen)
        if not evaluate(policy, ASK, state, now=NOW).permitted:
            continue
        expected = next(
            (c for c in range(seen + 1, 40)
             if not evaluate(policy, ASK, replace(state, use_count=c), now=NOW).permitted),
            None,
        )  # fmt: skip
        assert count_cap(policy, ASK, state, now=NOW) == expected, seen


def test_rate_limits_are_found_wherever_they_stand() -> None:
    text = (
        _policy("[]").replace("constraints: []", "constraints: [], data: {rate_limit: 10/PT1M}")
        + "prohibitions: [{action: read, constraints: [[count, gt, 100]]}]\n"
    )
    assert rate_limits(parse_yaml_policy(text)) == ((10, "PT1M"),)


def test_synthesised_times_give_each_window_its_count() -> None:
    """3 uses in the last minute, 7 in the last hour, 50 in the day; capped at 11."""
    windows, counts = ("PT1H", "PT1M", "P1D"), (7, 3, 50)
    times = request_times(windows, counts, NOW, cap=11)
    for window, span, count in [("PT1M", 1, 3), ("PT1H", 60, 7), ("P1D", 1440, 11)]:
        since = NOW - timedelta(minutes=span)
        assert sum(1 for t in times if since < t <= NOW) == min(count, 11), window


@pytest.mark.parametrize(
    ("name", "limit"),
    [("lteq", 5), ("lt", 4), ("eq", 3), ("two", 4), ("or", 2), ("none", None)],
)
def test_the_stated_use_limit_is_the_fewest_uses_a_count_bound_allows(
    name: str, limit: int | None
) -> None:
    policy = parse_yaml_policy(_policy(CASES[name]))
    assert stated_use_limit(policy) == limit


def test_a_lower_bound_or_a_prohibition_states_no_use_limit() -> None:
    lower = parse_yaml_policy(_policy("[[count, gteq, 2]]"))
    assert stated_use_limit(lower) is None
    prohibited = parse_yaml_policy(
        _policy("[]", "prohibitions: [{action: read, constraints: [[count, lteq, 1]]}]")
    )
    assert stated_use_limit(prohibited) is None
