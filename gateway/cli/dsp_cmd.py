"""``sluis dsp``: the Dataspace Protocol as a consumer, through your own Sluis gateway.

Your gateway (``--gateway``, where you are a participant with the ``consumer`` role) talks
DSP to the provider's gateway as itself: it browses the provider's catalog, negotiates,
asks for an HTTP-pull transfer and pulls. Every failure is one line and a non-zero exit.

::

    sluis dsp catalog https://maker.example:8443
    sluis dsp negotiate https://maker.example:8443 machines      # waits for FINALIZED
    sluis dsp transfer urn:uuid:...                               # waits for STARTED
    sluis dsp pull urn:uuid:... --out machines.parquet --columns machine
    sluis dsp complete urn:uuid:...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from gateway.cli.output import CliError, JsonOption, console, print_json, reports_errors, table
from gateway.client import GatewayUnreachable, SluisClient, SluisError
from gateway.exchange.schemas import parse_where

app = typer.Typer(
    help="The Dataspace Protocol as a consumer: browse, negotiate, transfer, pull.",
    no_args_is_help=True,
    add_completion=False,
)
T = TypeVar("T")

Gateway = Annotated[
    str, typer.Option(envvar="SLUIS_GATEWAY_URL", help="your gateway: https://host:port")
]
Ca = Annotated[Path, typer.Option(envvar="SLUIS_CA_BUNDLE", help="CA bundle (PEM)")]
Cert = Annotated[Path, typer.Option(envvar="SLUIS_CLIENT_CERT", help="your certificate")]
Key = Annotated[Path, typer.Option(envvar="SLUIS_CLIENT_KEY", help="your private key")]
ClientId = Annotated[str, typer.Option(envvar="SLUIS_CLIENT_ID", help="your participant id")]
Provider = Annotated[str, typer.Argument(help="the provider's gateway: https://host:port")]
Wait = Annotated[
    float, typer.Option(min=0, help="seconds to wait for the next state (0: do not wait)")
]


@contextmanager
def _session(
    gateway: str, ca: Path, cert: Path, key: Path, client_id: str
) -> Iterator[SluisClient]:
    """A session with your gateway; the SDK's errors as one-line CLI errors."""
    try:
        with SluisClient(gateway, ca_bundle=ca, cert_file=cert, key_file=key,
                         client_id=client_id) as client:  # fmt: skip
            yield client
    except GatewayUnreachable as exc:
        raise CliError(exc.detail) from exc
    except SluisError as exc:
        raise CliError(f"{exc.status} {exc.type}: {exc.detail}".strip()) from exc


def _show(found: dict[str, Any], as_json: bool, keys: tuple[str, ...]) -> None:
    if as_json:
        print_json(found)
        return
    out = table("field", "value")
    for name in keys:
        if found.get(name) is not None:
            out.add_row(name, str(found[name]))
    console.print(out)


NEGOTIATION = ("consumerPid", "providerPid", "provider", "dataset", "state", "agreementId",
               "reason")  # fmt: skip
TRANSFER = ("consumerPid", "providerPid", "negotiation", "dataset", "state", "endpoint",
            "tokenExpiresAt", "reason")  # fmt: skip


def _waited(
    client: SluisClient, found: dict[str, Any], states: set[str], wait: float, *, transfer: bool
) -> dict[str, Any]:
    if wait <= 0 or found["state"] in states:
        return found
    return client.dsp_wait(found["consumerPid"], states, transfer=transfer, timeout=wait)


def _ended(found: dict[str, Any], wanted: str) -> None:
    if found["state"] == "TERMINATED":
        raise CliError(f"{found['consumerPid']} TERMINATED: {found.get('reason') or 'no reason'}")
    if found["state"] != wanted:
        console.print(f"{found['consumerPid']} is {found['state']} (not {wanted} yet)")


Where = tuple[str, Path, Path, Path, str]  # gateway, CA bundle, certificate, key, client id


def _run(where: Where, action: Callable[[SluisClient], T]) -> T:
    with _session(*where) as client:
        return action(client)


@app.command("catalog")
@reports_errors
def catalog(
    provider: Provider, *, gateway: Gateway, ca: Ca, cert: Cert, key: Key, client_id: ClientId,
    dataset: Annotated[str | None, typer.Option(help="one dataset, with its Offer")] = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """The provider's DSP catalog: each dataset and the @id of its Offer."""
    found = _run((gateway, ca, cert, key, client_id),
                 lambda c: c.dsp_catalog(provider, dataset))  # fmt: skip
    if as_json:
        print_json(found)
        return
    entries = [found] if dataset else found.get("dataset", [])
    out = table("dataset", "title", "offer")
    for entry in entries:
        offers = entry.get("hasPolicy") or [{}]
        out.add_row(str(entry.get("@id")), str(entry.get("dct:title", "")),
                    str(offers[0].get("@id", "")))  # fmt: skip
    console.print(out)


@app.command("negotiate")
@reports_errors
def negotiate(
    provider: Provider,
    dataset: Annotated[str, typer.Argument(help="the dataset's id in the provider's catalog")],
    *, gateway: Gateway, ca: Ca, cert: Cert, key: Key, client_id: ClientId,
    provider_participant: Annotated[str | None, typer.Option(
        help="the participant (in your gateway's registry) the provider calls back as; "
        "default the Dataset's publisher")] = None,
    purpose: Annotated[str | None, typer.Option(
        help="the purpose you ask for (an IRI), when the Offer allows several")] = None,
    wait: Wait = 30, as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Negotiate a contract on DATASET with its current Offer; waits for FINALIZED."""

    def act(client: SluisClient) -> dict[str, Any]:
        asked = client.dsp_negotiate(provider, dataset, provider_participant=provider_participant,
                                     purpose=purpose)  # fmt: skip
        return _waited(client, asked, {"FINALIZED"}, wait, transfer=False)

    found = _run((gateway, ca, cert, key, client_id), act)
    _show(found, as_json, NEGOTIATION)
    _ended(found, "FINALIZED")


@app.command("negotiation")
@reports_errors
def negotiation(
    pid: Annotated[str, typer.Argument(help="the negotiation's consumerPid")],
    *, gateway: Gateway, ca: Ca, cert: Cert, key: Key, client_id: ClientId,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """One of your negotiations."""
    _show(_run((gateway, ca, cert, key, client_id), lambda c: c.dsp_negotiation(pid)), as_json,
          NEGOTIATION)  # fmt: skip


@app.command("transfer")
@reports_errors
def transfer(
    negotiation_pid: Annotated[str, typer.Argument(help="a FINALIZED negotiation's consumerPid")],
    *, gateway: Gateway, ca: Ca, cert: Cert, key: Key, client_id: ClientId,
    wait: Wait = 30, as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Ask for an HTTP-pull transfer under a FINALIZED negotiation; waits for STARTED."""

    def act(client: SluisClient) -> dict[str, Any]:
        return _waited(client, client.dsp_transfer(negotiation_pid), {"STARTED"}, wait,
                       transfer=True)  # fmt: skip

    found = _run((gateway, ca, cert, key, client_id), act)
    _show(found, as_json, TRANSFER)
    _ended(found, "STARTED")


@app.command("status")
@reports_errors
def status(
    pid: Annotated[str, typer.Argument(help="the transfer's consumerPid")],
    *, gateway: Gateway, ca: Ca, cert: Cert, key: Key, client_id: ClientId,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """One of your transfers (never its token)."""
    _show(_run((gateway, ca, cert, key, client_id), lambda c: c.dsp_transfer_status(pid)),
          as_json, TRANSFER)  # fmt: skip


@app.command("pull")
@reports_errors
def pull(
    pid: Annotated[str, typer.Argument(help="a STARTED transfer's consumerPid")],
    out: Annotated[Path, typer.Option("--out", "-o", help="file to write")],
    *, gateway: Gateway, ca: Ca, cert: Cert, key: Key, client_id: ClientId,
    fmt: Annotated[str, typer.Option("--format", help="parquet | csv | jsonl | arrow")] = "parquet",
    columns: Annotated[str, typer.Option(help="comma-separated columns")] = "",
    where: Annotated[list[str] | None, typer.Option(help="column,op,value (repeat)")] = None,
    limit: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:  # fmt: skip
    """Pull a query's result through the transfer into --out (decided by the provider)."""
    try:
        predicates = [(p.column, p.op.value, p.value) for p in parse_where(where or [])]
    except ValueError as exc:
        raise CliError(str(exc).splitlines()[0]) from exc
    receipt = _run((gateway, ca, cert, key, client_id), lambda c: c.dsp_pull(
        pid, out, fmt=fmt, columns=[c for c in columns.split(",") if c], where=predicates,
        limit=limit))  # fmt: skip
    console.print(f"wrote {out} ({out.stat().st_size:,} bytes); the provider's audit entry "
                  f"{receipt.index} of {receipt.tree_size}")  # fmt: skip


@app.command("complete")
@reports_errors
def complete(
    pid: Annotated[str, typer.Argument(help="a STARTED transfer's consumerPid")],
    *, gateway: Gateway, ca: Ca, cert: Cert, key: Key, client_id: ClientId,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Tell the provider you are done: COMPLETED (the token is revoked there)."""
    _show(_run((gateway, ca, cert, key, client_id), lambda c: c.dsp_complete(pid)), as_json,
          TRANSFER)  # fmt: skip


@app.command("terminate")
@reports_errors
def terminate(
    pid: Annotated[str, typer.Argument(help="the negotiation's (or --transfer's) consumerPid")],
    *, gateway: Gateway, ca: Ca, cert: Cert, key: Key, client_id: ClientId,
    transfer: Annotated[bool, typer.Option("--transfer", help="PID is a transfer")] = False,
    reason: Annotated[str, typer.Option(help="why (sent to the provider)")] = "",
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """End a negotiation (before FINALIZED) or a transfer: TERMINATED, the provider told."""
    found = _run((gateway, ca, cert, key, client_id),
                 lambda c: c.dsp_terminate(pid, transfer=transfer, reason=reason))  # fmt: skip
    _show(found, as_json, TRANSFER if transfer else NEGOTIATION)
