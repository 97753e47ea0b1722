"""The policy engine's one error family; every error carries a stable ``code``.

::

    PolicyError               code                   raised when
    ├── PolicySyntaxError     turtle_syntax          Turtle does not parse
    │                         jsonld_syntax          JSON-LD does not parse
    │                         jsonld_remote_context  a JSON-LD @context URL is not embedded
    │                         yaml_syntax            YAML does not parse
    │                         json_syntax            JSON does not parse
    ├── PolicyStructureError  policy_structure       parses, but is no policy we can read
    │                         request_structure      a request / state is malformed
    │   └── PolicySchemaError unknown_key            a key the format does not define
    │                         missing_key            a required key is absent
    │                         duplicate_key          a key given twice in one mapping
    │                         empty_value            a key given with no value
    │                         wrong_type             a value of the wrong type
    │                         invalid_value          a value of the right type that is no
    │                                                  valid value (a date, a rate, ...)
    ├── UnknownTerm           unknown_left_operand   a term outside the declared profile,
    │                         unknown_operator         named in ``term``
    │                         unknown_action
    └── PolicyTestError       policy_test            a provider's policy test is malformed

``reason`` is one line, safe to show a provider; ``gateway/`` maps codes to problem+json.
Errors found in a YAML document also carry ``line`` and ``column`` (both 1-based: where the
key, list item or syntax error starts) and ``key`` (its path, e.g.
``permissions[0].data.max_rows``); ``None`` where the format gives no position.
A policy-test file's schema errors are ``PolicyTestError`` with those same codes.
The engine never raises for a *decision*: a request that cannot be decided is a Deny.
"""

from __future__ import annotations


class PolicyError(Exception):
    """Base of the family: ``code`` is stable, ``reason`` is one line."""

    code: str = "policy_error"

    def __init__(
        self,
        reason: str,
        *,
        code: str | None = None,
        line: int | None = None,
        key: str | None = None,
        column: int | None = None,
    ) -> None:
        self.reason = " ".join(reason.split())[:300]  # one line, bounded
        if code is not None:
            self.code = code
        self.line = line
        self.column = column if line is not None else None
        self.key = key
        super().__init__(f"{self.code}: {self.where}{self.reason}")

    def at(self, line: int | None, key: str | None, column: int | None = None) -> PolicyError:
        """This error (same class, code and reason), naming where it was found."""
        found = type(self).__new__(type(self))  # no __init__: subclasses differ in signature
        found.__dict__.update(self.__dict__)
        found.line, found.key = line, key
        found.column = column if line is not None else None
        found.args = (f"{self.code}: {found.where}{self.reason}",)
        return found

    @property
    def position(self) -> str:
        """``"12:5"`` (line and column), ``"12"``, or ``""`` when the format gives none."""
        if self.line is None:
            return ""
        return f"{self.line}:{self.column}" if self.column is not None else str(self.line)

    @property
    def where(self) -> str:
        """``"line 12, column 5: permissions[0].data: "`` (or what of it is known)."""
        line = f"line {self.line}" if self.line is not None else ""
        if line and self.column is not None:
            line += f", column {self.column}"
        return (f"{line}: " if line else "") + (f"{self.key}: " if self.key else "")


class PolicySyntaxError(PolicyError):
    """A Turtle, JSON-LD, JSON or YAML document does not parse."""

    code = "syntax"


class PolicyStructureError(PolicyError):
    """The document parses, but is not a policy (or request, or state) we can read."""

    code = "policy_structure"


class PolicySchemaError(PolicyStructureError):
    """A key or value the document's format does not allow (a typo, a wrong type)."""

    code = "invalid_value"


class UnknownTerm(PolicyError):
    """A left operand, operator or action outside the declared profile."""

    code = "unknown_term"

    def __init__(
        self,
        kind: str,
        term: str,
        *,
        line: int | None = None,
        key: str | None = None,
        column: int | None = None,
    ) -> None:
        self.kind = kind
        self.term = term
        reason = f"unknown {kind.replace('_', ' ')}: {term}"
        super().__init__(reason, code=f"unknown_{kind}", line=line, key=key, column=column)


class PolicyTestError(PolicyError):
    """A provider-written policy test file is malformed."""

    code = "policy_test"
