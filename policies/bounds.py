"""How far a permit reaches in the usage state: the count cap and the rate windows (pure).

The exchange spends a use with one conditional increment that succeeds only while the
policy still allows the use (``UPDATE ... SET use_count = use_count + 1 WHERE use_count <
:cap``), inside the audit log's batch transaction. ``count_cap`` finds that cap for one
request: the smallest use count, at or above the one the decision saw, at which the same
request would be denied (``None`` when no count ever denies it).

``odrl:count`` compares ``uses + 1`` with an integer, so the decision, as a function of
the use count ``c``, can change only where ``c + 1`` meets a right operand ``r``: at
``c = r - 1`` and ``c = r``. Evaluating the request at those few points, in order, finds
the first deny exactly, whatever the operators and however the constraints are combined
(``or``, ``xone``, prohibitions).

``stated_use_limit`` is what an officer reads beside an agreement's uses spent: the
fewest uses any ``odrl:count`` upper bound of a permission states (``lteq 5`` and ``eq 5``
state 5, ``lt 5`` states 4). It is a reading of the policy's text, not a decision: the
exchange spends under ``count_cap``, which evaluates the whole policy.

``rate_limits`` lists a policy's ``sluis:rateLimit`` constraints, so the exchange reads
rate counters only for a policy that has one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime

from policies.compiled import CompiledPolicy
from policies.engine import evaluate
from policies.model import AnyConstraint, Constraint, Policy, Rule
from policies.operands.data import RATE_LIMIT, parse_rate
from policies.request import Request, State
from policies.vocab import ODRL

COUNT = ODRL + "count"


def count_cap(
    policy: CompiledPolicy, request: Request, state: State, *, now: datetime
) -> int | None:
    """The smallest use count ``> state.use_count`` at which ``request`` is denied, if any.

    Meant for a request permitted at ``state.use_count``: every count below the cap permits
    it too, so a use may be spent while the stored count stays below the cap.
    """
    seen = state.use_count
    points = sorted({c for r in count_operands(policy.policy) for c in (r - 1, r) if c > seen})
    for point in points:
        if not evaluate(policy, request, replace(state, use_count=point), now=now).permitted:
            return point
    return None


def count_operands(policy: Policy) -> tuple[int, ...]:
    """The integer right operands of every ``odrl:count`` constraint, wherever it stands."""
    found = {
        value
        for c in _constraints(policy)
        if c.left_operand == COUNT
        for value in c.right_operand
        if isinstance(value, int) and not isinstance(value, bool)
    }
    return tuple(sorted(found))


_UPPER = {ODRL + "lteq": 0, ODRL + "eq": 0, ODRL + "lt": -1}


def stated_use_limit(policy: Policy) -> int | None:
    """The fewest uses an ``odrl:count`` upper bound of a permission states; None if none."""
    found = [
        value + _UPPER[c.operator]
        for rule in policy.permissions
        for c in (
            *_flat(rule.constraints),
            *(c for a in rule.actions for c in _flat(a.refinements)),
        )
        if c.left_operand == COUNT and c.operator in _UPPER
        for value in c.right_operand
        if isinstance(value, int) and not isinstance(value, bool)
    ]
    return max(0, min(found)) if found else None


def rate_limits(policy: Policy) -> tuple[tuple[int, str], ...]:
    """Every ``sluis:rateLimit`` as ``(limit, ISO 8601 duration)``, each once."""
    found: set[tuple[int, str]] = set()
    for c in _constraints(policy):
        if c.left_operand == RATE_LIMIT:
            parsed = parse_rate(c.right_operand)
            if parsed is not None:
                found.add(parsed)
    return tuple(sorted(found))


def _constraints(policy: Policy) -> Iterator[Constraint]:
    for rule in policy.rules():
        yield from _of_rule(rule)


def _of_rule(rule: Rule) -> Iterator[Constraint]:
    yield from _flat(rule.constraints)
    for action in rule.actions:
        yield from _flat(action.refinements)
    for duty in rule.duties:
        yield from _of_rule(duty)


def _flat(constraints: tuple[AnyConstraint, ...]) -> Iterator[Constraint]:
    for c in constraints:
        if isinstance(c, Constraint):
            yield c
        else:
            yield from _flat(c.operands)
