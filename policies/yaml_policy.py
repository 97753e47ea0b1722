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

Compiled policies are validated against the profile (``validate``) before they are returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import yaml

from policies.errors import PolicyStructureError, PolicySyntaxError
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
from policies.profile import SLUIS_PROFILE, Profile, validate
from policies.vocab import ODRL, SLUIS

_DATA = {
    "columns": ("columns", "isAnyOf"),
    "row_filter": ("rowFilter", "eq"),
    "min_group_size": ("minGroupSize", "gteq"),
    "max_rows": ("maxRows", "lteq"),
    "rate_limit": ("rateLimit", "lteq"),
}
_LOGICAL = ("and", "or", "xone", "andSequence")


def parse_yaml_policy(text: str | bytes, profile: Profile = SLUIS_PROFILE) -> Policy:
    """Compile the shorthand and validate it against ``profile``."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise PolicySyntaxError(line, code="yaml_syntax") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("uid"), str):
        raise PolicyStructureError("a YAML policy is a mapping with a uid")
    return validate(_Compiler(doc.get("prefixes") or {}).policy(doc), profile)


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class _Compiler:
    def __init__(self, prefixes: Mapping[str, str]) -> None:
        self.prefixes = {"odrl": ODRL, "sluis": SLUIS, **prefixes}
        self.inherited: dict[str, Any] = {}

    def iri(self, term: Any, default_ns: str = ODRL) -> str:
        if not isinstance(term, str) or not term:
            raise PolicyStructureError(f"expected a term, got {term!r}")
        prefix, colon, rest = term.partition(":")
        if colon and prefix in self.prefixes:
            return self.prefixes[prefix] + rest
        return term if colon else default_ns + term

    def value(self, raw: Any) -> Value:
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
        raise PolicyStructureError(f"unsupported right operand {raw!r}")

    def policy(self, doc: dict[str, Any]) -> Policy:
        self.inherited = {k: doc.get(k) for k in ("assigner", "assignee", "target")}
        conflict = doc.get("conflict")
        return Policy(
            uid=doc["uid"],
            type=ODRL + str(doc.get("type", "Set")),
            permissions=self.rules(doc.get("permissions"), RuleKind.PERMISSION),
            prohibitions=self.rules(doc.get("prohibitions"), RuleKind.PROHIBITION),
            obligations=self.rules(doc.get("obligations"), RuleKind.DUTY),
            conflict=ODRL + conflict if isinstance(conflict, str) else None,
        )

    def rules(self, raw: Any, kind: RuleKind) -> tuple[Rule, ...]:
        return tuple(self.rule(r, kind, f"#{kind.value}-{i}") for i, r in enumerate(_listed(raw)))

    def rule(self, raw: Any, kind: RuleKind, uid: str) -> Rule:
        if not isinstance(raw, dict):
            raise PolicyStructureError(f"a {kind.value} is a mapping")
        constraints = tuple(self.constraint(c) for c in _listed(raw.get("constraints")))
        data = tuple(self.data(k, v) for k, v in (raw.get("data") or {}).items())
        return Rule(
            kind=kind,
            uid=raw.get("uid", uid),
            actions=tuple(Action(self.iri(a)) for a in _listed(raw.get("action"))),
            targets=self.refs(raw, "target"),
            assignees=self.refs(raw, "assignee"),
            assigners=self.refs(raw, "assigner"),
            constraints=constraints + data,
            duties=tuple(
                self.duty(d, f"{uid}-duty-{i}") for i, d in enumerate(_listed(raw.get("duties")))
            ),
        )

    def refs(self, raw: dict[str, Any], key: str) -> tuple[Ref, ...]:
        out = []
        for item in _listed(raw.get(key, self.inherited.get(key))):
            if isinstance(item, dict) and "collection" in item:
                out.append(Ref(self.iri(item["collection"]), collection=True))
            else:
                out.append(Ref(self.iri(item)))
        return tuple(out)

    def constraint(self, raw: Any) -> AnyConstraint:
        if isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in _LOGICAL:
            op, members = next(iter(raw.items()))
            return LogicalConstraint(ODRL + op, tuple(self.constraint(m) for m in _listed(members)))
        if isinstance(raw, list) and len(raw) == 3:  # noqa: PLR2004 -- [left, operator, right]
            left, op, right = raw
            values = tuple(self.value(v) for v in _listed(right))
            return Constraint(self.iri(left), self.iri(op), values)
        raise PolicyStructureError(f"a constraint is [left, operator, right], not {raw!r}")

    def data(self, key: str, raw: Any) -> Constraint:
        if key not in _DATA:
            raise PolicyStructureError(f"unknown data limit {key!r}")
        name, op = _DATA[key]
        numeric = key in {"min_group_size", "max_rows"}
        values = tuple(v if numeric else str(v) for v in _listed(raw))
        return Constraint(SLUIS + name, ODRL + op, values)

    def duty(self, raw: Any, uid: str) -> Rule:
        if isinstance(raw, dict) and "notify" in raw:
            party = Ref(self.iri(raw["notify"]))
            return Rule(RuleKind.DUTY, uid, (Action(ODRL + "inform"),), assignees=(party,))
        if isinstance(raw, dict) and "delete_after" in raw:
            within = Constraint(ODRL + "elapsedTime", ODRL + "lteq", (str(raw["delete_after"]),))
            return Rule(RuleKind.DUTY, uid, (Action(ODRL + "delete", (within,)),))
        return self.rule(raw, RuleKind.DUTY, uid)
