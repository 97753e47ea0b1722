"""The usage-policy engine (ODRL 2.2): pure, no IO, no FastAPI.

    policy = parse_policy(text)                 # Turtle or JSON-LD (or parse_yaml_policy)
    validate(policy, SLUIS_PROFILE)             # on write: unknown terms raise UnknownTerm
    state = build_state(broader=..., use_count=..., request_times=...)   # the one way to a State
    compiled = compile_policy(policy, SLUIS_PROFILE)  # once per policy version
    decision = evaluate(compiled, request, state, now=now)   # or evaluate(policy, ...)
    decision.permitted, decision.limits, decision.policy_hash, explain(decision)
    check_targets(policy, asset)                # on registration: can it govern the asset?

Every format is read strictly: an unknown key or term, a wrong type or an unusable value is
an error (with line and key for YAML), never silently dropped.

Every error is a ``PolicyError`` with a stable ``code`` (see ``policies.errors``).
"""

from policies.canonical import canonical_json, policy_hash
from policies.compiled import CompiledPolicy, compile_policy
from policies.decision import (
    ConstraintReport,
    DataLimits,
    Decision,
    Effect,
    PrivacyLimits,
    RateLimit,
    RuleReport,
)
from policies.engine import evaluate
from policies.errors import (
    PolicyError,
    PolicyStructureError,
    PolicySyntaxError,
    PolicyTestError,
    UnknownTerm,
)
from policies.explain import explain
from policies.model import (
    Action,
    Constraint,
    Iri,
    LogicalConstraint,
    Policy,
    Ref,
    Rule,
    RuleKind,
)
from policies.policy_tests import (
    CaseResult,
    parse_yaml_request,
    parse_yaml_state,
    run_policy_tests,
)
from policies.profile import CONFORMANCE_PROFILE, SLUIS_PROFILE, Profile, problems, validate
from policies.rdf_policy import parse_policy
from policies.request import DutyState, Request, State
from policies.targets import check_targets
from policies.w3c_request import parse_evaluation_request
from policies.world import World, build_state, merge, parse_request, parse_world
from policies.yaml_policy import parse_yaml_policy

__all__ = [
    "CONFORMANCE_PROFILE",
    "SLUIS_PROFILE",
    "Action",
    "CaseResult",
    "CompiledPolicy",
    "Constraint",
    "ConstraintReport",
    "DataLimits",
    "Decision",
    "DutyState",
    "Effect",
    "Iri",
    "LogicalConstraint",
    "Policy",
    "PolicyError",
    "PolicyStructureError",
    "PolicySyntaxError",
    "PolicyTestError",
    "PrivacyLimits",
    "Profile",
    "RateLimit",
    "Ref",
    "Request",
    "Rule",
    "RuleKind",
    "RuleReport",
    "State",
    "UnknownTerm",
    "World",
    "build_state",
    "canonical_json",
    "check_targets",
    "compile_policy",
    "evaluate",
    "explain",
    "merge",
    "parse_evaluation_request",
    "parse_policy",
    "parse_request",
    "parse_world",
    "parse_yaml_policy",
    "parse_yaml_request",
    "parse_yaml_state",
    "policy_hash",
    "problems",
    "run_policy_tests",
    "validate",
]
