"""Ed25519 note keys and their C2SP signed-note key strings.

::

    key ID      = SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]
    verifier    <name>+<hex key ID>+<base64(0x01 || public key)>
    signer      PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || 32-byte seed)>

0x01 is the signed-note signature type of Ed25519. Key names are non-empty, without
Unicode spaces, ``+`` or control characters. A :class:`Signer` is built from a seed the
caller supplies (``os.urandom(32)`` at the edge), so this module does no IO; its repr
never shows the seed. Key-string errors are :class:`NoteError`, checked in the order Go's
``golang.org/x/mod/sumdb/note`` checks them: format, key ID, algorithm, key length.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.audit.encoding import decode_base64, encode_base64
from gateway.audit.errors import NoteError

ED25519 = 0x01
KEY_SIZE = 32
_KEY_STRING_FIELDS = 3  # name, key ID, key
_KEY_ID_HEX = re.compile(r"[0-9a-f]{8}")
_BAD_NAME_CHAR = re.compile(r"[\s+\x00-\x1f\x7f]")


def check_name(name: str) -> None:
    """Refuse a key name the signed-note format cannot carry."""
    if not name or _BAD_NAME_CHAR.search(name):
        raise NoteError("bad-name", f"invalid key name {name!r}")


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte ID of an Ed25519 key: ``SHA-256(name || 0x0A || 0x01 || key)[:4]``."""
    return _key_hash(name, bytes([ED25519]) + public_key)


def _key_hash(name: str, typed_key: bytes) -> bytes:
    """Key ID over a key that starts with its signature-type byte, whatever that is."""
    return hashlib.sha256(name.encode() + b"\n" + typed_key).digest()[:4]


@dataclass(frozen=True)
class Verifier:
    """A trusted Ed25519 public key and its name, as a note reader knows it."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        check_name(self.name)
        if len(self.public_key) != KEY_SIZE:
            raise NoteError("bad-key-length", f"Ed25519 public keys are {KEY_SIZE} bytes")
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key)
        except ValueError as exc:
            raise NoteError("bad-key", "not an Ed25519 public key") from exc

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID that prefixes this key's signatures."""
        return key_id(self.name, self.public_key)

    @classmethod
    def from_key_string(cls, vkey: str) -> Verifier:
        """Parse ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
        name, id_hex, key = _split_key_string(vkey.split("+", 2))
        if _key_hash(name, key) != bytes.fromhex(id_hex):
            raise NoteError("key-id-mismatch", f"key ID {id_hex} does not match the key")
        return cls(name, _ed25519_key(key))

    def key_string(self) -> str:
        """The verifier key string, safe to publish."""
        encoded = encode_base64(bytes([ED25519]) + self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Signer:
    """An Ed25519 signing key and its name. Holds a secret: never logged, never repr'd."""

    __slots__ = ("_key", "_name")

    def __init__(self, name: str, seed: bytes) -> None:
        check_name(name)
        if len(seed) != KEY_SIZE:
            raise NoteError("bad-key-length", f"Ed25519 seeds are {KEY_SIZE} bytes")
        self._name = name
        self._key = Ed25519PrivateKey.from_private_bytes(seed)

    @classmethod
    def from_key_string(cls, skey: str) -> Signer:
        """Parse ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``."""
        parts = skey.split("+", 4)
        if parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("bad-key", "a signer key starts with PRIVATE+KEY+")
        name, id_hex, key = _split_key_string(parts[2:])
        signer = cls(name, _ed25519_key(key))
        if signer.key_id != bytes.fromhex(id_hex):
            raise NoteError("key-id-mismatch", f"key ID {id_hex} does not match the key")
        return signer

    @property
    def name(self) -> str:
        """The key name written in signature lines."""
        return self._name

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID that prefixes this key's signatures."""
        return self.verifier().key_id

    def verifier(self) -> Verifier:
        """The matching public :class:`Verifier`."""
        raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return Verifier(self._name, raw)

    def sign(self, message: bytes) -> bytes:
        """The Ed25519 signature of ``message`` (deterministic)."""
        return self._key.sign(message)

    def private_key_string(self) -> str:
        """The SECRET signer key string, for the key file only."""
        encoded = encode_base64(bytes([ED25519]) + self._key.private_bytes_raw())
        return f"PRIVATE+KEY+{self._name}+{self.key_id.hex()}+{encoded}"

    def __repr__(self) -> str:
        return f"Signer(name={self._name!r}, key_id={self.key_id.hex()!r})"


def _split_key_string(parts: list[str]) -> tuple[str, str, bytes]:
    """``[name, hex key ID, base64 key]`` checked for form; the key still carries its type."""
    if len(parts) != _KEY_STRING_FIELDS or not _KEY_ID_HEX.fullmatch(parts[1]):
        raise NoteError("bad-key", "a key string is <name>+<8 hex digits>+<base64 key>")
    check_name(parts[0])
    try:
        key = decode_base64(parts[2])
    except ValueError as exc:
        raise NoteError("bad-key", "the key is not canonical base64") from exc
    if not key:
        raise NoteError("bad-key", "the key is empty")
    return parts[0], parts[1], key


def _ed25519_key(typed_key: bytes) -> bytes:
    """Strip the signature-type byte, refusing anything but a 32-byte Ed25519 key."""
    if typed_key[0] != ED25519:
        raise NoteError("unknown-algorithm", f"signature type {typed_key[0]:#04x} unsupported")
    if len(typed_key) != 1 + KEY_SIZE:
        raise NoteError("bad-key-length", f"Ed25519 keys are {KEY_SIZE} bytes")
    return typed_key[1:]
