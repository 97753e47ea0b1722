"""The ODRL operators one by one, at their edges (issue 18: ``policies/rules+operators``).

Closed world: missing data never satisfies (``isNoneOf`` of nothing excepted); values of
different kinds never order; a boolean is not a number; hierarchy operators follow the
state's ``broader`` relation, ``isA`` strictly.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType

import pytest

from policies import Iri, State
from policies.model import TypedLiteral, Value
from policies.operators import as_text, compare, orderable, same
from policies.vocab import ODRL

WORLD = State(
    broader=MappingProxyType(
        {
            "urn:p:cardio": frozenset({"urn:p:medical"}),
            "urn:p:medical": frozenset({"urn:p:research"}),
            "urn:p:marketing": frozenset({"urn:p:commercial"}),
        }
    )
)
CARDIO, MEDICAL, RESEARCH = Iri("urn:p:cardio"), Iri("urn:p:medical"), Iri("urn:p:research")
MARKETING, COMMERCIAL = Iri("urn:p:marketing"), Iri("urn:p:commercial")
NOON = datetime(2025, 6, 1, 12, tzinfo=UTC)


def holds(op: str, left: tuple[Value, ...], right: tuple[Value, ...]) -> bool:
    return compare(ODRL + op, left, right, WORLD)


@pytest.mark.parametrize(
    ("op", "left", "right", "expected"),
    [
        ("lt", (4,), (5,), True),
        ("lt", (5,), (5,), False),
        ("lteq", (5,), (5,), True),
        ("lteq", (6,), (5,), False),
        ("gt", (6,), (5,), True),
        ("gt", (5,), (5,), False),
        ("gteq", (5,), (5,), True),
        ("gteq", (4,), (5,), False),
        ("lt", (Decimal("4.5"),), (5,), True),
        ("lt", (date(2025, 6, 1),), (NOON,), True),  # a date is its UTC midnight
        ("gteq", (date(2025, 6, 1),), (datetime(2025, 6, 1, tzinfo=UTC),), True),
        ("lt", (4,), (NOON,), False),  # number against instant: no order
        ("lt", ("4",), (5,), False),
        ("lt", (True,), (5,), False),  # booleans are not numbers
        ("gt", (5,), (False,), False),
        ("lt", (4, 3), (5,), False),  # one value each, or no order
        ("lt", (4,), (5, 6), False),
        ("lt", (), (5,), False),
        ("lt", (TypedLiteral("4", "xsd:int"),), (5,), False),
    ],
)
def test_ordering(
    op: str, left: tuple[Value, ...], right: tuple[Value, ...], expected: bool
) -> None:
    assert holds(op, left, right) is expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ((5,), (Decimal("5.0"),), True),
        ((date(2025, 6, 1),), (datetime(2025, 6, 1, tzinfo=UTC),), True),
        ((Iri("urn:x"),), ("urn:x",), True),  # an IRI equals its text
        (("a", "b"), ("b", "a"), True),  # as sets
        (("a", "b"), ("a",), False),  # every left in right and every right in left
        (("a",), ("a", "b"), False),
        ((), ("a",), False),
        (("a",), (), False),
        ((True,), (1,), False),  # not a number
        ((1,), ("1",), False),
        ((TypedLiteral("x", "t"),), (TypedLiteral("x", "t"),), True),
    ],
)
def test_eq_and_neq(left: tuple[Value, ...], right: tuple[Value, ...], expected: bool) -> None:
    assert holds("eq", left, right) is expected
    assert holds("neq", left, right) is (bool(left) and bool(right) and not expected)


def test_is_a_is_strict_and_transitive() -> None:
    assert holds("isA", (CARDIO,), (MEDICAL,))
    assert holds("isA", (CARDIO,), (RESEARCH,))
    assert not holds("isA", (MEDICAL,), (MEDICAL,))  # not the class itself
    assert not holds("isA", (MEDICAL,), (CARDIO,))
    assert holds("isA", (MARKETING, CARDIO), (RESEARCH,))  # some value, some class
    assert not holds("isA", (5,), (5,))
    assert not holds("isA", (), (MEDICAL,))


def test_is_part_of_and_is_any_of() -> None:
    for op in ("isPartOf", "isAnyOf"):
        assert holds(op, (CARDIO,), (MEDICAL,))
        assert holds(op, (MEDICAL,), (MEDICAL,))  # itself
        assert holds(op, (CARDIO, MARKETING), (RESEARCH, COMMERCIAL))  # each within one
        assert not holds(op, (CARDIO, MARKETING), (RESEARCH,))
        assert not holds(op, (RESEARCH,), (CARDIO,))
        assert not holds(op, (), (MEDICAL,))
        assert holds(op, (5,), (Decimal(5),))  # values without text: equality
        assert holds(op, ("b",), (5, "a", "b"))
        assert not holds(op, (5,), (6, "5"))
        assert holds(op, (CARDIO,), (5, RESEARCH))


def test_has_part() -> None:
    assert holds("hasPart", (RESEARCH,), (CARDIO,))
    assert holds("hasPart", (RESEARCH,), (CARDIO, MEDICAL))
    assert not holds("hasPart", (RESEARCH,), (CARDIO, MARKETING))
    assert holds("hasPart", (RESEARCH, COMMERCIAL), (CARDIO, MARKETING))
    assert not holds("hasPart", (CARDIO,), (RESEARCH,))
    assert not holds("hasPart", (), (CARDIO,))
    assert holds("hasPart", (5,), (5,))


def test_is_all_of() -> None:
    assert holds("isAllOf", (CARDIO,), (MEDICAL, RESEARCH))  # within each
    assert not holds("isAllOf", (CARDIO,), (MEDICAL, COMMERCIAL))
    assert holds("isAllOf", (CARDIO, MARKETING), (MEDICAL, COMMERCIAL))
    assert not holds("isAllOf", (), (MEDICAL,))
    assert holds("isAllOf", (5,), (5,))


def test_is_none_of() -> None:
    assert holds("isNoneOf", (), (MEDICAL,))  # nothing declared: holds (the purpose suite)
    assert holds("isNoneOf", (MARKETING,), (MEDICAL,))
    assert not holds("isNoneOf", (CARDIO,), (MEDICAL,))  # narrower is within
    assert not holds("isNoneOf", (MARKETING, CARDIO), (RESEARCH,))  # any one within
    assert not holds("isNoneOf", (5,), (6, Decimal(5)))
    assert holds("isNoneOf", (5,), (6, "5"))


def test_an_operator_the_engine_does_not_know_never_holds() -> None:
    assert not compare(ODRL + "isSimilarTo", ("a",), ("a",), WORLD)
    assert not compare("urn:x:eq", ("a",), ("a",), WORLD)


def test_value_helpers() -> None:
    assert as_text(Iri("urn:x")) == "urn:x"
    assert as_text("x") == "x"
    assert as_text(5) is None
    assert orderable(True) is None
    assert orderable(5) == Decimal(5)
    assert isinstance(orderable(5), Decimal)
    assert orderable(date(2025, 6, 1)) == datetime(2025, 6, 1, tzinfo=UTC)
    assert orderable(NOON) is NOON
    assert orderable("5") is None
    assert orderable(TypedLiteral("5", "xsd:int")) is None
    assert same(Iri("urn:x"), "urn:x")
    assert not same(5, "5")
    assert same(TypedLiteral("a", "t"), TypedLiteral("a", "t"))
    assert not same(TypedLiteral("a", "t"), TypedLiteral("a", "u"))
