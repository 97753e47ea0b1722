"""The left-operand registry: one evaluator function per left operand IRI.

An evaluator observes the left value(s) for a constraint in a request and state, compares
them with the right operand, and returns an ``Outcome`` that says why. A profile declares
which registered left operands its policies may use (``policies.profile``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from types import MappingProxyType

from policies.model import Constraint, Rule, Value
from policies.operators import compare
from policies.request import Request, State
from policies.vocab import short


@dataclass(frozen=True)
class EvalInput:
    """Everything an evaluator may look at; ``rule`` is the rule the constraint sits in."""

    request: Request
    state: State
    now: datetime
    rule: Rule


@dataclass(frozen=True)
class Outcome:
    """A constraint's verdict, the value observed, and a one-line reason.

    ``why`` is the reason, or a function that writes it: the engine reads ``reason`` only
    when it explains a decision, so a permit does not pay for formatting it.
    """

    satisfied: bool
    observed: tuple[Value, ...]
    why: str | Callable[[], str] = field(compare=False)

    @property
    def reason(self) -> str:
        """The one-line reason (written now, if it was deferred)."""
        return self.why if isinstance(self.why, str) else self.why()


Evaluator = Callable[[Constraint, EvalInput], Outcome]
Bound = Callable[[EvalInput], Outcome]
Binder = Callable[[Constraint], Bound]

_REGISTRY: dict[str, Evaluator] = {}
_BINDERS: dict[str, Binder] = {}


def left_operand(*iris: str) -> Callable[[Evaluator], Evaluator]:
    """Register the decorated function as the evaluator of each IRI in ``iris``."""

    def register(func: Evaluator) -> Evaluator:
        for iri in iris:
            if iri in _REGISTRY:
                raise ValueError(f"left operand {iri} registered twice")
            _REGISTRY[iri] = func
        return func

    return register


def binds(*iris: str) -> Callable[[Binder], Binder]:
    """Register the decorated function as the binder of each IRI in ``iris``.

    A binder does once, when a policy is compiled, the work an evaluator would repeat on
    every request (parsing or normalising the right operand); the function it returns must
    answer exactly as the evaluator does for that constraint.
    """

    def register(func: Binder) -> Binder:
        for iri in iris:
            if iri in _BINDERS:
                raise ValueError(f"left operand {iri} bound twice")
            _BINDERS[iri] = func
        return func

    return register


def bind(constraint: Constraint, evaluator: Evaluator) -> Bound:
    """``evaluator`` for this one constraint, its request-independent work done now."""
    binder = _BINDERS.get(constraint.left_operand)
    return binder(constraint) if binder is not None else partial(evaluator, constraint)


def registered() -> Mapping[str, Evaluator]:
    """A read-only view of every registered evaluator."""
    return MappingProxyType(_REGISTRY)


def judge(constraint: Constraint, observed: tuple[Value, ...], state: State) -> Outcome:
    """The common case: compare ``observed`` with the right operand using the operator."""
    ok = compare(constraint.operator, observed, constraint.right_operand, state)
    return Outcome(ok, observed, partial(_judged, constraint, observed, ok))


def _judged(constraint: Constraint, observed: tuple[Value, ...], ok: bool) -> str:
    shown = ", ".join(str(v) for v in observed) or "nothing"
    right = ", ".join(str(v) for v in constraint.right_operand)
    verdict = "holds" if ok else "fails"
    return (
        f"{short(constraint.left_operand)} {short(constraint.operator)} {right} {verdict}"
        f" (observed {shown})"
    )


def from_context(constraint: Constraint, given: EvalInput) -> Outcome:
    """Left value declared by the request for this left operand (or, failing that, its unit)."""
    observed = given.request.values(constraint.left_operand)
    if not observed and constraint.unit:
        observed = given.request.values(constraint.unit)
    return judge(constraint, observed, given.state)
