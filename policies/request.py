"""The evaluation inputs besides the policy: the request and the state of the world."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from policies.model import Value

_EMPTY: Mapping[str, object] = MappingProxyType({})
_NOTHING: frozenset[str] = frozenset()


class DutyState(StrEnum):
    """The deontic state of a duty as the state of the world records it."""

    FULFILLED = "fulfilled"
    VIOLATED = "violated"
    PENDING = "pending"  # not set: may still be fulfilled


@dataclass(frozen=True)
class Request:
    """Who (``party``) wants to do what (``action``) to which asset (``target``).

    ``context`` holds what the request says about itself, keyed by left-operand IRI
    (``odrl:purpose`` -> the declared purposes, ``sluis:columns`` -> the requested columns ...).
    """

    party: str | None
    action: str
    target: str | None
    context: Mapping[str, tuple[Value, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def values(self, left_operand: str) -> tuple[Value, ...]:
        """What the request declares for ``left_operand`` (empty when silent)."""
        return self.context.get(left_operand, ())


@dataclass(frozen=True)
class State:
    """The state of the world: knowledge and history the exchange keeps, never the clock.

    ``broader`` maps a term to the terms directly above it: collection membership
    (odrl:partOf), the purpose hierarchy, classes (rdf:type / rdfs:subClassOf), regions.
    ``use_count`` is how many times the consumer used the dataset under this policy before
    this request (the gateway keeps it across agreements); ``rule_counts`` refines it per
    rule uid. ``request_times`` are the earlier requests' times (for rate limits);
    ``agreement_start`` is when the use began (the gateway: the first grant).
    ``privacy_spends`` are the earlier queries' times and epsilon (for a privacy budget).
    """

    broader: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    duty_states: Mapping[str, DutyState] = field(default_factory=lambda: MappingProxyType({}))
    use_count: int = 0
    rule_counts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    request_times: tuple[datetime, ...] = ()
    agreement_start: datetime | None = None
    # The epsilon each earlier query spent, with its time (the consumer's, under this policy
    # version): what ``sluis:privacyBudget`` counts. Appended with a default (STYLE.md 7).
    privacy_spends: tuple[tuple[datetime, Decimal], ...] = ()

    def ancestors(self, term: str) -> frozenset[str]:
        """Every term strictly above ``term`` (transitive; cycles are harmless)."""
        above = self.broader.get(term)
        if not above:
            return _NOTHING
        seen: set[str] = set()
        todo = list(above)
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(self.broader.get(current, ()))
        return frozenset(seen)

    def within(self, term: str, over: str) -> bool:
        """``term`` is ``over`` or lies below it."""
        return term == over or over in self.ancestors(term)

    def count_for(self, rule_uid: str | None) -> int:
        """Earlier uses counted for ``rule_uid`` (falls back to the agreement's count)."""
        if rule_uid is not None and rule_uid in self.rule_counts:
            return self.rule_counts[rule_uid]
        return self.use_count
