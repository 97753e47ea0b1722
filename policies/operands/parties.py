"""Party and usage left operands: recipient (with party collections) and count."""

from __future__ import annotations

from policies.model import Constraint, Iri
from policies.operands.registry import EvalInput, Outcome, judge, left_operand
from policies.vocab import ODRL


@left_operand(ODRL + "recipient")
def recipient(constraint: Constraint, given: EvalInput) -> Outcome:
    """The receiving party: declared in the request context, else the requesting party.

    Collections work through the hierarchy operators (``isPartOf``, ``isAnyOf``) and the
    state's membership facts.
    """
    observed = given.request.values(ODRL + "recipient")
    if not observed and given.request.party:
        observed = (Iri(given.request.party),)
    return judge(constraint, observed, given.state)


@left_operand(ODRL + "count")
def count(constraint: Constraint, given: EvalInput) -> Outcome:
    """Executions of the rule counting this one: earlier uses from the state, plus one."""
    uses = given.state.count_for(given.rule.uid) + 1
    return judge(constraint, (uses,), given.state)
