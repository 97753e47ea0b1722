"""Rule activation (ODRL Formal Semantics): does a rule apply, are its constraints and duties met.

A rule applies when the request's action is (included in) one of its actions, whose
refinements hold, and the target and party are the rule's or lie in its collections.
A rule with no action, target or assignee applies to any. Duties: a duty whose own
constraints fail is not in force; a Violated duty deactivates its permission; a duty the
exchange discharges itself (notify, delete) travels with the permit; a duty with a refined
action is a precondition (met only once the state records it Fulfilled); any other duty is
awaited (it deactivates the permission only once Violated).
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.decision import ConstraintReport, RuleReport
from policies.model import Action, AnyConstraint, Constraint, Ref, Rule
from policies.operands import EvalInput, Outcome
from policies.profile import Profile
from policies.request import DutyState
from policies.vocab import ODRL, action_ancestors, short


@dataclass(frozen=True)
class Context:
    """The fixed inputs of one evaluation."""

    given: EvalInput
    profile: Profile

    def for_rule(self, rule: Rule) -> Context:
        g = self.given
        return Context(EvalInput(g.request, g.state, g.now, rule), self.profile)


def report_rule(rule: Rule, ctx: Context) -> RuleReport:
    """The rule's report: applies? active? why?"""
    ctx = ctx.for_rule(rule)
    why: list[str] = []
    applies = _applies(rule, ctx, why)
    leaves: list[ConstraintReport] = []
    results = [holds_constraint(c, ctx, leaves) for c in rule.constraints]  # report all
    holds = all(results)
    if not holds:
        why.append("a constraint fails")
    duties = tuple(report_duty(d, ctx) for d in rule.duties) if rule.kind.value != "duty" else ()
    duties_ok = all(d.active or not d.applies for d in duties)
    if not duties_ok:
        why.append("a duty is not met")
    active = applies and holds and duties_ok
    return RuleReport(rule.uid, rule.kind.value, applies, active, tuple(why), tuple(leaves), duties)


def report_duty(duty: Rule, ctx: Context) -> RuleReport:
    """A duty's report: ``applies`` = in force; ``active`` = met (or fine for now)."""
    ctx = ctx.for_rule(duty)
    leaves: list[ConstraintReport] = []
    results = [holds_constraint(c, ctx, leaves) for c in duty.constraints]  # report all
    if not all(results):
        return RuleReport(duty.uid, "duty", False, False, ("not in force",), tuple(leaves))
    met, why = _duty_met(duty, ctx)
    return RuleReport(duty.uid, "duty", True, met, (why,), tuple(leaves))


def _duty_met(duty: Rule, ctx: Context) -> tuple[bool, str]:
    recorded = ctx.given.state.duty_states.get(duty.uid or "")
    if recorded is DutyState.FULFILLED:
        return True, "fulfilled"
    if recorded is DutyState.VIOLATED:
        return False, "violated"
    if any(a.name in ctx.profile.enforced_duties for a in duty.actions):
        return True, "to be discharged by the exchange"
    if any(a.refinements for a in duty.actions):
        return False, "precondition not yet fulfilled"
    return True, "awaited"


def _applies(rule: Rule, ctx: Context, why: list[str]) -> bool:
    request, state = ctx.given.request, ctx.given.state
    checks = (
        ("action", not rule.actions or any(_action_matches(a, ctx) for a in rule.actions)),
        ("target", _ref_matches(rule.targets, request.target, ctx)),
        ("party", _ref_matches(rule.assignees, request.party, ctx)),
    )
    del state
    why.extend(f"{name} does not match" for name, ok in checks if not ok)
    return all(ok for _, ok in checks)


def _action_matches(action: Action, ctx: Context) -> bool:
    if action.name not in action_ancestors(ctx.given.request.action):
        return False
    leaves: list[ConstraintReport] = []
    return all(holds_constraint(r, ctx, leaves) for r in action.refinements)


def _ref_matches(refs: tuple[Ref, ...], value: str | None, ctx: Context) -> bool:
    if not refs:
        return True
    if value is None:
        return False
    state = ctx.given.state
    return any(r.uid == value or (r.collection and state.within(value, r.uid)) for r in refs)


def holds_constraint(c: AnyConstraint, ctx: Context, out: list[ConstraintReport]) -> bool:
    """Evaluate ``c`` (logical or not), appending a report per leaf constraint."""
    if isinstance(c, Constraint):
        outcome = _leaf(c, ctx)
        out.append(
            ConstraintReport(
                c.uid,
                c.left_operand,
                c.operator,
                c.right_operand,
                outcome.observed,
                outcome.satisfied,
                outcome.reason,
            )
        )
        return outcome.satisfied
    results = [holds_constraint(m, ctx, out) for m in c.operands]
    if c.operator == ODRL + "or":
        return any(results)
    if c.operator == ODRL + "xone":
        return results.count(True) == 1
    return bool(results) and all(results)  # and, andSequence; an empty one fails


def _leaf(c: Constraint, ctx: Context) -> Outcome:
    evaluator = ctx.profile.evaluator(c.left_operand)
    if evaluator is None:
        return Outcome(False, (), f"unknown left operand {short(c.left_operand)}: fails closed")
    return evaluator(c, ctx.given)
