"""The authorization server's operations: token, resource-server check, revoke, introspect.

The resource server and introspection ask one question, :meth:`OAuthService.usable`: is
this token usable now by the participant holding the certificate it is bound to? It is,
when the holder's certificate verifies and its participant is active (the holder is made
only by gateway/oauth/holders.py), the token verifies against that certificate
(gateway/auth/tokens.py), it names that participant as its client, it is not revoked, and
the client is registered and active. The resource server takes the holder from the
connection; introspection takes it from the certificate remembered when the token was
issued. The revoked tokens and the clients come from the in-memory registry
(gateway/registry.py): current in this process from the next request, in every replica
within its bound (1 s), or the question is refused (503).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from certs import CertificateRejected, load_pem_chain
from gateway.admin.changes import change_entry, commit
from gateway.audit.entry import Actor, hash_token
from gateway.audit.log import AuditLog
from gateway.auth import tokens
from gateway.auth.assertions import VerifiedAssertion
from gateway.auth.jose import OWN_TOKEN_ALGS, JoseInputError, peek
from gateway.auth.tokens import AccessClaims, TokenRejected, TrustedIssuer
from gateway.errors import Forbidden
from gateway.oauth import repository
from gateway.oauth.clients import ClientService
from gateway.oauth.external import ExternalIssuers
from gateway.oauth.holders import verified_holder
from gateway.oauth.keyring import KeyRing
from gateway.oauth.parties import PartyRefused
from gateway.oauth.satellite import Satellite
from gateway.oauth.server import (
    Response,
    SigningState,
    SluisAuthorizationServer,
    SluisOAuth2Request,
)
from gateway.participants.service import AuthenticatedParticipant, ParticipantService
from gateway.registry import registry_of
from gateway.storage.db import Database
from gateway.storage.models import UsedAssertionRow
from gateway.trust import TrustMaterial


class _AlreadyRevoked(Exception):  # an answer carried out of an effect: nothing to change
    """Another revocation of the same token committed first."""


@dataclass(frozen=True, slots=True)
class TokenCaller:
    """A request that carried a valid access token bound to its client certificate."""

    participant: AuthenticatedParticipant
    claims: AccessClaims


class OAuthService:
    """Everything the OAuth endpoints and the resource-server check need."""

    def __init__(
        self,
        db: Database,
        server: SluisAuthorizationServer,
        keyring: KeyRing,
        clients: ClientService,
        external: ExternalIssuers,
        *,
        audit: AuditLog,
        satellite: Satellite | None = None,
    ) -> None:
        self.db = db
        self.audit = audit
        self.satellite = satellite  # iSHARE parties are checked there when set
        self.server = server
        self.keyring = keyring
        self.clients = clients
        self.external = external
        self.participants = ParticipantService(db)
        self.issuer = server.config.issuer
        self.audience = server.config.resources[0]
        self.verified = tokens.VerifiedTokens()  # signatures verified in this process

    async def token(
        self,
        caller: AuthenticatedParticipant,
        form: Mapping[str, str],
        headers: Mapping[str, str],
        crls: Sequence[x509.CertificateRevocationList],
        now: datetime,
        *,
        chain: Sequence[x509.Certificate],
    ) -> Response:
        """Run the token endpoint; a client assertion's jti is spent before a token leaves.

        ``chain`` is the presented certificate chain (leaf first), remembered with the
        token's lifetime so that introspection can re-verify the certificate later.
        """
        client = await self.clients.find(caller.participant.id)
        signing = SigningState(self.keyring.key, self.keyring.alg, crls, now)
        request = SluisOAuth2Request(
            f"{self.issuer}/oauth2/token",
            form,
            headers,
            participant=caller,
            client=client,
            signing=signing,
        )
        status, body, response_headers = self.server.token(request)
        spent = request.assertion
        ok = status == 200  # noqa: PLR2004 - HTTP OK
        if ok and client is not None and client.auth_method == "ishare":
            signed_by = spent.certificate_sha256 if spent is not None else None
            refused = await self._satellite_refusal(client.client_id, crls, now, signed_by)
            if refused is not None:
                return (*refused, response_headers)
        if ok and spent is not None and not await self._spend(spent, now):
            replayed = {
                "error": "invalid_client",
                "error_description": "the client assertion was already used",
            }
            return 401, replayed, response_headers
        if ok:
            await self._remember(caller, chain, int(now.timestamp()) + int(body["expires_in"]), now)
        return status, body, response_headers

    async def _satellite_refusal(
        self,
        party_id: str,
        crls: Sequence[x509.CertificateRevocationList],
        now: datetime,
        certificate: bytes | None,
    ) -> tuple[int, dict[str, Any]] | None:
        """The refusal when the satellite does not show the party Active with the assertion's
        signing certificate (None: admitted)."""
        if self.satellite is None:
            return None
        try:
            await self.satellite.admit(party_id, crls, now=now, certificate=certificate)
        except PartyRefused as exc:
            if exc.unavailable:  # fail closed: no satellite answer, no token
                description = f"the iSHARE satellite could not be asked ({exc.code}: {exc.detail})"
                return 503, {"error": "temporarily_unavailable", "error_description": description}
            description = f"iSHARE satellite: {exc.code}: {exc.detail}"
            return 401, {"error": "invalid_client", "error_description": description}
        return None

    async def _remember(
        self,
        holder: AuthenticatedParticipant,
        chain: Sequence[x509.Certificate],
        exp: int,
        now: datetime,
    ) -> None:
        pem = "".join(cert.public_bytes(Encoding.PEM).decode() for cert in chain)
        thumbprint = holder.certificate.thumbprint_sha256
        expires_at = datetime.fromtimestamp(exp, UTC)
        for attempt in range(2):
            try:
                async with self.db.session() as session:
                    await repository.remember_certificate(session, thumbprint, pem, expires_at, now)
            except IntegrityError:  # another replica inserted it first: update theirs
                if attempt:
                    raise
            else:
                return

    async def _spend(self, assertion: VerifiedAssertion, now: datetime) -> bool:
        row = UsedAssertionRow(
            client_id=assertion.client_id,
            jti=assertion.jti,
            expires_at=datetime.fromtimestamp(assertion.expires_at, UTC),
        )
        try:
            async with self.db.session() as session:
                await repository.spend_assertion(session, row, now)
        except IntegrityError:
            return False
        return True

    async def trusted(self, issuer: str, kid: str | None, now: datetime) -> TrustedIssuer:
        """The keys to check a token from ``issuer`` with; TokenRejected for strangers."""
        if issuer == self.issuer:
            keys = await self.keyring.verification_keys(kid, now)
            return TrustedIssuer(issuer, keys, OWN_TOKEN_ALGS)
        if issuer in self.external:
            return await self.external.trusted(issuer, kid, now)
        raise TokenRejected("unknown-issuer", "the token's issuer is not trusted")

    async def check_bearer(
        self,
        token: str,
        caller: AuthenticatedParticipant,
        now: datetime,
        *,
        memo: tokens.VerifiedMemo | None = None,
    ) -> TokenCaller:
        """The resource-server check: the token must be usable by this connection's holder.

        ``memo``: the connection's last verified token (skips only its signature check)."""
        return await self.usable(token, caller, now, audience=self.audience, memo=memo)

    async def usable(
        self,
        token: str,
        holder: AuthenticatedParticipant,
        now: datetime,
        *,
        audience: str,
        memo: tokens.VerifiedMemo | None = None,
    ) -> TokenCaller:
        """Whether ``holder`` may use ``token`` for ``audience`` now; TokenRejected if not.

        ``holder`` must come from :func:`gateway.oauth.holders.verified_holder` at ``now``.
        """
        peeked = tokens.read(token)  # header and claims parsed once, not once per step
        issuer, kid = tokens.unverified_issuer(token, peeked=peeked)
        trusted = await self.trusted(issuer, kid, now)
        claims = tokens.check(
            token,
            {issuer: trusted},
            audience=audience,
            thumbprint=holder.certificate.thumbprint_sha256,
            now=now,
            memo=memo,
            verified=self.verified,
            peeked=peeked,
        )
        if claims.client_id != holder.participant.id:
            raise TokenRejected("wrong-client", "the token was issued to another client")
        registry, own = registry_of(self.db), issuer == self.issuer  # gateway/registry.py
        snapshot = await registry.current()
        if _client_refused(snapshot.clients.get(claims.client_id), own=own):
            snapshot = await registry.refresh()  # a refusal asks the database first
        if claims.jti in snapshot.revoked:
            raise TokenRejected("revoked", "the token has been revoked")
        _check_client(snapshot.clients.get(claims.client_id), own=own)
        return TokenCaller(holder, claims)

    async def _own_claims(self, token: str, now: datetime) -> AccessClaims | None:
        """Our own, unexpired token's claims (binding not compared), or None."""
        try:
            header, unverified = peek(token)
            cnf = unverified.get("cnf") or {}
            aud = unverified.get("aud")
            audience = aud[0] if isinstance(aud, list) and aud else aud
            if unverified.get("iss") != self.issuer or not isinstance(audience, str):
                return None
            keys = await self.keyring.verification_keys(header.get("kid"), now)
            trusted = {self.issuer: TrustedIssuer(self.issuer, keys, OWN_TOKEN_ALGS)}
            thumbprint = str(cnf.get("x5t#S256", "")) if isinstance(cnf, dict) else ""
            return tokens.check(token, trusted, audience=audience, thumbprint=thumbprint, now=now)
        except (TokenRejected, JoseInputError):
            return None

    @staticmethod
    def _may_see(caller: AuthenticatedParticipant, claims: AccessClaims) -> bool:
        return claims.client_id == caller.participant.id or "operator" in caller.effective_roles

    async def revoke(self, token: str, caller: AuthenticatedParticipant, now: datetime) -> None:
        """RFC 7009: revoke one of our tokens (its client or an operator may); else do nothing.

        The revocation commits with its ``admin-change`` entry (the token only as its hash):
        both or neither (StorageUnavailable: the token stays usable, the caller hears 503).
        Revoking a token that is revoked already changes nothing and writes no entry.
        """
        claims = await self._own_claims(token, now)
        if claims is None or not self._may_see(caller, claims):
            return
        async with self.db.session() as session:
            await repository.purge_revoked(session, now)  # housekeeping, not a change
            if await repository.is_revoked(session, claims.jti):
                return
        expires_at = datetime.fromtimestamp(claims.expires_at, UTC)
        digest = hash_token(token)
        actor = Actor(
            participant=caller.participant.id,
            client=claims.client_id,
            certificate=caller.certificate.thumbprint_sha256,
        )
        details = (f"client_id={claims.client_id}", f"expires_at={expires_at.isoformat()}")
        entry = change_entry(actor, "revoke", f"token:{digest}", now, details, token_sha256=digest)

        async def change(session: AsyncSession) -> None:
            if not await repository.revoke(session, claims.jti, expires_at, now):
                raise _AlreadyRevoked

        with contextlib.suppress(_AlreadyRevoked, IntegrityError):  # revoked meanwhile
            await commit(self.audit, entry, change)

    async def introspect(
        self, token: str, caller: AuthenticatedParticipant, trust: TrustMaterial, now: datetime
    ) -> dict[str, Any]:
        """RFC 7662: what one of our tokens says, to its client or an operator.

        Active exactly when the resource server would accept the token from the holder of
        the certificate it is bound to (:meth:`usable`), re-verified now.
        """
        try:
            _, unverified = peek(token)
        except JoseInputError:
            return {"active": False}
        audience = _audience(unverified)
        if unverified.get("iss") != self.issuer or audience not in self.server.config.resources:
            return {"active": False}  # not ours: nothing to fetch, nothing to say
        holder = await self._bound_holder(_bound_thumbprint(unverified), trust, now)
        if holder is None:
            return {"active": False}
        try:
            claims = (await self.usable(token, holder, now, audience=audience)).claims
        except TokenRejected:
            return {"active": False}
        if claims.issuer != self.issuer or not self._may_see(caller, claims):
            return {"active": False}
        return {
            "active": True,
            "iss": claims.issuer,
            "sub": claims.subject,
            "client_id": claims.client_id,
            "aud": list(claims.audience),
            "scope": " ".join(sorted(claims.scopes)),
            "jti": claims.jti,
            "iat": claims.issued_at,
            "exp": claims.expires_at,
            "token_type": "Bearer",
            "cnf": {"x5t#S256": claims.thumbprint},
        }

    async def _bound_holder(
        self, thumbprint: str, trust: TrustMaterial, now: datetime
    ) -> AuthenticatedParticipant | None:
        """The holder of the remembered certificate with ``thumbprint``, verified now."""
        async with self.db.session() as session:
            pem = await repository.bound_chain(session, thumbprint)
        if pem is None:
            return None
        try:
            chain = load_pem_chain(pem.encode())
            return await verified_holder(self.participants, chain, trust, "tls", now)
        except (CertificateRejected, Forbidden):
            return None


def _client_refused(status: str | None, *, own: bool) -> bool:
    """Whether :func:`_check_client` refuses a client with ``status``."""
    return (status is None and own) or (status is not None and status != "active")


def _check_client(status: str | None, *, own: bool) -> None:
    """Our own tokens need a registered client; any token's client must not be disabled.

    ``status`` is the client's status, None when it is not registered.
    """
    if not _client_refused(status, own=own):
        return
    if status is None:
        raise TokenRejected("client-disabled", "the token's client is no longer registered")
    raise TokenRejected("client-disabled", "the token's client is disabled")


def _audience(claims: dict[str, Any]) -> str:
    aud = claims.get("aud")
    first = aud[0] if isinstance(aud, list) and aud else aud
    return first if isinstance(first, str) else ""


def _bound_thumbprint(claims: dict[str, Any]) -> str:
    cnf = claims.get("cnf")
    value = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
    return value if isinstance(value, str) else ""
