"""YAML text to plain data, and the line of every key: PyYAML's node marks, kept per path.

Shared by every YAML document the engine reads (policies, requests, states, policy tests).
Refused here, whatever the document: a syntax error, a key given twice in one mapping, a
key given with no value (``data:`` followed by nothing). What the keys may be is the
schema's business (``policies.yaml_schema``); ``Located.error`` turns its verdict into a
``PolicyError`` naming the line and the key's path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from policies.errors import PolicyError, PolicySchemaError, PolicySyntaxError

PathItem = str | int
Path = tuple[PathItem, ...]

_MERGE = "tag:yaml.org,2002:merge"
_NULL = "tag:yaml.org,2002:null"
_INVALID = frozenset({"missing", "extra_forbidden"})
_CODES = {"missing": "missing_key", "extra_forbidden": "unknown_key"}
_MESSAGES = {"missing": "required, but absent", "extra_forbidden": "unknown key"}


def path_text(path: Sequence[PathItem]) -> str:
    """``("permissions", 0, "data")`` -> ``"permissions[0].data"``."""
    out = ""
    for item in path:
        out += f"[{item}]" if isinstance(item, int) else (f".{item}" if out else str(item))
    return out


@dataclass(frozen=True)
class Located:
    """A YAML document's data and where each key or list item starts, by path.

    ``marks`` holds 1-based ``(line, column)`` pairs.
    """

    data: Any
    marks: Mapping[Path, tuple[int, int]]

    def mark(self, path: Path) -> tuple[int | None, int | None]:
        """The line and column of ``path``, or of its nearest ancestor that has them."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.marks:
                return self.marks[path[:end]]
        return None, None

    def line(self, path: Path) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        return self.mark(path)[0]

    def error(
        self, path: Path, reason: str, code: str, family: type[PolicyError] = PolicySchemaError
    ) -> PolicyError:
        """A ``family`` error naming the line, the column and the key's path."""
        line, column = self.mark(path)
        return family(reason, code=code, line=line, column=column, key=path_text(path) or None)

    def locate(self, exc: PolicyError, path: Path) -> PolicyError:
        """``exc`` (same class and code), now naming the line, column and key of ``path``."""
        line, column = self.mark(path)
        return exc.at(line, path_text(path) or None, column)

    def keys(self, path: Path) -> list[str]:
        """The keys of the mapping at ``path``, in document order (empty if none)."""
        node = self.data
        for item in path:
            in_dict = isinstance(node, dict) and item in node
            if not (in_dict or (isinstance(node, list) and isinstance(item, int))):
                return []
            node = node[item]
        return [str(k) for k in node] if isinstance(node, dict) else []

    def schema_error(
        self, exc: ValidationError, family: type[PolicyError] = PolicySchemaError
    ) -> PolicyError:
        """The first problem pydantic found, as a ``family`` error at its line and key.

        An unknown key comes first: ``requst:`` is better reported as the typo it is than
        as ``request`` missing.
        """
        errors = exc.errors()
        detail = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        path = self.resolve(detail["loc"])
        return self.error(path, _message(detail), _code(detail), family)

    def resolve(self, loc: Sequence[PathItem]) -> Path:
        """pydantic's ``loc`` as a path in the data (union tags and model names dropped)."""
        node, path = self.data, []
        for position, item in enumerate(loc):
            last = position == len(loc) - 1
            in_dict = isinstance(node, dict) and item in node
            if in_dict or (isinstance(node, list) and isinstance(item, int) and item < len(node)):
                node = node[item]
            elif not (last and isinstance(node, dict)):
                continue  # a union member's tag, not a key of the document
            path.append(item)
        return tuple(path)


def load_yaml(text: str | bytes) -> Located:
    """Parse one YAML document (safe tags only) and map its keys to their lines and columns."""
    lines: dict[Path, tuple[int, int]] = {}
    try:
        # Made inside the ``try``: the loader checks every character of a string (or decodes
        # all of the bytes) at once, and an unprintable or undecodable one is a ``ReaderError``.
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc) from exc
    try:
        node = loader.get_single_node()
        if node is not None:  # walked before construction, which flattens merge keys
            lines[()] = _mark(node)
            _walk(node, (), lines)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise _syntax_error(exc) from exc
    finally:
        loader.dispose()
    return Located(data, lines)


Marks = dict[Path, tuple[int, int]]


def _mark(node: yaml.Node) -> tuple[int, int]:
    """PyYAML's 0-based start mark as a 1-based (line, column), as editors show them."""
    return node.start_mark.line + 1, node.start_mark.column + 1


def _walk(node: yaml.Node, path: Path, lines: Marks) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                _entry(key_node, value_node, path, lines, seen)
        for key_node, value_node in node.value:  # ``<<: *base``: explicit keys win
            if key_node.tag == _MERGE:
                _merged(value_node, path, lines, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = _mark(item)
            _walk(item, (*path, index), lines)


def _entry(
    key_node: yaml.Node, value_node: yaml.Node, path: Path, lines: Marks, seen: set[str]
) -> None:
    key = str(key_node.value)
    here, (line, column) = (*path, key), _mark(key_node)
    if key in seen:
        raise PolicySchemaError(
            "given twice", code="duplicate_key", line=line, column=column, key=path_text(here)
        )
    if value_node.tag == _NULL:
        raise PolicySchemaError(
            "given without a value",
            code="empty_value",
            line=line,
            column=column,
            key=path_text(here),
        )
    seen.add(key)
    lines[here] = (line, column)
    _walk(value_node, here, lines)


def _merged(value_node: yaml.Node, path: Path, lines: Marks, seen: set[str]) -> None:
    sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
    for source in sources:
        if isinstance(source, yaml.MappingNode):
            for key_node, inner in source.value:
                if key_node.tag != _MERGE and str(key_node.value) not in seen:
                    _entry(key_node, inner, path, lines, seen)


def _syntax_error(exc: yaml.YAMLError) -> PolicySyntaxError:
    mark = getattr(exc, "problem_mark", None)
    problem, context = getattr(exc, "problem", None), getattr(exc, "context", None)
    text = str(exc).strip().splitlines()
    reason = text[0] if text else "unreadable"
    if problem:  # what is wrong at the mark, then what PyYAML was reading there
        reason = f"{problem} ({context})" if context else str(problem)
    if mark is None:
        return PolicySyntaxError(reason, code="yaml_syntax")
    # The mark is where PyYAML found the problem (0-based); people count from 1.
    return PolicySyntaxError(reason, code="yaml_syntax", line=mark.line + 1, column=mark.column + 1)


def _code(detail: ErrorDetails) -> str:
    kind = detail["type"]
    if kind in _CODES:
        return _CODES[kind]
    return (
        "wrong_type" if kind.endswith("_type") or kind == "union_tag_invalid" else "invalid_value"
    )


def _message(detail: ErrorDetails) -> str:
    kind = detail["type"]
    if kind in _INVALID:
        return _MESSAGES[kind]
    message = detail["msg"].removeprefix("Value error, ")
    given = detail.get("input")
    if isinstance(given, str | int | float) and not isinstance(given, bool):
        message += f", not {given!r}"[:80]
    return message
