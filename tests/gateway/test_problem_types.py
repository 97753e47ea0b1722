"""docs/errors.md and the code agree on every problem type (issue 16).

One list, ``gateway.http.problem_types.PROBLEM_TYPES``. This test fails when the code can
answer a type the list lacks (found by reading the source: the gateway's error family, every
``(status, "code", ...)`` call, ``code=`` keywords, certificate and token refusals, connector
error classes), when a listed type is missing from docs/errors.md, or when docs/errors.md
names a type that is not in the list.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import connectors
from gateway.http import problems
from gateway.http.problem_types import OAUTH_ERRORS, PROBLEM_TYPES

ROOT = Path(__file__).resolve().parents[2]
CODE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
FAMILY = {"GatewayError", "BadRequest", "Unauthorized", "Forbidden", "NotFound", "Conflict",
          "ServiceUnavailable"}  # fmt: skip
PREFIXED = {"CertificateRejected": "certificate-", "TokenRejected": "token-"}


def _calls(*folders: str) -> Iterator[tuple[str, ast.Call]]:
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call):
                    yield f"{path.relative_to(ROOT)}:{node.lineno}", node


def _name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def _text(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _codes_in(where: str, call: ast.Call) -> Iterator[tuple[str, str]]:
    args, name = call.args, _name(call)
    if name in FAMILY and args and _text(args[0]):
        yield where, str(_text(args[0]))
    if name in PREFIXED and args and _text(args[0]):
        yield where, PREFIXED[name] + str(_text(args[0]))
    status = args[0] if args else None
    if (
        isinstance(status, ast.Constant)
        and isinstance(status.value, int)
        and 400 <= status.value < 600
        and len(args) > 1
        and name != "oauth_problem"  # its second argument is the RFC 6749 error
    ):
        code = _text(args[1])
        if code is not None and CODE.match(code):
            yield where, code
    for keyword in call.keywords:
        if keyword.arg == "code" and _text(keyword.value):
            yield where, str(_text(keyword.value))


def _found_in_source() -> dict[str, str]:
    found: dict[str, str] = {}
    for where, call in _calls("gateway", "certs"):
        if where.startswith(("gateway/client/", "gateway/cli/")):
            continue  # clients: they read problems, they do not answer them
        for at, code in _codes_in(where, call):
            found.setdefault(code, at)
    return found


def _connector_codes() -> set[str]:
    seen, pending = set(), [connectors.ConnectorError]
    while pending:
        kind = pending.pop()
        if kind.__module__.split(".")[0] == "connectors":  # not a test's own double
            seen.add(kind.code.replace("_", "-"))
        pending.extend(kind.__subclasses__())
    seen.discard("connector-error")  # the abstract base: every raise is a subclass
    return seen


def _documented() -> set[str]:
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    return {code for row in rows for code in re.findall(r"`([a-z0-9-]+)`", row.split("|")[1])}


def test_every_type_the_source_raises_is_in_the_one_list() -> None:
    found = _found_in_source()
    missing = {code: at for code, at in found.items() if code not in PROBLEM_TYPES}
    assert not missing, f"problem types raised but not in problem_types.py: {missing}"


def test_every_connector_error_and_http_status_type_is_in_the_list() -> None:
    derived = _connector_codes() | {code for code, _ in problems._HTTP_CODES.values()}
    derived |= {"http-error"} | {f"oauth-{e.replace('_', '-')}" for e in OAUTH_ERRORS}
    assert derived - PROBLEM_TYPES == set()


def test_every_listed_type_is_documented_and_nothing_else() -> None:
    documented = _documented()
    assert PROBLEM_TYPES - documented == set(), "add these to docs/errors.md"
    assert documented - PROBLEM_TYPES == set(), "stale in docs/errors.md"


def test_the_scan_sees_the_kinds_of_call_it_is_meant_to() -> None:
    """The scan itself: each way a type is written is found (else the test above is empty)."""
    found = _found_in_source()
    expected = (
        "policy-denied",
        "certificate-revoked",
        "token-expired",
        "rate-limited",
        "request-line-too-long",
        "oauth-invalid-request",
        "too-many-connections",
    )
    assert [code for code in expected if code not in found] == []
