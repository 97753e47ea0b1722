"""The YAML shorthand's schema: every key it knows, the type of every value, nothing else.

A key outside these models is an error (``extra="forbid"``), as is a value of the wrong
type (strict: ``max_rows: "10"`` is no integer) or one that cannot be read (``rate_limit:
often``). Right operands stay as YAML gave them; their meaning is checked per left operand
by ``policies.right_operands`` when the shorthand is compiled (``policies.yaml_policy``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    model_validator,
)

from policies.operands.data import parse_rate
from policies.operands.temporal import duration_text


def _rate(text: str) -> str:
    if parse_rate((text,)) is None:
        raise ValueError("a rate is N/duration, e.g. 100/PT1H")
    return text


def _duration(text: str) -> str:
    if duration_text((text,)) is None:
        raise ValueError("an ISO 8601 duration, e.g. P30D or PT1H")
    return text


Term = Annotated[StrictStr, Field(min_length=1)]
Count = Annotated[StrictInt, Field(ge=0)]
Rate = Annotated[StrictStr, AfterValidator(_rate)]
Duration = Annotated[StrictStr, AfterValidator(_duration)]
Positive = Annotated[StrictInt | StrictFloat, Field(gt=0)]
Bound = Annotated[list[StrictInt | StrictFloat], Field(min_length=2, max_length=2)]
PolicyType = Literal["Set", "Offer", "Agreement", "Policy", "Privacy", "Ticket", "Assertion"]
Conflict = Literal["perm", "prohibit", "invalid"]


class Closed(BaseModel):
    """Unknown keys are errors; models are values."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CollectionRef(Closed):
    """``{collection: urn:group:...}``: a party or asset collection."""

    collection: Term


Ref = Term | CollectionRef
Refs = Ref | list[Ref]


class Data(Closed):
    """The Sluis data limits of a rule."""

    columns: Term | Annotated[list[Term], Field(min_length=1)] | None = None
    row_filter: Term | None = None
    min_group_size: Annotated[StrictInt, Field(ge=1)] | None = None
    max_rows: Count | None = None
    rate_limit: Rate | None = None
    privacy_unit: Term | Annotated[list[Term], Field(min_length=1)] | None = None
    allow_min_max: Literal[True] | None = None
    privacy_budget: Annotated[StrictStr, Field(min_length=1)] | None = None
    query_epsilon: Positive | None = None
    query_delta: Positive | None = None
    bounds: Annotated[dict[Term, Bound], Field(min_length=1)] | None = None
    max_contributions: Annotated[StrictInt, Field(ge=1)] | None = None
    max_groups: Annotated[StrictInt, Field(ge=1)] | None = None


def _triple(raw: list[Any]) -> list[Any]:
    if len(raw) != 3 or not all(isinstance(t, str) and t for t in raw[:2]):  # noqa: PLR2004 -- a triple
        raise ValueError("a constraint is [left operand, operator, right operand]")
    return raw


Triple = Annotated[list[Any], AfterValidator(_triple)]


class Logical(Closed):
    """``{and|or|xone|andSequence: [constraints]}``: exactly one of the four."""

    and_: list[AnyConstraint] | None = Field(default=None, alias="and")
    or_: list[AnyConstraint] | None = Field(default=None, alias="or")
    xone: list[AnyConstraint] | None = None
    and_sequence: list[AnyConstraint] | None = Field(default=None, alias="andSequence")

    @model_validator(mode="after")
    def _one_operator(self) -> Logical:
        if len(self.operands()) != 1:
            raise ValueError("a logical constraint has exactly one of and, or, xone, andSequence")
        return self

    def operands(self) -> list[tuple[str, list[AnyConstraint]]]:
        """``(operator name, members)`` of the operator given."""
        named = (("and", self.and_), ("or", self.or_), ("xone", self.xone))
        return [(n, m) for n, m in (*named, ("andSequence", self.and_sequence)) if m is not None]


# Union tags are bracketed so that they never read as a key of the document (yaml_source).
def _constraint_kind(raw: Any) -> str:
    return "<logical>" if isinstance(raw, dict) else "<triple>"


AnyConstraint = Annotated[
    Annotated[Triple, Tag("<triple>")] | Annotated[Logical, Tag("<logical>")],
    Discriminator(_constraint_kind),
]


class Notify(Closed):
    """``{notify: party}``: the exchange informs the party of each release."""

    notify: Term


class DeleteAfter(Closed):
    """``{delete_after: duration}``: the consumer deletes its copy within this time."""

    delete_after: Duration


class Rule(Closed):
    """A permission, prohibition, obligation or (nested) duty."""

    uid: Term | None = None
    action: Term | list[Term] | None = None
    target: Refs | None = None
    assignee: Refs | None = None
    assigner: Refs | None = None
    constraints: list[AnyConstraint] | None = None
    data: Data | None = None
    duties: list[AnyDuty] | None = None


def _duty_kind(raw: Any) -> str:
    if isinstance(raw, dict):
        return next((f"<{k}>" for k in ("notify", "delete_after") if k in raw), "<rule>")
    return "<rule>"


AnyDuty = Annotated[
    Annotated[Notify, Tag("<notify>")]
    | Annotated[DeleteAfter, Tag("<delete_after>")]
    | Annotated[Rule, Tag("<rule>")],
    Discriminator(_duty_kind),
]


class PolicyDoc(Closed):
    """A whole YAML policy."""

    uid: Term
    type: PolicyType = "Set"
    conflict: Conflict | None = None
    assigner: Refs | None = None
    assignee: Refs | None = None
    target: Refs | None = None
    prefixes: dict[Term, Term] = Field(default_factory=dict)
    permissions: list[Rule] = Field(default_factory=list)
    prohibitions: list[Rule] = Field(default_factory=list)
    obligations: list[Rule] = Field(default_factory=list)


Logical.model_rebuild()
Rule.model_rebuild()
PolicyDoc.model_rebuild()


# --- Requests, states and policy tests (``policies.policy_tests``) ---------------------------


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


Instant = Annotated[datetime, Strict(), AfterValidator(_aware)]
Prefixes = dict[Term, Term]


class RequestDoc(Closed):
    """Who wants to do what to which asset, and what the request declares (``context``)."""

    party: Term | None = None
    action: Term
    target: Term | None = None
    context: dict[Term, Any] = Field(default_factory=dict)


class Spend(Closed):
    """An earlier private query: when, and the epsilon it spent (``privacy_spends``)."""

    at: Instant
    epsilon: Annotated[StrictInt | StrictFloat, Field(ge=0)]


class StateDoc(Closed):
    """What the exchange knows: memberships, duty states, earlier uses and requests."""

    broader: dict[Term, Term | list[Term]] = Field(default_factory=dict)
    duty_states: dict[Term, Literal["fulfilled", "violated", "pending"]] = Field(
        default_factory=dict
    )
    use_count: Count = 0
    rule_counts: dict[Term, Count] = Field(default_factory=dict)
    request_times: list[Instant] = Field(default_factory=list)
    agreement_start: Instant | None = None
    privacy_spends: list[Spend] = Field(default_factory=list)


class RequestFile(RequestDoc):
    """A request on its own (``sluis policy eval --request``)."""

    prefixes: Prefixes = Field(default_factory=dict)


class StateFile(StateDoc):
    """A state on its own (``sluis policy eval --state``), with the time it records."""

    prefixes: Prefixes = Field(default_factory=dict)
    now: Instant | None = None


class Case(Closed):
    """One policy test: a request, a state, a time, and the decision expected."""

    name: Term = "?"
    now: Instant
    request: RequestDoc
    state: StateDoc = Field(default_factory=StateDoc)
    expect: Literal["permit", "deny"]
    reason: Term | None = None


class TestFile(Closed):
    """A policy-test document: the policy it tests and at least one case."""

    __test__: ClassVar[bool] = False  # not a pytest class, whatever its name

    policy: Term
    prefixes: Prefixes = Field(default_factory=dict)
    cases: Annotated[list[Case], Field(min_length=1)]
