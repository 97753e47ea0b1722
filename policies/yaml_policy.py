"""The YAML shorthand providers write; it compiles to the same ``Policy`` as ODRL does.

::

    uid: urn:sluis:policy:energy        # required
    type: Agreement                     # Set (default) | Offer | Agreement
    conflict: prohibit                  # perm | prohibit | invalid
    assigner: urn:org:provider
    prefixes: {dpv: "https://w3id.org/dpv#"}
    permissions:
      - action: read                    # ODRL name, CURIE or IRI
        target: urn:dataset:meters
        assignee: [urn:org:uni, {collection: urn:group:researchers}]
        constraints:
          - [purpose, isAnyOf, [dpv:ResearchAndDevelopment]]
          - {or: [[spatial, eq, NL], [spatial, eq, BE]]}
        data: {columns: [a, b], row_filter: "kind = 'x'", min_group_size: 10,
               max_rows: 1000, rate_limit: 100/PT1H}
        duties: [{notify: urn:org:provider}, {delete_after: P30D}, {action: compensate}]
    prohibitions: [...]

Parsing is strict: the keys and value types are those of ``policies.yaml_schema``, every
right operand must suit its left operand, and every term must be in the profile. Anything
else is a ``PolicyError`` naming the line and the key (``permissions[0].data.max_rows``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from policies import yaml_schema as schema
from policies.errors import PolicyError, PolicyStructureError, UnknownTerm
from policies.model import (
    Action,
    AnyConstraint,
    Constraint,
    Iri,
    LogicalConstraint,
    Policy,
    Ref,
    Rule,
    RuleKind,
    Value,
)
from policies.profile import SLUIS_PROFILE, Profile, constraint_problems, no_action, validate
from policies.vocab import ODRL, SLUIS
from policies.yaml_source import Located, Path, load_yaml

_DATA = {
    "columns": ("columns", "isAnyOf"),
    "row_filter": ("rowFilter", "eq"),
    "min_group_size": ("minGroupSize", "gteq"),
    "max_rows": ("maxRows", "lteq"),
    "rate_limit": ("rateLimit", "lteq"),
    "privacy_unit": ("privacyUnit", "isAnyOf"),
    "allow_min_max": ("allowMinMax", "eq"),
    "privacy_budget": ("privacyBudget", "lteq"),
    "query_epsilon": ("queryEpsilon", "eq"),
    "query_delta": ("queryDelta", "eq"),
    "bounds": ("bounds", "isAnyOf"),
    "max_contributions": ("maxContributions", "lteq"),
    "max_groups": ("maxGroups", "lteq"),
}


def parse_yaml_policy(text: str | bytes, profile: Profile = SLUIS_PROFILE) -> Policy:
    """Compile the shorthand and validate it against ``profile``."""
    located = load_yaml(text)
    if not isinstance(located.data, dict):
        raise PolicyStructureError("a YAML policy is a mapping with a uid", line=1)
    try:
        doc = schema.PolicyDoc.model_validate(located.data)
    except ValidationError as exc:
        raise located.schema_error(exc) from exc
    return validate(_Compiler(doc.prefixes, located, profile).policy(doc), profile)


def _number(value: Any) -> Any:
    """A YAML float as an exact decimal (``0.1`` stays 0.1); anything else unchanged."""
    return Decimal(str(value)) if isinstance(value, float) else value


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class Terms:
    """CURIE expansion and right-operand values, as the shorthand and its tests write them."""

    def __init__(self, prefixes: Mapping[str, str]) -> None:
        self.prefixes = {"odrl": ODRL, "sluis": SLUIS, **prefixes}

    def iri(self, term: Any, default_ns: str = ODRL) -> str:
        """``read`` -> odrl:read, ``dpv:X`` -> its IRI, ``urn:x`` as written."""
        if not isinstance(term, str) or not term:
            raise PolicyStructureError(f"expected a term, got {term!r}")
        prefix, colon, rest = term.partition(":")
        if colon and prefix in self.prefixes:
            return self.prefixes[prefix] + rest
        return term if colon else default_ns + term

    def value(self, raw: Any) -> Value:
        """A right-operand (or context) value; YAML types kept, IRIs recognised."""
        if isinstance(raw, datetime):
            return raw if raw.tzinfo else raw.replace(tzinfo=UTC)
        if isinstance(raw, bool | int | date):
            return raw
        if isinstance(raw, float):
            return Decimal(str(raw))
        if isinstance(raw, str):
            prefix, colon, _ = raw.partition(":")
            known = colon and (prefix in self.prefixes or prefix in ("urn", "http", "https"))
            return Iri(self.iri(raw)) if known else raw
        raise PolicyStructureError(f"unsupported value {raw!r}")


class _Compiler(Terms):
    def __init__(self, prefixes: Mapping[str, str], located: Located, profile: Profile) -> None:
        super().__init__(prefixes)
        self.located = located
        self.profile = profile
        self.inherited: dict[str, Any] = {}

    def fail(self, exc: PolicyError, at: Path) -> PolicyError:
        """``exc`` again, now naming the line and key of ``at``."""
        return self.located.locate(exc, at)

    def policy(self, doc: schema.PolicyDoc) -> Policy:
        self.inherited = {"assigner": doc.assigner, "assignee": doc.assignee, "target": doc.target}
        return Policy(
            uid=doc.uid,
            type=ODRL + doc.type,
            permissions=self.rules(doc.permissions, RuleKind.PERMISSION, ("permissions",)),
            prohibitions=self.rules(doc.prohibitions, RuleKind.PROHIBITION, ("prohibitions",)),
            obligations=self.rules(doc.obligations, RuleKind.DUTY, ("obligations",)),
            conflict=ODRL + doc.conflict if doc.conflict else None,
        )

    def rules(self, raw: list[schema.Rule], kind: RuleKind, at: Path) -> tuple[Rule, ...]:
        return tuple(self.rule(r, kind, f"#{kind.value}-{i}", (*at, i)) for i, r in enumerate(raw))

    def rule(self, raw: schema.Rule, kind: RuleKind, uid: str, at: Path) -> Rule:
        constraints = tuple(
            self.constraint(c, (*at, "constraints", i)) for i, c in enumerate(raw.constraints or [])
        )
        data = raw.data.model_dump(exclude_none=True) if raw.data else {}
        order = self.located.keys((*at, "data"))  # document order: it is part of the hash
        limits = tuple(self.data(k, data[k], (*at, "data", k)) for k in order if k in data)
        duties = raw.duties or []
        if (
            kind is RuleKind.PERMISSION
            and raw.action is None
            and self.profile.permission_needs_action
        ):
            raise self.fail(no_action(raw.uid or uid), at)
        return Rule(
            kind=kind,
            uid=raw.uid or uid,
            actions=self.actions(raw.action, (*at, "action")),
            targets=self.refs(raw.target, "target"),
            assignees=self.refs(raw.assignee, "assignee"),
            assigners=self.refs(raw.assigner, "assigner"),
            constraints=constraints + limits,
            duties=tuple(
                self.duty(d, f"{uid}-duty-{i}", (*at, "duties", i)) for i, d in enumerate(duties)
            ),
        )

    def actions(self, raw: str | list[str] | None, at: Path) -> tuple[Action, ...]:
        listed = isinstance(raw, list)
        return tuple(self.action(a, (*at, i) if listed else at) for i, a in enumerate(_listed(raw)))

    def action(self, term: str, at: Path) -> Action:
        action = Action(self.iri(term))
        if action.name not in self.profile.actions:
            raise self.fail(UnknownTerm("action", action.name), at)
        return action

    def refs(self, raw: schema.Refs | None, key: str) -> tuple[Ref, ...]:
        out = []
        for item in _listed(raw if raw is not None else self.inherited.get(key)):
            if isinstance(item, schema.CollectionRef):
                out.append(Ref(self.iri(item.collection), collection=True))
            else:
                out.append(Ref(self.iri(item)))
        return tuple(out)

    def constraint(self, raw: schema.Triple | schema.Logical, at: Path) -> AnyConstraint:
        if isinstance(raw, schema.Logical):
            ((op, members),) = raw.operands()
            inner = tuple(self.constraint(m, (*at, op, i)) for i, m in enumerate(members))
            return LogicalConstraint(ODRL + op, inner)
        left, op, right = raw
        try:
            values = tuple(self.value(v) for v in _listed(right))
        except PolicyError as exc:
            raise self.fail(exc, at) from exc
        return self.checked(Constraint(self.iri(left), self.iri(op), values), at)

    def checked(self, constraint: Constraint, at: Path) -> Constraint:
        for found in constraint_problems(constraint, self.profile):
            raise self.fail(found, at)
        return constraint

    def data(self, key: str, raw: Any, at: Path) -> Constraint:
        name, op = _DATA[key]
        if isinstance(raw, dict):  # bounds: {column: [low, high]} -> "column=low..high"
            raw = [f"{c}={_number(lo)}..{_number(hi)}" for c, (lo, hi) in raw.items()]
        values = tuple(_number(v) if isinstance(v, float) else v for v in _listed(raw))
        return self.checked(Constraint(SLUIS + name, ODRL + op, values), at)

    def duty(
        self, raw: schema.Notify | schema.DeleteAfter | schema.Rule, uid: str, at: Path
    ) -> Rule:
        if isinstance(raw, schema.Notify):
            party = Ref(self.iri(raw.notify))
            return Rule(RuleKind.DUTY, uid, (Action(ODRL + "inform"),), assignees=(party,))
        if isinstance(raw, schema.DeleteAfter):
            within = Constraint(ODRL + "elapsedTime", ODRL + "lteq", (raw.delete_after,))
            return Rule(RuleKind.DUTY, uid, (Action(ODRL + "delete", (within,)),))
        return self.rule(raw, RuleKind.DUTY, uid, at)
