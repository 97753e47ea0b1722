"""The typed query a connector receives: columns, predicates, groups, aggregates, order, limit.

Pure values, no IO. Predicates are ANDed; there is no OR and no expression language, so
every predicate maps one-to-one onto SQL, a pyarrow expression and a pyarrow mask.
Consumer text never becomes SQL: values travel as bound parameters, names are checked
against the dataset's schema first (``connectors.validate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

Scalar = str | int | float | bool | date | datetime
Value = Scalar | tuple[Scalar, ...] | None


class Op(StrEnum):
    """The fixed set of row-predicate operators."""

    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    IN = "in"
    NOT_IN = "not_in"
    IS_NULL = "is_null"
    NOT_NULL = "not_null"


SET_OPS = frozenset({Op.IN, Op.NOT_IN})
NULL_OPS = frozenset({Op.IS_NULL, Op.NOT_NULL})


@dataclass(frozen=True)
class Predicate:
    """``column op value``; ``value`` is a tuple for ``in``/``not_in``, None for null tests."""

    column: str
    op: Op
    value: Value = None


class AggFunc(StrEnum):
    """Aggregate functions; ``count`` with no column counts rows."""

    COUNT = "count"
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    AVG = "avg"


@dataclass(frozen=True)
class Aggregate:
    """``func(column) AS alias``; the alias defaults to ``func_column`` (``count_rows``)."""

    func: AggFunc
    column: str | None = None
    alias: str = ""

    @property
    def name(self) -> str:
        """The output column name."""
        return self.alias or f"{self.func.value}_{self.column or 'rows'}"


@dataclass(frozen=True)
class Order:
    """Sort by an output column; nulls always sort last, in both directions."""

    column: str
    descending: bool = False


@dataclass(frozen=True)
class Noise:
    """Differential privacy for one query: its epsilon (and delta, for grouped queries),
    the clamping bounds per column, and how much one contributor may add: at most
    ``max_contributions`` rows to a group and at most ``max_groups`` groups."""

    epsilon: float
    delta: float | None
    bounds: tuple[tuple[str, float, float], ...]
    max_contributions: int = 1
    max_groups: int = 1

    def bound(self, column: str) -> tuple[float, float] | None:
        """The clamping range of ``column``, if the policy gives one."""
        return next(((lo, hi) for c, lo, hi in self.bounds if c == column), None)


@dataclass(frozen=True)
class Query:
    """What to read. ``columns`` empty means every column (resolved by ``validate``).

    With ``aggregates`` the output is ``group_by`` then the aggregates, and ``columns`` must
    be empty. ``min_group_size`` (k) drops groups of fewer than k source rows; it is set by
    the policy (``narrow``), not by consumers. With ``privacy_unit`` (also the policy's) k
    counts distinct contributors instead, and ``noise`` adds differential privacy
    (``connectors.contributors``).
    """

    columns: tuple[str, ...] = ()
    where: tuple[Predicate, ...] = ()
    group_by: tuple[str, ...] = ()
    aggregates: tuple[Aggregate, ...] = ()
    order_by: tuple[Order, ...] = ()
    limit: int | None = None
    min_group_size: int | None = None
    privacy_unit: tuple[str, ...] = ()
    allow_min_max: bool = False
    noise: Noise | None = None

    @property
    def is_aggregate(self) -> bool:
        """True when the output is one row per group."""
        return bool(self.aggregates)

    @property
    def output_columns(self) -> tuple[str, ...]:
        """The names of the result's columns, in order."""
        if self.is_aggregate:
            return self.group_by + tuple(a.name for a in self.aggregates)
        return self.columns

    def source_columns(self) -> tuple[str, ...]:
        """Every dataset column the query reads, in first-mention order."""
        named = [*self.columns, *(p.column for p in self.where), *self.group_by]
        named += [a.column for a in self.aggregates if a.column is not None]
        named += self.privacy_unit
        return tuple(dict.fromkeys(named))
