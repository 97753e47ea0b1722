"""Audit entries: typed, version 1, encoded as RFC 8785 canonical JSON (pure).

The canonical bytes of an entry are the Merkle leaf data (``leaf = SHA-256(0x00 || bytes)``).
Field names are a wire format (STYLE.md 7): never rename one; new fields are appended
with a default of ``None``, and ``None`` fields are left out of the encoding, so entries
written before a field existed keep their bytes and their hashes.

::

    {"version": 1, "time": "2026-11-26T12:00:00.000000Z", "event": "access-decision",
     "actor": {"participant": ..., "client": ..., "certificate": ..., "source": ...},
     "dataset": ..., "action": ..., "purpose": ...,
     "decision": {"result": "permit"|"deny", "policy_id": ..., "policy_hash": ...,
                  "reasons": [...]},
     "request_id": ..., "trace_id": ..., "rows": ..., "bytes": ...,
     "token_sha256": ..., "target": ...}

No token, key or secret is ever written. A token appears only as :func:`hash_token`'s
digest, in ``token_sha256``; :func:`encode_entry` refuses an entry any of whose strings
looks like a raw JWT, a PEM block, a note signer key or a bearer credential.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.audit.errors import EntryError
from gateway.audit.jcs import canonical, loads

ENTRY_VERSION = 1

EventType = Literal[
    "certificate-refused",
    "token-issued",
    "token-refused",
    "access-decision",
    "exchange-completed",
    "agreement-changed",
    "admin-change",
    "key-rotation",  # target: the new checkpoint key (verifier key string); see rotation.py
]
DecisionResult = Literal["permit", "deny"]

_Text = Annotated[str, Field(min_length=1, max_length=512)]
_Count = Annotated[int, Field(ge=0, le=2**53 - 1)]

# A JWT/JWS/JWE compact serialization: base64url segments, the first a JSON header.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.")
_SECRETS = (
    _JWT,
    re.compile(r"-----BEGIN [A-Z0-9 ]*(PRIVATE KEY|SECRET)"),
    re.compile(r"PRIVATE\+KEY\+"),
    re.compile(r"\b(Bearer|Basic|DPoP)\s+[A-Za-z0-9._~+/-]{16,}", re.IGNORECASE),
)
_TOKEN_DIGEST = re.compile(r"[A-Za-z0-9_-]{43}")


class Actor(BaseModel):
    """Who acted: participant id, OAuth client, certificate thumbprint, source address."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    participant: _Text | None = None
    client: _Text | None = None
    certificate: _Text | None = None  # x5t#S256: base64url SHA-256 of the DER certificate
    source: _Text | None = None


class DecisionRecord(BaseModel):
    """The outcome, the policy it came from (id and hash), and the full reasons."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    result: DecisionResult
    policy_id: _Text | None = None
    policy_hash: _Text | None = None
    reasons: tuple[str, ...] = ()


class AuditEntry(BaseModel):
    """One audit log entry (wire format version 1; see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    time: datetime
    event: EventType
    actor: Actor = Actor()
    dataset: _Text | None = None
    action: _Text | None = None
    purpose: _Text | None = None
    decision: DecisionRecord | None = None
    request_id: _Text | None = None
    trace_id: _Text | None = None
    rows: _Count | None = None
    bytes: _Count | None = None
    token_sha256: _Text | None = None  # hash_token(token), never the token
    target: _Text | None = None  # what an admin or agreement change touched
    # New fields go below this line, with a default of None (STYLE.md 7).

    @field_validator("time")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware time")
        return value.astimezone(UTC)

    @field_validator("token_sha256")
    @classmethod
    def _digest_only(cls, value: str | None) -> str | None:
        if value is not None and not _TOKEN_DIGEST.fullmatch(value):
            raise ValueError("token_sha256 takes hash_token(token), 43 base64url characters")
        return value

    def to_json(self) -> dict[str, Any]:
        """The entry as JSON values, ``None`` fields left out, time as RFC 3339 UTC."""
        data = self.model_dump(mode="json", exclude_none=True)
        data["time"] = format_time(self.time)
        return data


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and ``Z``: one spelling per instant."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hash_token(token: str) -> str:
    """SHA-256 of a token, base64url without padding: what entries carry instead of it."""
    digest = hashlib.sha256(token.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def encode_entry(entry: AuditEntry) -> bytes:
    """The entry's canonical bytes; :class:`EntryError` if any string looks like a secret."""
    data = entry.to_json()
    check_no_secrets(data)
    return canonical(data)


def decode_entry(data: bytes) -> AuditEntry:
    """Parse canonical entry bytes back into an :class:`AuditEntry` (strictly)."""
    try:
        return AuditEntry.model_validate(loads(data))
    except ValidationError as exc:
        raise EntryError("invalid-entry", _first_error(exc)) from exc


def check_no_secrets(value: Any, path: str = "entry") -> None:
    """Refuse (``secret-in-entry``) any string in ``value`` that looks like a credential."""
    if isinstance(value, str):
        if any(pattern.search(value) for pattern in _SECRETS):
            raise EntryError("secret-in-entry", f"{path} looks like a raw token or secret")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_no_secrets(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_no_secrets(item, f"{path}[{i}]")


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}"
