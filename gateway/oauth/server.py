"""The token endpoint on authlib: client credentials with mTLS-bound tokens.

authlib has no Starlette/FastAPI server integration, so this is the adapter: the HTTP layer
reads the form, resolves the mTLS participant and loads its client record (the database is
async, authlib is not), builds a :class:`SluisOAuth2Request` and calls
``create_token_response``, which runs synchronously on pure data: client authentication,
grant and scope checks, and minting. The caller spends the assertion ``jti`` afterwards,
before the token leaves.

Client authentication methods (RFC 8705 ``tls_client_auth`` is not in authlib, nor is the
iSHARE profile; authlib's own ``private_key_jwt`` is replaced by the stricter FAPI 2.0 check
in gateway/auth/assertions.py):

* ``tls_client_auth``: the verified client certificate's organisation is the client;
* ``private_key_jwt``: an assertion signed with a registered key;
* ``ishare``: an RS256 assertion carrying its certificate chain in ``x5c``.

Every method also requires the mTLS certificate to belong to the client, so every token is
bound (``cnf.x5t#S256``) to the certificate of the client it was issued to.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidScopeError, OAuth2Error
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from cryptography import x509
from joserfc.jwk import KeySet, KeySetSerialization

from certs import TrustStore
from gateway.auth import tokens
from gateway.auth.assertions import (
    AssertionRejected,
    VerifiedAssertion,
    verify_ishare,
    verify_private_key_jwt,
)
from gateway.auth.jose import Key
from gateway.oauth.schemas import Client
from gateway.participants.service import AuthenticatedParticipant

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
Response = tuple[int, dict[str, Any], list[tuple[str, str]]]


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]  # authlib is untyped
    """RFC 8707: the requested resource is not one this server issues tokens for."""

    error = "invalid_target"


@dataclass(frozen=True)
class IssuerConfig:
    """What the authorization server needs to know about itself."""

    issuer: str
    resources: tuple[str, ...]
    lifetime: timedelta
    ishare_party_id: str | None
    ishare_trust: TrustStore | None


@dataclass(frozen=True)
class SigningState:
    """The current signing key and the CRLs, as of this request."""

    key: Key
    alg: str
    crls: Sequence[x509.CertificateRevocationList]
    now: datetime


class SluisOAuth2Request(OAuth2Request):  # type: ignore[misc]  # authlib is untyped
    """A token request with the verified mTLS participant and its client record attached."""

    def __init__(
        self,
        uri: str,
        form: Mapping[str, str],
        headers: Mapping[str, str],
        *,
        participant: AuthenticatedParticipant,
        client: Client | None,
        signing: SigningState,
    ) -> None:
        super().__init__("POST", uri, headers=dict(headers))
        self.payload = BasicOAuth2Payload(dict(form))
        self.participant = participant
        self.sluis_client = client
        self.signing = signing
        self.assertion: VerifiedAssertion | None = None
        self._form = dict(form)

    @property
    def form(self) -> dict[str, str]:
        """The decoded form body."""
        return self._form

    @property
    def args(self) -> dict[str, str]:
        """Query parameters: the token endpoint takes none."""
        return {}


class ClientModel(ClientMixin):  # type: ignore[misc]  # authlib is untyped
    """authlib's view of a registered client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        allowed = set(self.client.scopes)
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:  # noqa: ARG002 - authlib's interface
        return False

    def check_client_secret(self, client_secret: str) -> bool:  # noqa: ARG002 - authlib's interface
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method == self.client.auth_method

    def check_response_type(self, response_type: str) -> bool:  # noqa: ARG002 - authlib's interface
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


def _client_for(request: SluisOAuth2Request, method: str) -> ClientModel | None:
    """The registered client of the mTLS participant, if it uses ``method`` and is active."""
    client = request.sluis_client
    if client is None or client.auth_method != method:
        return None
    if client.status != "active":
        raise InvalidClientError(status_code=401, description="the client is disabled")
    named = request.form.get("client_id")
    if named is not None and named != client.client_id:
        raise InvalidClientError(
            status_code=401, description="client_id does not match the client certificate"
        )
    return ClientModel(client)


def _assertion(request: SluisOAuth2Request) -> str | None:
    if request.form.get("client_assertion_type") != JWT_BEARER:
        return None
    return request.form.get("client_assertion")


def tls_client_auth(_query: object, request: SluisOAuth2Request) -> ClientModel | None:
    """RFC 8705 §2.1: the certificate (already verified) identifies the client."""
    if _assertion(request) is not None or "client_id" not in request.form:
        return None
    return _client_for(request, "tls_client_auth")


def private_key_jwt(
    issuer: str,
) -> Callable[[object, SluisOAuth2Request], ClientModel | None]:
    """RFC 7523 under FAPI 2.0; see gateway/auth/assertions.py."""

    def authenticate(_query: object, request: SluisOAuth2Request) -> ClientModel | None:
        assertion = _assertion(request)
        model = _client_for(request, "private_key_jwt") if assertion else None
        if model is None or assertion is None:
            return None
        keys = KeySet.import_key_set(cast("KeySetSerialization", model.client.jwks))
        request.assertion = _checked(
            lambda: verify_private_key_jwt(
                assertion,
                client_id=model.client.client_id,
                keys=keys,
                issuer=issuer,
                now=request.signing.now,
            )
        )
        return model

    return authenticate


def ishare(config: IssuerConfig) -> Callable[[object, SluisOAuth2Request], ClientModel | None]:
    """The iSHARE client assertion with an ``x5c`` chain."""

    def authenticate(_query: object, request: SluisOAuth2Request) -> ClientModel | None:
        assertion = _assertion(request)
        model = _client_for(request, "ishare") if assertion else None
        if model is None or assertion is None:
            return None
        if config.ishare_party_id is None or config.ishare_trust is None:
            raise InvalidClientError(status_code=401, description="iSHARE is not configured")
        party, trust = config.ishare_party_id, config.ishare_trust
        request.assertion = _checked(
            lambda: verify_ishare(
                assertion,
                client_id=model.client.client_id,
                server_party_id=party,
                trust=trust,
                crls=request.signing.crls,
                now=request.signing.now,
            )
        )
        return model

    return authenticate


def _checked(check: Callable[[], VerifiedAssertion]) -> VerifiedAssertion:
    try:
        return check()
    except AssertionRejected as exc:
        raise InvalidClientError(status_code=401, description=exc.detail) from exc


class SluisClientCredentialsGrant(ClientCredentialsGrant):  # type: ignore[misc]  # authlib is untyped
    """Client credentials, minting RFC 9068 tokens bound to the mTLS certificate."""

    TOKEN_ENDPOINT_AUTH_METHODS = ("tls_client_auth", "private_key_jwt", "ishare")
    config: IssuerConfig

    def validate_requested_scope(self) -> None:
        client: ClientModel = self.request.client
        requested = set((self.request.payload.scope or "").split())
        if not requested <= set(client.client.scopes):
            raise InvalidScopeError(description="a requested scope is not allowed for this client")
        resource = self.request.form.get("resource")
        if resource is not None and resource not in self.config.resources:
            raise InvalidTargetError(description="tokens are not issued for that resource")

    def create_token_response(self) -> Response:
        request: SluisOAuth2Request = self.request
        client: ClientModel = request.client
        requested = (request.payload.scope or "").split()
        scopes = frozenset(requested or client.client.scopes)
        access_token, expires_in = tokens.mint(
            key=request.signing.key,
            alg=request.signing.alg,
            issuer=self.config.issuer,
            client_id=client.client.client_id,
            audience=request.form.get("resource") or self.config.resources[0],
            scopes=scopes,
            thumbprint=request.participant.certificate.thumbprint_sha256,
            jti=secrets.token_urlsafe(24),
            now=request.signing.now,
            lifetime=self.config.lifetime,
        )
        body = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": " ".join(sorted(scopes)),
        }
        return 200, body, list(self.TOKEN_RESPONSE_HEADER)


class SluisAuthorizationServer(AuthorizationServer):  # type: ignore[misc]  # authlib is untyped
    """authlib's server, wired for Sluis; one per gateway process."""

    def __init__(self, config: IssuerConfig) -> None:
        super().__init__()
        self.config = config
        grant = type("Grant", (SluisClientCredentialsGrant,), {"config": config})
        self.register_grant(grant)
        self.register_client_auth_method("tls_client_auth", tls_client_auth)
        self.register_client_auth_method("private_key_jwt", private_key_jwt(config.issuer))
        self.register_client_auth_method("ishare", ishare(config))

    def query_client(self, client_id: str) -> None:  # noqa: ARG002 - authlib's interface
        """Unused: each request carries its client (loaded asynchronously beforehand)."""
        return

    def save_token(self, token: dict[str, Any], request: SluisOAuth2Request) -> None:
        """Nothing to store: access tokens are self-contained JWTs."""

    def create_oauth2_request(self, request: SluisOAuth2Request) -> SluisOAuth2Request:
        return request

    def handle_response(
        self, status: int, body: dict[str, Any], headers: list[tuple[str, str]]
    ) -> Response:
        return status, body, list(headers)

    def send_signal(self, name: str, *args: object, **kwargs: object) -> None:
        """authlib's hook for signals; not used."""

    def token(self, request: SluisOAuth2Request) -> Response:
        """Run the token endpoint on ``request``: (status, JSON body, headers).

        Client secrets are not offered: a request carrying one (in the form or as HTTP Basic)
        is refused outright rather than silently authenticated some other way.
        """
        if "client_secret" in request.form or "authorization" in request.headers:
            error = InvalidClientError(description="client secrets are not accepted here")
            return 401, dict(error.get_body()), list(error.get_headers())
        status, body, headers = self.create_token_response(request)
        if body.get("error") == "invalid_client":
            status = 401  # RFC 6749 §5.2 allows 400; 401 says "authentication failed" plainly
        return status, body, headers
