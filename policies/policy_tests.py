"""Provider-written policy tests (like ``opa test``): request, state, expected decision.

::

    policy: meters                      # a key of the ``policies`` the caller loaded
    cases:
      - name: researcher may read for research
        now: 2025-06-01T12:00:00Z
        request: {party: urn:org:uni, action: read, target: urn:dataset:meters,
                  context: {purpose: [dpv:ResearchAndDevelopment], columns: [a]}}
        state: {use_count: 3, agreement_start: 2025-01-01T00:00:00Z,
                broader: {urn:org:uni: [urn:group:researchers]}}
        expect: permit                  # permit | deny
        reason: permitted               # optional: the decision's reason code

The same ``request`` and ``state`` mappings, one per YAML document (a ``prefixes`` key
allowed, and ``now`` in a state), are what ``parse_yaml_request`` / ``parse_yaml_state`` read
for ``sluis policy eval``. The CLI reads the files; this module only parses the text it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

import yaml

from policies.decision import Decision
from policies.engine import evaluate
from policies.errors import PolicyError, PolicyStructureError, PolicySyntaxError, PolicyTestError
from policies.model import Policy
from policies.request import DutyState, Request, State
from policies.vocab import SLUIS
from policies.world import World
from policies.yaml_policy import _Compiler

T = TypeVar("T")
_SLUIS_CONTEXT = frozenset({"columns", "rowFilter", "maxRows", "aggregate", "minGroupSize"})


@dataclass(frozen=True)
class CaseResult:
    """One test case: passed or not, and the decision that decided it."""

    name: str
    passed: bool
    expected: str
    decision: Decision


def run_policy_tests(text: str | bytes, policies: Mapping[str, Policy]) -> list[CaseResult]:
    """Run every case of one test document against the named policy."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyTestError(str(exc).splitlines()[0] if str(exc) else "bad YAML") from exc
    if not isinstance(doc, dict) or doc.get("policy") not in policies:
        raise PolicyTestError("a policy test names a loaded policy under 'policy'")
    policy = policies[doc["policy"]]
    compiler = _Compiler(doc.get("prefixes") or {})
    return [_run(policy, case, compiler) for case in doc.get("cases") or []]


def parse_yaml_request(text: str | bytes) -> Request:
    """One request in the test-case shape: ``party``, ``action``, ``target``, ``context``."""
    doc, compiler = _document(text)
    return _checked(lambda: _request(doc, compiler))


def parse_yaml_state(text: str | bytes) -> World:
    """One state in the test-case shape, and the time it records under ``now`` (optional)."""
    doc, compiler = _document(text)
    now = _checked(lambda: compiler.value(doc["now"])) if "now" in doc else None
    if now is not None and not isinstance(now, datetime):
        raise PolicyStructureError("now must be a date-time", code="request_structure")
    return World(_checked(lambda: _state(doc, compiler)), now)


def _document(text: str | bytes) -> tuple[dict[str, Any], _Compiler]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise PolicySyntaxError(line, code="yaml_syntax") from exc
    if not isinstance(doc, dict):
        raise PolicyStructureError("a YAML request or state is a mapping", code="request_structure")
    return doc, _Compiler(doc.get("prefixes") or {})


def _checked(build: Callable[[], T]) -> T:
    try:
        return build()
    except PolicyStructureError as exc:  # the shared compiler speaks of policies
        raise PolicyStructureError(exc.reason, code="request_structure") from exc
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise PolicyStructureError(str(exc), code="request_structure") from exc


def _run(policy: Policy, case: Any, compiler: _Compiler) -> CaseResult:
    if not isinstance(case, dict) or case.get("expect") not in ("permit", "deny"):
        raise PolicyTestError("each case needs expect: permit | deny")
    try:
        request = _request(case.get("request") or {}, compiler)
        state = _state(case.get("state") or {}, compiler)
        now = compiler.value(case.get("now"))
    except PolicyError as exc:
        raise PolicyTestError(f"case {case.get('name')!r}: {exc.reason}") from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise PolicyTestError(f"case {case.get('name')!r}: {exc}") from exc
    if not isinstance(now, datetime):
        raise PolicyTestError(f"case {case.get('name')!r}: now must be a date-time")
    decision = evaluate(policy, request, state, now=now)
    passed = decision.effect.value == case["expect"] and case.get("reason", decision.reason) == (
        decision.reason
    )
    return CaseResult(str(case.get("name", "?")), passed, case["expect"], decision)


def _request(raw: dict[str, Any], c: _Compiler) -> Request:
    context = {
        c.iri(k, SLUIS if k in _SLUIS_CONTEXT else c.prefixes["odrl"]): tuple(
            c.value(v) for v in (vs if isinstance(vs, list) else [vs])
        )
        for k, vs in (raw.get("context") or {}).items()
    }
    party, target = raw.get("party"), raw.get("target")
    return Request(
        party=c.iri(party) if party else None,
        action=c.iri(raw.get("action")),
        target=c.iri(target) if target else None,
        context=MappingProxyType(context),
    )


def _state(raw: dict[str, Any], c: _Compiler) -> State:
    broader = {
        c.iri(k): frozenset(c.iri(v) for v in vs) for k, vs in (raw.get("broader") or {}).items()
    }
    duties = {str(k): DutyState(v) for k, v in (raw.get("duty_states") or {}).items()}
    start = c.value(raw["agreement_start"]) if "agreement_start" in raw else None
    times = tuple(
        t for t in (c.value(v) for v in raw.get("request_times") or []) if isinstance(t, datetime)
    )
    return State(
        broader=MappingProxyType(broader),
        duty_states=MappingProxyType(duties),
        use_count=int(raw.get("use_count", 0)),
        request_times=times,
        agreement_start=start if isinstance(start, datetime) else None,
    )
