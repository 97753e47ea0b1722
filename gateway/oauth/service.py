"""The authorization server's operations: token, resource-server check, revoke, introspect."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from sqlalchemy.exc import IntegrityError

from gateway.auth import tokens
from gateway.auth.assertions import VerifiedAssertion
from gateway.auth.jose import OWN_TOKEN_ALGS, JoseInputError, peek
from gateway.auth.tokens import AccessClaims, TokenRejected, TrustedIssuer
from gateway.oauth import repository
from gateway.oauth.clients import ClientService
from gateway.oauth.external import ExternalIssuers
from gateway.oauth.keyring import KeyRing
from gateway.oauth.server import (
    Response,
    SigningState,
    SluisAuthorizationServer,
    SluisOAuth2Request,
)
from gateway.participants.service import AuthenticatedParticipant
from gateway.storage.db import Database
from gateway.storage.models import RevokedTokenRow, UsedAssertionRow


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
    ) -> None:
        self.db = db
        self.server = server
        self.keyring = keyring
        self.clients = clients
        self.external = external
        self.issuer = server.config.issuer
        self.audience = server.config.resources[0]

    async def token(
        self,
        caller: AuthenticatedParticipant,
        form: Mapping[str, str],
        headers: Mapping[str, str],
        crls: Sequence[x509.CertificateRevocationList],
        now: datetime,
    ) -> Response:
        """Run the token endpoint; a client assertion's jti is spent before a token leaves."""
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
        if ok and spent is not None and not await self._spend(spent, now):
            replayed = {
                "error": "invalid_client",
                "error_description": "the client assertion was already used",
            }
            return 401, replayed, response_headers
        return status, body, response_headers

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
        self, token: str, caller: AuthenticatedParticipant, now: datetime
    ) -> TokenCaller:
        """The resource-server check (gateway/auth/tokens.py) plus client match and revocation."""
        issuer, kid = tokens.unverified_issuer(token)
        trusted = await self.trusted(issuer, kid, now)
        claims = tokens.check(
            token,
            {issuer: trusted},
            audience=self.audience,
            thumbprint=caller.certificate.thumbprint_sha256,
            now=now,
        )
        if claims.client_id != caller.participant.id:
            raise TokenRejected("wrong-client", "the token was issued to another client")
        async with self.db.session() as session:
            if await repository.is_revoked(session, claims.jti):
                raise TokenRejected("revoked", "the token has been revoked")
        return TokenCaller(caller, claims)

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
        """RFC 7009: revoke one of our tokens (its client or an operator may); else do nothing."""
        claims = await self._own_claims(token, now)
        if claims is None or not self._may_see(caller, claims):
            return
        async with self.db.session() as session:
            await repository.purge_revoked(session, now)
            if not await repository.is_revoked(session, claims.jti):
                session.add(
                    RevokedTokenRow(
                        jti=claims.jti,
                        expires_at=datetime.fromtimestamp(claims.expires_at, UTC),
                        revoked_at=now,
                    )
                )

    async def introspect(
        self, token: str, caller: AuthenticatedParticipant, now: datetime
    ) -> dict[str, Any]:
        """RFC 7662: what one of our tokens says, to its client or an operator."""
        claims = await self._own_claims(token, now)
        if claims is None or not self._may_see(caller, claims):
            return {"active": False}
        async with self.db.session() as session:
            if await repository.is_revoked(session, claims.jti):
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
