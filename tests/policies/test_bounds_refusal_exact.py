"""Issue 18: the use limit's reading, what a refused consumer is told, and country codes.

``policies.bounds`` (the count operands wherever they stand, the stated use limit at its
floor), ``policies.refusal`` (only a permission that applies and fails on the consumer's own
data terms is explained, and only for a plain denial) and ``policies.operands.context``'s
ISO 3166 spellings, each pinned where mutation testing found it undefended.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from policies.bounds import count_operands, rate_limits, stated_use_limit
from policies.decision import ConstraintReport, Decision, Effect, RuleReport
from policies.model import Action, Constraint, Iri, Policy, Rule, RuleKind, Value
from policies.operands import data as d
from policies.operands.context import ISO_3166, country
from policies.refusal import Refusal, refusal_of
from policies.vocab import ODRL

COUNT = ODRL + "count"


def _policy(*constraints: Constraint, duty: Rule | None = None) -> Policy:
    return Policy(
        "urn:p",
        ODRL + "Set",
        permissions=(
            Rule(
                RuleKind.PERMISSION,
                "urn:r",
                actions=(Action(ODRL + "read"),),
                constraints=constraints,
                duties=(duty,) if duty else (),
            ),
        ),
    )


def test_only_integer_counts_are_count_operands() -> None:
    odd: tuple[Value, ...] = (True, "5", Decimal(4), 3)
    policy = _policy(Constraint(COUNT, ODRL + "lt", odd))
    assert count_operands(policy) == (3,)
    assert stated_use_limit(policy) == 2


def test_a_duty_s_counts_and_rates_are_found() -> None:
    duty = Rule(
        RuleKind.DUTY,
        "urn:d",
        actions=(Action(ODRL + "inform"),),
        constraints=(
            Constraint(COUNT, ODRL + "lteq", (7,)),
            Constraint(d.RATE_LIMIT, ODRL + "eq", ("5/PT1H",)),
        ),
    )
    policy = _policy(Constraint(COUNT, ODRL + "lt", (3,)), duty=duty)
    assert count_operands(policy) == (3, 7)
    assert rate_limits(policy) == ((5, "PT1H"),)


@pytest.mark.parametrize(
    ("operator", "value", "limit"), [("lt", 1, 0), ("lt", 0, 0), ("lteq", 0, 0)]
)
def test_the_stated_use_limit_is_never_below_zero(operator: str, value: int, limit: int) -> None:
    assert stated_use_limit(_policy(Constraint(COUNT, ODRL + operator, (value,)))) == limit


def _columns(satisfied: bool, observed: tuple[Value, ...] = ("b",)) -> ConstraintReport:
    return ConstraintReport("urn:c", d.COLUMNS, ODRL + "isAllOf", ("a",), observed, satisfied, "")


FAILS = ("a constraint fails",)


def _report(
    kind: str = "permission", applies: bool = True, reasons: tuple[str, ...] = FAILS
) -> RuleReport:
    return RuleReport("urn:r", kind, applies, False, reasons, (_columns(False),))


def _decision(*reports: RuleReport, reason: str = "no_active_permission") -> Decision:
    effect = Effect.PERMIT if reason == "permitted" else Effect.DENY
    return Decision(effect, reason, "urn:p", "sha256:x", report=lambda: reports)


def test_a_column_refusal_is_told_only_for_a_plain_denial() -> None:
    assert refusal_of(_decision(_report())) == Refusal("column-not-allowed", ("b",))
    for reason in ("prohibited", "permitted", "obligation_violated"):
        assert refusal_of(_decision(_report(), reason=reason)) is None


def test_only_a_permission_that_applies_and_only_fails_is_explained() -> None:
    assert refusal_of(_decision(_report(kind="prohibition"))) is None
    assert refusal_of(_decision(_report(applies=False))) is None
    assert refusal_of(_decision(_report(reasons=("a duty is violated",)))) is None
    # The first permission that explains the refusal is the one told.
    told = refusal_of(_decision(_report(applies=False), _report()))
    assert told == Refusal("column-not-allowed", ("b",))


@pytest.mark.parametrize(
    ("spelling", "code"),
    [
        ("nl", "NL"),
        ("NL-nh", "NL-NH"),
        ("MX/", "MX"),
        ("LUX", "LUX"),
        (Iri("urn:iso:std:iso:3166:nl"), "NL"),
        ("http://example.org/countries/nl/", "NL"),
        ("https://www.iso.org/obp/ui/#iso:code:3166:de", "DE"),
        ("ex:countries#be", "BE"),
        ("a#b#fr", "FR"),
    ],
)
def test_a_country_in_any_spelling(spelling: Value, code: str) -> None:
    assert country(spelling) == Iri(ISO_3166 + code)


def test_a_value_that_is_no_text_is_no_country() -> None:
    assert country(5) == 5
