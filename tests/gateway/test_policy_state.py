"""Issue 11: the same state gives the same decision in the gateway, the CLI and policy tests.

``sluis policy eval --state`` used to drop ``use_count``, ``request_times`` and
``agreement_start`` (``merge`` copied only memberships and duty states), so a provider's
check on the command line could permit what the gateway denies. All three now build the
state with ``policies.world.build_state``; hypothesis draws states and compares decisions.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from certs import participant_uri
from gateway.cli.policy_cmd import app, load_request, load_state
from gateway.exchange.policy_input import PURPOSE as PURPOSE_KEY
from gateway.exchange.policy_input import READ, policy_request, policy_state
from policies import Iri, evaluate, merge, parse_yaml_policy, run_policy_tests
from policies.operands.data import AGGREGATE

CONSUMER = "EU.EORI.NL000000002"
ASSET = "urn:sluis:dataset:meters"
PURPOSE = "https://w3id.org/dpv#AcademicResearch"
UNIVERSITIES = "urn:group:universities"
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
POLICY = f"""\
uid: urn:sluis:policy:meters
target: {ASSET}
permissions:
  - uid: urn:sluis:policy:meters#read
    action: read
    assignee: [{{collection: {UNIVERSITIES}}}]
    constraints:
      - {{or: [[count, lt, 4], [elapsedTime, lteq, P30D]]}}
    data: {{rate_limit: 3/PT1H, min_group_size: 2}}
"""


@st.composite
def states(draw: st.DrawFn) -> dict[str, Any]:
    """The facts the exchange keeps for one agreement."""
    minutes = st.integers(min_value=0, max_value=150)
    start_days = st.none() | st.integers(min_value=0, max_value=60)
    days = draw(start_days)
    return {
        "groups": draw(st.sampled_from([[], [UNIVERSITIES], ["urn:group:other"]])),
        "use_count": draw(st.integers(min_value=0, max_value=8)),
        "request_times": [NOW - timedelta(minutes=m) for m in draw(st.lists(minutes, max_size=6))],
        "agreement_start": None if days is None else NOW - timedelta(days=days),
    }


def gateway_state(facts: dict[str, Any]) -> Any:
    return policy_state(consumer_id=CONSUMER, **facts)


def state_yaml(facts: dict[str, Any]) -> str:
    doc: dict[str, Any] = {
        "broader": {participant_uri(CONSUMER): facts["groups"]} if facts["groups"] else {},
        "use_count": facts["use_count"],
        "request_times": facts["request_times"],
    }
    if facts["agreement_start"] is not None:
        doc["agreement_start"] = facts["agreement_start"]
    return yaml.safe_dump(doc)


REQUEST = {
    "party": participant_uri(CONSUMER),
    "action": "read",
    "target": ASSET,
    "context": {"purpose": [PURPOSE], "aggregate": True},
}


def cli_decision(folder: Path, facts: dict[str, Any]) -> tuple[str, str]:
    (folder / "policy.yaml").write_text(POLICY)
    (folder / "request.yaml").write_text(yaml.safe_dump(REQUEST))
    (folder / "state.yaml").write_text(state_yaml(facts))
    args = ["eval", "--policy", str(folder / "policy.yaml"), "--request"]
    args += [str(folder / "request.yaml"), "--state", str(folder / "state.yaml")]
    result = CliRunner().invoke(app, [*args, "--now", NOW.isoformat()])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    return out["decision"], out["reason"]


def policy_test_passes(facts: dict[str, Any], expect: str, reason: str) -> bool:
    case = {
        "name": "drawn",
        "now": NOW,
        "request": REQUEST,
        "state": yaml.safe_load(state_yaml(facts)),
    }
    doc = {"policy": "meters", "cases": [{**case, "expect": expect, "reason": reason}]}
    results = run_policy_tests(yaml.safe_dump(doc), {"meters": parse_yaml_policy(POLICY)})
    return all(r.passed for r in results)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(facts=states())
def test_gateway_cli_and_policy_tests_decide_alike(facts: dict[str, Any]) -> None:
    policy = parse_yaml_policy(POLICY)
    ask = policy_request(consumer_id=CONSUMER, asset=ASSET, purpose=PURPOSE, aggregate=True)
    gateway = evaluate(policy, ask, gateway_state(facts), now=NOW)
    expected = (gateway.effect.value, gateway.reason)
    with tempfile.TemporaryDirectory() as folder:
        assert cli_decision(Path(folder), facts) == expected
    assert policy_test_passes(facts, *expected)


@settings(max_examples=60, deadline=None)
@given(facts=states())
def test_the_cli_state_is_the_gateway_state(facts: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        state_path, request_path = Path(folder) / "state.yaml", Path(folder) / "request.yaml"
        state_path.write_text(state_yaml(facts))
        request_path.write_text(yaml.safe_dump(REQUEST))
        _, request_facts = load_request(request_path)
        world = merge(load_state(state_path), request_facts)
    assert world.state == gateway_state(facts)
    assert world.now is None


def test_a_request_asks_for_rows_unless_it_says_aggregate() -> None:
    """The exchange's request, exactly: the purpose, and rows (not an aggregate) by default,
    so an aggregates-only policy refuses a caller that forgot to say."""
    ask = policy_request(consumer_id=CONSUMER, asset=ASSET, purpose=PURPOSE)
    assert (ask.party, ask.action, ask.target) == (participant_uri(CONSUMER), READ, ASSET)
    assert dict(ask.context) == {PURPOSE_KEY: (Iri(PURPOSE),), AGGREGATE: (False,)}
