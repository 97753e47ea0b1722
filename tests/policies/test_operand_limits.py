"""Each Sluis and ODRL left operand by its verdict, what it observed and its exact reason, at
its boundaries; and the ``DataLimits`` a permit carries (issue 18: ``policies/limits+operands``).

The evaluators are called as the engine calls them (``registered()[left](constraint, given)``)
because a right operand that validation refuses on write never reaches them through
``evaluate`` (the policy is refused whole, ``invalid_value``), yet they must still fail
closed on it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

import pytest

from policies import (
    Action,
    Constraint,
    DataLimits,
    Iri,
    LogicalConstraint,
    Policy,
    PrivacyLimits,
    RateLimit,
    Request,
    Rule,
    RuleKind,
    State,
    evaluate,
    parse_yaml_policy,
)
from policies.decision import RuleReport
from policies.limits import limits_of, privacy_of
from policies.model import Ref, TypedLiteral, Value
from policies.operands import EvalInput, Outcome, registered
from policies.operands import data as d
from policies.operands import privacy as pv
from policies.operands.temporal import add_duration, duration_text, period_text
from policies.vocab import ODRL, SLUIS
from policies.world import build_state
from tests.policies.helpers import NOW, UNI, request

RULE = Rule(RuleKind.PERMISSION, "urn:rule:r")


def outcome(
    left: str,
    operator: str,
    right: tuple[Value, ...],
    *,
    asked: Request | None = None,
    state: State | None = None,
    rule: Rule = RULE,
    now: datetime = NOW,
) -> Outcome:
    """The registered evaluator's outcome for one constraint."""
    given = EvalInput(asked or request(), state or State(), now, rule)
    return registered()[left](Constraint(left, ODRL + operator, right), given)


def seen(found: Outcome) -> tuple[bool, tuple[Value, ...], str]:
    return found.satisfied, found.observed, found.reason


# -- sluis:rateLimit ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earlier", "verdict"),
    [
        ((), (True, (1,), "sluis:rateLimit 3/PT1H: request 1 in window")),
        ((10, 20), (True, (3,), "sluis:rateLimit 3/PT1H: request 3 in window")),
        ((10, 20, 30), (False, (4,), "sluis:rateLimit 3/PT1H: request 4 in window")),
        ((10, 20, 60), (True, (3,), "sluis:rateLimit 3/PT1H: request 3 in window")),  # 1 h ago
        ((10, 20, 61), (True, (3,), "sluis:rateLimit 3/PT1H: request 3 in window")),
        ((0, 20, 59), (False, (4,), "sluis:rateLimit 3/PT1H: request 4 in window")),  # now
        ((-1, 20, 59), (True, (3,), "sluis:rateLimit 3/PT1H: request 3 in window")),  # later
    ],
)
def test_the_rate_counts_the_window_that_ends_now(
    earlier: tuple[int, ...], verdict: tuple[bool, tuple[Value, ...], str]
) -> None:
    times = tuple(NOW - timedelta(minutes=m) for m in earlier)
    found = outcome(d.RATE_LIMIT, "lteq", ("3/PT1H",), state=State(request_times=times))
    assert seen(found) == verdict


def test_the_rate_window_is_as_long_as_the_period_from_now() -> None:
    # P1M from 31 March is 30 days (to 30 April): the window is the 30 days that end now.
    now = datetime(2025, 3, 31, 12, tzinfo=UTC)
    times = (datetime(2025, 3, 1, 12, 0, 1, tzinfo=UTC),)
    found = outcome(d.RATE_LIMIT, "lteq", ("1/P1M",), state=State(request_times=times), now=now)
    assert seen(found) == (False, (2,), "sluis:rateLimit 1/P1M: request 2 in window")
    times = (datetime(2025, 3, 1, 12, tzinfo=UTC),)
    found = outcome(d.RATE_LIMIT, "lteq", ("1/P1M",), state=State(request_times=times), now=now)
    assert found.satisfied


@pytest.mark.parametrize("right", [("often",), ("3/P0D",), (3,), ("3/PT1H", "4/PT1H"), ()])
def test_an_unreadable_rate_fails_closed(right: tuple[Value, ...]) -> None:
    found = outcome(d.RATE_LIMIT, "lteq", right)
    assert seen(found) == (False, (), "sluis:rateLimit fails (right operand is not N/duration)")


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        (" 3 / PT1H ", (3, "PT1H")),
        ("0/PT1H", (0, "PT1H")),
        ("100/P1D", (100, "P1D")),
        ("3", None),
        ("/PT1H", None),
        ("-3/PT1H", None),
        ("3.0/PT1H", None),
        ("3/PT1H/x", None),
    ],
)
def test_parse_rate(text: str, parsed: tuple[int, str] | None) -> None:
    assert d.parse_rate((text,)) == parsed


# -- the other data terms -----------------------------------------------------------------


def test_columns() -> None:
    right = ("a", "b")
    assert seen(outcome(d.COLUMNS, "isAnyOf", right)) == (
        True,
        (),
        "sluis:columns: the allowed columns will be applied",
    )
    assert outcome(d.COLUMNS, "isAnyOf", right, asked=request(sluis_columns=["b"])).satisfied
    bad = outcome(d.COLUMNS, "isAnyOf", right, asked=request(sluis_columns=["b", "c"]))
    assert (bad.satisfied, bad.observed) == (False, ("b", "c"))
    assert bad.reason == "sluis:columns odrl:isAnyOf a, b fails (observed b, c)"
    # whatever operator the constraint names, the requested columns must be a subset
    eq = outcome(d.COLUMNS, "eq", right, asked=request(sluis_columns=["a"]))
    assert eq.satisfied


def test_row_filter_is_always_in_force() -> None:
    assert seen(outcome(d.ROW_FILTER, "eq", ("region = 'NL'", "x > 1"))) == (
        True,
        (),
        "sluis:rowFilter region = 'NL', x > 1 will be applied",
    )


@pytest.mark.parametrize("left", [d.MIN_GROUP_SIZE, pv.PRIVACY_UNIT])
def test_aggregates_only(left: str) -> None:
    name = left.removeprefix(SLUIS)
    ok = outcome(left, "gteq", (5,), asked=request(sluis_aggregate=[True]))
    assert seen(ok) == (True, (True,), f"sluis:{name}: aggregate request")
    for asked in ([False], ["true"], [1], []):
        refused = outcome(left, "gteq", (5,), asked=request(sluis_aggregate=asked))
        assert seen(refused) == (
            False,
            tuple(asked),
            f"sluis:{name}: only aggregate requests are allowed",
        )


def test_max_rows() -> None:
    assert seen(outcome(d.MAX_ROWS, "lteq", (1000,))) == (
        True,
        (),
        "sluis:maxRows: the cap will be applied",
    )
    assert outcome(d.MAX_ROWS, "lteq", (1000,), asked=request(sluis_maxRows=[1000])).satisfied
    over = outcome(d.MAX_ROWS, "lteq", (1000,), asked=request(sluis_maxRows=[1001]))
    assert (over.satisfied, over.observed) == (False, (1001,))


@pytest.mark.parametrize(
    "left",
    [pv.ALLOW_MIN_MAX, pv.QUERY_EPSILON, pv.QUERY_DELTA, pv.BOUNDS, pv.MAX_CONTRIBUTIONS],
)
def test_terms_the_connector_applies_always_hold(left: str) -> None:
    found = outcome(left, "eq", ("x",))
    assert seen(found) == (True, (), f"sluis:{left.removeprefix(SLUIS)} will be applied")


# -- sluis:privacyBudget --------------------------------------------------------------------


def _budget_rule(*constraints: Constraint | LogicalConstraint) -> Rule:
    return Rule(RuleKind.PERMISSION, "urn:rule:b", constraints=constraints)


UNIT = Constraint(pv.PRIVACY_UNIT, ODRL + "isAnyOf", ("emp",))
COST = Constraint(pv.QUERY_EPSILON, ODRL + "eq", (Decimal("0.25"),))


@pytest.mark.parametrize(
    ("spent", "verdict"),
    [
        ((), (True, Decimal("0.25"), "0")),
        (("0.5",), (True, Decimal("0.75"), "0.5")),
        (("0.5", "0.25"), (True, Decimal("1.00"), "0.75")),  # exactly the budget
        (("0.5", "0.26"), (False, Decimal("1.01"), "0.76")),
    ],
)
def test_the_budget_counts_this_query(
    spent: tuple[str, ...], verdict: tuple[bool, Decimal, str]
) -> None:
    spends = tuple((NOW - timedelta(days=i), Decimal(e)) for i, e in enumerate(spent))
    found = outcome(
        pv.PRIVACY_BUDGET,
        "lteq",
        ("1.0/P30D",),
        state=State(privacy_spends=spends),
        rule=_budget_rule(UNIT, COST),
    )
    ok, total, already = verdict
    assert seen(found) == (
        ok,
        (total,),
        f"sluis:privacyBudget 1.0/P30D: {already} spent, this query costs 0.25",
    )


def test_the_budget_period_ends_now_and_starts_exclusive() -> None:
    spends = (
        (NOW - timedelta(days=30), Decimal("0.9")),  # the period's start: outside
        (NOW + timedelta(seconds=1), Decimal("0.9")),  # after now: outside
        (NOW, Decimal("0.5")),  # now: inside
    )
    assert pv.spent_in(spends, "P30D", NOW) == Decimal("0.5")
    inside = ((NOW - timedelta(days=30) + timedelta(seconds=1), Decimal("0.9")),)
    assert pv.spent_in(inside, "P30D", NOW) == Decimal("0.9")
    nothing = pv.spent_in((), "P30D", NOW)
    assert (nothing, type(nothing)) == (0, Decimal)  # a Decimal even when nothing was spent


@pytest.mark.parametrize(
    ("right", "rule", "why"),
    [
        (("lots",), _budget_rule(UNIT, COST), "right operand is not E/duration"),
        (("1.0/P30D",), _budget_rule(UNIT), "the rule sets no queryEpsilon"),
        (("1.0/P30D",), _budget_rule(COST), "the rule sets no privacyUnit"),
        (("0/P30D",), _budget_rule(UNIT, COST), "right operand is not E/duration"),
    ],
)
def test_a_budget_that_means_nothing_fails_closed(
    right: tuple[Value, ...], rule: Rule, why: str
) -> None:
    found = outcome(pv.PRIVACY_BUDGET, "lteq", right, rule=rule)
    assert seen(found) == (False, (), f"sluis:privacyBudget fails ({why})")


def test_the_cost_and_unit_are_found_inside_logical_constraints_first_one_first() -> None:
    nested = LogicalConstraint(ODRL + "and", (UNIT, COST))
    later = Constraint(pv.QUERY_EPSILON, ODRL + "eq", (Decimal("0.5"),))
    assert pv.query_epsilon(_budget_rule(nested)) == Decimal("0.25")
    assert pv.query_epsilon(_budget_rule(later, nested)) == Decimal("0.5")
    assert pv.query_epsilon(_budget_rule(nested, later)) == Decimal("0.5")  # breadth first
    found = outcome(pv.PRIVACY_BUDGET, "lteq", ("1/P1D",), rule=_budget_rule(nested))
    assert found.satisfied
    two = Constraint(pv.QUERY_EPSILON, ODRL + "eq", (Decimal("0.1"), Decimal("0.2")))
    assert pv.query_epsilon(_budget_rule(two)) is None


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("0.5", Decimal("0.5")),
        (2, Decimal(2)),
        (0.1, Decimal("0.1")),
        (Decimal("1E-6"), Decimal("0.000001")),
        (True, None),
        (0, None),
        ("-1", None),
        ("NaN", None),
        ("Infinity", None),
        ("x", None),
        (None, None),
        (Iri("urn:x"), None),
        (Iri("0.5"), None),  # an IRI is no number, whatever its text
    ],
)
def test_positive(value: object, number: Decimal | None) -> None:
    assert pv.positive(value) == number


@pytest.mark.parametrize(
    ("text", "bound"),
    [
        ("salary=0..200000", ("salary", Decimal(0), Decimal(200000))),
        (" salary = -5 .. 5 ", ("salary", Decimal(-5), Decimal(5))),
        ("salary=5..5", ("salary", Decimal(5), Decimal(5))),
        ("salary=6..5", None),
        ("=0..1", None),
        (" =0..1", None),
        ("salary0..1", None),
        ("salary=0-1", None),
        ("salary=x..1", None),
        ("salary=0..Infinity", None),
        ("salary=NaN..1", None),
        ("a=b=0..1", None),  # the first "=" ends the column
        ("x=0...5", ("x", Decimal(0), Decimal("0.5"))),  # the first ".." splits
        (5, None),
    ],
)
def test_parse_bound(text: Value, bound: tuple[str, Decimal, Decimal] | None) -> None:
    assert pv.parse_bound(text) == bound


# -- time and count ---------------------------------------------------------------------------


def test_elapsed_time_reasons() -> None:
    start = NOW - timedelta(days=3)
    state = State(agreement_start=start)
    assert seen(outcome(ODRL + "elapsedTime", "lteq", ("P30D",), state=state)) == (
        True,
        ("3 days, 0:00:00",),
        "odrl:elapsedTime P30D holds",
    )
    assert seen(outcome(ODRL + "elapsedTime", "lteq", ("P2D",), state=state)) == (
        False,
        ("3 days, 0:00:00",),
        "odrl:elapsedTime P2D fails",
    )
    assert seen(outcome(ODRL + "elapsedTime", "gteq", ("P3D",), state=state))[0] is True
    assert seen(outcome(ODRL + "elapsedTime", "lteq", ("P30D",))) == (
        False,
        (),
        "odrl:elapsedTime fails (no agreement start in the state)",
    )
    assert seen(outcome(ODRL + "elapsedTime", "lteq", ("soon",), state=state)) == (
        False,
        (),
        "odrl:elapsedTime fails (right operand not a duration)",
    )


@pytest.mark.parametrize(
    ("right", "text"),
    [
        (("P1Y2M",), "P1Y2M"),
        ((TypedLiteral("PT1.5S", "xsd:duration"),), "PT1.5S"),
        (("P",), None),
        (("PT",), None),
        (("P1D", "P2D"), None),
        ((), None),
        (("1D",), None),
        (("P1DX",), None),
    ],
)
def test_duration_text(right: tuple[Value, ...], text: str | None) -> None:
    assert duration_text(right) == text


@pytest.mark.parametrize(
    ("text", "period"),
    [(" P1D ", "P1D"), ("PT0.5S", "PT0.5S"), ("PT0S", None), ("P", None), ("1D", None)],
)
def test_period_text(text: str, period: str | None) -> None:
    assert period_text(text) == period


@pytest.mark.parametrize(
    ("start", "text", "end"),
    [
        (datetime(2024, 1, 31, tzinfo=UTC), "P1M", datetime(2024, 2, 29, tzinfo=UTC)),
        (datetime(2023, 1, 31, tzinfo=UTC), "P1M", datetime(2023, 2, 28, tzinfo=UTC)),
        (datetime(2024, 11, 30, tzinfo=UTC), "P2M", datetime(2025, 1, 30, tzinfo=UTC)),
        (datetime(2024, 12, 15, tzinfo=UTC), "P1M", datetime(2025, 1, 15, tzinfo=UTC)),
        (datetime(2024, 2, 29, tzinfo=UTC), "P1Y", datetime(2025, 2, 28, tzinfo=UTC)),
        (
            datetime(2024, 1, 1, tzinfo=UTC),
            "P1Y1M1W1DT1H1M1.5S",
            datetime(2025, 2, 9, 1, 1, 1, 500000, tzinfo=UTC),
        ),
    ],
)
def test_add_duration_on_the_calendar(start: datetime, text: str, end: datetime) -> None:
    assert add_duration(start, text) == end


def test_add_duration_refuses_what_is_not_a_duration() -> None:
    with pytest.raises(ValueError, match=r"^not an ISO 8601 duration: 1D$"):
        add_duration(NOW, "1D")


def test_day_of_week_is_capitalised() -> None:
    sunday = datetime(2025, 6, 1, 12, tzinfo=UTC)
    found = outcome(SLUIS + "dayOfWeek", "eq", ("Sunday",), now=sunday)
    assert (found.satisfied, found.observed) == (True, ("Sunday",))
    assert outcome("ex:dayOfWeek", "eq", ("Monday",), now=sunday + timedelta(days=1)).satisfied


def test_day_of_week_is_judged_against_the_state_s_collections() -> None:
    # "Not at weekends", as a list and as a collection the state of the world declares.
    wednesday, saturday = datetime(2025, 6, 4, 12, tzinfo=UTC), datetime(2025, 6, 7, 12, tzinfo=UTC)
    weekend = ("Saturday", "Sunday")
    assert outcome(SLUIS + "dayOfWeek", "isNoneOf", weekend, now=wednesday).satisfied
    assert not outcome(SLUIS + "dayOfWeek", "isNoneOf", weekend, now=saturday).satisfied
    state = build_state(broader={"Saturday": {"urn:days:weekend"}})
    at_weekend = (Iri("urn:days:weekend"),)
    found = outcome(SLUIS + "dayOfWeek", "isPartOf", at_weekend, state=state, now=saturday)
    assert (found.satisfied, found.observed) == (True, ("Saturday",))
    assert not outcome(
        SLUIS + "dayOfWeek", "isPartOf", at_weekend, state=state, now=wednesday
    ).satisfied


def test_count_reads_the_rule_s_own_count_first() -> None:
    state = State(use_count=1, rule_counts=MappingProxyType({"urn:rule:r": 7}))
    assert seen(outcome(ODRL + "count", "lteq", (8,), state=state)) == (
        True,
        (8,),
        "odrl:count odrl:lteq 8 holds (observed 8)",
    )
    other = Rule(RuleKind.PERMISSION, "urn:rule:other")
    assert outcome(ODRL + "count", "lteq", (8,), state=state, rule=other).observed == (2,)


def test_recipient_is_declared_or_the_requesting_party() -> None:
    found = outcome(ODRL + "recipient", "eq", (Iri(UNI),))
    assert (found.satisfied, found.observed) == (True, (Iri(UNI),))
    declared = request(recipient=[Iri("urn:org:other")])
    found = outcome(ODRL + "recipient", "eq", (Iri(UNI),), asked=declared)
    assert (found.satisfied, found.observed) == (False, (Iri("urn:org:other"),))
    anonymous = Request(None, ODRL + "read", None)
    found = outcome(ODRL + "recipient", "eq", (Iri(UNI),), asked=anonymous)
    assert (found.satisfied, found.observed) == (False, ())


# -- what a permit carries --------------------------------------------------------------------

CARRIED = """
uid: urn:sluis:policy:limits
assigner: urn:org:provider
permissions:
  - action: read
    target: urn:dataset:meters
    data:
      columns: [meter, kwh]
      row_filter: "region = 'NL'"
      min_group_size: 10
      max_rows: 1000
      rate_limit: 3/PT1H
      privacy_unit: [emp, site]
      allow_min_max: true
    duties:
      - notify: urn:org:auditor
      - {action: inform}
      - delete_after: P30D
"""


def test_a_permit_carries_each_limit() -> None:
    decision = evaluate(
        parse_yaml_policy(CARRIED), request(sluis_aggregate=[True]), State(), now=NOW
    )
    assert decision.limits == DataLimits(
        columns=("meter", "kwh"),
        row_filter="region = 'NL'",
        min_group_size=10,
        max_rows=1000,
        rate_limit=RateLimit(3, "PT1H"),
        notify=("urn:org:auditor", "urn:org:provider"),  # an inform without a party: the assigner
        delete_after="P30D",
        duties=(
            "#permission-0-duty-0",
            "#permission-0-duty-1",
            "#permission-0-duty-2",
        ),
        privacy_unit=("emp", "site"),
        allow_min_max=True,
    )


def _permit(*constraints: Constraint, duties: tuple[Rule, ...] = ()) -> Policy:
    rule = Rule(
        RuleKind.PERMISSION, "urn:rule:p", (Action(ODRL + "read"),), constraints=constraints,
        duties=duties,
    )  # fmt: skip
    return Policy("urn:sluis:policy:p", ODRL + "Set", permissions=(rule,))


def test_limits_that_are_not_single_values_are_not_carried() -> None:
    # Validation refuses most of these on write; ``limits_of`` must not read them anyway.
    rule = _permit(
        Constraint(d.ROW_FILTER, ODRL + "eq", ("a = 1", "b = 2")),
        Constraint(d.MAX_ROWS, ODRL + "lteq", (True,)),
        Constraint(d.MIN_GROUP_SIZE, ODRL + "gteq", (5, 6)),
        Constraint(pv.MAX_GROUPS, ODRL + "lteq", ("3",)),
    ).permissions[0]
    assert limits_of(rule, RuleReport(None, "permission", True, True, ())) == DataLimits()


def test_the_first_of_two_constraints_on_one_term_is_carried() -> None:
    policy = _permit(
        Constraint(d.MAX_ROWS, ODRL + "lteq", (10,)),
        Constraint(d.MAX_ROWS, ODRL + "lteq", (20,)),
    )
    decision = evaluate(policy, request(), State(), now=NOW)
    assert decision.limits == DataLimits(max_rows=10)


def test_an_inform_duty_without_any_party_notifies_everyone_listed_as_star() -> None:
    inform = Rule(RuleKind.DUTY, "urn:duty:i", (Action(ODRL + "inform"),))
    decision = evaluate(_permit(duties=(inform,)), request(), State(), now=NOW)
    assert decision.limits == DataLimits(notify=("*",), duties=("urn:duty:i",))
    named = Rule(
        RuleKind.DUTY, "urn:duty:n", (Action(ODRL + "inform"),),
        assignees=(Ref("urn:org:a"), Ref("urn:org:b")),
    )  # fmt: skip
    decision = evaluate(_permit(duties=(named,)), request(), State(), now=NOW)
    assert decision.limits is not None
    assert decision.limits.notify == ("urn:org:a", "urn:org:b")


def test_a_delete_duty_carries_its_first_refinement_s_duration() -> None:
    within = Constraint(ODRL + "elapsedTime", ODRL + "lteq", ("P7D",))
    nested = LogicalConstraint(ODRL + "and", (within,))
    delete = Rule(RuleKind.DUTY, "urn:duty:d", (Action(ODRL + "delete", (nested,)),))
    decision = evaluate(_permit(duties=(delete,)), request(), State(), now=NOW)
    assert decision.limits == DataLimits(delete_after="P7D", duties=("urn:duty:d",))


PRIVATE = """
uid: urn:sluis:policy:private
permissions:
  - action: read
    target: urn:dataset:other
  - action: read
    data: {privacy_unit: emp, privacy_budget: 2/P1D, query_epsilon: 0.5}
  - action: read
    data: {privacy_unit: emp, privacy_budget: 9/P1D, query_epsilon: 0.5}
"""


def test_the_privacy_limits_default_and_come_from_the_first_budget() -> None:
    expected = PrivacyLimits(Decimal(2), "P1D", Decimal("0.5"))
    assert privacy_of(parse_yaml_policy(PRIVATE)) == expected
    decision = evaluate(
        parse_yaml_policy(PRIVATE), request(sluis_aggregate=[True]), State(), now=NOW
    )
    assert decision.limits is not None
    assert decision.limits.privacy == expected
    assert (expected.query_delta, expected.bounds) == (None, ())
    assert (expected.max_contributions, expected.max_groups) == (1, 1)
    assert privacy_of(_permit()) is None


def test_limits_name_the_duties_the_report_finds_in_force() -> None:
    # The reference engine passes its report; a duty not in force, or without a uid, is not
    # named (the compiled engine names them itself, see test_decide).
    rule = _permit().permissions[0]
    duties = (
        RuleReport("urn:duty:a", "duty", True, True, ("awaited",)),
        RuleReport("urn:duty:b", "duty", False, False, ("not in force",)),
        RuleReport(None, "duty", True, True, ("awaited",)),
        RuleReport("urn:duty:c", "duty", True, False, ("violated",)),
    )
    report = RuleReport("urn:rule:p", "permission", True, True, (), (), duties)
    assert limits_of(rule, report).duties == ("urn:duty:a", "urn:duty:c")
