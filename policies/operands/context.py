"""Left operands the request declares about itself: purpose, spatial, industry, ..."""

from __future__ import annotations

from functools import partial

from policies.model import Constraint, Iri, Value
from policies.operands.registry import (
    Bound,
    EvalInput,
    Outcome,
    binds,
    from_context,
    judge,
    left_operand,
)
from policies.vocab import ODRL

ISO_3166 = "urn:iso:std:iso:3166:"


@left_operand(ODRL + "purpose")
def purpose(constraint: Constraint, given: EvalInput) -> Outcome:
    """Declared purposes; ``isA``/``isAnyOf``/``isNoneOf`` follow the purpose hierarchy."""
    return from_context(constraint, given)


@left_operand(ODRL + "spatial")
def spatial(constraint: Constraint, given: EvalInput) -> Outcome:
    """Where the data goes, as ISO 3166 codes ("NL", "NL-NH"; IRIs ending in a code too)."""
    return _spatial(_normalised(constraint), given)


@binds(ODRL + "spatial")
def bind_spatial(constraint: Constraint) -> Bound:
    """``spatial`` with the right operand's codes normalised once."""
    return partial(_spatial, _normalised(constraint))


def _spatial(normalised: Constraint, given: EvalInput) -> Outcome:
    observed = tuple(country(v) for v in given.request.values(ODRL + "spatial"))
    return judge(normalised, observed, given.state)


def _normalised(constraint: Constraint) -> Constraint:
    return Constraint(
        constraint.left_operand,
        constraint.operator,
        tuple(country(v) for v in constraint.right_operand),
        constraint.uid,
        constraint.unit,
    )


def country(value: Value) -> Value:
    """An ISO 3166 code as an ``urn:iso:std:iso:3166:`` IRI, whatever the spelling."""
    if not isinstance(value, Iri | str):
        return value
    text = str(value).rstrip("/")
    code = text.rsplit("/", 1)[-1].rsplit(":", 1)[-1].rsplit("#", 1)[-1]
    return Iri(ISO_3166 + code.upper())


@left_operand(
    ODRL + "industry",
    ODRL + "deliveryChannel",
    ODRL + "fileFormat",
    ODRL + "language",
    ODRL + "resolution",
    ODRL + "payAmount",
)
def declared(constraint: Constraint, given: EvalInput) -> Outcome:
    """Plain context values, compared as the operator says."""
    return from_context(constraint, given)
