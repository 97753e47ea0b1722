"""Transfer processes, provider side, HTTP-pull over the Sluis data endpoint.

A TransferRequestMessage names the Agreement of a FINALIZED negotiation
(``urn:sluis:agreement:<id>``) of the caller, still an active Sluis agreement, and the format
``HttpData-PULL``. Sluis then starts it: a new Sluis access token, minted as the token
endpoint mints one (RFC 9068, ``cnf.x5t#S256``) for the consumer's registered, active OAuth
client with the scope ``dataset:<id>`` (which the client's registered scopes must include),
**bound to the certificate that made the transfer request**; the TransferStartMessage
carries it in a DataAddress whose endpoint is the dataset's Sluis data endpoint. The start
commits with a ``token-issued`` entry (the token as its hash), the token's jti and the
message in the outbox (without its token), then the message goes to the callback. A start
message re-sent from the outbox after a restart carries a new token, minted for the same
certificate and committed with its own entry, the undelivered one revoked (:meth:`reissue`).
Every data request made with the token is still decided
against the policy and audited before data leaves: the token only gets the consumer to the
exchange. Suspension, completion and termination revoke the token in the same transaction
as the state change and its entry.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.admin.changes import commit
from gateway.agreements.service import AgreementService
from gateway.audit.entry import Actor, AuditEntry, DecisionRecord, hash_token
from gateway.audit.log import AuditLog
from gateway.auth import tokens
from gateway.dsp import repository as negotiations
from gateway.dsp import transfer_repository as repository
from gateway.dsp.callbacks import Callbacks, check
from gateway.dsp.messages import HTTP_PULL, MalformedMessage, context, read
from gateway.dsp.outbox import Outbox, Outgoing
from gateway.dsp.outgoing import AGREEMENT_PREFIX
from gateway.dsp.states import InvalidTransition
from gateway.dsp.transfer_states import TransferMove, after
from gateway.errors import BadRequest, Forbidden, NotFound
from gateway.oauth import repository as oauth_repo
from gateway.oauth.service import OAuthService
from gateway.participants.service import AuthenticatedParticipant
from gateway.storage.db import Database
from gateway.storage.models import DspOutboxRow, DspTransferRow
from gateway.telemetry import current_trace_id

log = logging.getLogger("sluis.dsp")
ENDING = {"suspension", "completion", "termination"}
SYSTEM = Actor()  # the gateway itself: a start message re-sent from the outbox


class TransferNotFound(NotFound):
    """No such transfer, or not the caller's (DSP: 404 either way)."""

    def __init__(self, pid: str) -> None:
        super().__init__("dsp-transfer-not-found", "no such transfer process")
        self.dsp_pids = {"providerPid": pid[:80]}  # read by gateway.http.problems


class NoClient(BadRequest):
    """The consumer has no active OAuth client that may hold the dataset's scope (400)."""

    def __init__(self, client_id: str, scope: str, given: dict[str, str]) -> None:
        super().__init__(
            "dsp-no-client", f"register an active OAuth client {client_id} with the scope {scope}"
        )
        self.dsp_pids = given  # read by gateway.http.problems


def pids(row: DspTransferRow) -> dict[str, str]:
    """The process ids every message and error carries."""
    return {"providerPid": row.provider_pid, "consumerPid": row.consumer_pid}


def process(row: DspTransferRow) -> dict[str, Any]:
    """The TransferProcess object."""
    return {"@context": context(), "@type": "TransferProcess", **pids(row), "state": row.state}


def start_message(
    row: DspTransferRow, endpoint: str, token: str, expires_in: int
) -> dict[str, Any]:
    """The TransferStartMessage: where to pull and with which (bound) token."""
    properties = [
        ("authorization", f"Bearer {token}"),
        ("authType", "bearer"),
        ("expiresIn", str(expires_in)),
        ("certificateBound", "x5t#S256"),
    ]
    return {
        "@context": context(),
        "@type": "TransferStartMessage",
        **pids(row),
        "dataAddress": {
            "@type": "DataAddress",
            "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
            "endpoint": endpoint,
            "endpointProperties": [
                {"@type": "EndpointProperty", "name": n, "value": v} for n, v in properties
            ],
        },
    }


def _entry(
    actor: Actor, row: DspTransferRow, move: str, to: str, now: datetime, *, token: str | None
) -> AuditEntry:
    return AuditEntry(
        time=now,
        event="token-issued" if token else "agreement-changed",
        actor=actor,
        dataset=row.dataset_id,
        action=f"dsp-transfer-{move}",
        target=f"dsp-transfer:{row.provider_pid}",
        token_sha256=hash_token(token) if token else None,
        decision=DecisionRecord(
            result="permit",
            reasons=(
                to,
                f"agreement:{row.agreement_id}",
                f"scope=dataset:{row.dataset_id}" if token else "token revoked",
            ),
        ),
        trace_id=current_trace_id(),
    )


class TransferService:
    """Provider-side HTTP-pull transfers: persisted, audited, a bound Sluis token each."""

    def __init__(
        self,
        db: Database,
        agreements: AgreementService,
        oauth: OAuthService,
        audit: AuditLog,
        callbacks: Callbacks,
        *,
        outbox: Outbox,
        public_url: str,
        lifetime: timedelta,
    ) -> None:
        self.db = db
        self.agreements = agreements
        self.oauth = oauth
        self.audit = audit
        self.callbacks = callbacks
        self.outbox = outbox
        outbox.reissue = self.reissue
        self.public_url = public_url
        self.lifetime = lifetime

    async def request(
        self, caller: AuthenticatedParticipant, raw: bytes, *, now: datetime, actor: Actor
    ) -> DspTransferRow:
        """A TransferRequestMessage: a new transfer, REQUESTED (201)."""
        fields = ("consumerPid", "agreementId", "format", "callbackAddress")
        message = read(raw, "TransferRequestMessage", strings=fields)
        given = {"consumerPid": message["consumerPid"]}
        if message["format"] != HTTP_PULL:
            raise BadRequest("dsp-format-unsupported", f"Sluis offers {HTTP_PULL} only")
        agreement_id = str(message["agreementId"])
        if not agreement_id.startswith(AGREEMENT_PREFIX):
            raise MalformedMessage("agreementId is not an Agreement of this provider", pids=given)
        agreement = await self.agreements.get_for(agreement_id.removeprefix(AGREEMENT_PREFIX),
                                                  caller)  # fmt: skip
        if agreement.consumer_id != caller.participant.id:
            raise Forbidden("not-your-agreement", "only the agreement's consumer may transfer")
        await self._check_finalized(agreement.id, caller.participant.id, agreement.state)
        await self._client(caller.participant.id, agreement.dataset_id, given)  # 400 now, not later
        await check(message["callbackAddress"], self.callbacks.allowed, pids=given)
        row = DspTransferRow(
            provider_pid=f"urn:uuid:{uuid.uuid4()}", consumer_pid=message["consumerPid"],
            consumer_id=caller.participant.id, agreement_id=agreement.id,
            dataset_id=agreement.dataset_id, format=HTTP_PULL,
            callback_address=message["callbackAddress"], state="REQUESTED", token_jti=None,
            token_expires_at=None, reason=None, created_at=now, updated_at=now,
        )  # fmt: skip
        entry = _entry(actor, row, "request", "REQUESTED", now, token=None)

        async def change(session: AsyncSession) -> DspTransferRow:
            session.add(row)
            await session.flush()
            return row

        return await commit(self.audit, entry, change)

    async def _check_finalized(self, agreement_id: str, consumer_id: str, state: str) -> None:
        async with self.db.session() as session:
            found = await negotiations.finalized_for(session, agreement_id, consumer_id)
        if not found or state != "active":
            raise BadRequest(
                "dsp-agreement-unusable",
                "the agreement is not the active result of a FINALIZED negotiation",
            )

    async def get_for(self, caller: AuthenticatedParticipant, pid: str) -> DspTransferRow:
        """The caller's transfer; TransferNotFound for an unknown one or someone else's."""
        async with self.db.session() as session:
            row = await repository.get(session, pid[:80])
        if row is None or row.consumer_id != caller.participant.id:
            raise TransferNotFound(pid)
        return row

    async def start(
        self,
        row: DspTransferRow,
        holder: AuthenticatedParticipant,
        chain: Sequence[x509.Certificate],
        *,
        actor: Actor,
    ) -> DspTransferRow:
        """Issue a bound token and move to STARTED (committed with its entry); then send the
        TransferStartMessage. The token never exists without its entry."""
        now = datetime.now(UTC)
        to = after(row.state, "start", pids=pids(row))
        client = await self._client(holder.participant.id, row.dataset_id, pids(row))
        thumbprint = holder.certificate.thumbprint_sha256
        jti, token, expires_in = self._mint(client, row.dataset_id, thumbprint, now)
        expires_at = now + timedelta(seconds=expires_in)
        message = start_message(row, self._endpoint(row), token, expires_in)
        entry = _entry(actor, row, "start", to, now, token=token)
        stored: list[int] = []
        started = await self._commit(
            row, "start", to, entry, now, jti=jti, expires_at=expires_at,
            outbox=(_stored(row, message, thumbprint), stored),
        )  # fmt: skip
        await self._remember(holder, chain, expires_at, now)
        await self.outbox.deliver(stored[-1], message)  # the last run's: effects may rerun
        return started

    def _mint(
        self, client: str, dataset_id: str, thumbprint: str, now: datetime
    ) -> tuple[str, str, int]:
        """A new bound token for ``dataset:<id>``: (jti, token, seconds it lives)."""
        jti = secrets.token_urlsafe(24)
        token, expires_in = tokens.mint(
            key=self.oauth.keyring.key, alg=self.oauth.keyring.alg, issuer=self.oauth.issuer,
            client_id=client, audience=self.oauth.audience,
            scopes=frozenset({f"dataset:{dataset_id}"}), thumbprint=thumbprint, jti=jti,
            now=now, lifetime=self.lifetime,
        )  # fmt: skip
        return jti, token, expires_in

    def _endpoint(self, row: DspTransferRow) -> str:
        return f"{self.public_url}/v1/datasets/{row.dataset_id}/query"

    async def reissue(self, stored: DspOutboxRow) -> dict[str, Any] | None:
        """A start message re-sent from the outbox: a new token for the certificate the
        undelivered one was bound to, committed with its entry and the old token's
        revocation. None (not sent) unless the transfer is still STARTED, the client may
        still hold the scope and the certificate is still known."""
        thumbprint = stored.token_thumbprint or ""
        async with self.db.session() as session:
            row = await repository.get(session, stored.process.removeprefix("dsp-transfer:"))
            chain = await oauth_repo.bound_chain(session, thumbprint)
        if row is None or row.state != "STARTED" or chain is None:
            return None
        try:
            client = await self._client(row.consumer_id, row.dataset_id, pids(row))
        except NoClient:
            return None
        now = datetime.now(UTC)
        jti, token, expires_in = self._mint(client, row.dataset_id, thumbprint, now)
        expires_at = now + timedelta(seconds=expires_in)
        entry = _entry(SYSTEM, row, "resend", "STARTED", now, token=token)
        await self._commit(row, "resend", "STARTED", entry, now, jti=jti, expires_at=expires_at)
        async with self.db.session() as session:
            await oauth_repo.remember_certificate(session, thumbprint, chain, expires_at, now)
        return start_message(row, self._endpoint(row), token, expires_in)

    async def _client(self, client_id: str, dataset_id: str, given: dict[str, str]) -> str:
        """The consumer's registered, active client that may hold ``dataset:<id>``."""
        async with self.db.session() as session:
            client = await oauth_repo.get_client(session, client_id)
        scope = f"dataset:{dataset_id}"
        if client is None or client.status != "active" or scope not in client.scopes:
            raise NoClient(client_id, scope, given)
        return client_id

    async def _remember(
        self,
        holder: AuthenticatedParticipant,
        chain: Sequence[x509.Certificate],
        expires_at: datetime,
        now: datetime,
    ) -> None:
        """Keep the bound certificate for introspection, as the token endpoint does."""
        pem = "".join(cert.public_bytes(Encoding.PEM).decode() for cert in chain)
        async with self.db.session() as session:
            await oauth_repo.remember_certificate(
                session, holder.certificate.thumbprint_sha256, pem, expires_at, now
            )

    async def consumer_message(
        self,
        caller: AuthenticatedParticipant,
        pid: str,
        raw: bytes,
        kind: str,
        move: TransferMove,
        *,
        actor: Actor,
    ) -> DspTransferRow:
        """A consumer's suspension, completion or termination (``start`` is :meth:`start`)."""
        message = read(raw, kind, strings=("providerPid", "consumerPid"))
        row = await self.get_for(caller, pid)
        if message["providerPid"] != pid or message["consumerPid"] != row.consumer_pid:
            raise MalformedMessage("providerPid and consumerPid must name this transfer",
                                   pids=pids(row))  # fmt: skip
        if move == "start":
            after(row.state, "start", pids=pids(row))  # refused before anything else
            return row
        now = datetime.now(UTC)
        to = after(row.state, move, pids=pids(row))
        return await self._commit(row, move, to, _entry(actor, row, move, to, now, token=None), now)

    async def _commit(
        self,
        row: DspTransferRow,
        move: str,
        to: str,
        entry: AuditEntry,
        now: datetime,
        *,
        jti: str | None = None,
        expires_at: datetime | None = None,
        outbox: tuple[Outgoing, list[int]] | None = None,
    ) -> DspTransferRow:
        """The move, the old token's revocation, the entry and the message to send (its
        outbox id appended to ``outbox[1]``), in one transaction."""
        seen, old_jti, old_expiry = row.state, row.token_jti, row.token_expires_at

        async def change(session: AsyncSession) -> DspTransferRow:
            if not await repository.move(session, row.provider_pid, seen, to, jti_seen=old_jti,
                                         jti=jti, expires_at=expires_at, now=now):  # fmt: skip
                raise InvalidTransition(
                    f"the transfer changed meanwhile: {move} is not allowed", pids=pids(row)
                )
            if old_jti is not None and old_expiry is not None and old_expiry > now:
                await oauth_repo.revoke(session, old_jti, old_expiry, now)
            if outbox is not None:
                outbox[1].append(await outbox[0].put(session, now))
            found = await repository.get(session, row.provider_pid)
            assert found is not None  # noqa: S101 - transfers are never deleted
            await session.refresh(found)
            return found

        return await commit(self.audit, entry, change)


def _stored(row: DspTransferRow, message: dict[str, Any], thumbprint: str) -> Outgoing:
    """The start message as the outbox keeps it: without the token (never stored)."""
    address = dict(message["dataAddress"])
    address["endpointProperties"] = [
        p for p in address["endpointProperties"] if p["name"] != "authorization"
    ]
    return Outgoing(
        process=f"dsp-transfer:{row.provider_pid}",
        dataset_id=row.dataset_id,
        address=row.callback_address,
        path=f"transfers/{row.consumer_pid}/start",
        message={**message, "dataAddress": address},
        token_thumbprint=thumbprint,
    )
