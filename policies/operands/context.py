"""Left operands the request declares about itself: purpose, spatial, industry, ..."""

from __future__ import annotations

from policies.model import Constraint, Iri, Value
from policies.operands.registry import EvalInput, Outcome, from_context, judge, left_operand
from policies.vocab import ODRL

ISO_3166 = "urn:iso:std:iso:3166:"


@left_operand(ODRL + "purpose")
def purpose(constraint: Constraint, given: EvalInput) -> Outcome:
    """Declared purposes; ``isA``/``isAnyOf``/``isNoneOf`` follow the purpose hierarchy."""
    return from_context(constraint, given)


@left_operand(ODRL + "spatial")
def spatial(constraint: Constraint, given: EvalInput) -> Outcome:
    """Where the data goes, as ISO 3166 codes ("NL", "NL-NH"; IRIs ending in a code too)."""
    observed = tuple(country(v) for v in given.request.values(ODRL + "spatial"))
    normalised = Constraint(
        constraint.left_operand,
        constraint.operator,
        tuple(country(v) for v in constraint.right_operand),
        constraint.uid,
        constraint.unit,
    )
    return judge(normalised, observed, given.state)


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
