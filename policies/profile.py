"""Profiles: the terms a policy may use, and validation on write that names the unknown term.

Validation also refuses a right operand its left operand cannot use (``invalid_value``, see
``policies.right_operands``): ``[dateTime, lt, "tomorrow"]`` is an error, not a constraint
that silently never holds.

``SLUIS`` is what providers write against. ``CONFORMANCE`` adds the terms the public ODRL
test suites use (``odrl:resolution``, ``odrl:payAmount``, the examples' ``ex:dayOfWeek``).
An unknown left operand also denies at evaluation time (fail closed), whatever the profile.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from policies.errors import PolicyError, PolicySchemaError, UnknownTerm
from policies.model import AnyConstraint, Constraint, Policy, Rule
from policies.operands import Evaluator, privacy, registered
from policies.operands import data as d
from policies.right_operands import problem
from policies.vocab import ACTION_PARENT, LOGICAL, ODRL, OPERATORS, SLUIS, short


@dataclass(frozen=True)
class Profile:
    """A declared set of left operands, operators and actions."""

    iri: str
    left_operands: frozenset[str]
    actions: frozenset[str]
    operators: frozenset[str] = OPERATORS
    enforced_duties: frozenset[str] = frozenset({ODRL + "inform", ODRL + "delete"})
    # ODRL reads a rule without an action as "any action"; a permission naming none would
    # grant delete and modify as well as read, so what providers write must name one.
    permission_needs_action: bool = True

    def evaluator(self, left_operand: str) -> Evaluator | None:
        """The registered evaluator, if this profile declares the left operand."""
        return registered().get(left_operand) if left_operand in self.left_operands else None

    def extended(self, iri: str, *, left_operands: frozenset[str]) -> Profile:
        """This profile with more left operands (each must be registered), under ``iri``;
        its actions, operators and enforced duties are this profile's."""
        return replace(self, iri=iri, left_operands=self.left_operands | left_operands)


_CORE = frozenset(
    ODRL + t
    for t in [
        "dateTime",
        "elapsedTime",
        "count",
        "recipient",
        "purpose",
        "spatial",
        "industry",
        "deliveryChannel",
        "fileFormat",
    ]
)
SLUIS_PROFILE = Profile(
    iri=SLUIS[:-1],
    left_operands=_CORE
    | {d.COLUMNS, d.ROW_FILTER, d.MIN_GROUP_SIZE, d.MAX_ROWS, d.RATE_LIMIT, SLUIS + "dayOfWeek"}
    | privacy.TERMS,
    actions=frozenset(ACTION_PARENT),
)
CONFORMANCE_PROFILE = replace(
    SLUIS_PROFILE.extended(
        "https://w3id.org/sluis/odrl-conformance",
        left_operands=frozenset({ODRL + "resolution", ODRL + "payAmount", "ex:dayOfWeek"}),
    ),
    permission_needs_action=False,  # the suites' permissions without one mean "any"
)


def no_action(uid: str | None) -> PolicySchemaError:
    """The refusal of a permission that names no action (``uid`` its rule's, if any)."""
    where = f" {uid}" if uid else ""
    return PolicySchemaError(
        f"the permission{where} names no action: ODRL reads that as every action (delete and"
        " modify too); name the one it grants, e.g. `action: read`"
    )


def problems(policy: Policy, profile: Profile) -> list[PolicyError]:
    """Every term outside ``profile`` and every unusable right operand, in document order."""
    found: list[PolicyError] = []
    for rule in policy.rules():
        found.extend(_rule_problems(rule, profile))
    return found


def validate(policy: Policy, profile: Profile = SLUIS_PROFILE) -> Policy:
    """``policy`` if every term is declared by ``profile`` and, where the profile asks, every
    permission names its action; else raise the first problem.

    The action is asked for on write only: evaluation reads an absent action as ODRL does
    ("any"), which the public test suites rely on."""
    found = problems(policy, profile)
    if profile.permission_needs_action:
        found.extend(no_action(rule.uid) for rule in policy.permissions if not rule.actions)
    if found:
        raise found[0]
    return policy


def _rule_problems(rule: Rule, profile: Profile) -> Iterator[PolicyError]:
    for action in rule.actions:
        if action.name not in profile.actions:
            yield UnknownTerm("action", action.name)
        for refinement in action.refinements:
            yield from _constraint_problems(refinement, profile)
    for constraint in rule.constraints:
        yield from _constraint_problems(constraint, profile)
    for duty in rule.duties:
        yield from _rule_problems(duty, profile)


def constraint_problems(constraint: AnyConstraint, profile: Profile) -> Iterator[PolicyError]:
    """The problems of one (maybe logical) constraint: unknown terms, unusable values."""
    return _constraint_problems(constraint, profile)


def _constraint_problems(constraint: AnyConstraint, profile: Profile) -> Iterator[PolicyError]:
    if not isinstance(constraint, Constraint):
        if constraint.operator not in LOGICAL:
            yield UnknownTerm("operator", constraint.operator)
        for member in constraint.operands:
            yield from _constraint_problems(member, profile)
        return
    if profile.evaluator(constraint.left_operand) is None:
        yield UnknownTerm("left_operand", constraint.left_operand)
    if constraint.operator not in profile.operators:
        yield UnknownTerm("operator", constraint.operator)
    why = problem(constraint)
    if why is not None:
        where = f" (constraint {constraint.uid})" if constraint.uid else ""
        yield PolicySchemaError(f"{short(constraint.left_operand)}{where}: {why}")
