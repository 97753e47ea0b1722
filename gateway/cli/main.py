"""``sluis``: serve the gateway, run migrations, manage participants and the dev PKI."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from gateway import __version__
from gateway.cli.context import CliState
from gateway.cli.output import console, reports_errors
from gateway.settings import require_serve_settings

#: Sub-commands living in their own modules, imported only when used: each pulls in its
#: own heavy dependencies (SQLAlchemy, pyarrow, rdflib, authlib), and `sluis certs ...`
#: should not wait for all of them.
LAZY_COMMANDS = {
    "agreements": "gateway.cli.agreements_cmd",
    "certs": "gateway.cli.certs_cmd",
    "participants": "gateway.cli.participants_cmd",
    "clients": "gateway.cli.clients_cmd",
    "datasets": "gateway.cli.datasets_cmd",
    "policy": "gateway.cli.policy_cmd",
    "audit": "gateway.cli.audit_cmd",
    "fetch": "gateway.cli.fetch_cmd",
    "dsp": "gateway.cli.dsp_cmd",
    "init": "gateway.cli.init_cmd",
}


class LazyGroup(TyperGroup):
    """A typer group that imports a sub-command's module the first time it is needed."""

    # typer vendors its own click, whose classes are private: hence Any in the signatures.
    def list_commands(self, ctx: Any) -> list[str]:  # noqa: ARG002 - click's interface
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            module = importlib.import_module(LAZY_COMMANDS[cmd_name])
            command = typer.main.get_command(module.app)
            command.name = cmd_name
            self.commands[cmd_name] = command
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    name="sluis",
    cls=LazyGroup,
    help="Sluis: the policy-enforcing, audited data-sharing gateway.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
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
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Gateway processes sharing the port.")
    ] = 1,
) -> None:
    """Run the gateway (mTLS unless plain_http behind a trusted proxy)."""
    # Imported here: the server pulls in FastAPI and uvicorn, which `sluis certs` never needs.
    from gateway.server import serve as run_server  # noqa: PLC0415
    from gateway.server import serve_workers  # noqa: PLC0415

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if insecure_dev:
        overrides["insecure_dev_mode"] = True
    settings = ctx.obj.settings(**overrides)
    require_serve_settings(settings)  # every missing setting in one line, before anything starts
    if workers > 1:
        serve_workers(settings, workers)
    else:
        run_server(settings)


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
