"""Client authentication at the Sluis token endpoint, as authlib client auth methods.

authlib's own ``PrivateKeyJWT`` addresses its assertion to the token endpoint and lets it
live an hour; Sluis (FAPI 2.0) wants ``aud`` = the issuer identifier and refuses assertions
that live over 5 minutes, and iSHARE wants RS256 with the certificate chain in ``x5c``,
``aud`` = the server's party id and 30 seconds. Use them like this::

    client = OAuth2Client(
        client_id="NTRNL-40000001",
        token_endpoint_auth_method=FapiPrivateKeyJWT(issuer, key),
        verify=mtls_context(ca_bundle, cert_file, key_file),
    )
    client.fetch_token(f"{issuer}/oauth2/token", grant_type="client_credentials")
"""

from __future__ import annotations

import base64
import secrets
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from gateway.client._authlib import PrivateKeyJWT

Key = ECKey | OKPKey | RSAKey
DEFAULT_ALGS = {"EC": "ES256", "OKP": "Ed25519", "RSA": "PS256"}


def mtls_context(ca_bundle: Path, cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A TLS client context that trusts ``ca_bundle`` and presents the client certificate."""
    context = ssl.create_default_context(cafile=str(ca_bundle))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


def _assertion(key: Key, alg: str, header: dict[str, Any], claims: dict[str, Any]) -> str:
    return jwt.encode({"alg": alg, "typ": "JWT", **header}, claims, key, algorithms=[alg])


class FapiPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]  # authlib is untyped
    """``private_key_jwt`` for Sluis: aud = issuer, short-lived, a fresh jti each time."""

    name = "private_key_jwt"

    def __init__(
        self, issuer: str, key: Key, *, alg: str | None = None, lifetime: int = 60
    ) -> None:
        super().__init__(token_endpoint=None)
        self.issuer = issuer
        self.key = key
        self.key.ensure_kid()
        self.alg = alg or DEFAULT_ALGS[key.key_type]
        self.lifetime = lifetime

    def sign(self, auth: Any, token_endpoint: str) -> str:  # noqa: ARG002 - aud is the issuer
        now = int(time.time())
        claims = {
            "iss": auth.client_id,
            "sub": auth.client_id,
            "aud": self.issuer,
            "iat": now,
            "exp": now + self.lifetime,
            "jti": secrets.token_urlsafe(24),
        }
        return _assertion(self.key, self.alg, {"kid": self.key.kid}, claims)


class IShareClientAssertion(PrivateKeyJWT):  # type: ignore[misc]  # authlib is untyped
    """The iSHARE client assertion: RS256, ``x5c`` chain, aud = the server's party id, 30 s."""

    name = "ishare"

    def __init__(
        self, server_party_id: str, key: RSAKey, chain: Sequence[x509.Certificate]
    ) -> None:
        super().__init__(token_endpoint=None)
        self.server_party_id = server_party_id
        self.key = key
        self.x5c = [base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in chain]

    def sign(self, auth: Any, token_endpoint: str) -> str:  # noqa: ARG002 - aud is the party id
        now = int(time.time())
        claims = {
            "iss": auth.client_id,
            "sub": auth.client_id,
            "aud": self.server_party_id,
            "iat": now,
            "exp": now + 30,
            "jti": secrets.token_urlsafe(24),
        }
        return _assertion(self.key, "RS256", {"x5c": self.x5c}, claims)
