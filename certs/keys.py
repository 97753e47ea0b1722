"""Key types this PKI issues and the key-strength rule it enforces on every certificate."""

from __future__ import annotations

from typing import Literal, TypeAlias, get_args

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from certs.errors import PKIError

KeyType = Literal["ec-p256", "ed25519"]
"""Key types our CAs generate: ECDSA P-256 or Ed25519."""

KEY_TYPES: tuple[str, ...] = get_args(KeyType)

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
"""A signing key our CAs hold."""

PublicKey: TypeAlias = CertificatePublicKeyTypes
"""Any public key a certificate may carry; :func:`key_weakness` decides if it is acceptable."""

MIN_RSA_BITS = 2048
STRONG_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})


def generate_key(key_type: KeyType) -> PrivateKey:
    """A fresh private key of ``key_type``; PKIError ``unknown-key-type`` for anything else."""
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise PKIError("unknown-key-type", f"key type must be one of {', '.join(KEY_TYPES)}")


def key_type_of(key: PrivateKey) -> KeyType:
    """The :data:`KeyType` of one of our signing keys."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if key.curve.name == "secp256r1":
        return "ec-p256"
    raise PKIError("unknown-key-type", f"curve {key.curve.name} is not a CA key type")


def key_weakness(key: PublicKey) -> str | None:
    """Why ``key`` is too weak or unsupported, or ``None`` when it is acceptable.

    Accepted: RSA >= 2048 bits, ECDSA on P-256/P-384/P-521, Ed25519.
    """
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            return f"RSA key of {key.key_size} bits (minimum {MIN_RSA_BITS})"
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in STRONG_CURVES:
            return f"elliptic curve {key.curve.name} is not P-256, P-384 or P-521"
        return None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return None
    return f"unsupported key type {type(key).__name__}"


def require_strong(key: PublicKey) -> None:
    """Raise PKIError ``weak-key`` unless :func:`key_weakness` accepts ``key``."""
    reason = key_weakness(key)
    if reason is not None:
        raise PKIError("weak-key", reason)


def signing_hash(key: PrivateKey) -> hashes.SHA256 | None:
    """The hash to sign with: SHA-256 for ECDSA, ``None`` for Ed25519 (pure EdDSA)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    return hashes.SHA256()
