"""What a refused consumer may learn (policies.refusal): its own choices, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.exchange.policy_input import policy_request, policy_state
from policies import evaluate, parse_yaml_policy
from policies.refusal import Refusal, refusal_of

CONSUMER = "NTRNL-40000001"
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
RESEARCH = "https://w3id.org/dpv#AcademicResearch"
MARKETING = "https://w3id.org/dpv#Marketing"
POLICY = parse_yaml_policy(f"""
uid: urn:sluis:policy:maker:sensors
type: Offer
target: urn:sluis:dataset:sensors
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{CONSUMER}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]], [count, lteq, 2]]
    data: {{columns: [machine, temp_c], min_group_size: 3}}
""")


def _refusal(
    columns: list[str], *, aggregate: bool, purpose: str = RESEARCH, uses: int = 0
) -> Refusal | None:
    request = policy_request(
        consumer_id=CONSUMER, asset="urn:sluis:dataset:sensors", purpose=purpose,
        columns=columns, aggregate=aggregate,
    )  # fmt: skip
    state = policy_state(
        consumer_id=CONSUMER, groups=[], use_count=uses, request_times=[], agreement_start=None
    )
    return refusal_of(evaluate(POLICY, request, state, now=NOW))


def test_a_withheld_column_is_named_and_only_the_withheld_ones() -> None:
    assert _refusal(["machine", "serial"], aggregate=True) == Refusal(
        "column-not-allowed", ("serial",)
    )


def test_a_row_level_read_on_an_aggregates_only_permission_says_so() -> None:
    assert _refusal(["machine"], aggregate=False) == Refusal("aggregate-required")


def test_a_withheld_column_is_said_first_when_both_fail() -> None:
    assert _refusal(["serial"], aggregate=False) == Refusal("column-not-allowed", ("serial",))


@pytest.mark.parametrize(
    ("purpose", "uses"),
    [(MARKETING, 0), (RESEARCH, 5)],
    ids=["wrong purpose", "uses spent"],
)
def test_nothing_is_revealed_when_another_term_fails_too(purpose: str, uses: int) -> None:
    """The purpose or count fails as well: a hint would tell the caller about the others."""
    assert _refusal(["serial"], aggregate=False, purpose=purpose, uses=uses) is None


def test_a_permit_has_no_refusal() -> None:
    assert _refusal(["machine"], aggregate=True) is None
