"""``evaluate``: one policy, one request, one state of the world, the time -> a ``Decision``.

Closed world: without an active permission the answer is deny. An active prohibition
denies, even beside an active permission, unless the policy's ``conflict`` is ``perm``.
A violated top-level obligation denies. A policy that uses a left operand the profile does
not declare denies outright (fail closed), naming it; so does one with a right operand its
left operand cannot use (``invalid_value``: an empty ``isNoneOf`` would hold for anyone).
"""

from __future__ import annotations

from datetime import datetime

from policies.canonical import policy_hash
from policies.decision import Decision, Effect, RuleReport
from policies.errors import PolicySchemaError, UnknownTerm
from policies.limits import limits_of
from policies.model import Policy, Rule, RuleKind
from policies.operands import EvalInput
from policies.profile import SLUIS_PROFILE, Profile, problems
from policies.request import Request, State
from policies.rules import Context, report_duty, report_rule
from policies.vocab import CONFLICT_PERM


def evaluate(
    policy: Policy,
    request: Request,
    state: State,
    *,
    now: datetime,
    profile: Profile = SLUIS_PROFILE,
) -> Decision:
    """Decide ``request`` under ``policy``; never raises for a decision, denies instead."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    version = (policy.uid, policy_hash(policy))
    found = problems(policy, profile)
    unknown = [p for p in found if isinstance(p, UnknownTerm) and p.kind == "left_operand"]
    if unknown:
        notes = tuple(p.reason for p in unknown)
        return Decision(Effect.DENY, "unknown_left_operand", *version, notes=notes)
    unusable = [p for p in found if isinstance(p, PolicySchemaError)]
    if unusable:  # a right operand that means nothing (validation refuses it on write)
        notes = tuple(p.reason for p in unusable)
        return Decision(Effect.DENY, "invalid_value", *version, notes=notes)
    ctx = Context(EvalInput(request, state, now, Rule(RuleKind.PERMISSION)), profile)
    perms = [(r, report_rule(r, ctx)) for r in policy.permissions]
    prohibs = [report_rule(r, ctx) for r in policy.prohibitions]
    obligations = [report_duty(r, ctx) for r in policy.obligations]
    reports = tuple([p for _, p in perms] + prohibs + obligations)
    granting = next(((r, p) for r, p in perms if p.active), None)
    reason = _deny_reason(policy, granting is not None, prohibs, obligations)
    if reason is not None or granting is None:
        return Decision(Effect.DENY, reason or "no_active_permission", *version, rules=reports)
    rule, report = granting
    return Decision(
        Effect.PERMIT,
        "permitted",
        *version,
        rules=reports,
        limits=limits_of(rule, report),
        rule=rule.uid,
    )


def _deny_reason(
    policy: Policy, permitted: bool, prohibs: list[RuleReport], obligations: list[RuleReport]
) -> str | None:
    if any(o.applies and not o.active for o in obligations):
        return "obligation_violated"
    if any(p.active for p in prohibs) and not (permitted and policy.conflict == CONFLICT_PERM):
        return "prohibited"
    return None
