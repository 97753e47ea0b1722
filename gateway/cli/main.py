"""``sluis``: serve the gateway, run migrations, manage participants and the dev PKI."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from gateway import __version__
from gateway.cli import (
    audit_cmd,
    certs_cmd,
    clients_cmd,
    datasets_cmd,
    participants_cmd,
    policy_cmd,
)
from gateway.cli.context import CliState
from gateway.cli.output import console, reports_errors

app = typer.Typer(
    name="sluis",
    help="Sluis: the policy-enforcing, audited data-sharing gateway.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(certs_cmd.app, name="certs")
app.add_typer(participants_cmd.app, name="participants")
app.add_typer(clients_cmd.app, name="clients")
app.add_typer(policy_cmd.app, name="policy")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(datasets_cmd.app, name="datasets")
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML settings file (see docs/configuration.md)."),
    ] = None,
) -> None:
    """Global options."""
    ctx.obj = CliState(config=config)


@app.command()
@reports_errors
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address.")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port.")] = None,
    insecure_dev: Annotated[
        bool, typer.Option("--insecure-dev", help="Throwaway keys; never in production.")
    ] = False,
) -> None:
    """Run the gateway (mTLS unless plain_http behind a trusted proxy)."""
    # Imported here: the server pulls in FastAPI and uvicorn, which `sluis certs` never needs.
    from gateway.server import serve as run_server  # noqa: PLC0415

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if insecure_dev:
        overrides["insecure_dev_mode"] = True
    run_server(ctx.obj.settings(**overrides))


@db_app.command("upgrade")
@reports_errors
def db_upgrade(ctx: typer.Context) -> None:
    """Apply every pending migration."""
    settings = ctx.obj.settings()

    from gateway.storage.db import Database  # noqa: PLC0415 - see serve

    async def upgrade() -> None:
        db = Database(settings.effective_database_url)
        try:
            await db.upgrade()
        finally:
            await db.dispose()

    asyncio.run(upgrade())
    console.print("database is up to date")


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


def run() -> None:
    """Console-script entry point."""
    app()
