"""The example policies' time windows end at the documented horizon (docs/policies.md#examples).

The first-hour guide registers ``examples/policies/machine_sensors.yaml`` as it is and queries
it at today's date: an end date close to today breaks the guide (and its test) on that day.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from policies import Policy, parse_policy, parse_yaml_policy
from policies.model import AnyConstraint, Constraint
from policies.vocab import ODRL

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
HORIZON = datetime(2100, 1, 1, tzinfo=UTC)
ENDS = {ODRL + "lt", ODRL + "lteq"}


def _policy(path: Path) -> Policy:
    text = path.read_text()
    return parse_yaml_policy(text) if path.suffix == ".yaml" else parse_policy(text)


def _ends(constraints: tuple[AnyConstraint, ...]) -> list[datetime]:
    out: list[datetime] = []
    for c in constraints:
        if not isinstance(c, Constraint):
            out += _ends(c.operands)
        elif c.left_operand == ODRL + "dateTime" and c.operator in ENDS:
            out += [v for v in c.right_operand if isinstance(v, datetime)]
    return out


@pytest.mark.parametrize("name", ["machine_sensors.yaml", "grid_meters.ttl"])
def test_an_examples_end_date_is_the_horizon(name: str) -> None:
    policy = _policy(EXAMPLES / name)
    ends = [end for rule in policy.permissions for end in _ends(rule.constraints)]
    assert ends, f"{name} has no end date: this test no longer guards it"
    assert min(ends) >= HORIZON, f"{name} ends before the examples' horizon {HORIZON:%Y-%m-%d}"


def test_the_horizon_is_still_far() -> None:
    """Read once at the wall clock on purpose: ten years' warning before the examples expire."""
    years_left = HORIZON.year - datetime.now(UTC).year
    assert years_left >= 10, "move the examples' horizon (docs/policies.md#examples) further"
