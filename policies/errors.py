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
    ├── UnknownTerm           unknown_left_operand   a term outside the declared profile,
    │                         unknown_operator         named in ``term``
    │                         unknown_action
    └── PolicyTestError       policy_test            a provider's policy test is malformed

``reason`` is one line, safe to show a provider; ``gateway/`` maps codes to problem+json.
The engine never raises for a *decision*: a request that cannot be decided is a Deny.
"""

from __future__ import annotations


class PolicyError(Exception):
    """Base of the family: ``code`` is stable, ``reason`` is one line."""

    code: str = "policy_error"

    def __init__(self, reason: str, *, code: str | None = None) -> None:
        self.reason = " ".join(reason.split())[:300]  # one line, bounded
        if code is not None:
            self.code = code
        super().__init__(f"{self.code}: {self.reason}")


class PolicySyntaxError(PolicyError):
    """A Turtle, JSON-LD, JSON or YAML document does not parse."""

    code = "syntax"


class PolicyStructureError(PolicyError):
    """The document parses, but is not a policy (or request, or state) we can read."""

    code = "policy_structure"


class UnknownTerm(PolicyError):
    """A left operand, operator or action outside the declared profile."""

    code = "unknown_term"

    def __init__(self, kind: str, term: str) -> None:
        self.kind = kind
        self.term = term
        super().__init__(f"unknown {kind.replace('_', ' ')}: {term}", code=f"unknown_{kind}")


class PolicyTestError(PolicyError):
    """A provider-written policy test file is malformed."""

    code = "policy_test"
