"""A compiled policy: validated, hashed and its evaluators resolved once per policy version.

``compile_policy(policy, profile)`` does, once, what does not depend on the request: the
policy's hash, the profile check (a policy the engine must refuse compiles to that refusal),
the evaluator of every constraint, the rules' action, target and party sets, and each
permission's data limits. ``policies.evaluate`` takes a ``CompiledPolicy`` (or a ``Policy``,
compiled once and remembered by identity among the most recent few).

The checks here only answer yes or no; the reasons are written by ``policies.rules`` from the
same evaluators, for a deny at once and for a permit when they are first read.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock

from policies.canonical import policy_hash
from policies.decision import DataLimits, Decision, Effect, RuleReport
from policies.errors import PolicySchemaError, UnknownTerm
from policies.limits import limits_of
from policies.model import Action, AnyConstraint, Constraint, Policy, Ref, Rule, RuleKind
from policies.operands import Bound, EvalInput, bind
from policies.profile import Profile, problems
from policies.request import DutyState, State
from policies.vocab import ODRL

_OR, _XONE = ODRL + "or", ODRL + "xone"


@dataclass(frozen=True, slots=True)
class Leaf:
    """A constraint's evaluator, bound to it (``None``: unknown to the profile, fails closed)."""

    evaluate: Bound | None

    def holds(self, given: EvalInput) -> bool:
        """Whether the constraint holds for ``given``."""
        evaluate = self.evaluate
        return evaluate is not None and evaluate(given).satisfied


@dataclass(frozen=True, slots=True)
class Logical:
    """``or`` / ``xone`` / anything else read as ``and`` (an empty one fails)."""

    operator: str
    members: tuple[Check, ...]

    def holds(self, given: EvalInput) -> bool:
        """Whether the logical constraint holds for ``given``."""
        if self.operator == _OR:
            return any(m.holds(given) for m in self.members)
        if self.operator == _XONE:
            return sum(1 for m in self.members if m.holds(given)) == 1
        return bool(self.members) and all(m.holds(given) for m in self.members)


Check = Leaf | Logical


@dataclass(frozen=True, slots=True)
class Refs:
    """A rule's targets or assignees: ``everyone`` when it names none."""

    everyone: bool
    uids: frozenset[str]
    collections: tuple[str, ...]

    def match(self, value: str | None, state: State) -> bool:
        """The value is one of the refs or lies in one of their collections."""
        if self.everyone:
            return True
        if value is None:
            return False
        return value in self.uids or any(state.within(value, c) for c in self.collections)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule with its checks resolved; ``limits`` only on permissions (duties left out)."""

    rule: Rule
    actions: tuple[tuple[str, tuple[Check, ...]], ...]
    targets: Refs
    assignees: Refs
    constraints: tuple[Check, ...]
    duties: tuple[CompiledRule, ...]
    enforced: bool  # a duty the exchange discharges itself (notify, delete)
    precondition: bool  # a duty with a refined action
    limits: DataLimits | None

    def applies(self, given: EvalInput, ancestors: tuple[str, ...]) -> bool:
        """The action, the target and the party match (ODRL Formal Semantics)."""
        request, state = given.request, given.state
        return (
            (not self.actions or any(self._action(a, given, ancestors) for a in self.actions))
            and self.targets.match(request.target, state)
            and self.assignees.match(request.party, state)
        )

    @staticmethod
    def _action(
        action: tuple[str, tuple[Check, ...]], given: EvalInput, ancestors: tuple[str, ...]
    ) -> bool:
        name, refinements = action
        return name in ancestors and all(r.holds(given) for r in refinements)

    def holds(self, given: EvalInput) -> bool:
        """Every constraint holds."""
        return all(c.holds(given) for c in self.constraints)

    def duty_in_force(self, given: EvalInput) -> bool:
        """A duty is in force when its own constraints hold."""
        return self.holds(given)

    def duty_met(self, state: State) -> bool:
        """A duty in force is met (or fine for now), as ``policies.rules`` reports it."""
        recorded = state.duty_states.get(self.rule.uid or "")
        if recorded is DutyState.FULFILLED:
            return True
        if recorded is DutyState.VIOLATED:
            return False
        return self.enforced or not self.precondition


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """One policy version, ready to evaluate: ``refusal`` is set when the engine must deny."""

    policy: Policy
    profile: Profile
    policy_id: str
    policy_hash: str
    refusal: Decision | None
    permissions: tuple[CompiledRule, ...]
    prohibitions: tuple[CompiledRule, ...]
    obligations: tuple[CompiledRule, ...]


def compile_policy(policy: Policy, profile: Profile) -> CompiledPolicy:
    """Validate, hash and resolve ``policy`` under ``profile``, once."""
    digest = policy_hash(policy)

    def rules(found: tuple[Rule, ...]) -> tuple[CompiledRule, ...]:
        return tuple(_rule(r, profile) for r in found)

    return CompiledPolicy(
        policy,
        profile,
        policy.uid,
        digest,
        refusal(policy, profile, digest),
        rules(policy.permissions),
        rules(policy.prohibitions),
        rules(policy.obligations),
    )


UNKNOWN_KINDS = ("left_operand", "operator", "action")  # the order their refusals are named


def refusal(policy: Policy, profile: Profile, digest: str) -> Decision | None:
    """The deny every request gets when ``policy`` uses a term outside ``profile`` (fail
    closed: an unknown operator would otherwise never hold, silencing a prohibition, and an
    unknown action would match a request naming it) or an unusable right operand."""
    found = problems(policy, profile)
    for kind in UNKNOWN_KINDS:
        unknown = [p for p in found if isinstance(p, UnknownTerm) and p.kind == kind]
        if unknown:
            notes = tuple(p.reason for p in unknown)
            return Decision(Effect.DENY, f"unknown_{kind}", policy.uid, digest, notes=notes)
    unusable = [p for p in found if isinstance(p, PolicySchemaError)]
    if unusable:  # a right operand that means nothing (validation refuses it on write)
        notes = tuple(p.reason for p in unusable)
        return Decision(Effect.DENY, "invalid_value", policy.uid, digest, notes=notes)
    return None


def _rule(rule: Rule, profile: Profile) -> CompiledRule:
    duties = tuple(_rule(d, profile) for d in rule.duties) if rule.kind != RuleKind.DUTY else ()
    granting = rule.kind == RuleKind.PERMISSION
    empty = RuleReport(rule.uid, rule.kind.value, True, True, ())
    return CompiledRule(
        rule,
        tuple(_action(a, profile) for a in rule.actions),
        _refs(rule.targets),
        _refs(rule.assignees),
        _checks(rule.constraints, profile),
        duties,
        any(a.name in profile.enforced_duties for a in rule.actions),
        any(a.refinements for a in rule.actions),
        limits_of(rule, empty) if granting else None,
    )


def _action(action: Action, profile: Profile) -> tuple[str, tuple[Check, ...]]:
    return action.name, _checks(action.refinements, profile)


def _refs(refs: tuple[Ref, ...]) -> Refs:
    uids = frozenset(r.uid for r in refs)
    return Refs(not refs, uids, tuple(r.uid for r in refs if r.collection))


def _checks(constraints: tuple[AnyConstraint, ...], profile: Profile) -> tuple[Check, ...]:
    return tuple(_check(c, profile) for c in constraints)


def _check(c: AnyConstraint, profile: Profile) -> Check:
    if isinstance(c, Constraint):
        evaluator = profile.evaluator(c.left_operand)
        return Leaf(None if evaluator is None else bind(c, evaluator))
    return Logical(c.operator, _checks(c.operands, profile))


# Compile-and-remember by identity, for callers that pass a ``Policy``: the few most recent
# (policy, profile) objects, held until pushed out, so the memo stays bounded (a policy a
# caller dropped is freed once newer ones replace it).
MEMO_SIZE = 64
_MEMO: OrderedDict[tuple[int, int], CompiledPolicy] = OrderedDict()
_MEMO_LOCK = Lock()


def compiled_for(policy: Policy, profile: Profile) -> CompiledPolicy:
    """``policy`` compiled under ``profile``, once while it stays among the recent ones."""
    key = (id(policy), id(profile))
    with _MEMO_LOCK:
        found = _MEMO.get(key)
        if found is not None and found.policy is policy and found.profile is profile:
            _MEMO.move_to_end(key)
            return found
    found = compile_policy(policy, profile)
    with _MEMO_LOCK:
        _MEMO[key] = found  # holding the policy keeps its id from being reused meanwhile
        while len(_MEMO) > MEMO_SIZE:
            _MEMO.popitem(last=False)
    return found
