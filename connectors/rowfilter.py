"""Parse a policy's ``sluis:rowFilter`` text into predicates; anything else fails closed.

The policy engine carries the row filter as provider-written text (``"region = 'NL'"``).
The grammar accepted here is deliberately tiny and maps onto ``Predicate`` exactly::

    filter    := predicate ( AND predicate )*
    predicate := name op literal | name [NOT] IN ( literal, ... ) | name IS [NOT] NULL
    op        := = | != | <> | < | <= | > | >=
    literal   := 'text' ('' escapes a quote) | integer | decimal | TRUE | FALSE

No OR, no parentheses beyond the IN list, no functions: a filter outside this grammar is a
provider's configuration error (``ConnectorConfigError``) and no data leaves.
"""

from __future__ import annotations

import re

from connectors.errors import ConnectorConfigError
from connectors.query import Op, Predicate, Scalar

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^']|'')*')
      | (?P<num>-?\d+(?:\.\d+)?)
      | (?P<op><=|>=|<>|!=|=|<|>)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_Tokens = list[tuple[str, str]]
_OPS = {"=": Op.EQ, "!=": Op.NE, "<>": Op.NE, "<": Op.LT, "<=": Op.LE, ">": Op.GT, ">=": Op.GE}


def parse_row_filter(text: str) -> tuple[Predicate, ...]:
    """The predicates in ``text`` (ANDed), or ``ConnectorConfigError``."""
    tokens = _tokens(text)
    predicates: list[Predicate] = []
    while True:
        predicate, tokens = _predicate(tokens, text)
        predicates.append(predicate)
        if not tokens:
            return tuple(predicates)
        if _word(tokens[0]) != "AND":
            raise _bad(text)
        tokens = tokens[1:]


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while text[pos:].strip():
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            raise _bad(text)
        out.append((match.lastgroup, match.group(match.lastgroup)))
        pos = match.end()
    return out


def _predicate(tokens: _Tokens, text: str) -> tuple[Predicate, _Tokens]:
    if len(tokens) < 3 or tokens[0][0] != "word":  # noqa: PLR2004 (name, op, operand)
        raise _bad(text)
    name, kind, rest = tokens[0][1], tokens[1], tokens[2:]
    if kind[0] == "op":
        return Predicate(name, _OPS[kind[1]], _literal(rest[0], text)), rest[1:]
    words = [_word(t) for t in tokens[1:4]]
    if words[:2] == ["IS", "NULL"]:
        return Predicate(name, Op.IS_NULL), tokens[3:]
    if words == ["IS", "NOT", "NULL"]:
        return Predicate(name, Op.NOT_NULL), tokens[4:]
    if words[:1] == ["IN"]:
        values, rest = _list(tokens[2:], text)
        return Predicate(name, Op.IN, values), rest
    if words[:2] == ["NOT", "IN"]:
        values, rest = _list(tokens[3:], text)
        return Predicate(name, Op.NOT_IN, values), rest
    raise _bad(text)


def _list(tokens: _Tokens, text: str) -> tuple[tuple[Scalar, ...], _Tokens]:
    if not tokens or tokens[0] != ("punct", "("):
        raise _bad(text)
    values: list[Scalar] = []
    rest = tokens[1:]
    while rest:
        values.append(_literal(rest[0], text))
        sep, rest = rest[1:2], rest[2:]
        if sep == [("punct", ")")]:
            return tuple(values), rest
        if sep != [("punct", ",")]:
            break
    raise _bad(text)


def _literal(token: tuple[str, str], text: str) -> Scalar:
    kind, raw = token
    if kind == "str":
        return raw[1:-1].replace("''", "'")
    if kind == "num":
        return float(raw) if "." in raw else int(raw)
    if _word(token) in ("TRUE", "FALSE"):
        return _word(token) == "TRUE"
    raise _bad(text)


def _word(token: tuple[str, str]) -> str:
    return token[1].upper() if token[0] == "word" else ""


def _bad(text: str) -> ConnectorConfigError:
    return ConnectorConfigError(f"row filter outside the supported grammar: {text[:80]!r}")
