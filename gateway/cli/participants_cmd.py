"""``sluis participants``: the registry, operated directly on the database by the operator."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from gateway.cli.context import cli_actor, run_admin, run_with_service, validated
from gateway.cli.output import JsonOption, console, print_json, reports_errors, table
from gateway.participants.schemas import Participant, ParticipantCreate, ParticipantUpdate
from gateway.participants.service import ParticipantService
from gateway.settings import Settings

app = typer.Typer(help="Register organisations, change roles, suspend.", no_args_is_help=True)
T = TypeVar("T")


def _run(settings: Settings, action: Callable[[ParticipantService], Awaitable[T]]) -> T:
    return run_with_service(settings, ParticipantService, action)


def _show(participant: Participant) -> None:
    table = Table(show_header=False, box=None)
    for key, value in participant.model_dump(mode="json").items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    console.print(table)


@app.command("add")
@reports_errors
def add(
    ctx: typer.Context,
    participant_id: Annotated[str, typer.Argument(help="organizationIdentifier")],
    name: Annotated[str, typer.Option(help="Organisation name.")],
    role: Annotated[list[str], typer.Option(help="provider|consumer|officer|operator")],
    group: Annotated[
        list[str] | None, typer.Option(help="a party collection IRI it belongs to (repeat)")
    ] = None,
) -> None:
    """Register an organisation."""
    data = validated(
        ParticipantCreate, id=participant_id, name=name, roles=role, groups=group or []
    )
    now = datetime.now(UTC)
    _show(run_admin(ctx.obj.settings(), lambda a: a.create_participant(cli_actor(), data, now=now)))


@app.command("list")
@reports_errors
def list_(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every registered participant."""
    participants = _run(ctx.obj.settings(), lambda s: s.list())
    if as_json:
        print_json([p.model_dump(mode="json") for p in participants])
        return
    rows = table("id", "name", "roles", "status")
    for p in participants:
        rows.add_row(p.id, p.name, ", ".join(p.roles), p.status)
    console.print(rows)


@app.command("show")
@reports_errors
def show(ctx: typer.Context, participant_id: str, as_json: JsonOption = False) -> None:
    """One participant."""
    participant = _run(ctx.obj.settings(), lambda s: s.get(participant_id))
    if as_json:
        print_json(participant.model_dump(mode="json"))
        return
    _show(participant)


def _update(ctx: typer.Context, participant_id: str, **changes: object) -> None:
    data = validated(ParticipantUpdate, **changes)
    now = datetime.now(UTC)
    _show(
        run_admin(
            ctx.obj.settings(),
            lambda a: a.update_participant(cli_actor(), participant_id, data, now=now),
        )
    )


@app.command("suspend")
@reports_errors
def suspend(ctx: typer.Context, participant_id: str) -> None:
    """Suspend: the participant's certificates stop working at once."""
    _update(ctx, participant_id, status="suspended")


@app.command("activate")
@reports_errors
def activate(ctx: typer.Context, participant_id: str) -> None:
    """Re-activate a suspended participant."""
    _update(ctx, participant_id, status="active")


@app.command("set-roles")
@reports_errors
def set_roles(
    ctx: typer.Context,
    participant_id: str,
    role: Annotated[list[str], typer.Option(help="provider|consumer|officer|operator")],
) -> None:
    """Replace a participant's roles."""
    _update(ctx, participant_id, roles=role)


@app.command("set-groups")
@reports_errors
def set_groups(
    ctx: typer.Context,
    participant_id: str,
    group: Annotated[list[str] | None, typer.Option(help="a party collection IRI (repeat)")] = None,
) -> None:
    """Replace the party collections (e.g. urn:group:universities) a participant is in."""
    _update(ctx, participant_id, groups=group or [])
