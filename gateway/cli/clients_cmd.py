"""``sluis clients``: OAuth clients, operated directly on the database by the operator."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from gateway.cli.context import cli_actor, run_admin, run_with_service, validated
from gateway.cli.output import CliError, JsonOption, console, print_json, reports_errors, table
from gateway.oauth.clients import ClientService
from gateway.oauth.schemas import Client, ClientCreate, ClientUpdate
from gateway.settings import Settings

app = typer.Typer(help="OAuth clients: auth method, profile, scopes, keys.", no_args_is_help=True)
T = TypeVar("T")


def _run(settings: Settings, action: Callable[[ClientService], Awaitable[T]]) -> T:
    return run_with_service(settings, ClientService, action)


def _read_jwks(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"{path}: is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from exc
    if isinstance(document, dict) and "keys" not in document:
        document = {"keys": [document]}  # a single JWK
    if not isinstance(document, dict):
        raise CliError(f"{path} must hold a JWK or a JWKS object")
    return document


def _show(client: Client) -> None:
    table = Table(show_header=False, box=None)
    table.add_row("client_id", client.client_id)
    table.add_row("auth_method", client.auth_method)
    table.add_row("profile", client.profile)
    table.add_row("scopes", " ".join(client.scopes) or "-")
    table.add_row(
        "keys",
        ", ".join(str(k.get("kid", "?")) for k in (client.jwks or {}).get("keys", [])) or "-",
    )
    table.add_row("status", client.status)
    console.print(table)


@app.command("add")
@reports_errors
def add(
    ctx: typer.Context,
    client_id: Annotated[str, typer.Argument(help="the participant id")],
    *,
    auth_method: Annotated[str, typer.Option(help="tls_client_auth | private_key_jwt | ishare")],
    profile: Annotated[str, typer.Option(help="fapi2 | ishare")] = "fapi2",
    scope: Annotated[list[str] | None, typer.Option(help="an allowed scope (repeat)")] = None,
    jwks: Annotated[
        Path | None, typer.Option(help="public JWK/JWKS file (private_key_jwt)")
    ] = None,
) -> None:
    """Register a participant as an OAuth client."""
    data = validated(
        ClientCreate,
        client_id=client_id,
        auth_method=auth_method,
        profile=profile,
        scopes=scope or [],
        jwks=_read_jwks(jwks),
    )
    now = datetime.now(UTC)
    _show(run_admin(ctx.obj.settings(), lambda a: a.create_client(cli_actor(), data, now=now)))


@app.command("list")
@reports_errors
def list_(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every OAuth client."""
    clients = _run(ctx.obj.settings(), lambda s: s.list())
    if as_json:
        print_json([c.model_dump(mode="json") for c in clients])
        return
    rows = table("client_id", "auth_method", "profile", "scopes", "status")
    for c in clients:
        rows.add_row(c.client_id, c.auth_method, c.profile, " ".join(c.scopes), c.status)
    console.print(rows)


def _update(ctx: typer.Context, client_id: str, **changes: Any) -> None:
    data = validated(ClientUpdate, **changes)
    now = datetime.now(UTC)
    _show(
        run_admin(
            ctx.obj.settings(), lambda a: a.update_client(cli_actor(), client_id, data, now=now)
        )
    )


@app.command("disable")
@reports_errors
def disable(ctx: typer.Context, client_id: str) -> None:
    """Disable a client: it gets no new tokens (tokens already issued live out their minutes)."""
    _update(ctx, client_id, status="disabled")


@app.command("enable")
@reports_errors
def enable(ctx: typer.Context, client_id: str) -> None:
    """Re-enable a disabled client."""
    _update(ctx, client_id, status="active")


@app.command("set-scopes")
@reports_errors
def set_scopes(
    ctx: typer.Context,
    client_id: str,
    scope: Annotated[list[str], typer.Option(help="an allowed scope (repeat)")],
) -> None:
    """Replace a client's allowed scopes."""
    _update(ctx, client_id, scopes=scope)


@app.command("set-keys")
@reports_errors
def set_keys(
    ctx: typer.Context,
    client_id: str,
    jwks: Annotated[Path, typer.Option(help="public JWK/JWKS file")],
) -> None:
    """Replace a private_key_jwt client's public keys (key rotation on the client side)."""
    _update(ctx, client_id, jwks=_read_jwks(jwks))
