"""JOSE plumbing over joserfc: which algorithm a key signs with, key ids, JWKs, allow-lists.

joserfc's default registry admits only its "recommended" algorithms (no PS256, no EdDSA)
and caps a JWS header at 512 bytes, too little for an ``x5c`` chain. Every decode here
passes an explicit algorithm allow-list and, where needed, a registry with a larger cap.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc import jwt
from joserfc.errors import BadSignatureError, SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry
from joserfc.jwt import Token
from joserfc.util import urlsafe_b64decode

from gateway.json_input import loads_bounded
from gateway.settings import SigningKey

Key = ECKey | OKPKey | RSAKey

#: What Sluis signs its own access tokens with (RFC 9864's fully-specified name for Ed25519).
OWN_TOKEN_ALGS = ("ES256", "Ed25519")
#: Client assertions under the FAPI 2.0 profile (RFC 7523 private_key_jwt); "EdDSA" is the
#: name RFC 9864 deprecates in favour of "Ed25519", still what most clients send.
FAPI_ASSERTION_ALGS = ("ES256", "PS256", "Ed25519", "EdDSA")
#: Client assertions under the iSHARE profile.
ISHARE_ASSERTION_ALGS = ("RS256",)
#: Access tokens from trusted external issuers (Keycloak and Entra ID default to RS256).
EXTERNAL_TOKEN_ALGS = ("RS256", "PS256", "ES256", "Ed25519", "EdDSA")
MAX_JWT_BYTES = 16 * 1024
EDDSA_WARNING = "EdDSA is deprecated"  # joserfc's SecurityWarning for the old name


class JoseInputError(ValueError):
    """A compact JWS that cannot even be split and read."""


def registry(algorithms: tuple[str, ...], *, max_header: int = 512) -> JWSRegistry:
    """A JWS registry admitting exactly ``algorithms``, with a header cap of ``max_header``."""
    reg = JWSRegistry(algorithms=list(algorithms), strict_check_header=False)
    reg.max_header_length = max_header
    return reg


def decode(token: str, key: Key, algorithms: tuple[str, ...], *, max_header: int = 512) -> Token:
    """Verify a compact JWS with exactly ``algorithms`` allowed; joserfc errors propagate.

    joserfc warns on the deprecated "EdDSA" name at every use; we accept it on purpose
    (see FAPI_ASSERTION_ALGS), so that one warning is silenced here and nowhere else.
    """
    if "EdDSA" not in algorithms:  # the warning comes only with that name allowed
        return jwt.decode(token, key, registry=registry(algorithms, max_header=max_header))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=EDDSA_WARNING, category=SecurityWarning)
        return jwt.decode(token, key, registry=registry(algorithms, max_header=max_header))


@lru_cache(maxsize=32)
def _shared_registry(algorithms: tuple[str, ...], max_header: int) -> JWSRegistry:
    """One registry per allow-list for :func:`verify_signature`, which never changes it."""
    return registry(algorithms, max_header=max_header)


def verify_signature(
    token: str,
    key: Key,
    algorithms: tuple[str, ...],
    header: dict[str, Any],
    *,
    max_header: int = 512,
) -> None:
    """Verify the signature of a compact JWS that :func:`peek` read into ``header``.

    What :func:`decode` does, with the token split and read once instead of twice: joserfc's
    registry checks the header and the allow-list and picks the algorithm from it (never from
    the header alone), joserfc's algorithm checks the key (type, curve, ``use``, ``alg``) and
    the signature (ES256: raw r||s of exactly 64 bytes; ``none`` is never on a list here);
    base64url is decoded strictly (joserfc's decoder). The caller then trusts exactly what
    :func:`peek` parsed from the signed segments. joserfc errors (ValueErrors) propagate;
    a signature that does not verify is ``BadSignatureError``.
    """
    head, payload, signature = token.split(".")  # peek admitted exactly three parts
    reg = _shared_registry(algorithms, max_header)
    reg.validate_compact_value_size(token.encode("ascii"))
    reg.validate_header_size(head.encode("ascii"))
    reg.validate_payload_size(payload.encode("ascii"))
    raw = signature.encode("ascii")
    reg.validate_signature_size(raw)
    reg.check_header(header)
    if "EdDSA" in algorithms:  # accepted on purpose: its deprecation warning silenced
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=EDDSA_WARNING, category=SecurityWarning)
            alg = reg.get_alg(header["alg"])
    else:
        alg = reg.get_alg(header["alg"])  # UnsupportedAlgorithmError unless on the list
    alg.check_key(key)
    if not alg.verify(f"{head}.{payload}".encode("ascii"), urlsafe_b64decode(raw), key):
        raise BadSignatureError()


def signing_alg(key: SigningKey) -> str:
    """The JWS algorithm Sluis uses for a signing key."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "Ed25519"
    return "ES256"


def import_private(key: SigningKey) -> Key:
    """A joserfc key for our signing key, with its RFC 7638 thumbprint as ``kid``."""
    jose_key: Key = (
        OKPKey.import_key(key)
        if isinstance(key, ed25519.Ed25519PrivateKey)
        else ECKey.import_key(key)
    )
    jose_key.ensure_kid()
    return jose_key


def public_jwk(key: Key, alg: str) -> dict[str, Any]:
    """The public half as a JWK dict with ``kid``, ``alg`` and ``use``."""
    data: dict[str, Any] = dict(key.as_dict(private=False))
    data.update({"alg": alg, "use": "sig", "kid": key.kid})
    return data


def import_public(jwk: dict[str, Any]) -> Key:
    """A public key from a JWK dict; ValueError for private, unknown or weak keys."""
    if "d" in jwk:
        raise ValueError("a private key was offered where a public key belongs")
    kty = jwk.get("kty")
    key: Key
    if kty == "EC":
        key = ECKey.import_key(jwk)
        if jwk.get("crv") != "P-256":
            raise ValueError("EC keys must be on P-256")
    elif kty == "OKP":
        key = OKPKey.import_key(jwk)
        if jwk.get("crv") != "Ed25519":
            raise ValueError("OKP keys must be Ed25519")
    elif kty == "RSA":
        key = RSAKey.import_key(jwk)
        raw = key.raw_value
        assert isinstance(raw, rsa.RSAPublicKey | rsa.RSAPrivateKey)  # noqa: S101 - kty RSA
        if raw.key_size < 2048:  # noqa: PLR2004 - the minimum RSA size, in bits
            raise ValueError("RSA keys must have at least 2048 bits")
    else:
        raise ValueError(f"unsupported key type {kty!r}")
    key.ensure_kid()
    return key


def key_from_public(
    public: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey,
) -> Key:
    """A joserfc key for a public key taken from a certificate."""
    if isinstance(public, ed25519.Ed25519PublicKey):
        return OKPKey.import_key(public)
    if isinstance(public, rsa.RSAPublicKey):
        return RSAKey.import_key(public)
    return ECKey.import_key(public)


def peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWS, UNVERIFIED: only to pick the key and issuer."""
    if len(token) > MAX_JWT_BYTES:
        raise JoseInputError("token too large")
    parts = token.split(".")
    if len(parts) != 3:  # noqa: PLR2004 - header, payload, signature
        raise JoseInputError("not a compact JWS")
    try:  # bounded: 5000 nested arrays are a refusal, not a RecursionError
        header = loads_bounded(_b64(parts[0]))
        claims = loads_bounded(_b64(parts[1]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise JoseInputError("undecodable JWS") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JoseInputError("JWS header and payload must be JSON objects")
    return header, claims


def _b64(part: str) -> bytes:
    """Strict base64url without padding (joserfc's decoder): ``+``, ``/``, ``=``, other
    characters and non-canonical trailing bits are refused, not skipped."""
    return urlsafe_b64decode(part.encode("ascii"))
