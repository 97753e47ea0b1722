"""Issue 18: the files every other part builds on, each pinned where mutation testing found it
undefended.

``policies.errors`` (the one error family: its codes, the one-line reason, where it was
found and ``at``), ``policies.decision`` (when two decisions are equal), ``policies.explain``
(the written report, line by line), ``policies.model`` and ``policies.vocab`` (the action
hierarchy, short names) and ``policies.operands.registry`` (registration, binding, the
common comparison and its sentence).
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial

import pytest

from policies import errors
from policies.decision import (
    ConstraintReport,
    DataLimits,
    Decision,
    Effect,
    PrivacyLimits,
    RateLimit,
    RuleReport,
)
from policies.explain import explain, limits_lines
from policies.model import Constraint, Iri, Policy, Rule, RuleKind
from policies.operands import registry
from policies.operands.registry import EvalInput, Outcome
from policies.request import State
from policies.vocab import ODRL, SLUIS, XSD, action_ancestors, short
from tests.policies.helpers import NOW, request

# policies.errors


def test_a_reason_is_one_line_of_at_most_300_characters() -> None:
    assert errors.PolicyError(" a\n  b\tc  ").reason == "a b c"
    assert errors.PolicyError("x" * 300).reason == "x" * 300
    assert errors.PolicyError("x" * 299 + "\n y").reason == "x" * 299 + " "  # joined, then cut
    assert errors.PolicyError("y" * 301).reason == "y" * 300


def test_an_error_names_its_code_and_where_it_was_found() -> None:
    found = errors.PolicySchemaError("no such key", code="unknown_key", line=3, key="a.b", column=5)
    assert (found.code, found.reason, found.line, found.column, found.key) == (
        "unknown_key",
        "no such key",
        3,
        5,
        "a.b",
    )
    assert str(found) == "unknown_key: line 3, column 5: a.b: no such key"
    assert (found.position, found.where) == ("3:5", "line 3, column 5: a.b: ")


def test_an_error_without_a_code_keeps_its_class_code() -> None:
    plain = errors.PolicyError("bad")
    assert (plain.code, plain.line, plain.column, plain.key) == ("policy_error", None, None, None)
    assert str(plain) == "policy_error: bad"
    assert (plain.position, plain.where) == ("", "")
    assert errors.PolicySyntaxError("x").code == "syntax"
    assert errors.PolicyStructureError("x").code == "policy_structure"
    assert errors.PolicySchemaError("x").code == "invalid_value"
    assert errors.PolicyTestError("x").code == "policy_test"
    # Setting the code on one error does not change its class's.
    errors.PolicyStructureError("x", code="request_structure")
    assert errors.PolicyStructureError.code == "policy_structure"


def test_a_column_without_a_line_is_dropped() -> None:
    found = errors.PolicyError("r", code="c", key="k", column=7)
    assert (found.line, found.column, found.key) == (None, None, "k")
    assert str(found) == "c: k: r"
    lined = errors.PolicyError("r", code="c", line=2)
    assert (lined.position, lined.where, str(lined)) == ("2", "line 2: ", "c: line 2: r")


def test_at_names_where_and_keeps_the_rest() -> None:
    first = errors.UnknownTerm("left_operand", "urn:x")
    found = first.at(4, "permissions[0]", 9)
    assert type(found) is errors.UnknownTerm
    assert found is not first
    assert (found.code, found.reason, found.kind, found.term) == (
        "unknown_left_operand",
        "unknown left operand: urn:x",
        "left_operand",
        "urn:x",
    )
    assert (found.line, found.key, found.column) == (4, "permissions[0]", 9)
    assert found.args == (
        "unknown_left_operand: line 4, column 9: permissions[0]: unknown left operand: urn:x",
    )
    assert (first.line, first.key, first.column) == (None, None, None)
    assert str(first) == "unknown_left_operand: unknown left operand: urn:x"
    unplaced = first.at(None, "k", 3)
    assert (unplaced.line, unplaced.key, unplaced.column) == (None, "k", None)
    assert unplaced.args == ("unknown_left_operand: k: unknown left operand: urn:x",)
    assert first.at(2, None).column is None


def test_an_unknown_term_names_its_kind_and_term() -> None:
    term = errors.UnknownTerm("operator", "urn:op", line=1, key="k", column=2)
    assert (term.code, term.reason, term.line, term.key, term.column) == (
        "unknown_operator",
        "unknown operator: urn:op",
        1,
        "k",
        2,
    )
    assert str(term) == "unknown_operator: line 1, column 2: k: unknown operator: urn:op"


# policies.decision


def _decision(**changed: object) -> Decision:
    fields: dict[str, object] = {
        "effect": Effect.DENY,
        "reason": "prohibited",
        "policy_id": "urn:p",
        "policy_hash": "h",
        "limits": None,
        "rule": None,
        "notes": (),
        "report": lambda: (RuleReport("urn:r", "permission", True, False, ("why",)),),
    }
    fields.update(changed)
    return Decision(**fields)  # type: ignore[arg-type]  # the fields, varied one at a time


def test_decisions_are_equal_when_every_field_and_the_report_are() -> None:
    base = _decision()
    assert base == _decision()
    assert hash(base) == hash(_decision())
    # The hash is its key's: every field and the report (decisions go into sets and dicts).
    key = (Effect.DENY, "prohibited", "urn:p", "h", None, None, (), base.rules)
    assert hash(base) == hash(key)
    assert base.rules == (RuleReport("urn:r", "permission", True, False, ("why",)),)
    for changed in (
        {"effect": Effect.PERMIT},
        {"reason": "no_active_permission"},
        {"policy_id": "urn:q"},
        {"policy_hash": "g"},
        {"limits": DataLimits()},
        {"rule": "urn:r"},
        {"notes": ("n",)},
        {"report": lambda: ()},
    ):
        assert base != _decision(**changed), changed
    assert base.__eq__("prohibited") is NotImplemented
    assert base != "prohibited"


def test_a_decision_without_a_report_has_no_rules() -> None:
    bare = Decision(Effect.PERMIT, "permitted", "urn:p", "h")
    assert bare.rules == ()
    assert bare.permitted
    assert not _decision().permitted


# policies.explain


def test_a_denial_is_explained_rule_by_rule() -> None:
    constraint = ConstraintReport(
        "urn:c", ODRL + "count", ODRL + "lt", (3,), (5,), False, "odrl:count lt 3 fails"
    )
    held = ConstraintReport(None, ODRL + "purpose", ODRL + "eq", (), (), True, "purpose holds")
    duty = RuleReport("urn:d", "duty", False, False, (), (held,))
    decision = _decision(
        notes=("first", "second"),
        report=lambda: (
            RuleReport("urn:r", "permission", True, False, ("a", "b"), (constraint,), (duty,)),
            RuleReport("urn:s", "prohibition", True, True, ()),
        ),
    )
    assert explain(decision).split("\n") == [
        "DENY (prohibited)",
        "policy urn:p h",
        "note: first",
        "note: second",
        "  permission urn:r: inactive (a; b)",
        "    [no] odrl:count lt 3 fails",
        "    duty urn:d: does not apply",
        "      [ok] purpose holds",
        "  prohibition urn:s: active",
    ]


def test_a_permit_is_explained_with_its_limits_and_privacy() -> None:
    privacy = PrivacyLimits(
        epsilon=Decimal("1.0"),
        period="P1D",
        query_epsilon=Decimal("0.5"),
        query_delta=Decimal("0.00001"),
        bounds=(("kwh", Decimal(-3), Decimal(2)), ("age", Decimal(0), Decimal(120))),
        max_contributions=2,
        max_groups=3,
    )
    limits = DataLimits(columns=("a", "b"), privacy=privacy)
    decision = Decision(Effect.PERMIT, "permitted", "urn:p", "h", limits, "urn:r")
    assert explain(decision).split("\n") == [
        "PERMIT (permitted)",
        "policy urn:p h",
        "granted by urn:r",
        "limits:",
        "  columns: [a, b]",
        "privacy: budget epsilon 1.0 per P1D; one query costs 0.5 (delta 0.00001 when grouped)",
        "privacy: a query's epsilon is split over its releases (one per count or sum, two per"
        " mean, one for the groups); with one release the noise scale is:",
        "  count: 12",
        "  sum(kwh): 36 (each contributor clamped to -3..2)",
        "  sum(age): 1440 (each contributor clamped to 0..120)",
    ]


def test_a_budget_without_delta_and_a_scale_with_decimals() -> None:
    privacy = PrivacyLimits(Decimal(1), "P7D", Decimal(3), bounds=(("x", Decimal(-1), Decimal(1)),))
    decision = Decision(
        Effect.PERMIT, "permitted", "urn:p", "h", DataLimits(privacy=privacy), "urn:r"
    )
    assert explain(decision).split("\n")[-4:] == [
        "privacy: budget epsilon 1 per P7D; one query costs 3",
        "privacy: a query's epsilon is split over its releases (one per count or sum, two per"
        " mean, one for the groups); with one release the noise scale is:",
        "  count: 0.333333",
        "  sum(x): 0.333333 (each contributor clamped to -1..1)",
    ]


def test_every_limit_is_explained_in_the_policy_s_words() -> None:
    limits = DataLimits(
        columns=("meter",),
        row_filter='k = "x"',
        min_group_size=10,
        max_rows=0,
        rate_limit=RateLimit(3, "PT1H"),
        notify=("urn:a", "urn:b"),
        delete_after="P30D",
        duties=("#d1", "#d2"),
    )
    assert limits_lines(limits) == [
        "limits:",
        "  columns: [meter]",
        '  row_filter: "k = \\"x\\""',
        "  min_group_size: 10",
        "  max_rows: 0",
        "  rate_limit: 3/PT1H",
        "  notify: urn:a",
        "  notify: urn:b",
        "  delete_after: P30D",
        "  duties to discharge: [#d1, #d2]",
    ]
    assert limits_lines(DataLimits(columns=())) == ["limits:", "  columns: []"]
    assert limits_lines(DataLimits(min_group_size=0)) == [
        "limits:",
        "  columns: all",
        "  min_group_size: 0",
    ]


def test_a_denial_explains_no_limits() -> None:
    assert explain(Decision(Effect.DENY, "prohibited", "urn:p", "h")) == (
        "DENY (prohibited)\npolicy urn:p h"
    )


# policies.model and policies.vocab


def test_an_iri_reads_as_itself_and_rules_come_permissions_first() -> None:
    assert str(Iri("urn:x")) == "urn:x"
    permission = Rule(RuleKind.PERMISSION, "urn:1")
    prohibition = Rule(RuleKind.PROHIBITION, "urn:2")
    obligation = Rule(RuleKind.OBLIGATION, "urn:3")
    policy = Policy(
        "urn:p",
        ODRL + "Set",
        permissions=(permission,),
        prohibitions=(prohibition,),
        obligations=(obligation,),
    )
    assert policy.rules() == (permission, prohibition, obligation)


def test_an_action_s_ancestors_nearest_first() -> None:
    assert action_ancestors(ODRL + "display") == (ODRL + "display", ODRL + "present", ODRL + "use")
    assert action_ancestors(ODRL + "give") == (ODRL + "give", ODRL + "transfer")
    assert action_ancestors(ODRL + "use") == (ODRL + "use",)
    assert action_ancestors("urn:own:action") == ("urn:own:action",)


def test_short_names_for_reports() -> None:
    assert short(ODRL + "read") == "odrl:read"
    assert short(SLUIS + "columns") == "sluis:columns"
    assert short(XSD + "integer") == "xsd:integer"
    assert short("urn:x:" + ODRL) == "urn:x:" + ODRL
    assert short(ODRL) == "odrl:"


# policies.operands.registry


def _evaluator(constraint: Constraint, given: EvalInput) -> Outcome:
    return Outcome(True, given.request.values(constraint.left_operand), "fine")


def test_a_left_operand_registered_twice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", {})
    decorated = registry.left_operand("urn:a", "urn:b")(_evaluator)
    assert decorated is _evaluator
    assert dict(registry.registered()) == {"urn:a": _evaluator, "urn:b": _evaluator}
    with pytest.raises(ValueError, match=r"^left operand urn:b registered twice$"):
        registry.left_operand("urn:c", "urn:b")(_evaluator)
    view = registry.registered()
    with pytest.raises(TypeError):
        view["urn:d"] = _evaluator  # type: ignore[index]  # the view is read-only


def test_a_binder_registered_twice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_BINDERS", {})

    def binder(constraint: Constraint) -> registry.Bound:
        return lambda given: Outcome(
            False, given.request.values("urn:a"), f"bound {constraint.uid}"
        )

    assert registry.binds("urn:a", "urn:b")(binder) is binder
    with pytest.raises(ValueError, match=r"^left operand urn:b bound twice$"):
        registry.binds("urn:b")(binder)
    given = EvalInput(request(), State(), NOW, Rule(RuleKind.PERMISSION))
    bound = registry.bind(Constraint("urn:a", ODRL + "eq", (1,), uid="u1"), _evaluator)
    assert bound(given).reason == "bound u1"
    plain = registry.bind(Constraint("urn:z", ODRL + "eq", (1,)), _evaluator)
    assert isinstance(plain, partial)
    assert plain(given).reason == "fine"


def test_judged_says_what_was_compared_and_observed() -> None:
    constraint = Constraint(ODRL + "count", ODRL + "lt", (3, Iri(SLUIS + "x")))
    held = registry.judge(Constraint(ODRL + "count", ODRL + "lt", (3,)), (2,), State())
    assert (held.satisfied, held.observed) == (True, (2,))
    assert held.reason == "odrl:count odrl:lt 3 holds (observed 2)"
    failed = registry.judge(constraint, (), State())
    assert (failed.satisfied, failed.observed) == (False, ())
    assert failed.reason == (
        "odrl:count odrl:lt 3, https://w3id.org/sluis/odrl#x fails (observed nothing)"
    )
    many = registry.judge(Constraint(ODRL + "purpose", ODRL + "eq", ("a",)), ("a", "b"), State())
    assert many.reason == "odrl:purpose odrl:eq a fails (observed a, b)"


def test_a_context_value_falls_back_to_its_unit_only_when_silent() -> None:
    rule = Rule(RuleKind.PERMISSION)
    by_unit = Constraint(ODRL + "payAmount", ODRL + "eq", (5,), unit=ODRL + "currency")
    silent = EvalInput(request(currency=[5]), State(), NOW, rule)
    assert registry.from_context(by_unit, silent).observed == (5,)
    assert registry.from_context(by_unit, silent).satisfied
    spoken = EvalInput(request(currency=[5], payAmount=[6]), State(), NOW, rule)
    assert registry.from_context(by_unit, spoken).observed == (6,)
    no_unit = Constraint(ODRL + "payAmount", ODRL + "eq", (5,))
    assert registry.from_context(no_unit, silent).observed == ()
