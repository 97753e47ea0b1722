"""A stored Sluis policy as the ``odrl:Offer`` a DSP catalog shows (pure: values in and out).

The Offer is compacted against the DSP 2025-1 context only (its ``@context`` is a list of
strings and the DSP context is protected), so ODRL terms are written ``odrl:<name>`` and the
Sluis profile's terms keep their own namespace as full IRIs
(``https://w3id.org/sluis/odrl#columns``). Right operands that are not plain strings carry
their XSD datatype (``{"@value": "6", "@type": "xsd:integer"}``): the DSP schema admits a
string, an object or an array, never a bare number.

The Offer's ``@id`` names the dataset and the policy version it was made from
(:func:`offer_id`); a contract request must name the current one.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from policies.model import (
    AnyConstraint,
    Constraint,
    Iri,
    Policy,
    Ref,
    Rule,
    TypedLiteral,
    Value,
)
from policies.vocab import ODRL, SLUIS, XSD

OFFER_PREFIX = "urn:sluis:offer:"
#: A refined action's refinement (``delete`` within ``P1Y``), beside the action string.
ACTION_REFINEMENT = SLUIS + "actionRefinement"


class OfferError(ValueError):
    """A policy term the DSP Offer shape cannot carry (the offer is not shown rather than
    shown wrong)."""


def offer_id(dataset_id: str, policy_hash: str) -> str:
    """The Offer id for a dataset under one policy version."""
    return f"{OFFER_PREFIX}{dataset_id}:{policy_hash}"


def parse_offer_id(text: str) -> tuple[str, str] | None:
    """``(dataset_id, policy_hash)`` from an Offer id this gateway made, else None."""
    if not text.startswith(OFFER_PREFIX):
        return None
    dataset_id, sep, digest = text.removeprefix(OFFER_PREFIX).partition(":")
    return (dataset_id, digest) if sep and dataset_id and digest else None


def compact(iri: str) -> str:
    """``odrl:x`` for an ODRL IRI, ``xsd:x`` for XSD; any other IRI stays whole."""
    for prefix, namespace in (("odrl", ODRL), ("xsd", XSD)):
        if iri.startswith(namespace):
            return f"{prefix}:{iri.removeprefix(namespace)}"
    return iri


def _name(iri: str, what: str) -> str:
    """An ODRL operator's bare name as DSP writes it (``isAnyOf``); OfferError otherwise."""
    if not iri.startswith(ODRL):
        raise OfferError(f"{what} {iri} is not an ODRL term")
    return iri.removeprefix(ODRL)


def _typed(lexical: str, datatype: str) -> dict[str, str]:
    return {"@value": lexical, "@type": compact(datatype)}


def _lexical(v: Value) -> tuple[str, str] | None:
    """(lexical form, XSD datatype) of a typed value; None for a plain string or an IRI."""
    if isinstance(v, bool):  # before int: a bool is an int
        return ("true" if v else "false"), XSD + "boolean"
    if isinstance(v, int | Decimal):
        return str(v), XSD + ("integer" if isinstance(v, int) else "decimal")
    if isinstance(v, datetime | date):
        return v.isoformat(), XSD + ("dateTime" if isinstance(v, datetime) else "date")
    if isinstance(v, TypedLiteral):
        return v.lexical, v.datatype
    return None


def value(v: Value) -> Any:
    """One right-operand value in compacted JSON-LD."""
    if isinstance(v, Iri):
        return {"@id": v.value}
    typed = _lexical(v)
    return v if typed is None else _typed(*typed)


def constraint(c: AnyConstraint) -> dict[str, Any]:
    """An atomic or logical constraint."""
    if not isinstance(c, Constraint):
        return {_name(c.operator, "logical operator"): [constraint(o) for o in c.operands]}
    values = [value(v) for v in c.right_operand]
    out: dict[str, Any] = {
        "leftOperand": compact(c.left_operand),
        "operator": _name(c.operator, "operator"),
        "rightOperand": values[0] if len(values) == 1 else values,
    }
    if c.unit is not None:
        out["unit"] = c.unit
    return out


def _party(ref: Ref) -> Any:
    return {"@id": ref.uid, "@type": "odrl:PartyCollection"} if ref.collection else ref.uid


def rule(r: Rule) -> dict[str, Any]:
    """One rule; its duties (a permission's) nested as ``duty``."""
    if len(r.actions) != 1:
        # DSP's Rule has exactly one action, a string: several (or none) cannot be shown
        # faithfully, so the Offer is refused rather than shown weaker than it is.
        raise OfferError("a rule the DSP Offer shape cannot carry (one action)")
    action = r.actions[0]
    out: dict[str, Any] = {"action": compact(action.name)}
    if action.refinements:  # the action is a string in DSP: its refinement rides beside it
        out[ACTION_REFINEMENT] = [constraint(c) for c in action.refinements]
    if r.assignees:
        out["assignee"] = [_party(a) for a in r.assignees]
    if r.constraints:
        out["constraint"] = [constraint(c) for c in r.constraints]
    if r.duties:
        out["duty"] = [rule(d) for d in r.duties]
    return out


def offer(policy: Policy, dataset_id: str, policy_hash: str, profile: str) -> dict[str, Any]:
    """The dataset's Offer (no ``target``: in a catalog the dataset is the target)."""
    out: dict[str, Any] = {
        "@id": offer_id(dataset_id, policy_hash),
        "@type": "Offer",
        "profile": list(policy.profiles) or [profile],
    }
    for kind, rules in (
        ("permission", policy.permissions),
        ("prohibition", policy.prohibitions),
        ("obligation", policy.obligations),
    ):
        if rules:
            out[kind] = [rule(r) for r in rules]
    if "permission" not in out and "prohibition" not in out:
        raise OfferError("a policy without permissions or prohibitions is not an Offer")
    return out
