"""Issue 18: validation on write and the canonical form, word for word.

Each left operand's right-operand check (``policies.right_operands``) with the value it
names and the boundary beside it; the profile's terms and the order its problems come in
(``policies.profile``); the canonical JSON a policy's hash is taken of, byte for byte
(``policies.canonical``), since a hash that changes is a new policy version.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from policies import (
    CONFORMANCE_PROFILE,
    SLUIS_PROFILE,
    PolicyError,
    Profile,
    canonical_json,
    policy_hash,
    problems,
    validate,
)
from policies.canonical import to_json
from policies.errors import PolicySchemaError, UnknownTerm
from policies.model import (
    Action,
    Constraint,
    Iri,
    LogicalConstraint,
    Policy,
    Ref,
    Rule,
    RuleKind,
    TypedLiteral,
    Value,
)
from policies.operands import registered
from policies.profile import constraint_problems
from policies.right_operands import problem
from policies.vocab import ODRL, SLUIS, XSD

LT = ODRL + "lt"


def check(left: str, *values: Value) -> str | None:
    return problem(Constraint(left, LT, values))


@pytest.mark.parametrize(
    ("left", "values", "why"),
    [
        (ODRL + "dateTime", (date(2027, 1, 1), datetime(2027, 1, 1, tzinfo=UTC)), None),
        (ODRL + "dateTime", ("tomorrow",), "'tomorrow' is not a date-time or a date"),
        # Every value is checked, the first bad one named.
        (
            ODRL + "dateTime",
            (date(2027, 1, 1), "soon", "later"),
            "'soon' is not a date-time or a date",
        ),
        (ODRL + "elapsedTime", ("PT1H",), None),
        (ODRL + "elapsedTime", ("P",), "P is not an ISO 8601 duration"),
        (ODRL + "elapsedTime", ("PT1H", "PT2H"), "takes exactly one value"),
        (ODRL + "count", (0,), None),
        (ODRL + "count", (-1,), "'-1' is not a count (an integer >= 0)"),
        (ODRL + "count", (True,), "'True' is not a count (an integer >= 0)"),
        (ODRL + "count", (Decimal(1),), "'1' is not a count (an integer >= 0)"),
        (ODRL + "count", (1, 2), "takes exactly one value"),
        (SLUIS + "columns", ("a", "b"), None),
        (SLUIS + "columns", ("a", " "), "' ' is not a column name"),
        (SLUIS + "columns", (Iri("a"),), "'a' is not a column name"),
        (SLUIS + "rowFilter", ("x > 1",), None),
        (SLUIS + "rowFilter", ("",), "'' is not a row filter"),
        (SLUIS + "rowFilter", ("a", "b"), "takes exactly one value"),
        (SLUIS + "minGroupSize", (1,), None),
        (SLUIS + "minGroupSize", (0,), "'0' is not a group size >= 1"),
        (SLUIS + "minGroupSize", (1, 2), "takes exactly one value"),
        (SLUIS + "maxRows", (0,), None),
        (SLUIS + "maxRows", ("lots",), "'lots' is not a row count (an integer >= 0)"),
        (SLUIS + "maxRows", (1, 2), "takes exactly one value"),
        (SLUIS + "rateLimit", ("100/PT1H",), None),
        (SLUIS + "rateLimit", ("often",), "often is not N/duration (e.g. 100/PT1H)"),
        (SLUIS + "rateLimit", ("1/PT1H", "2/PT1H"), "takes exactly one value"),
        (SLUIS + "privacyUnit", ("person",), None),
        (SLUIS + "privacyUnit", (" ",), "' ' is not a column name"),
        (SLUIS + "allowMinMax", (True,), None),
        (SLUIS + "allowMinMax", (1,), "'1' is not true"),
        (SLUIS + "allowMinMax", (False,), "'False' is not true"),
        (SLUIS + "allowMinMax", (True, True), "takes exactly one value"),
        (SLUIS + "privacyBudget", ("1.0/P30D",), None),
        (SLUIS + "privacyBudget", ("x",), "x is not epsilon/duration (e.g. 1.0/P30D)"),
        (SLUIS + "privacyBudget", ("1/P1D", "1/P1D"), "takes exactly one value"),
        (SLUIS + "queryEpsilon", (Decimal("0.1"),), None),
        (SLUIS + "queryEpsilon", (0,), "'0' is not a number > 0"),
        (SLUIS + "queryEpsilon", (1, 1), "takes exactly one value"),
        (SLUIS + "queryDelta", (Decimal("0.999"),), None),
        (SLUIS + "queryDelta", (1,), "'1' is not a number in (0, 1)"),
        (SLUIS + "queryDelta", (0,), "'0' is not a number in (0, 1)"),
        (SLUIS + "queryDelta", ("x",), "'x' is not a number in (0, 1)"),
        (SLUIS + "queryDelta", (Decimal("0.1"),) * 2, "takes exactly one value"),
        (SLUIS + "bounds", ("salary=0..10", "age=0..120"), None),
        (SLUIS + "bounds", ("salary=0..10", "salary"), "'salary' is not column=low..high"),
        (SLUIS + "maxContributions", (1,), None),
        (SLUIS + "maxContributions", (0,), "'0' is not a count >= 1"),
        (SLUIS + "maxContributions", (1, 1), "takes exactly one value"),
        (SLUIS + "maxGroups", (1,), None),
        (SLUIS + "maxGroups", (0,), "'0' is not a count >= 1"),
        (SLUIS + "maxGroups", (1, 1), "takes exactly one value"),
        (SLUIS + "dayOfWeek", ("Monday", "Sunday"), None),
        (SLUIS + "dayOfWeek", ("monday",), "'monday' is not a weekday (Monday ... Sunday)"),
        # A left operand with no check of its own takes any non-empty right operand.
        (ODRL + "purpose", ("anything", 1, True), None),
        (ODRL + "purpose", (), "the right operand is empty"),
        (SLUIS + "maxRows", (), "the right operand is empty"),
    ],
)
def test_each_right_operand_check(left: str, values: tuple[Value, ...], why: str | None) -> None:
    assert check(left, *values) == why


def test_every_weekday_is_a_weekday() -> None:
    days = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    for day in days:
        assert check(SLUIS + "dayOfWeek", day) is None


def _policy(*rules: Rule, prohibitions: tuple[Rule, ...] = ()) -> Policy:
    return Policy("urn:p", ODRL + "Set", permissions=rules, prohibitions=prohibitions)


def _permit(*constraints: Constraint | LogicalConstraint, **kw: object) -> Rule:
    return Rule(
        RuleKind.PERMISSION,
        "urn:r",
        actions=kw.get("actions", (Action(ODRL + "read"),)),  # type: ignore[arg-type]
        targets=(Ref("urn:d"),),
        constraints=constraints,
        duties=kw.get("duties", ()),  # type: ignore[arg-type]
    )


def _described(found: list[PolicyError]) -> list[tuple[str, str]]:
    return [(e.code, e.reason) for e in found]


def test_problems_come_in_document_order() -> None:
    """Actions, their refinements, the rule's constraints, then its duties, rule by rule."""
    refined = Action(
        ODRL + "reed",
        (Constraint(SLUIS + "maxRows", LT, ("lots",), uid="urn:c1"),),
    )
    duty = Rule(RuleKind.DUTY, actions=(Action(ODRL + "infrom"),))
    first = _permit(
        Constraint(ODRL + "colour", ODRL + "lessThan", ("x",)),
        actions=(refined,),
        duties=(duty,),
    )
    second = Rule(RuleKind.PROHIBITION, actions=(Action(ODRL + "sel"),))
    found = problems(_policy(first, prohibitions=(second,)), SLUIS_PROFILE)
    assert _described(found) == [
        ("unknown_action", f"unknown action: {ODRL}reed"),
        ("invalid_value", "sluis:maxRows (constraint urn:c1): 'lots' is not a row count "
         "(an integer >= 0)"),
        ("unknown_left_operand", f"unknown left operand: {ODRL}colour"),
        ("unknown_operator", f"unknown operator: {ODRL}lessThan"),
        ("unknown_action", f"unknown action: {ODRL}infrom"),
        ("unknown_action", f"unknown action: {ODRL}sel"),
    ]  # fmt: skip
    assert isinstance(found[1], PolicySchemaError)
    assert all(isinstance(found[i], UnknownTerm) for i in (0, 2, 3, 4, 5))


def test_a_value_problem_without_a_uid_names_no_constraint() -> None:
    found = problems(_policy(_permit(Constraint(SLUIS + "maxRows", LT, (-1,)))), SLUIS_PROFILE)
    assert _described(found) == [
        ("invalid_value", "sluis:maxRows: '-1' is not a row count (an integer >= 0)")
    ]


def test_a_logical_constraint_is_checked_with_its_members() -> None:
    inner = Constraint(ODRL + "colour", LT, ("x",))
    bad_op = LogicalConstraint(ODRL + "nor", (inner, Constraint(ODRL + "count", LT, ("x",))))
    found = list(constraint_problems(bad_op, SLUIS_PROFILE))
    assert _described(found) == [
        ("unknown_operator", f"unknown operator: {ODRL}nor"),
        ("unknown_left_operand", f"unknown left operand: {ODRL}colour"),
        ("invalid_value", "odrl:count: 'x' is not a count (an integer >= 0)"),
    ]
    for op in ("and", "or", "xone", "andSequence"):
        good = LogicalConstraint(ODRL + op, (Constraint(ODRL + "count", LT, (1,)),))
        assert list(constraint_problems(good, SLUIS_PROFILE)) == []


def test_validate_returns_the_policy_or_raises_the_first_problem() -> None:
    good = _policy(_permit(Constraint(ODRL + "count", LT, (3,))))
    assert validate(good) is good
    assert validate(good, SLUIS_PROFILE) is good
    bad = _policy(_permit(Constraint(ODRL + "colour", ODRL + "lessThan", ("x",))))
    with pytest.raises(UnknownTerm) as caught:
        validate(bad)
    assert caught.value.code == "unknown_left_operand"
    # The default profile is Sluis': a conformance-only term is unknown to it.
    conformance = _policy(_permit(Constraint(ODRL + "payAmount", LT, (Decimal(1),))))
    with pytest.raises(UnknownTerm, match="payAmount"):
        validate(conformance)
    assert validate(conformance, CONFORMANCE_PROFILE) is conformance


def test_the_sluis_profile_terms_exactly() -> None:
    assert SLUIS_PROFILE.iri == "https://w3id.org/sluis/odrl"
    core = {
        "dateTime", "elapsedTime", "count", "recipient", "purpose", "spatial", "industry",
        "deliveryChannel", "fileFormat",
    }  # fmt: skip
    sluis = {
        "columns", "rowFilter", "minGroupSize", "maxRows", "rateLimit", "dayOfWeek",
        "privacyUnit", "allowMinMax", "privacyBudget", "queryEpsilon", "queryDelta", "bounds",
        "maxContributions", "maxGroups",
    }  # fmt: skip
    assert SLUIS_PROFILE.left_operands == {ODRL + t for t in core} | {SLUIS + t for t in sluis}
    assert SLUIS_PROFILE.enforced_duties == {ODRL + "inform", ODRL + "delete"}
    assert ODRL + "read" in SLUIS_PROFILE.actions
    assert ODRL + "lt" in SLUIS_PROFILE.operators


def test_the_conformance_profile_extends_the_sluis_profile() -> None:
    assert CONFORMANCE_PROFILE.iri == "https://w3id.org/sluis/odrl-conformance"
    added = {ODRL + "resolution", ODRL + "payAmount", "ex:dayOfWeek"}
    assert CONFORMANCE_PROFILE.left_operands == SLUIS_PROFILE.left_operands | added
    assert CONFORMANCE_PROFILE.actions == SLUIS_PROFILE.actions
    assert CONFORMANCE_PROFILE.operators == SLUIS_PROFILE.operators


def test_a_profile_evaluates_only_what_it_declares() -> None:
    count = ODRL + "count"
    assert SLUIS_PROFILE.evaluator(count) is registered()[count]
    narrow = Profile("urn:narrow", frozenset({ODRL + "dateTime"}), SLUIS_PROFILE.actions)
    assert count in registered()
    assert narrow.evaluator(count) is None
    assert narrow.evaluator(ODRL + "dateTime") is registered()[ODRL + "dateTime"]
    assert narrow.evaluator(ODRL + "colour") is None
    wider = narrow.extended("urn:wider", left_operands=frozenset({count}))
    assert (wider.iri, wider.left_operands) == ("urn:wider", {ODRL + "dateTime", count})
    assert wider.evaluator(count) is registered()[count]


def test_an_extended_profile_keeps_everything_but_its_iri_and_left_operands() -> None:
    """Its actions, operators and enforced duties are the base profile's, not the defaults:
    a profile that enforces only ``inform`` must not start enforcing ``delete`` as well."""
    base = Profile(
        "urn:base",
        frozenset({ODRL + "dateTime"}),
        frozenset({ODRL + "read"}),
        operators=frozenset({ODRL + "eq"}),
        enforced_duties=frozenset({ODRL + "inform"}),
    )
    wider = base.extended("urn:wider", left_operands=frozenset({ODRL + "count"}))
    assert wider == Profile(
        "urn:wider",
        frozenset({ODRL + "dateTime", ODRL + "count"}),
        frozenset({ODRL + "read"}),
        operators=frozenset({ODRL + "eq"}),
        enforced_duties=frozenset({ODRL + "inform"}),
    )


# The canonical form: a wire format, each model type tagged.


@pytest.mark.parametrize(
    ("value", "json"),
    [
        (Iri("urn:x"), {"@id": "urn:x"}),
        (TypedLiteral("5", XSD + "gYear"), {"@value": "5", "@type": XSD + "gYear"}),
        (RuleKind.DUTY, "duty"),
        (True, True),
        (5, 5),
        ("5", "5"),
        (None, None),
        (Decimal("1.50"), {"@value": "1.5", "@type": "decimal"}),
        (Decimal("100"), {"@value": "1E+2", "@type": "decimal"}),
        (
            datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC),
            {"@value": "2027-01-02T03:04:05+00:00", "@type": "dateTime"},
        ),
        (date(2027, 1, 2), {"@value": "2027-01-02", "@type": "date"}),
        ((1, [Iri("a")]), [1, [{"@id": "a"}]]),
        (Ref("urn:d"), {"uid": "urn:d", "collection": False}),
    ],
)
def test_each_model_value_as_json(value: object, json: object) -> None:
    assert to_json(value) == json


def test_what_is_not_model_has_no_json() -> None:
    with pytest.raises(TypeError) as caught:
        to_json(1.5)
    assert str(caught.value) == "not part of the policy model: float"
    with pytest.raises(TypeError) as caught:
        to_json(Ref)  # a dataclass, not one of its values
    assert str(caught.value) == "not part of the policy model: type"


def test_canonical_json_sorts_keys_by_utf16_code_units() -> None:
    # U+1F600 is the surrogate pair D83D DE00 in UTF-16, before U+E000; by code point after.
    value = {"\ue000": 1, "\U0001f600": [True, None, "é"], "a": {"b": "c", "B": 2}}
    text = '{"a":{"B":2,"b":"c"},"\U0001f600":[true,null,"é"],"\ue000":1}'
    assert canonical_json(value) == text.encode("utf-8")


def test_canonical_json_refuses_floats_anywhere() -> None:
    for value in (1.5, [1.5], {"a": 1.5}):
        with pytest.raises(TypeError) as caught:
            canonical_json(value)
        assert str(caught.value) == "floats have no place in a canonical policy"


def test_a_policy_hash_is_pinned() -> None:
    """The hash of a small policy, against its canonical text written out by hand."""
    policy = Policy(
        "urn:p",
        ODRL + "Set",
        permissions=(
            Rule(
                RuleKind.PERMISSION,
                "urn:r",
                actions=(Action(ODRL + "read"),),
                targets=(Ref("urn:d"),),
                constraints=(Constraint(ODRL + "count", LT, (3,)),),
            ),
        ),
        conflict=ODRL + "perm",
    )
    o = "http://www.w3.org/ns/odrl/2/"
    text = (
        '{"conflict":"' + o + 'perm","obligations":[],"permissions":[{"actions":[{"name":"'
        + o + 'read","refinements":[]}],"assignees":[],"assigners":[],"constraints":[{'
        '"left_operand":"' + o + 'count","operator":"' + o + 'lt","right_operand":[3],'
        '"uid":null,"unit":null}],"duties":[],"kind":"permission","targets":[{"collection":'
        'false,"uid":"urn:d"}],"uid":"urn:r"}],"profiles":[],"prohibitions":[],"type":"'
        + o + 'Set","uid":"urn:p"}'
    )  # fmt: skip
    assert canonical_json(to_json(policy)) == text.encode()
    assert policy_hash(policy) == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
