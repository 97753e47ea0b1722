"""Our own cases for what the suites lack: count, elapsedTime, spatial, recipient, purpose."""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType

import pytest

from policies import State, evaluate
from policies.yaml_policy import parse_yaml_policy
from tests.policies.helpers import NOW, UNI, iri, request


def _policy(constraint: str) -> str:
    return f"""
uid: urn:sluis:policy:test
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: use
    target: urn:dataset:meters
    constraints: [{constraint}]
"""


@pytest.mark.parametrize(
    ("uses", "permitted"), [(0, True), (8, True), (9, True), (10, False), (50, False)]
)
def test_count_includes_this_request(uses: int, permitted: bool) -> None:
    policy = parse_yaml_policy(_policy("[count, lteq, 10]"))
    decision = evaluate(policy, request(), State(use_count=uses), now=NOW)
    assert decision.permitted is permitted


@pytest.mark.parametrize(
    ("age", "permitted"), [(timedelta(days=29), True), (timedelta(days=30, seconds=1), False)]
)
def test_elapsed_time_since_agreement(age: timedelta, permitted: bool) -> None:
    policy = parse_yaml_policy(_policy("[elapsedTime, lteq, P30D]"))
    state = State(agreement_start=NOW - age)
    assert evaluate(policy, request(), state, now=NOW).permitted is permitted


def test_elapsed_time_without_agreement_start_denies() -> None:
    policy = parse_yaml_policy(_policy("[elapsedTime, lteq, P1M]"))
    assert not evaluate(policy, request(), State(), now=NOW).permitted


@pytest.mark.parametrize(
    ("where", "permitted"),
    [
        (["NL"], True),
        (["nl"], True),
        (["urn:iso:std:iso:3166:BE"], True),
        (["US"], False),
        ([], False),
    ],
)
def test_spatial_iso_3166(where: list[str], permitted: bool) -> None:
    policy = parse_yaml_policy(_policy("[spatial, isAnyOf, [NL, BE]]"))
    decision = evaluate(policy, request(spatial=list(where)), State(), now=NOW)
    assert decision.permitted is permitted


def test_recipient_party_collection() -> None:
    policy = parse_yaml_policy(_policy("[recipient, isPartOf, [urn:group:researchers]]"))
    member = State(broader=MappingProxyType({UNI: frozenset({"urn:group:researchers"})}))
    assert evaluate(policy, request(), member, now=NOW).permitted
    assert not evaluate(policy, request(), State(), now=NOW).permitted


def test_purpose_hierarchy_is_any_of() -> None:
    policy = parse_yaml_policy(_policy("[purpose, isAnyOf, [dpv:ResearchAndDevelopment]]"))
    narrower = "https://w3id.org/dpv#AcademicResearch"
    hierarchy = State(
        broader=MappingProxyType(
            {narrower: frozenset({"https://w3id.org/dpv#ResearchAndDevelopment"})}
        )
    )
    asked = request(purpose=[iri(narrower)])
    assert evaluate(policy, asked, hierarchy, now=NOW).permitted
    assert not evaluate(policy, asked, State(), now=NOW).permitted


def test_purpose_is_none_of_denies_a_narrower_purpose() -> None:
    policy = parse_yaml_policy(_policy("[purpose, isNoneOf, [dpv:Marketing]]"))
    narrower = "https://w3id.org/dpv#DirectMarketing"
    hierarchy = State(
        broader=MappingProxyType({narrower: frozenset({"https://w3id.org/dpv#Marketing"})})
    )
    assert not evaluate(policy, request(purpose=[iri(narrower)]), hierarchy, now=NOW).permitted


@pytest.mark.parametrize(
    ("name", "value", "permitted"),
    [("industry", "energy", True), ("deliveryChannel", "api", False), ("fileFormat", "csv", True)],
)
def test_declared_context_operands(name: str, value: str, permitted: bool) -> None:
    policy = parse_yaml_policy(_policy(f"[{name}, isAnyOf, [energy, csv, parquet]]"))
    assert evaluate(policy, request(**{name: [value]}), State(), now=NOW).permitted is permitted


def test_date_time_window_with_logical_xone() -> None:
    policy = parse_yaml_policy(
        _policy(
            "{xone: [[dateTime, lt, 2025-07-01T00:00:00Z], [dateTime, lt, 2025-05-01T00:00:00Z]]}"
        )
    )
    assert evaluate(policy, request(), State(), now=NOW).permitted
    assert not evaluate(policy, request(), State(), now=NOW - timedelta(days=60)).permitted
