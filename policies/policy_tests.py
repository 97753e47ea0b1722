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

Parsing is strict (``policies.yaml_schema``): an unknown key (``contxt:``, ``stat:``), a
value of the wrong type, an unknown context key, or a document without cases is an error
naming the line and key: ``PolicyTestError`` in a test file, ``PolicyStructureError`` in a
request or state. States are built by ``policies.world.build_state``, as the gateway's are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from policies import yaml_schema as schema
from policies.decision import Decision
from policies.engine import evaluate
from policies.errors import PolicyError, PolicyStructureError, PolicyTestError
from policies.model import Policy, Value
from policies.operands.data import AGGREGATE
from policies.profile import SLUIS_PROFILE, Profile
from policies.request import DutyState, Request, State
from policies.vocab import SLUIS
from policies.world import World, build_state
from policies.yaml_policy import Terms
from policies.yaml_source import Located, Path, load_yaml

M = TypeVar("M", bound=BaseModel)
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
    located, doc = _load(text, schema.TestFile, PolicyTestError)
    if doc.policy not in policies:
        raise located.error(
            ("policy",), f"no loaded policy {doc.policy!r}", "policy_test", PolicyTestError
        )
    reader = _Reader(doc.prefixes, located, SLUIS_PROFILE, PolicyTestError)
    return [
        _run(policies[doc.policy], case, reader, ("cases", i)) for i, case in enumerate(doc.cases)
    ]


def parse_yaml_request(text: str | bytes, profile: Profile = SLUIS_PROFILE) -> Request:
    """One request in the test-case shape: ``party``, ``action``, ``target``, ``context``."""
    located, doc = _load(text, schema.RequestFile, PolicyStructureError)
    return _Reader(doc.prefixes, located, profile, PolicyStructureError).request(doc, ())


def parse_yaml_state(text: str | bytes) -> World:
    """One state in the test-case shape, and the time it records under ``now`` (optional)."""
    located, doc = _load(text, schema.StateFile, PolicyStructureError)
    reader = _Reader(doc.prefixes, located, SLUIS_PROFILE, PolicyStructureError)
    return World(reader.state(doc), doc.now)


def _load(text: str | bytes, model: type[M], family: type[PolicyError]) -> tuple[Located, M]:
    try:
        located = load_yaml(text)
    except PolicyError as exc:
        raise _as(exc, family) from exc
    if not isinstance(located.data, dict):
        raise located.error((), f"a YAML {_noun(model)} is a mapping", _code(family), family)
    try:
        return located, model.model_validate(located.data)
    except ValidationError as exc:
        raise located.schema_error(exc, family) from exc


def _noun(model: type[BaseModel]) -> str:
    return "policy test" if model is schema.TestFile else "request or state"


def _code(family: type[PolicyError]) -> str:
    return "policy_test" if family is PolicyTestError else "request_structure"


def _as(exc: PolicyError, family: type[PolicyError]) -> PolicyError:
    if isinstance(exc, family) or family is PolicyStructureError:
        return exc
    return family(exc.reason, code=exc.code, line=exc.line, key=exc.key, column=exc.column)


class _Reader(Terms):
    """Requests and states of one document, each error at its line and key."""

    def __init__(
        self,
        prefixes: Mapping[str, str],
        located: Located,
        profile: Profile,
        family: type[PolicyError],
    ) -> None:
        super().__init__(prefixes)
        self.located, self.profile, self.family = located, profile, family

    def fail(self, at: Path, reason: str, code: str = "invalid_value") -> PolicyError:
        return self.located.error(at, reason, code, self.family)

    def value(self, raw: Any, at: Path | None = None) -> Value:
        try:
            return super().value(raw)
        except PolicyError as exc:
            raise self.fail(at or (), exc.reason) from exc

    def request(self, doc: schema.RequestDoc, at: Path) -> Request:
        context = {self.context_key(k, (*at, "context", k)): self.values(v, (*at, "context", k))
                   for k, v in doc.context.items()}  # fmt: skip
        return Request(
            party=self.iri(doc.party) if doc.party else None,
            action=self.iri(doc.action),
            target=self.iri(doc.target) if doc.target else None,
            context=MappingProxyType(context),
        )

    def context_key(self, key: str, at: Path) -> str:
        iri = self.iri(key, SLUIS if key in _SLUIS_CONTEXT else self.prefixes["odrl"])
        if iri not in self.profile.left_operands and iri != AGGREGATE:
            raise self.fail(at, f"unknown context key: {iri}", "unknown_key")
        return iri

    def values(self, raw: Any, at: Path) -> tuple[Value, ...]:
        items = raw if isinstance(raw, list) else [raw]
        return tuple(
            self.value(v, (*at, i) if isinstance(raw, list) else at) for i, v in enumerate(items)
        )

    def state(self, doc: schema.StateDoc) -> State:
        """The state, built as the gateway builds its own (the schema checked every value)."""
        broader = {self.iri(k): {self.iri(v) for v in (vs if isinstance(vs, list) else [vs])}
                   for k, vs in doc.broader.items()}  # fmt: skip
        return build_state(
            broader=broader,
            duty_states={k: DutyState(v) for k, v in doc.duty_states.items()},
            use_count=doc.use_count,
            rule_counts=doc.rule_counts,
            request_times=doc.request_times,
            agreement_start=doc.agreement_start,
            privacy_spends=[(p.at, Decimal(str(p.epsilon))) for p in doc.privacy_spends],
        )


def _run(policy: Policy, case: schema.Case, reader: _Reader, at: Path) -> CaseResult:
    request = reader.request(case.request, (*at, "request"))
    state = reader.state(case.state)
    decision = evaluate(policy, request, state, now=case.now)
    passed = decision.effect.value == case.expect and case.reason in (None, decision.reason)
    return CaseResult(case.name, passed, case.expect, decision)
