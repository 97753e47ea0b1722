"""``sluis datasets``: register datasets from spec files (operator, on the gateway host)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError

from gateway.cli.context import cli_actor, run_admin, run_with_service
from gateway.cli.output import CliError, JsonOption, console, print_json, reports_errors, table
from gateway.datasets.factory import create_connector
from gateway.datasets.schemas import DatasetSpec
from gateway.datasets.service import DatasetService, read_policy_file
from gateway.settings import Settings
from policies import PolicyError
from policies.yaml_source import load_yaml

app = typer.Typer(
    help="Datasets: connector and usage policy, from a spec file.", no_args_is_help=True
)
T = TypeVar("T")


def _run(settings: Settings, action: Callable[[DatasetService], Awaitable[T]]) -> T:
    return run_with_service(settings, lambda db: DatasetService(db, create_connector), action)


def _spec(path: Path) -> DatasetSpec:
    """The spec in ``path``, read as strictly as a policy: a key given twice or with no
    value, an unknown key or a wrong value is one line naming the file, line and key."""
    try:
        located = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"{path}: is not UTF-8 text") from exc
    except PolicyError as exc:
        raise CliError(_located(path, exc)) from exc
    if not isinstance(located.data, dict):
        raise CliError(f"{path} must hold a mapping (id, title, provider, policy, connector)")
    try:
        return DatasetSpec.model_validate(located.data)
    except ValidationError as exc:
        raise CliError(_located(path, located.schema_error(exc))) from exc


def _located(path: Path, exc: PolicyError) -> str:
    line = f":{exc.position}" if exc.position else ""
    return f"{path}{line}: {exc.key + ': ' if exc.key else ''}{exc.reason} ({exc.code})"


@app.command("add")
@reports_errors
def add(
    ctx: typer.Context, spec_file: Annotated[Path, typer.Argument(help="dataset spec (YAML)")]
) -> None:
    """Register a dataset, or replace its spec and policy (a new policy version)."""
    spec = _spec(spec_file)
    policy_path = (spec_file.parent / spec.policy).resolve()
    text, fmt = read_policy_file(policy_path)
    if spec.connector.get("type") == "files" and isinstance(spec.connector.get("root"), str):
        root = Path(spec.connector["root"])
        spec.connector["root"] = str(
            root if root.is_absolute() else (spec_file.parent / root).resolve()
        )
    now = datetime.now(UTC)
    dataset = run_admin(
        ctx.obj.settings(), lambda a: a.register_dataset(cli_actor(), spec, text, fmt, now=now)
    )
    console.print(
        f"dataset {dataset.id} ({dataset.title}) registered; policy {dataset.policy_hash}"
    )


@app.command("list")
@reports_errors
def list_(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every active dataset (the full policy hash: it is what the next command needs)."""
    datasets = _run(ctx.obj.settings(), lambda s: s.list())
    if as_json:
        print_json([d.model_dump(mode="json") for d in datasets])
        return
    rows = table("id", "title", "provider", "connector", "approval", "policy")
    for d in datasets:
        rows.add_row(
            d.id, d.title, d.provider_id, str(d.connector.get("type")), d.approval, d.policy_hash
        )
    console.print(rows)
