"""``sluis fetch``: a consumer downloads a dataset query to a file, with a progress bar."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from gateway.cli.output import CliError, console, reports_errors
from gateway.client import GatewayUnreachable, SluisClient, SluisError
from gateway.exchange.schemas import parse_aggregates, parse_where

app = typer.Typer(add_completion=False)


@app.command()
@reports_errors
def fetch(
    dataset: Annotated[str, typer.Argument(help="dataset id (see the catalog)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="file to write")],
    *,
    gateway: Annotated[str, typer.Option(envvar="SLUIS_GATEWAY_URL", help="https://host:port")],
    ca: Annotated[Path, typer.Option(envvar="SLUIS_CA_BUNDLE", help="CA bundle (PEM)")],
    cert: Annotated[Path, typer.Option(envvar="SLUIS_CLIENT_CERT", help="your certificate")],
    key: Annotated[Path, typer.Option(envvar="SLUIS_CLIENT_KEY", help="your private key")],
    client_id: Annotated[str, typer.Option(envvar="SLUIS_CLIENT_ID", help="your participant id")],
    fmt: Annotated[str, typer.Option("--format", help="parquet | csv | jsonl | arrow")] = "parquet",
    columns: Annotated[str, typer.Option(help="comma-separated columns")] = "",
    where: Annotated[list[str] | None, typer.Option(help="column,op,value (repeat)")] = None,
    group_by: Annotated[
        str, typer.Option("--group-by", help="comma-separated columns to group by")
    ] = "",
    agg: Annotated[
        list[str] | None,
        typer.Option("--agg", help="aggregate: count, or FUNC:COLUMN (sum avg min max; repeat)"),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Run a query on DATASET and stream the result into --out.

    Rows (--columns, --where), or aggregates (--group-by with --agg), which is all an
    aggregates-only dataset answers: --group-by machine --agg count --agg avg:temp_c.
    """
    _check_writable(out)  # before the request: a refused write must not cost a use
    try:
        predicates = [(p.column, p.op.value, p.value) for p in parse_where(where or [])]
        aggregates = [(a.func.value, a.column) for a in parse_aggregates(agg or [])]
    except ValueError as exc:
        raise CliError(str(exc).splitlines()[0]) from exc
    groups = [c for c in group_by.split(",") if c]
    if aggregates and columns:
        raise CliError("--columns is for rows; an aggregate query names its columns by --group-by")
    if groups and not aggregates:
        raise CliError("--group-by needs at least one --agg (count, or FUNC:COLUMN)")
    session = SluisClient(gateway, ca_bundle=ca, cert_file=cert, key_file=key, client_id=client_id)
    with session as client, ExitStack() as stack:
        advance = _progress_bar(stack, f"{dataset} -> {out.name}")
        try:
            receipt = client.fetch(
                dataset,
                out,
                fmt=fmt,
                columns=[c for c in columns.split(",") if c],
                where=predicates,
                group_by=groups,
                aggregates=aggregates,
                limit=limit,
                progress=advance,
            )
        except GatewayUnreachable as exc:
            raise CliError(exc.detail) from exc
        except SluisError as exc:
            raise CliError(f"{exc.status} {exc.type}: {exc.detail}") from exc
    size = out.stat().st_size
    console.print(
        f"wrote {out} ({size:,} bytes); audit entry {receipt.index} of {receipt.tree_size}"
    )


def _check_writable(out: Path) -> None:
    """CliError unless ``out`` can be created (or replaced) as a file."""
    parent = out.parent
    if out.is_dir():
        raise CliError(f"--out {out} is a directory: give a file name")
    if not parent.is_dir():
        raise CliError(f"--out {out}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise CliError(f"--out {out}: not writable")


def _progress_bar(stack: ExitStack, description: str) -> Callable[[int], None] | None:
    """A transfer bar on a terminal, nothing otherwise.

    Not even a disabled ``Progress``: rich (13.7 to at least 14.0) still writes a newline when
    one stops, and the one-line error that may follow must be the first line of the output.
    """
    if not console.is_terminal:
        return None
    progress = stack.enter_context(
        Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                 TransferSpeedColumn(), console=console, transient=True)
    )  # fmt: skip
    task = progress.add_task(description, total=None)
    return lambda n: progress.advance(task, n)
