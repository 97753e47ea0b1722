"""``sluis agreements``: request, list, approve, reject, revoke, terminate, over mTLS.

Providers and consumers run this on their own machines with their own certificate (no
OAuth token is needed to manage agreements, only to query data).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from gateway.cli.output import CliError, JsonOption, console, print_json, reports_errors, table
from gateway.client.diagnose import check_gateway_url, tls_context, unreachable

app = typer.Typer(
    help="Agreements: request, approve, reject, revoke, terminate.", no_args_is_help=True
)


def _options(gateway: str, ca: Path, cert: Path, key: Path) -> httpx.Client:
    context = tls_context(ca, cert, key, now=datetime.now(UTC))
    return httpx.Client(base_url=check_gateway_url(gateway), verify=context, timeout=30)


def _call(ctx: typer.Context, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    return _send(ctx, method, path, body).json()


def _send(
    ctx: typer.Context, method: str, path: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    params = ctx.meta["sluis.connection"]
    try:
        with _options(**params) as client:
            response = client.request(method, path, json=body)
    except httpx.TransportError as exc:  # worded as sluis fetch words it
        raise CliError(unreachable(exc, params["gateway"].rstrip("/"))) from exc
    if response.status_code >= 400:  # noqa: PLR2004 - HTTP error range
        try:
            problem = response.json()
            kind = str(problem.get("type", "")).removeprefix("urn:sluis:problem:")
            raise CliError(f"{response.status_code} {kind}: {problem.get('detail', '')}")
        except ValueError:
            raise CliError(f"{response.status_code}: {response.text[:200]}") from None
    return response


@app.callback()
def connection(
    ctx: typer.Context,
    gateway: Annotated[str, typer.Option(envvar="SLUIS_GATEWAY_URL", help="https://host:port")],
    ca: Annotated[Path, typer.Option(envvar="SLUIS_CA_BUNDLE", help="CA bundle (PEM)")],
    cert: Annotated[Path, typer.Option(envvar="SLUIS_CLIENT_CERT", help="your certificate")],
    key: Annotated[Path, typer.Option(envvar="SLUIS_CLIENT_KEY", help="your private key")],
) -> None:
    """Where the gateway is and who you are (options or SLUIS_* environment variables)."""
    ctx.meta["sluis.connection"] = {"gateway": gateway, "ca": ca, "cert": cert, "key": key}


def _show(agreement: dict[str, Any]) -> None:
    reason = f" ({agreement['reason']})" if agreement.get("reason") else ""
    console.print(
        f"{agreement['id']}  {agreement['dataset_id']}  {agreement['consumer_id']}  "
        f"[bold]{agreement['state']}[/]{reason}"
    )


@app.command("list")
@reports_errors
def list_(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Agreements you are party to."""
    agreements = _call(ctx, "GET", "/v1/agreements")
    if as_json:
        print_json(agreements)
        return
    rows = table("id", "dataset", "consumer", "purpose", "state", "uses", "reason")
    for a in agreements:
        rows.add_row(a["id"], a["dataset_id"], a["consumer_id"], a["purpose"], a["state"],
                     str(a["use_count"]), a.get("reason") or "")  # fmt: skip
    console.print(rows)


@app.command("request")
@reports_errors
def request(
    ctx: typer.Context,
    dataset: str,
    purpose: Annotated[
        str, typer.Option(help="purpose IRI, e.g. https://w3id.org/dpv#AcademicResearch")
    ],
) -> None:
    """Ask for access to a dataset (consumer); exits 1 when the request is rejected.

    You have at most one live agreement per dataset: while one is requested or active, this
    shows that one (and says so) instead of making another.
    """
    response = _send(ctx, "POST", "/v1/agreements", {"dataset": dataset, "purpose": purpose})
    agreement = response.json()
    _show(agreement)
    if agreement.get("state") == "rejected":  # a refusal is a failure: exit non-zero
        raise CliError(f"agreement {agreement['id']} for {dataset} was rejected")
    if response.status_code == httpx.codes.OK:
        console.print("(your live agreement for this dataset; nothing new was requested)")


def _decide(ctx: typer.Context, agreement_id: str, action: str, reason: str) -> None:
    body = None if action == "approve" else {"reason": reason}
    _show(_call(ctx, "POST", f"/v1/agreements/{agreement_id}/{action}", body))


@app.command("approve")
@reports_errors
def approve(ctx: typer.Context, agreement_id: str) -> None:
    """Grant a requested agreement (provider)."""
    _decide(ctx, agreement_id, "approve", "")


@app.command("reject")
@reports_errors
def reject(ctx: typer.Context, agreement_id: str, reason: Annotated[str, typer.Option()]) -> None:
    """Refuse a request, saying why (provider)."""
    _decide(ctx, agreement_id, "reject", reason)


@app.command("revoke")
@reports_errors
def revoke(ctx: typer.Context, agreement_id: str, reason: Annotated[str, typer.Option()]) -> None:
    """End an agreement, saying why (provider)."""
    _decide(ctx, agreement_id, "revoke", reason)


@app.command("terminate")
@reports_errors
def terminate(
    ctx: typer.Context, agreement_id: str, reason: Annotated[str, typer.Option()] = ""
) -> None:
    """End your own agreement (consumer)."""
    _decide(ctx, agreement_id, "terminate", reason)
