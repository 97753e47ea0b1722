"""The Python client for consumers (and providers): certificate, tokens, results as Arrow.

::

    from gateway.client import SluisClient

    with SluisClient("https://gateway.example:8443", ca_bundle="ca.pem",
                     cert_file="uni.pem", key_file="uni.key", client_id="NTRNL-40000001") as c:
        c.request_agreement("sensors", purpose="https://w3id.org/dpv#AcademicResearch")
        table = c.query("sensors", columns=["machine", "temp_c"], where=[("temp_c", "gt", 70)])
        table.to_pandas()          # when pandas is installed
        c.last_receipt.index       # the audit entry of that decision

The client holds the mTLS certificate, gets an access token bound to it (``tls_client_auth``
by default, or any authlib auth method such as :class:`~gateway.client.auth.FapiPrivateKeyJWT`)
and gets a new one shortly before it expires. Errors come out as :class:`SluisError` with
the server's problem type and detail.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pyarrow as pa
from pyarrow import ipc

from gateway.client._authlib import OAuth2Client, OAuthError
from gateway.client.diagnose import check_gateway_url, tls_context, unreachable

REFRESH_MARGIN = 30  # seconds before expiry a token is replaced
Where = tuple[str, str, Any]


class SluisError(Exception):
    """The gateway refused: ``status``, the problem ``type`` and its ``detail``."""

    def __init__(self, status: int, problem_type: str, detail: str) -> None:
        super().__init__(f"{status} {problem_type}: {detail}")
        self.status = status
        self.type = problem_type
        self.detail = detail


class GatewayUnreachable(SluisError):
    """No answer from the gateway at all (status 0); ``detail`` says why, in one line."""

    def __init__(self, detail: str) -> None:
        super().__init__(0, "gateway-unreachable", detail)


@dataclass(frozen=True)
class Receipt:
    """Where the decision behind a data response sits in the audit log."""

    index: int
    tree_size: int
    checkpoint: bytes  # the signed note (C2SP checkpoint) that includes the entry


def _raise_for_problem(response: httpx.Response) -> None:
    if response.status_code < 400:  # noqa: PLR2004 - HTTP error range
        return
    try:
        body = response.json()
        problem, detail = str(body.get("type", "")), str(body.get("detail", ""))
    except ValueError:
        problem, detail = "", response.text[:200]
    raise SluisError(response.status_code, problem.removeprefix("urn:sluis:problem:"), detail)


def _query_body(
    *,
    columns: Sequence[str] = (),
    where: Iterable[Where] = (),
    group_by: Sequence[str] = (),
    aggregates: Sequence[tuple[str, str | None]] = (),
    limit: int | None = None,
    fmt: str,
) -> dict[str, Any]:
    return {
        "columns": list(columns),
        "where": [{"column": c, "op": op, "value": v} for c, op, v in where],
        "group_by": list(group_by),
        "aggregates": [{"func": f, "column": c} for f, c in aggregates],
        "limit": limit,
        "format": fmt,
    }


class SluisClient:
    """A consumer's (or provider's) session with one gateway."""

    def __init__(
        self,
        base_url: str,
        *,
        ca_bundle: str | Path,
        cert_file: str | Path,
        key_file: str | Path,
        client_id: str,
        auth: object = "none",
        scope: str | None = None,
        timeout: float = 60,
    ) -> None:
        self.base_url = check_gateway_url(base_url)
        now = datetime.now(UTC)
        context = tls_context(Path(ca_bundle), Path(cert_file), Path(key_file), now=now)
        self._oauth = OAuth2Client(
            client_id=client_id, token_endpoint_auth_method=auth, verify=context, timeout=timeout
        )
        self._scope = scope
        self._expires_at = 0.0
        self.last_receipt: Receipt | None = None

    def __enter__(self) -> SluisClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._oauth.close()

    def _ensure_token(self) -> None:
        if time.time() < self._expires_at - REFRESH_MARGIN:
            return
        extra = {"scope": self._scope} if self._scope else {}
        try:
            token = self._oauth.fetch_token(
                f"{self.base_url}/oauth2/token", grant_type="client_credentials", **extra
            )
        except httpx.TransportError as exc:
            raise GatewayUnreachable(unreachable(exc, self.base_url)) from exc
        except OAuthError as exc:  # the token endpoint's answer: its error, said as the server did
            error = str(exc.error or "invalid_request")
            status = 401 if error == "invalid_client" else 400
            raise SluisError(
                status, f"oauth-{error.replace('_', '-')}", str(exc.description)
            ) from exc
        self._expires_at = time.time() + float(token.get("expires_in", 0))

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self._ensure_token()
        try:
            response: httpx.Response = self._oauth.request(
                method, f"{self.base_url}{path}", **kwargs
            )
        except httpx.TransportError as exc:
            raise GatewayUnreachable(unreachable(exc, self.base_url)) from exc
        _raise_for_problem(response)
        return response

    def whoami(self) -> dict[str, Any]:
        """Who the gateway says this certificate is."""
        return dict(self._call("GET", "/v1/whoami").json())

    def catalog(self) -> list[dict[str, Any]]:
        """The datasets in the catalog (DCAT entries)."""
        return list(self._call("GET", "/v1/catalog").json()["dcat:dataset"])

    def request_agreement(self, dataset: str, *, purpose: str) -> dict[str, Any]:
        """Ask for access to ``dataset`` for ``purpose`` (an IRI).

        While you have a requested or active agreement for the dataset, that one comes back.
        """
        body = {"dataset": dataset, "purpose": purpose}
        return dict(self._call("POST", "/v1/agreements", json=body).json())

    def agreements(self) -> list[dict[str, Any]]:
        """Agreements this participant is party to."""
        return list(self._call("GET", "/v1/agreements").json())

    def privacy_budget(self, dataset: str) -> dict[str, Any]:
        """Your privacy budget for ``dataset``: epsilon per period, spent, remaining.

        Nothing is spent by asking; ``no-privacy-budget`` when the policy sets none.
        """
        return dict(self._call("GET", f"/v1/datasets/{dataset}/privacy-budget").json())

    def decide_agreement(self, agreement_id: str, action: str, reason: str = "") -> dict[str, Any]:
        """approve | reject | revoke (provider) or terminate (consumer)."""
        path = f"/v1/agreements/{agreement_id}/{action}"
        body = {} if action == "approve" else {"reason": reason}
        return dict(self._call("POST", path, json=body if body else None).json())

    def query(
        self,
        dataset: str,
        *,
        columns: Sequence[str] = (),
        where: Iterable[Where] = (),
        group_by: Sequence[str] = (),
        aggregates: Sequence[tuple[str, str | None]] = (),
        limit: int | None = None,
    ) -> pa.Table:
        """Run a query; the result as a pyarrow Table (``.to_pandas()`` with pandas)."""
        body = _query_body(
            columns=columns, where=where, group_by=group_by, aggregates=aggregates, limit=limit,
            fmt="arrow",
        )  # fmt: skip
        response = self._call("POST", f"/v1/datasets/{dataset}/query", json=body)
        self.last_receipt = _receipt(response)
        return ipc.open_stream(io.BytesIO(response.content)).read_all()

    def fetch(
        self,
        dataset: str,
        out: Path,
        *,
        fmt: str = "parquet",
        columns: Sequence[str] = (),
        where: Iterable[Where] = (),
        group_by: Sequence[str] = (),
        aggregates: Sequence[tuple[str, str | None]] = (),
        limit: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Receipt:
        """Stream a query's result into ``out`` (``fmt``: parquet, csv, jsonl, arrow).

        ``group_by`` and ``aggregates`` (``("avg", "temp_c")``, ``("count", None)``) ask for
        aggregates, as :meth:`query` does: what an aggregates-only dataset answers.
        """
        self._ensure_token()
        body = _query_body(
            columns=columns, where=where, group_by=group_by, aggregates=aggregates, limit=limit,
            fmt=fmt,
        )  # fmt: skip
        url = f"{self.base_url}/v1/datasets/{dataset}/query"
        partial = out.with_name(out.name + ".part")
        try:
            with self._oauth.stream("POST", url, json=body) as response:
                if response.status_code >= 400:  # noqa: PLR2004 - HTTP error range
                    response.read()
                    _raise_for_problem(response)
                receipt = _receipt(response)
                with partial.open("wb") as handle:
                    for chunk in response.iter_bytes():
                        handle.write(chunk)
                        if progress is not None:
                            progress(len(chunk))
        except httpx.TransportError as exc:
            raise GatewayUnreachable(unreachable(exc, self.base_url)) from exc
        partial.replace(out)
        self.last_receipt = receipt
        return receipt

    # -- the Dataspace Protocol, through this (the consumer's) gateway ----------------------

    def dsp_catalog(self, provider: str, dataset: str | None = None) -> dict[str, Any]:
        """Another provider's DSP Catalog (or one ``dataset`` of it), fetched by this gateway.

        ``provider`` is the provider gateway's base URL (``https://host:port``); its
        ``/.well-known/dspace-version`` names the DSP path.
        """
        body = {"provider": provider} | ({"dataset": dataset} if dataset else {})
        return dict(self._call("POST", "/v1/dsp/catalog", json=body).json())

    def dsp_negotiate(
        self,
        provider: str,
        dataset: str,
        *,
        provider_participant: str | None = None,
        purpose: str | None = None,
    ) -> dict[str, Any]:
        """Negotiate a contract on ``dataset`` with its current Offer (the negotiation);
        ``purpose`` (an IRI) narrows the Offer's ``odrl:purpose`` to the one you ask for."""
        body = {"provider": provider, "dataset": dataset}
        if provider_participant:
            body["provider_participant"] = provider_participant
        if purpose:
            body["purpose"] = purpose
        return dict(self._call("POST", "/v1/dsp/negotiations", json=body).json())

    def dsp_negotiation(self, pid: str) -> dict[str, Any]:
        """One of your consumer-side negotiations (by its consumerPid)."""
        return dict(self._call("GET", f"/v1/dsp/negotiations/{pid}").json())

    def dsp_transfer(self, negotiation: str) -> dict[str, Any]:
        """Ask for an HTTP-pull transfer under a FINALIZED negotiation (the transfer)."""
        body = {"negotiation": negotiation}
        return dict(self._call("POST", "/v1/dsp/transfers", json=body).json())

    def dsp_transfer_status(self, pid: str) -> dict[str, Any]:
        """One of your consumer-side transfers (by its consumerPid)."""
        return dict(self._call("GET", f"/v1/dsp/transfers/{pid}").json())

    def dsp_complete(self, pid: str) -> dict[str, Any]:
        """Tell the provider the transfer is done (COMPLETED; its token revoked there)."""
        return dict(self._call("POST", f"/v1/dsp/transfers/{pid}/completion").json())

    def dsp_terminate(
        self, pid: str, *, transfer: bool = False, reason: str = ""
    ) -> dict[str, Any]:
        """End your negotiation (or ``transfer``): TERMINATED here, then the provider is told."""
        path = f"/v1/dsp/{'transfers' if transfer else 'negotiations'}/{pid}/termination"
        body = {"reason": reason} if reason else {}
        return dict(self._call("POST", path, json=body).json())

    def dsp_wait(
        self,
        pid: str,
        states: Iterable[str],
        *,
        transfer: bool = False,
        timeout: float = 30,
        interval: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        """Poll the negotiation (or ``transfer``) until its state is one of ``states``, or a
        final one; SluisError ``dsp-wait-timeout`` after ``timeout`` seconds of polling."""
        wanted = {*states, "TERMINATED"}
        read = self.dsp_transfer_status if transfer else self.dsp_negotiation
        for _ in range(max(1, int(timeout / interval))):
            found = read(pid)
            if found["state"] in wanted:
                return found
            sleep(interval)
        raise SluisError(0, "dsp-wait-timeout", f"{pid} is still {found['state']}")

    def dsp_pull(
        self,
        pid: str,
        out: Path,
        *,
        fmt: str = "parquet",
        columns: Sequence[str] = (),
        where: Iterable[Where] = (),
        limit: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Receipt:
        """Pull a query's result through a STARTED transfer into ``out``; the provider's
        receipt (where its decision sits in the provider's audit log)."""
        self._ensure_token()
        body = _query_body(columns=columns, where=where, limit=limit, fmt=fmt)
        url = f"{self.base_url}/v1/dsp/transfers/{pid}/pull"
        partial = out.with_name(out.name + ".part")
        try:
            with self._oauth.stream("POST", url, json=body) as response:
                if response.status_code >= 400:  # noqa: PLR2004 - HTTP error range
                    response.read()
                    _raise_for_problem(response)
                receipt = _receipt(response, prefix="sluis-provider-audit-")
                with partial.open("wb") as handle:
                    for chunk in response.iter_bytes():
                        handle.write(chunk)
                        if progress is not None:
                            progress(len(chunk))
        except httpx.TransportError as exc:
            raise GatewayUnreachable(unreachable(exc, self.base_url)) from exc
        partial.replace(out)
        return receipt


def _receipt(response: httpx.Response, prefix: str = "sluis-audit-") -> Receipt:
    return Receipt(
        index=int(response.headers[prefix + "index"]),
        tree_size=int(response.headers[prefix + "tree-size"]),
        checkpoint=base64.b64decode(response.headers[prefix + "checkpoint"]),
    )
