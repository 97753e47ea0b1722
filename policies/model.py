"""The policy model: ODRL 2.2 as frozen values, the same whatever syntax it was read from.

Absent ``actions`` / ``targets`` / ``assignees`` on a rule mean "any" (ODRL 2.2 and the
SolidLab suite read them so); the Sluis profile requires a permission's action on write
(``profile.validate``), since one without it would grant every action.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum


@dataclass(frozen=True, order=True)
class Iri:
    """An IRI used as a value (a right operand or a context value), not a string literal."""

    value: str

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class TypedLiteral:
    """A literal whose datatype the engine does not interpret (kept for reports and hashing)."""

    lexical: str
    datatype: str


Value = Iri | str | int | Decimal | bool | datetime | date | TypedLiteral


@dataclass(frozen=True)
class Constraint:
    """``left_operand operator right_operand`` (IRIs for the first two)."""

    left_operand: str
    operator: str
    right_operand: tuple[Value, ...]
    uid: str | None = None
    unit: str | None = None


@dataclass(frozen=True)
class LogicalConstraint:
    """``and`` / ``or`` / ``xone`` / ``andSequence`` over constraints (by IRI)."""

    operator: str
    operands: tuple[Constraint | LogicalConstraint, ...]
    uid: str | None = None


AnyConstraint = Constraint | LogicalConstraint


@dataclass(frozen=True)
class Action:
    """An action IRI, possibly refined (``refinement`` narrows how it may be performed)."""

    name: str
    refinements: tuple[AnyConstraint, ...] = ()


@dataclass(frozen=True)
class Ref:
    """A party or an asset; ``collection`` when it is a PartyCollection / AssetCollection."""

    uid: str
    collection: bool = False


class RuleKind(StrEnum):
    """The deontic kind of a rule."""

    PERMISSION = "permission"
    PROHIBITION = "prohibition"
    OBLIGATION = "obligation"
    DUTY = "duty"


@dataclass(frozen=True)
class Rule:
    """A permission, prohibition, obligation or duty.

    ``duties`` are a permission's duties, a prohibition's remedies or a duty's consequences.
    """

    kind: RuleKind
    uid: str | None = None
    actions: tuple[Action, ...] = ()
    targets: tuple[Ref, ...] = ()
    assignees: tuple[Ref, ...] = ()
    assigners: tuple[Ref, ...] = ()
    constraints: tuple[AnyConstraint, ...] = ()
    duties: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Policy:
    """An ODRL policy (Set, Offer, Agreement, ...)."""

    uid: str
    type: str
    permissions: tuple[Rule, ...] = ()
    prohibitions: tuple[Rule, ...] = ()
    obligations: tuple[Rule, ...] = ()
    conflict: str | None = None
    profiles: tuple[str, ...] = field(default=())

    def rules(self) -> tuple[Rule, ...]:
        """Every top-level rule, permissions first."""
        return self.permissions + self.prohibitions + self.obligations
