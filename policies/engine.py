"""``evaluate``: one policy, one request, one state of the world, the time -> a ``Decision``.

Closed world: without an active permission the answer is deny. An active prohibition
denies, even beside an active permission, unless the policy's ``conflict`` is ``perm``.
A violated top-level obligation denies. A policy that uses a left operand the profile does
not declare denies outright (fail closed), naming it; so does one with a right operand its
left operand cannot use (``invalid_value``: an empty ``isNoneOf`` would hold for anyone).

The decision is made on the compiled policy (``policies.compiled``), which answers yes or
no; the compliance report (``Decision.rules``) is written by ``policies.rules``, at once for a
deny and on first reading for a permit. ``evaluate_reference`` is the same engine without a
compiled policy: it re-validates, re-hashes and writes every report on every call; the
tests hold the compiled engine to it.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from functools import partial

from policies.canonical import policy_hash
from policies.compiled import CompiledPolicy, CompiledRule, compiled_for, refusal
from policies.decision import DataLimits, Decision, Effect, RuleReport
from policies.limits import limits_of
from policies.model import Policy, Rule, RuleKind
from policies.operands import EvalInput
from policies.profile import SLUIS_PROFILE, Profile
from policies.request import Request, State
from policies.rules import Context, report_duty, report_rule
from policies.vocab import CONFLICT_PERM, action_ancestors


def evaluate(
    policy: Policy | CompiledPolicy,
    request: Request,
    state: State,
    *,
    now: datetime,
    profile: Profile | None = None,
) -> Decision:
    """Decide ``request`` under ``policy``; never raises for a decision, denies instead.

    ``profile`` defaults to the compiled policy's (``SLUIS_PROFILE`` for a ``Policy``); a
    compiled policy evaluated under another profile is a programming error (ValueError).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if isinstance(policy, CompiledPolicy):
        compiled = policy
        if profile is not None and profile is not compiled.profile and profile != compiled.profile:
            raise ValueError("the policy was compiled under another profile")
    else:
        compiled = compiled_for(policy, profile or SLUIS_PROFILE)
    return compiled.refusal or _decide(compiled, request, state, now)


def _decide(compiled: CompiledPolicy, request: Request, state: State, now: datetime) -> Decision:
    ancestors = action_ancestors(request.action)
    granting = next(
        (r for r in compiled.permissions if _active(r, request, state, now, ancestors)), None
    )
    prohibited = any(_active(r, request, state, now, ancestors) for r in compiled.prohibitions)
    violated = any(_violated(o, request, state, now) for o in compiled.obligations)
    report = partial(
        _reports, compiled.policy, request, state, now, compiled.profile
    )  # written for a deny now, for a permit when read
    version = (compiled.policy_id, compiled.policy_hash)
    reason = _deny_reason(compiled.policy, granting is not None, prohibited, violated)
    if reason is not None or granting is None:
        reports = report()
        deny = reason or "no_active_permission"
        return Decision(Effect.DENY, deny, *version, report=lambda: reports)
    limits = _limits(granting, request, state, now)
    return Decision(
        Effect.PERMIT, "permitted", *version, limits=limits, rule=granting.rule.uid, report=report
    )


def _active(
    rule: CompiledRule, request: Request, state: State, now: datetime, ancestors: tuple[str, ...]
) -> bool:
    given = EvalInput(request, state, now, rule.rule)
    if not (rule.applies(given, ancestors) and rule.holds(given)):
        return False
    return all(_duty_ok(d, request, state, now) for d in rule.duties)


def _duty_ok(duty: CompiledRule, request: Request, state: State, now: datetime) -> bool:
    in_force = duty.duty_in_force(EvalInput(request, state, now, duty.rule))
    return not in_force or duty.duty_met(state)


def _violated(obligation: CompiledRule, request: Request, state: State, now: datetime) -> bool:
    return not _duty_ok(obligation, request, state, now)


def _limits(granting: CompiledRule, request: Request, state: State, now: datetime) -> DataLimits:
    base = granting.limits
    assert base is not None  # noqa: S101 - every compiled permission carries its limits
    duties = tuple(
        d.rule.uid
        for d in granting.duties
        if d.rule.uid and d.duty_in_force(EvalInput(request, state, now, d.rule))
    )
    return dataclasses.replace(base, duties=duties) if duties else base


def _reports(
    policy: Policy, request: Request, state: State, now: datetime, profile: Profile
) -> tuple[RuleReport, ...]:
    """The full compliance report: every rule, every constraint, with its reason."""
    ctx = Context(EvalInput(request, state, now, Rule(RuleKind.PERMISSION)), profile)
    perms = tuple(report_rule(r, ctx) for r in policy.permissions)
    prohibs = tuple(report_rule(r, ctx) for r in policy.prohibitions)
    return perms + prohibs + tuple(report_duty(r, ctx) for r in policy.obligations)


def _deny_reason(policy: Policy, permitted: bool, prohibited: bool, violated: bool) -> str | None:
    if violated:
        return "obligation_violated"
    if prohibited and not (permitted and policy.conflict == CONFLICT_PERM):
        return "prohibited"
    return None


def evaluate_reference(
    policy: Policy,
    request: Request,
    state: State,
    *,
    now: datetime,
    profile: Profile = SLUIS_PROFILE,
) -> Decision:
    """The uncompiled engine: the oracle ``evaluate`` is tested against (slow; not for use)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    version = (policy.uid, policy_hash(policy))
    refused = refusal(policy, profile, version[1])
    if refused is not None:
        return refused
    ctx = Context(EvalInput(request, state, now, Rule(RuleKind.PERMISSION)), profile)
    perms = [(r, report_rule(r, ctx)) for r in policy.permissions]
    prohibs = [report_rule(r, ctx) for r in policy.prohibitions]
    obligations = [report_duty(r, ctx) for r in policy.obligations]
    reports = tuple([p for _, p in perms] + prohibs + obligations)
    granting = next(((r, p) for r, p in perms if p.active), None)
    prohibited = any(p.active for p in prohibs)
    violated = any(o.applies and not o.active for o in obligations)
    reason = _deny_reason(policy, granting is not None, prohibited, violated)
    if reason is not None or granting is None:
        deny = reason or "no_active_permission"
        return Decision(Effect.DENY, deny, *version, report=lambda: reports)
    rule, report = granting
    limits = limits_of(rule, report)
    return Decision(
        Effect.PERMIT, "permitted", *version, limits=limits, rule=rule.uid, report=lambda: reports
    )
