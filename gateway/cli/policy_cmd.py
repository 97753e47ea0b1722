"""``sluis policy``: validate, evaluate, explain and test usage policies from files.

The engine (``policies``) is pure; this module reads the files, picks the parser by file
extension, and reads the wall clock (only when neither ``--now`` nor the state of the world
or the request records a time). Every ``PolicyError`` and file error becomes one
``sluis: error: ...`` line and exit code 1. See docs/policies.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from gateway.cli.output import console, fail
from policies import (
    CONFORMANCE_PROFILE,
    SLUIS_PROFILE,
    CaseResult,
    Decision,
    Policy,
    PolicyError,
    Profile,
    Request,
    World,
    evaluate,
    explain,
    merge,
    parse_evaluation_request,
    parse_policy,
    parse_request,
    parse_world,
    parse_yaml_policy,
    parse_yaml_request,
    parse_yaml_state,
    policy_hash,
    run_policy_tests,
    validate,
)
from policies.canonical import to_json
from policies.documents import RdfFormat

T = TypeVar("T")

app = typer.Typer(
    help="Usage policies (ODRL 2.2): validate, evaluate, explain, and run policy tests.",
    no_args_is_help=True,
)

TEST_GLOB = "*_test.yaml"
"""Policy-test files ``sluis policy test DIR`` runs (also ``*_test.yml``)."""
_TEST_PATTERNS = (TEST_GLOB, "*_test.yml")
_TURTLE = (".ttl",)
_JSONLD = (".jsonld", ".json")
_YAML = (".yaml", ".yml")
_EXTENSIONS = _TURTLE + _JSONLD + _YAML


class ProfileName(StrEnum):
    """The profile a policy is validated and evaluated against."""

    SLUIS = "sluis"
    CONFORMANCE = "conformance"

    @property
    def profile(self) -> Profile:
        """The engine's profile of this name."""
        return SLUIS_PROFILE if self is ProfileName.SLUIS else CONFORMANCE_PROFILE


ProfileOption = Annotated[
    ProfileName,
    typer.Option(
        "--profile",
        help="sluis (what providers write) or conformance (adds the ODRL test suites' terms).",
    ),
]
PolicyOption = Annotated[
    Path, typer.Option("--policy", "-p", help="Policy: .ttl, .jsonld/.json or .yaml/.yml.")
]
RequestOption = Annotated[
    Path,
    typer.Option(
        "--request",
        "-r",
        help="Request: odrl:Request (.ttl/.jsonld), W3C EvaluationRequest (.json) or .yaml.",
    ),
]
StateOption = Annotated[
    Path | None,
    typer.Option("--state", "-s", help="State of the world: .ttl/.jsonld/.json or .yaml."),
]
NowOption = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="Time of the request, ISO 8601 with a zone "
        "[default: the time the state or request records, else now (UTC)].",
    ),
]


@contextmanager
def _reported(path: Path | None = None) -> Iterator[None]:
    """Turn a policy or file error into one ``sluis: error:`` line and exit code 1.

    A located error reads ``FILE:LINE:COLUMN: KEY: reason (code)``, as compilers print them.
    """
    where = f"{path}: " if path is not None else ""
    try:
        yield
    except PolicyError as exc:
        line = f"{path}:{exc.position}: " if path is not None and exc.position else where
        fail(f"{line}{exc.key + ': ' if exc.key else ''}{exc.reason} ({exc.code})")
    except FileNotFoundError:
        fail(f"{where}no such file")
    except IsADirectoryError:
        fail(f"{where}is a directory, not a file")
    except UnicodeDecodeError:
        fail(f"{where}not UTF-8 text")
    except OSError as exc:
        fail(f"{where}cannot read ({exc.strerror or exc})")


def _read(path: Path) -> str:
    with _reported(path):
        return path.read_text(encoding="utf-8")


def _parse(path: Path, parser: Callable[[str], T]) -> T:
    text = _read(path)
    with _reported(path):
        return parser(text)


def _extension(path: Path, kind: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in _EXTENSIONS:
        fail(f"{path}: unknown {kind} format {suffix or '(none)'} (use {', '.join(_EXTENSIONS)})")
    return suffix


def load_policy(path: Path, profile: Profile) -> Policy:
    """The policy in ``path``; the YAML shorthand is validated against ``profile`` as read."""
    suffix = _extension(path, "policy")
    if suffix in _YAML:
        return _parse(path, lambda text: parse_yaml_policy(text, profile))
    fmt: RdfFormat = "turtle" if suffix in _TURTLE else "json-ld"
    return _parse(path, lambda text: parse_policy(text, fmt))


def load_request(path: Path, profile: Profile = SLUIS_PROFILE) -> tuple[Request, World]:
    """The request, and the facts (and time) its document states.

    A YAML request's context keys must be left operands of ``profile``.
    """
    suffix = _extension(path, "request")
    if suffix in _YAML:
        return _parse(path, lambda text: parse_yaml_request(text, profile)), World()
    if suffix in _JSONLD and _is_evaluation_request(_read(path)):
        request, now = _parse(path, parse_evaluation_request)
        return request, World(now=now)
    fmt: RdfFormat = "turtle" if suffix in _TURTLE else "json-ld"
    return _parse(path, lambda text: parse_request(text, fmt))


def _is_evaluation_request(text: str) -> bool:
    """A W3C Formal Semantics ``EvaluationRequest`` rather than an ``odrl:Request``."""
    try:
        doc = json.loads(text)
    except ValueError:
        return False  # parse_request reports the syntax error
    return isinstance(doc, dict) and "evaluatedAction" in doc


def load_state(path: Path | None) -> World:
    """The state of the world in ``path`` (an empty one when there is none)."""
    if path is None:
        return World()
    suffix = _extension(path, "state")
    if suffix in _YAML:
        return _parse(path, parse_yaml_state)
    fmt: RdfFormat = "turtle" if suffix in _TURTLE else "json-ld"
    return _parse(path, lambda text: parse_world(text, fmt))


def parse_now(text: str | None) -> datetime | None:
    """``--now`` as an aware datetime (``Z`` accepted); ``None`` when not given."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--now: not an ISO 8601 date-time: {text}")
    if value.tzinfo is None:
        fail(f"--now: give a time zone (e.g. {text}Z)")
    return value


@dataclass(frozen=True)
class Evaluation:
    """A decision and the time it was decided at."""

    decision: Decision
    now: datetime


def _decide(
    policy_path: Path,
    request_path: Path,
    state_path: Path | None,
    now_text: str | None,
    profile: ProfileName,
) -> Evaluation:
    policy = load_policy(policy_path, profile.profile)
    request, facts = load_request(request_path, profile.profile)
    world = merge(load_state(state_path), facts)
    now = parse_now(now_text) or world.now or datetime.now(UTC)  # the wall clock, at the edge
    with _reported():
        decision = evaluate(policy, request, world.state, now=now, profile=profile.profile)
    return Evaluation(decision, now)


def decision_json(evaluation: Evaluation) -> dict[str, Any]:
    """The decision as ``sluis policy eval`` prints it (field names are a contract)."""
    decision = evaluation.decision
    out: dict[str, Any] = {
        "decision": decision.effect.value,
        "reason": decision.reason,
        "policy": {"id": decision.policy_id, "hash": decision.policy_hash},
    }
    if decision.limits is not None:
        out["limits"] = to_json(decision.limits)
    out["report"] = to_json(decision.rules)
    # Fields appended after the first release go below, never renamed (STYLE.md 7).
    out["rule"] = decision.rule
    out["notes"] = list(decision.notes)
    out["now"] = evaluation.now.isoformat()
    return out


@app.command("validate")
def validate_cmd(
    file: Annotated[Path, typer.Argument(help="Policy: .ttl, .jsonld/.json or .yaml/.yml.")],
    profile: ProfileOption = ProfileName.SLUIS,
) -> None:
    """Check a policy against the profile; print its id and hash (exit 1 naming an unknown term)."""
    policy = load_policy(file, profile.profile)
    with _reported(file):
        validate(policy, profile.profile)
    console.print(
        f"{policy.uid} {policy_hash(policy)}", markup=False, highlight=False, soft_wrap=True
    )


@app.command("eval")
def eval_cmd(
    policy: PolicyOption,
    request: RequestOption,
    state: StateOption = None,
    now: NowOption = None,
    profile: ProfileOption = ProfileName.SLUIS,
) -> None:
    """Decide a request; print the decision, the limits and the compliance report as JSON."""
    evaluation = _decide(policy, request, state, now, profile)
    console.print_json(data=decision_json(evaluation))


@app.command("explain")
def explain_cmd(
    policy: PolicyOption,
    request: RequestOption,
    state: StateOption = None,
    now: NowOption = None,
    profile: ProfileOption = ProfileName.SLUIS,
) -> None:
    """Decide a request and explain it: which rule, which constraint, why."""
    evaluation = _decide(policy, request, state, now, profile)
    text = explain(evaluation.decision) + f"\nat {evaluation.now.isoformat()}"
    console.print(text, markup=False, highlight=False, soft_wrap=True)


@app.command("test")
def test_cmd(
    directory: Annotated[
        Path, typer.Argument(help=f"Folder of {TEST_GLOB} files (or one such file).")
    ],
) -> None:
    """Run provider-written policy tests (like opa test); exit 1 if any case fails."""
    passed = failed = 0
    for path in _test_files(directory):
        table = Table(
            "case", "expected", "got", "result", title=escape(str(path)), title_justify="left"
        )
        for result in _run_file(path):
            passed, failed = passed + result.passed, failed + (not result.passed)
            got = f"{result.decision.effect.value} ({result.decision.reason})"
            verdict = "[green]pass[/]" if result.passed else "[bold red]FAIL[/]"
            table.add_row(escape(result.name), result.expected, got, verdict)
        console.print(table)
    console.print(f"{passed} passed, {failed} failed", highlight=False)
    if failed:
        raise typer.Exit(code=1)


def _test_files(directory: Path) -> list[Path]:
    if directory.is_file():
        return [directory]
    if not directory.is_dir():
        fail(f"{directory}: no such directory")
    files = sorted({p for pattern in _TEST_PATTERNS for p in directory.glob(pattern)})
    if not files:
        fail(f"{directory}: no policy tests ({' or '.join(_TEST_PATTERNS)})")
    return files


def _run_file(path: Path) -> list[CaseResult]:
    text = _read(path)
    name = _named_policy(text)
    policies = {name: load_policy(_policy_file(path, name), SLUIS_PROFILE)} if name else {}
    with _reported(path):
        return run_policy_tests(text, policies)


def _named_policy(text: str) -> str | None:
    """The ``policy`` a test file names (``run_policy_tests`` reports a malformed file)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    name = doc.get("policy") if isinstance(doc, dict) else None
    return name if isinstance(name, str) and name else None


def _policy_file(test: Path, name: str) -> Path:
    """``name`` beside the test file: a file name, or a stem with a policy extension."""
    folder = test.parent
    candidates = [folder / name, *(folder / f"{name}{ext}" for ext in _EXTENSIONS)]
    found = next((c for c in candidates if c.is_file() and c.suffix in _EXTENSIONS), None)
    if found is None:
        fail(f"{test}: policy {name!r} not found beside it ({name}.yaml, .ttl, .jsonld, ...)")
    return found
