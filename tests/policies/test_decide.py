"""The decision itself, rule by rule (issue 18: the survivors of ``policies/engine+compiled``).

Each case is decided by the compiled engine and by the reference engine, and both must give
the same ``Decision`` (effect, reason, limits, granting rule, notes and the full report):
what one of them gets wrong the other exposes. The cases are the ones the conformance
suites never present: ``xone``, a request without a party or target against a rule that
names one, party collections, top-level obligations, duties with constraints of their own,
the duties a permit carries, ``conflict``, and policies the profile must refuse outright.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType

import pytest

import policies.compiled
from policies import (
    SLUIS_PROFILE,
    Action,
    CompiledPolicy,
    Constraint,
    DataLimits,
    Decision,
    DutyState,
    Effect,
    LogicalConstraint,
    Policy,
    Profile,
    Request,
    Rule,
    RuleKind,
    State,
    compile_policy,
    evaluate,
    parse_yaml_policy,
    policy_hash,
)
from policies.decision import ConstraintReport
from policies.engine import evaluate_reference
from policies.operands import EvalInput
from policies.rules import Context, report_rule
from policies.vocab import ODRL
from tests.policies.helpers import DATASET, NOW, UNI, request

UID = "urn:sluis:policy:decide"
GROUP = "urn:group:universities"
MEMBER = State(broader=MappingProxyType({UNI: frozenset({GROUP})}))


def decide(policy: Policy, asked: Request, state: State = State()) -> Decision:  # noqa: B008 - State is frozen
    """The compiled engine's decision, held to the reference engine's."""
    decision = evaluate(policy, asked, state, now=NOW)
    assert decision == evaluate_reference(policy, asked, state, now=NOW)
    assert decision.policy_id == policy.uid
    assert decision.policy_hash == policy_hash(policy)
    return decision


def yaml(body: str, *, conflict: str | None = None) -> Policy:
    head = f"uid: {UID}\ntarget: {DATASET}\n" + (f"conflict: {conflict}\n" if conflict else "")
    return parse_yaml_policy(head + body)


# -- logical constraints ------------------------------------------------------------------

XONE = yaml("""
permissions:
  - action: read
    constraints: [{xone: [[count, lteq, 10], [count, gteq, 5], [count, eq, 100]]}]
""")


@pytest.mark.parametrize(
    ("uses", "permitted"),
    [
        (0, True),  # count 1: only the first holds
        (5, False),  # count 6: the first two hold
        (20, True),  # count 21: only the second holds
        (99, False),  # count 100: the last two hold
    ],
)
def test_xone_holds_when_exactly_one_member_holds(uses: int, permitted: bool) -> None:
    decision = decide(XONE, request(), State(use_count=uses))
    assert decision.permitted is permitted
    assert decision.reason == ("permitted" if permitted else "no_active_permission")


def test_xone_with_no_member_holding_fails() -> None:
    policy = yaml("""
permissions:
  - action: read
    constraints: [{xone: [[count, lteq, 1], [count, gteq, 5]]}]
""")
    assert decide(policy, request(), State(use_count=2)).reason == "no_active_permission"


@pytest.mark.parametrize(("uses", "permitted"), [(0, True), (5, True), (50, False)])
def test_or_holds_when_any_member_holds(uses: int, permitted: bool) -> None:
    policy = yaml("""
permissions:
  - action: read
    constraints: [{or: [[count, lteq, 1], [count, eq, 6]]}]
""")
    assert decide(policy, request(), State(use_count=uses)).permitted is permitted


@pytest.mark.parametrize("operator", ["and", "andSequence", "or", "xone"])
def test_an_empty_logical_constraint_fails(operator: str) -> None:
    empty = LogicalConstraint(ODRL + operator, ())
    rule = Rule(RuleKind.PERMISSION, "urn:p", (Action(ODRL + "read"),), constraints=(empty,))
    policy = Policy(UID, ODRL + "Set", permissions=(rule,))
    assert decide(policy, request()).reason == "no_active_permission"


def test_and_needs_every_member() -> None:
    policy = yaml("""
permissions:
  - action: read
    constraints: [{and: [[count, lteq, 10], [count, gteq, 5]]}]
""")
    assert not decide(policy, request(), State(use_count=0)).permitted
    assert decide(policy, request(), State(use_count=5)).permitted


# -- targets and parties ------------------------------------------------------------------

NAMED = yaml(f"""
permissions:
  - action: read
    assignee: [{UNI}, {{collection: {GROUP}}}]
""")


def test_a_request_without_a_party_is_not_the_assignee() -> None:
    anonymous = replace(request(), party=None)
    assert decide(NAMED, anonymous).reason == "no_active_permission"
    assert decide(NAMED, anonymous, MEMBER).reason == "no_active_permission"


def test_a_request_without_a_target_is_not_the_rule_s_target() -> None:
    untargeted = replace(request(), target=None)
    assert decide(NAMED, untargeted).reason == "no_active_permission"


def test_a_party_in_the_collection_is_an_assignee_and_one_outside_is_not() -> None:
    assert decide(NAMED, request(party="urn:org:other")).reason == "no_active_permission"
    other_member = State(broader=MappingProxyType({"urn:org:other": frozenset({GROUP})}))
    assert decide(NAMED, request(party="urn:org:other"), other_member).permitted
    assert decide(NAMED, request()).permitted  # named directly
    assert decide(NAMED, request(target="urn:dataset:else")).reason == "no_active_permission"


def test_a_target_collection_takes_its_members() -> None:
    policy = parse_yaml_policy(f"""
uid: {UID}
permissions:
  - action: read
    target: [{{collection: urn:collection:open}}]
""")
    within = State(broader=MappingProxyType({DATASET: frozenset({"urn:collection:open"})}))
    assert decide(policy, request(), within).permitted
    assert decide(policy, request()).reason == "no_active_permission"


# -- prohibitions and conflict ------------------------------------------------------------

BOTH = """
permissions:
  - action: read
prohibitions:
  - action: read
    constraints: [[count, gteq, 3]]
"""


@pytest.mark.parametrize("conflict", [None, "prohibit", "invalid"])
def test_an_active_prohibition_wins_unless_conflict_is_perm(conflict: str | None) -> None:
    policy = yaml(BOTH, conflict=conflict)
    assert decide(policy, request(), State(use_count=1)).permitted  # prohibition inactive
    denied = decide(policy, request(), State(use_count=2))
    assert (denied.effect, denied.reason, denied.limits, denied.rule) == (
        "deny",
        "prohibited",
        None,
        None,
    )


def test_conflict_perm_lets_an_active_permission_win() -> None:
    policy = yaml(BOTH, conflict="perm")
    decision = decide(policy, request(), State(use_count=2))
    assert (decision.reason, decision.rule) == ("permitted", "#permission-0")


def test_conflict_perm_without_an_active_permission_is_prohibited() -> None:
    policy = yaml(
        """
permissions:
  - action: read
    constraints: [[count, lteq, 1]]
prohibitions:
  - action: read
""",
        conflict="perm",
    )
    assert decide(policy, request(), State(use_count=5)).reason == "prohibited"


# -- top-level obligations ----------------------------------------------------------------

OBLIGED = yaml("""
permissions:
  - action: read
prohibitions:
  - action: read
    constraints: [[count, gteq, 10]]
obligations:
  - uid: urn:duty:pay
    action: compensate
    constraints: [[count, gteq, 3]]
""")


@pytest.mark.parametrize(
    ("uses", "recorded", "reason"),
    [
        (0, DutyState.VIOLATED, "permitted"),  # not in force yet (count 1)
        (2, DutyState.VIOLATED, "obligation_violated"),  # in force (count 3), violated
        (2, DutyState.FULFILLED, "permitted"),
        (2, DutyState.PENDING, "permitted"),  # awaited
        (2, None, "permitted"),
        (9, DutyState.VIOLATED, "obligation_violated"),  # said before the prohibition
        (9, DutyState.FULFILLED, "prohibited"),
    ],
)
def test_a_violated_obligation_in_force_denies(
    uses: int, recorded: DutyState | None, reason: str
) -> None:
    states = {"urn:duty:pay": recorded} if recorded else {}
    state = State(use_count=uses, duty_states=MappingProxyType(states))
    decision = decide(OBLIGED, request(), state)
    assert decision.reason == reason
    obligation = decision.rules[-1]  # the report names the obligation, in force or not
    assert [(c.observed, c.satisfied) for c in obligation.constraints] == [((uses + 1,), uses >= 2)]
    assert (obligation.uid, obligation.kind, obligation.applies) == (
        "urn:duty:pay",
        "duty",
        uses >= 2,
    )


def test_an_obligation_with_a_refined_action_is_a_precondition() -> None:
    count = Constraint(ODRL + "count", ODRL + "lteq", (100,))
    consent = Action(ODRL + "obtainConsent", (count,))
    policy = Policy(
        UID,
        ODRL + "Set",
        permissions=(Rule(RuleKind.PERMISSION, "urn:p", (Action(ODRL + "read"),)),),
        obligations=(Rule(RuleKind.DUTY, "urn:duty:consent", (consent,)),),
    )
    decision = decide(policy, request())
    assert decision.reason == "obligation_violated"
    assert decision.rules[-1].reasons == ("precondition not yet fulfilled",)
    fulfilled = State(duty_states=MappingProxyType({"urn:duty:consent": DutyState.FULFILLED}))
    assert decide(policy, request(), fulfilled).permitted


# -- a permission's duties ------------------------------------------------------------------

DUTIES = yaml("""
permissions:
  - action: read
    duties:
      - notify: urn:org:provider
      - {uid: urn:duty:report, action: compensate, constraints: [[count, gteq, 3]]}
      - {uid: urn:duty:later, action: compensate, constraints: [[count, gteq, 50]]}
""")


@pytest.mark.parametrize(
    ("uses", "duties"),
    [
        (0, ("#permission-0-duty-0",)),
        (2, ("#permission-0-duty-0", "urn:duty:report")),
        (60, ("#permission-0-duty-0", "urn:duty:report", "urn:duty:later")),
    ],
)
def test_a_permit_names_the_duties_in_force(uses: int, duties: tuple[str, ...]) -> None:
    decision = decide(DUTIES, request(), State(use_count=uses))
    assert decision.limits is not None
    assert decision.limits.duties == duties
    assert decision.limits.notify == ("urn:org:provider",)


@pytest.mark.parametrize(
    ("uses", "permitted"),
    [(0, True), (2, False)],  # the violated duty is in force only from count 3
)
def test_a_violated_duty_deactivates_its_permission_only_when_in_force(
    uses: int, permitted: bool
) -> None:
    violated = MappingProxyType({"urn:duty:report": DutyState.VIOLATED})
    state = State(use_count=uses, duty_states=violated)
    decision = decide(DUTIES, request(), state)
    assert decision.reason == ("permitted" if permitted else "no_active_permission")


def test_a_duty_in_force_by_the_request_s_own_terms() -> None:
    policy = parse_yaml_policy(f"""
uid: {UID}
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    duties:
      - {{uid: urn:duty:ack, action: compensate, constraints: [[purpose, eq, dpv:Marketing]]}}
""")
    violated = State(duty_states=MappingProxyType({"urn:duty:ack": DutyState.VIOLATED}))
    marketing = request(purpose=["https://w3id.org/dpv#Marketing"])
    assert decide(policy, request(), violated).permitted
    assert decide(policy, marketing, violated).reason == "no_active_permission"


def test_a_duty_without_a_uid_reads_no_other_duty_s_state() -> None:
    duty = Rule(RuleKind.DUTY, None, (Action(ODRL + "compensate"),))
    rule = Rule(RuleKind.PERMISSION, "urn:p", (Action(ODRL + "read"),), duties=(duty,))
    policy = Policy(UID, ODRL + "Set", permissions=(rule,))
    other = State(duty_states=MappingProxyType({"XXXX": DutyState.VIOLATED}))
    decision = decide(policy, request(), other)
    assert decision.permitted
    assert decision.limits is not None
    assert decision.limits.duties == ()  # no uid to name


# -- policies the profile refuses, and misuse -------------------------------------------------


def test_an_unknown_left_operand_denies_naming_it() -> None:
    unknown = Constraint("urn:x:moonPhase", ODRL + "eq", ("full",))
    rule = Rule(RuleKind.PERMISSION, "urn:p", (Action(ODRL + "read"),), constraints=(unknown,))
    policy = Policy(UID, ODRL + "Set", permissions=(rule,))
    decision = decide(policy, request())
    assert (decision.effect, decision.reason) == ("deny", "unknown_left_operand")
    assert decision.notes == ("unknown left operand: urn:x:moonPhase",)
    assert decision.rules == ()


def test_an_unusable_right_operand_denies_naming_it() -> None:
    empty = Constraint(ODRL + "purpose", ODRL + "isNoneOf", ())
    rule = Rule(RuleKind.PROHIBITION, "urn:p", (Action(ODRL + "read"),), constraints=(empty,))
    permit = Rule(RuleKind.PERMISSION, "urn:q", (Action(ODRL + "read"),))
    policy = Policy(UID, ODRL + "Set", permissions=(permit,), prohibitions=(rule,))
    decision = decide(policy, request())
    assert (decision.effect, decision.reason) == ("deny", "invalid_value")
    assert decision.notes == ("odrl:purpose: the right operand is empty",)


def test_now_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^now must be timezone-aware$"):
        evaluate(NAMED, request(), State(), now=datetime(2025, 6, 1))
    with pytest.raises(ValueError, match=r"^now must be timezone-aware$"):
        evaluate_reference(NAMED, request(), State(), now=datetime(2025, 6, 1))


def test_a_compiled_policy_takes_its_own_profile_or_an_equal_one() -> None:
    compiled = compile_policy(NAMED, SLUIS_PROFILE)
    equal = replace(SLUIS_PROFILE)
    assert evaluate(compiled, request(), State(), now=NOW, profile=equal).permitted
    assert evaluate(compiled, request(), State(), now=NOW, profile=SLUIS_PROFILE).permitted
    other = SLUIS_PROFILE.extended("urn:profile:other", left_operands=frozenset())
    with pytest.raises(ValueError, match=r"^the policy was compiled under another profile$"):
        evaluate(compiled, request(), State(), now=NOW, profile=other)


# -- the compliance report, word for word ----------------------------------------------------

REPORTED = yaml("""
permissions:
  - action: read
    assignee: urn:org:someone
    constraints: [[count, lteq, 1], {or: [[count, eq, 7], [count, eq, 8]]}]
    duties:
      - notify: urn:org:provider
      - {uid: urn:duty:pay, action: compensate}
      - {uid: urn:duty:later, action: compensate, constraints: [[count, gteq, 50]]}
  - action: use
    constraints: [[count, gteq, 100]]
prohibitions:
  - action: distribute
""")


def test_a_deny_reports_every_rule_and_why() -> None:
    state = State(use_count=6, duty_states=MappingProxyType({"urn:duty:pay": DutyState.VIOLATED}))
    decision = decide(REPORTED, request(), state)
    assert decision.reason == "no_active_permission"
    first, second, prohibition = decision.rules
    assert (first.uid, first.kind, first.applies, first.active) == (
        "#permission-0",
        "permission",
        False,
        False,
    )
    assert first.reasons == ("party does not match", "a constraint fails", "a duty is not met")
    assert [(c.left_operand, c.satisfied, c.observed) for c in first.constraints] == [
        (ODRL + "count", False, (7,)),
        (ODRL + "count", True, (7,)),  # the or's members, each reported
        (ODRL + "count", False, (7,)),
    ]
    assert first.constraints[0].reason == "odrl:count odrl:lteq 1 fails (observed 7)"
    assert [(d.uid, d.applies, d.active, d.reasons) for d in first.duties] == [
        ("#permission-0-duty-0", True, True, ("to be discharged by the exchange",)),
        ("urn:duty:pay", True, False, ("violated",)),
        ("urn:duty:later", False, False, ("not in force",)),
    ]
    later = first.duties[2].constraints  # a duty not in force still reports why
    assert [(c.uid, c.left_operand, c.right_operand, c.observed, c.satisfied) for c in later] == [
        (None, ODRL + "count", (50,), (7,), False)
    ]
    assert (second.applies, second.active, second.reasons) == (True, False, ("a constraint fails",))
    assert (prohibition.kind, prohibition.applies, prohibition.reasons) == (
        "prohibition",
        False,
        ("action does not match",),
    )


def test_an_awaited_duty_and_a_fulfilled_one_are_met() -> None:
    states = {"urn:duty:pay": DutyState.FULFILLED}
    decision = decide(REPORTED, request(party="urn:org:someone"), State(duty_states=states))
    assert decision.rules[0].reasons == ("a constraint fails",)  # party matches, duties met
    duties = decision.rules[0].duties
    assert [(d.uid, d.active, d.reasons) for d in duties] == [
        ("#permission-0-duty-0", True, ("to be discharged by the exchange",)),
        ("urn:duty:pay", True, ("fulfilled",)),
        ("urn:duty:later", False, ("not in force",)),
    ]
    awaited = decide(REPORTED, request(party="urn:org:someone"))
    assert awaited.rules[0].duties[1].reasons == ("awaited",)


def test_an_unknown_operator_denies_outright_even_in_a_prohibition() -> None:
    """Fail closed: an unknown operator that merely never held would silence a prohibition
    (the read below would be permitted); the whole policy denies, naming the operator."""
    odd = Constraint(ODRL + "count", "urn:x:roughly", (1,))
    permit = Rule(RuleKind.PERMISSION, "urn:p", (Action(ODRL + "read"),))
    forbid = Rule(RuleKind.PROHIBITION, "urn:f", (Action(ODRL + "read"),), constraints=(odd,))
    for policy in (
        Policy(UID, ODRL + "Set", permissions=(permit,), prohibitions=(forbid,)),
        Policy(UID, ODRL + "Set", permissions=(replace(permit, constraints=(odd,)),)),
    ):
        decision = decide(policy, request())
        assert (decision.effect, decision.reason) == (Effect.DENY, "unknown_operator")
        assert decision.notes == ("unknown operator: urn:x:roughly",)


def test_an_unknown_action_denies_outright_even_when_the_request_names_it() -> None:
    odd = Rule(RuleKind.PERMISSION, "urn:p", (Action("urn:x:peek"),))
    decision = decide(
        Policy(UID, ODRL + "Set", permissions=(odd,)), replace(request(), action="urn:x:peek")
    )
    assert (decision.effect, decision.reason) == (Effect.DENY, "unknown_action")
    assert decision.notes == ("unknown action: urn:x:peek",)


def test_unknown_terms_are_named_left_operand_first() -> None:
    both = Constraint("urn:x:shoeSize", "urn:x:roughly", (1,))
    rule = Rule(RuleKind.PERMISSION, "urn:p", (Action("urn:x:peek"),), constraints=(both,))
    decision = decide(Policy(UID, ODRL + "Set", permissions=(rule,)), request())
    assert decision.reason == "unknown_left_operand"


def test_a_compiled_policy_is_evaluated_under_its_own_profile_by_default() -> None:
    compiled = compile_policy(NAMED, SLUIS_PROFILE)
    assert evaluate(compiled, request(), State(), now=NOW).permitted


# -- terms that read the request or the clock, in every place a rule can hold them --------------

MARKETING = "https://w3id.org/dpv#Marketing"
TIMED = parse_yaml_policy(f"""
uid: {UID}
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    duties:
      - {{uid: urn:duty:ack, action: compensate, constraints: [[purpose, eq, dpv:Marketing]]}}
      - {{uid: urn:duty:late, action: compensate, constraints: [[dateTime, gteq, 2025-06-01]]}}
prohibitions:
  - action: read
    constraints: [[dateTime, gteq, 2030-01-01]]
obligations:
  - uid: urn:duty:ask
    action: compensate
    constraints: [[purpose, eq, dpv:Marketing], [dateTime, lt, 2025-07-01]]
""")


def test_a_prohibition_in_force_from_a_date() -> None:
    later = datetime(2030, 1, 1, tzinfo=UTC)
    decision = evaluate(TIMED, request(), State(), now=later)
    assert decision.reason == "prohibited"
    assert decision == evaluate_reference(TIMED, request(), State(), now=later)
    assert decide(TIMED, request()).permitted


def test_the_duties_a_permit_carries_depend_on_the_request_and_the_clock() -> None:
    decision = decide(TIMED, request(purpose=[MARKETING]))
    assert decision.limits is not None
    assert decision.limits.duties == ("urn:duty:ack", "urn:duty:late")
    before = datetime(2025, 5, 31, tzinfo=UTC)
    decision = evaluate(TIMED, request(), State(), now=before)
    assert decision == evaluate_reference(TIMED, request(), State(), now=before)
    assert decision.limits == DataLimits()


def test_an_obligation_in_force_by_the_request_and_the_clock() -> None:
    violated = State(duty_states=MappingProxyType({"urn:duty:ask": DutyState.VIOLATED}))
    assert decide(TIMED, request(purpose=[MARKETING]), violated).reason == "obligation_violated"
    assert decide(TIMED, request(), violated).permitted  # not marketing: not in force
    july = datetime(2025, 7, 1, tzinfo=UTC)  # too late: not in force
    decision = evaluate(TIMED, request(purpose=[MARKETING]), violated, now=july)
    assert decision.permitted


# -- the memo of policies passed as such ------------------------------------------------------


@pytest.fixture
def compilations(monkeypatch: pytest.MonkeyPatch) -> list[Policy]:
    """Each policy compiled from now on, in order, with an empty memo to start from."""
    seen: list[Policy] = []
    real = policies.compiled.compile_policy

    def counting(policy: Policy, profile: Profile) -> CompiledPolicy:
        seen.append(policy)
        return real(policy, profile)

    monkeypatch.setattr(policies.compiled, "compile_policy", counting)
    monkeypatch.setattr(policies.compiled, "_MEMO", OrderedDict())
    return seen


def _fresh(n: int) -> list[Policy]:
    return [replace(NAMED, uid=f"urn:sluis:policy:memo:{i}") for i in range(n)]


def test_a_policy_is_compiled_once_per_profile(compilations: list[Policy]) -> None:
    first, second = _fresh(2)
    other = SLUIS_PROFILE.extended("urn:profile:other", left_operands=frozenset())
    for policy, profile in [
        (first, SLUIS_PROFILE),
        (second, SLUIS_PROFILE),
        (first, other),
        (first, SLUIS_PROFILE),
        (second, SLUIS_PROFILE),
        (first, other),
    ]:
        assert evaluate(policy, request(), State(), now=NOW, profile=profile).permitted
    assert compilations == [first, second, first]


def test_the_memo_keeps_the_most_recent_policies(compilations: list[Policy]) -> None:
    size = policies.compiled.MEMO_SIZE
    made = _fresh(size + 1)
    for policy in made[:size]:
        evaluate(policy, request(), State(), now=NOW)
    evaluate(made[0], request(), State(), now=NOW)  # still held: the memo holds MEMO_SIZE
    assert len(compilations) == size
    evaluate(made[size], request(), State(), now=NOW)  # pushes out the least recent: made[1]
    evaluate(made[size], request(), State(), now=NOW)
    evaluate(made[0], request(), State(), now=NOW)
    assert len(compilations) == size + 1
    evaluate(made[1], request(), State(), now=NOW)
    assert compilations[-1] is made[1]
    assert len(compilations) == size + 2


def test_each_constraint_is_reported_with_its_uid_and_operator() -> None:
    counted = Constraint(ODRL + "count", ODRL + "lteq", (1,), "urn:constraint:once")
    rule = Rule(RuleKind.PERMISSION, "urn:p", (Action(ODRL + "read"),), constraints=(counted,))
    decision = decide(Policy(UID, ODRL + "Set", permissions=(rule,)), request())
    assert decision.rules[0].constraints == (
        ConstraintReport(
            "urn:constraint:once",
            ODRL + "count",
            ODRL + "lteq",
            (1,),
            (1,),
            True,
            "odrl:count odrl:lteq 1 holds (observed 1)",
        ),
    )


def test_a_target_that_does_not_match_is_said() -> None:
    decision = decide(NAMED, request(target="urn:dataset:else"))
    assert decision.rules[0].reasons == ("target does not match",)


def test_the_report_fails_a_left_operand_its_profile_lacks_closed() -> None:
    # The engines refuse such a policy before any report; the report itself fails closed too.
    unknown = Constraint("urn:x:moonPhase", ODRL + "eq", ("full",))
    rule = Rule(RuleKind.PERMISSION, "urn:p", (Action(ODRL + "read"),), constraints=(unknown,))
    given = EvalInput(request(), State(), NOW, rule)
    report = report_rule(rule, Context(given, SLUIS_PROFILE))
    assert (report.active, report.reasons) == (False, ("a constraint fails",))
    (leaf,) = report.constraints
    assert (leaf.satisfied, leaf.observed, leaf.reason) == (
        False,
        (),
        "unknown left operand urn:x:moonPhase: fails closed",
    )


def test_an_enforced_duty_with_a_refined_action_travels_with_the_permit() -> None:
    # delete_after is a delete action refined by elapsedTime: the exchange discharges it, so
    # it is no precondition waiting to be recorded as fulfilled.
    policy = yaml("""
permissions:
  - action: read
    duties: [{delete_after: P30D}]
""")
    decision = decide(policy, request())
    assert decision.limits is not None
    assert (decision.limits.delete_after, decision.limits.duties) == (
        "P30D",
        ("#permission-0-duty-0",),
    )
    assert decision.rules[0].duties[0].reasons == ("to be discharged by the exchange",)
