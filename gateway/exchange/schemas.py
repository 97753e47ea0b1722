"""The consumer's query as JSON (POST /query) or as URL parameters (GET /data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors import AggFunc, Aggregate, Op, Order, Predicate, Query
from gateway.json_input import loads_bounded

Scalar = str | int | float | bool | None
FormatName = Literal["jsonl", "csv", "parquet", "arrow"]


@dataclass(frozen=True, slots=True)
class DataParams:
    """The URL parameters of GET /data, as the endpoint takes them (declared there)."""

    columns: str = ""
    where: list[str] | None = None
    limit: int | None = None
    format: FormatName = "jsonl"


# A column name is any text: one the dataset lacks is refused by validation or by the policy
# (and audited); the audit log escapes what UTF-8 cannot carry (gateway/audit/entry.py).
Name = str


class PredicateIn(BaseModel):
    """``column op value``; ``value`` is a list for ``in``/``not_in``, absent for null tests."""

    model_config = ConfigDict(extra="forbid")

    column: Name = Field(max_length=128)
    op: Op
    value: Scalar | list[Scalar] = None


class AggregateIn(BaseModel):
    """``func(column) AS alias``."""

    model_config = ConfigDict(extra="forbid")

    func: AggFunc
    column: Name | None = Field(default=None, max_length=128)
    alias: str = Field(default="", max_length=128, pattern=r"^[A-Za-z0-9_]*$")


class OrderIn(BaseModel):
    """Sort by an output column."""

    model_config = ConfigDict(extra="forbid")

    column: Name = Field(max_length=128)
    descending: bool = False


class QueryIn(BaseModel):
    """``POST /v1/datasets/{id}/query``: what to read, and how to receive it."""

    model_config = ConfigDict(extra="forbid")

    columns: list[Name] = Field(default_factory=list, max_length=256)
    where: list[PredicateIn] = Field(default_factory=list, max_length=64)
    group_by: list[Name] = Field(default_factory=list, max_length=32)
    aggregates: list[AggregateIn] = Field(default_factory=list, max_length=32)
    order_by: list[OrderIn] = Field(default_factory=list, max_length=16)
    limit: int | None = Field(default=None, ge=1, le=100_000_000)
    format: FormatName = "jsonl"

    def to_query(self) -> Query:
        """The connector query (values still unchecked against the schema)."""
        return Query(
            columns=tuple(self.columns),
            where=tuple(_predicate(p) for p in self.where),
            group_by=tuple(self.group_by),
            aggregates=tuple(Aggregate(a.func, a.column, a.alias) for a in self.aggregates),
            order_by=tuple(Order(o.column, o.descending) for o in self.order_by),
            limit=self.limit,
        )


def _predicate(p: PredicateIn) -> Predicate:
    value: Any = tuple(p.value) if isinstance(p.value, list) else p.value
    return Predicate(p.column, p.op, value)


#: What the OpenAPI document says of one ``where`` parameter (checked by :func:`parse_where`).
WHERE_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": "^[^,]{1,128},(?:" + "|".join(o.value for o in Op) + ")(?:,.*)?$",
}


def parse_where(texts: list[str]) -> list[PredicateIn]:
    """``where=column,op,value`` URL parameters; ``in``/``not_in`` take ``|``-separated values.

    A value that reads as a JSON number or boolean is one (``70``, ``1.5``, ``true``); any
    other text is a string. ValueError names the parameter that does not parse.
    """
    out = []
    for text in texts:
        column, _, rest = text.partition(",")
        op, _, value = rest.partition(",")
        if not column or not op:
            raise ValueError(f"where={text!r}: use column,op,value")
        if op not in {o.value for o in Op}:
            known = ", ".join(o.value for o in Op)
            raise ValueError(f"where={text!r}: unknown operator {op!r}; use one of {known}")
        parsed: Scalar | list[Scalar]
        if op in {"is_null", "not_null"}:
            parsed = None
        elif op in {"in", "not_in"}:
            parsed = [_url_scalar(v) for v in value.split("|")]
        else:
            parsed = _url_scalar(value)
        try:
            out.append(PredicateIn.model_validate({"column": column, "op": op, "value": parsed}))
        except ValidationError as exc:  # one line, not pydantic's report
            first = exc.errors()[0]
            raise ValueError(f"where={text!r}: {first['msg']}") from None
    return out


def parse_aggregates(texts: list[str]) -> list[AggregateIn]:
    """``func`` or ``func:column`` (``count``, ``avg:temp_c``), for the CLI's ``--agg``.

    The output column is named ``func_column`` (``count_rows`` for a bare ``count``), as the
    query API names it. ValueError names the text that does not parse.
    """
    out = []
    for text in texts:
        func, _, column = text.partition(":")
        if func not in {f.value for f in AggFunc}:
            known = ", ".join(f.value for f in AggFunc)
            raise ValueError(f"--agg {text!r}: unknown function {func!r}; use one of {known}")
        if not column and func != AggFunc.COUNT:
            raise ValueError(f"--agg {text!r}: {func} needs a column ({func}:COLUMN)")
        try:
            out.append(AggregateIn.model_validate({"func": func, "column": column or None}))
        except ValidationError as exc:  # one line, not pydantic's report
            raise ValueError(f"--agg {text!r}: {exc.errors()[0]['msg']}") from None
    return out


def _url_scalar(text: str) -> Scalar:
    try:
        value = loads_bounded(text, max_depth=1)  # a scalar is all that is kept
    except ValueError:
        return text
    return value if isinstance(value, int | float | bool) else text
