"""The policies the compiled engine is held to the reference on: examples and conformance.

Each case is a policy, the profile it is decided under and one real request and state (the
conformance case's own, or the example's), from which ``cases.py``'s strategies vary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from policies import (
    CONFORMANCE_PROFILE,
    SLUIS_PROFILE,
    Policy,
    Profile,
    Request,
    State,
    World,
    parse_evaluation_request,
    parse_policy,
    parse_request,
    parse_world,
    parse_yaml_policy,
    parse_yaml_request,
    parse_yaml_state,
)
from policies.world import merge
from tests.policies.vectors import PURPOSE, SOLIDLAB, W3C

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
REQUESTS = EXAMPLES / "requests"


@dataclass(frozen=True)
class Case:
    """A policy with one real request and state to vary."""

    policy: Policy
    profile: Profile
    request: Request
    state: State
    now: datetime


def example_cases() -> list[Any]:
    """The example policies with the example university request."""
    request = parse_yaml_request((REQUESTS / "university_aggregate.yaml").read_text())
    world = parse_yaml_state((REQUESTS / "university_state.yaml").read_text())
    now = world.now or datetime(2026, 3, 2, 10, tzinfo=UTC)
    policies = {
        "machine_sensors": parse_yaml_policy((EXAMPLES / "machine_sensors.yaml").read_text()),
        "grid_meters": parse_policy((EXAMPLES / "grid_meters.ttl").read_text()),
    }
    return [
        pytest.param(Case(p, SLUIS_PROFILE, request, world.state, now), id=name)
        for name, p in policies.items()
    ]


def _manifest_cases(folder: Path, manifest: str, key: str) -> list[Any]:
    path = folder / manifest
    if not path.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"vectors not at {path}"))]
    found = []
    for case in json.loads(path.read_text())["cases"]:
        policy = parse_policy((folder / case["policy"]).read_text())
        request, facts = parse_request((folder / case["request"]).read_text())
        world = merge(parse_world((folder / case["sotw"]).read_text()), facts)
        assert world.now is not None, "the suites record the time"
        decided = Case(policy, CONFORMANCE_PROFILE, request, world.state, world.now)
        found.append(pytest.param(decided, id=f"{folder.name[:12]}-{case[key]}"))
    return found


def conformance_cases() -> list[Any]:
    """SolidLab (68), its purpose cases (9) and the W3C Formal Semantics examples (9)."""
    return [
        *_manifest_cases(SOLIDLAB, "allow_deny_manifest.derived.json", "slug"),
        *_manifest_cases(PURPOSE, "manifest.json", "n"),
        *_w3c_cases(),
    ]


def _w3c_cases() -> list[Any]:
    if not W3C.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"vectors not at {W3C}"))]
    found = []
    for path in sorted(W3C.rglob("evaluationrequest*.json")):
        folder = path.parent
        policy = parse_policy(next(folder.parent.glob("policy*.json")).read_text())
        request, now = parse_evaluation_request(path.read_text())
        states = sorted(folder.glob("state*.ttl"))
        world = parse_world(states[0].read_text()) if states else World()
        at = now or datetime(2024, 1, 1, tzinfo=UTC)
        decided = Case(policy, CONFORMANCE_PROFILE, request, world.state, at)
        found.append(pytest.param(decided, id=f"w3c-{folder.name}"))
    return found
