"""The iSHARE capabilities token: what this party offers, signed with its iSHARE certificate.

iSHARE parties sign with the RSA key of their (eIDAS or iSHARE test) certificate, RS256 with
the chain in ``x5c`` (leaf first), 30 s valid, ``iss`` = ``sub`` = the party id
(``EU.EORI.<CC><id>``). The token names the party, its role (a service provider) and the
public features: the token endpoint ``/connect/token`` and this endpoint. ``now`` is passed in.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from gateway.settings import SettingsError

LIFETIME = 30  # seconds, as every iSHARE JWT


@dataclass(frozen=True)
class Capabilities:
    """The party's signing key and certificate chain, and where its endpoints are."""

    party_id: str
    key: RSAKey
    x5c: tuple[str, ...]
    public_url: str

    @classmethod
    def load(cls, party_id: str, key_file: Path, chain_file: Path, public_url: str) -> Capabilities:
        """From PEM files; SettingsError naming what is wrong (read at start, before listening)."""
        try:
            key = RSAKey.import_key(key_file.read_bytes())
            chain = x509.load_pem_x509_certificates(chain_file.read_bytes())
        except (OSError, ValueError, JoseError) as exc:
            raise SettingsError(f"iSHARE signing key or certificate: {exc}") from exc
        if not key.is_private:
            raise SettingsError("ishare_signing_key must be a private RSA key")
        x5c = tuple(base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in chain)
        return cls(party_id, key, x5c, public_url)

    def info(self) -> dict[str, Any]:
        """The ``capabilities_info`` claim."""
        features = [
            {"id": "token", "feature": "access token", "url": f"{self.public_url}/connect/token",
             "description": "client credentials with an iSHARE client assertion; scope iSHARE"},
            {"id": "capabilities", "feature": "capabilities",
             "url": f"{self.public_url}/capabilities", "description": "this document"},
        ]  # fmt: skip
        return {
            "party_id": self.party_id,
            "ishare_roles": [{"role": "ServiceProvider"}],
            "supported_versions": [
                {"version": "2.0", "supported_features": [{"public": features}]}
            ],
        }

    def token(self, now: datetime) -> str:
        """The signed capabilities token at ``now``."""
        issued = int(now.timestamp())
        claims = {
            "iss": self.party_id,
            "sub": self.party_id,
            "jti": secrets.token_urlsafe(24),
            "iat": issued,
            "nbf": issued,
            "exp": issued + LIFETIME,
            "capabilities_info": self.info(),
        }
        header = {"alg": "RS256", "typ": "JWT", "x5c": list(self.x5c)}
        return jwt.encode(header, claims, self.key, algorithms=["RS256"])

    def client_assertion(self, audience: str, now: datetime) -> str:
        """An iSHARE client assertion from this party to ``audience`` (e.g. a satellite)."""
        issued = int(now.timestamp())
        claims = {
            "iss": self.party_id,
            "sub": self.party_id,
            "aud": audience,
            "jti": secrets.token_urlsafe(24),
            "iat": issued,
            "exp": issued + LIFETIME,
        }
        header = {"alg": "RS256", "typ": "JWT", "x5c": list(self.x5c)}
        return jwt.encode(header, claims, self.key, algorithms=["RS256"])
