"""Shared CLI plumbing: one-line failures on stderr, rich output on stdout."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from certs import CertsError
from gateway.client.diagnose import ClientSetupError
from gateway.errors import GatewayError
from gateway.settings import SettingsError
from gateway.storage import StorageUnavailable

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True, highlight=False)


class CliError(Exception):
    """A failure the CLI reports as one line and a non-zero exit code."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str, *, exit_code: int = 1) -> NoReturn:
    """Print ``sluis: error: <message>`` on stderr and exit non-zero.

    One line: a database error's message carries its SQL on the lines after the first.
    """
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    err_console.print(f"sluis: error: {first}", markup=False, soft_wrap=True)
    raise typer.Exit(code=exit_code)


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the project's expected errors into one-line failures (exit 1)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (CliError, SettingsError, ClientSetupError) as exc:
            fail(str(exc), exit_code=getattr(exc, "exit_code", 1))
        except (CertsError, GatewayError) as exc:
            fail(exc.detail)
        except StorageUnavailable as exc:
            fail(f"database unavailable ({exc})")

    return wrapper


#: ``--json`` on every list and show command: the records as JSON, for scripts.
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (no colour, no wrapping)."""
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def table(*headers: str) -> Table:
    """A table whose cells wrap (``fold``) instead of cutting ids off with an ellipsis."""
    made = Table(*headers)
    for column in made.columns:
        column.overflow = "fold"
    return made
