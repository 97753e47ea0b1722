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
digest, in ``token_sha256``; :func:`encode_entry` writes ``[redacted]`` in place of any
part of a string that looks like a raw JWT, a PEM block, a note signer key or a bearer
credential, and lists that string's path in the entry's ``redacted`` field (a caller who
names a column ``eyJ...`` must not be able to keep its refusal out of the log).

Caller text (a path, a column name, a JOSE header value) is never a reason to skip an
entry. Text longer than a field's 512 characters is clipped, ending in ``...[clipped]``
(after redaction, which can lengthen it; a lookalike the clip's dots complete is cut).
Text UTF-8 cannot carry (a lone surrogate, from a JSON ``"\\ud800"`` escape) is written
with every backslash doubled and every lone surrogate as the six characters ``\\udXXX``
(Python's ``backslashreplace``), and the entry's ``escaped`` field lists the paths of those
strings (``"decision.reasons[1]"``), so a reader can undo it exactly (:func:`unescape`).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from gateway.audit.errors import EntryError
from gateway.audit.jcs import canonical, loads, plain_canonical

ENTRY_VERSION = 1

EventType = Literal[
    "certificate-refused",
    "token-issued",
    "token-refused",
    "access-decision",
    "exchange-completed",
    "agreement-changed",
    "admin-change",
    "refusals-summarised",  # issue 11: N further refusals from one source in one window
    "key-rotation",  # target: the new checkpoint key (verifier key string); see rotation.py
]
DecisionResult = Literal["permit", "deny"]

MAX_TEXT = 512
CLIPPED = "...[clipped]"


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, visibly, when it is longer."""
    return text if len(text) <= limit else text[: limit - len(CLIPPED)] + CLIPPED


def _clip_text(value: Any) -> Any:
    return clip(value) if isinstance(value, str) else value


_Text = Annotated[str, BeforeValidator(_clip_text), Field(min_length=1, max_length=MAX_TEXT)]
_Count = Annotated[int, Field(ge=0, le=2**53 - 1)]

# A JWT/JWS/JWE compact serialization: base64url segments, the first a JSON header; every
# segment goes (a signature left behind is a piece of the credential).
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)+")
_SECRETS = (
    _JWT,
    re.compile(r"-----BEGIN [A-Z0-9 ]*(PRIVATE KEY|SECRET)"),
    re.compile(r"PRIVATE\+KEY\+"),
    re.compile(r"\b(Bearer|Basic|DPoP)\s+[A-Za-z0-9._~+/-]{16,}", re.IGNORECASE),
)
# Any of them, in one scan: what every string of an entry is searched with first (each
# pattern keeps its own flags; a string none of them matches is neither redacted nor refused).
_ANY_SECRET = re.compile(
    "|".join(
        f"(?i:{p.pattern})" if p.flags & re.IGNORECASE else f"(?:{p.pattern})" for p in _SECRETS
    )
)
# What every match of a pattern above holds: one of these literals, or (case-insensitively)
# one of the schemes. Kept beside the patterns; a test checks each pattern against them.
_LITERALS = ("eyJ", "-----BEGIN ", "PRIVATE+KEY+")
_SCHEMES = ("bearer", "basic", "dpop")
REDACTED = "[redacted]"
_ESCAPE = re.compile(r"\\(\\|ud[89a-f][0-9a-f]{2})")
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


class PrivacyRecord(BaseModel):
    """A private query's spend: its epsilon (and delta), and the budget after it.

    Decimals as text, exactly as the policy wrote them (canonical JSON has no decimals).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    epsilon: _Text
    delta: _Text | None = None
    spent: _Text  # in the period, this query included
    budget: _Text  # the policy's: epsilon per period
    period: _Text


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
    escaped: tuple[str, ...] | None = None  # paths of strings written backslash-escaped
    redacted: tuple[str, ...] | None = None  # paths of strings with a secret lookalike cut
    privacy: PrivacyRecord | None = None  # what a private query spent of its budget (issue 17)

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
    utc = moment.astimezone(UTC)
    if utc.year < 1000:  # noqa: PLR2004 - strftime's %Y does not pad years before 1000
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"  # no libc call


def hash_token(token: str) -> str:
    """SHA-256 of a token, base64url without padding: what entries carry instead of it."""
    digest = hashlib.sha256(token.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def encode_entry(entry: AuditEntry) -> bytes:
    """The entry's canonical bytes: unencodable text escaped, secret lookalikes redacted.

    Most entries have nothing to escape or redact: their strings are judged together first
    (:func:`nothing_to_fix`), and only an entry with something to fix is walked string by
    string; either way the bytes are the same.
    """
    data = entry.to_json()
    plain = plain_canonical(data)
    if plain is not None and nothing_to_fix(plain[1]):
        return plain[0]
    data = redact_secrets(escape_unencodable(data))
    check_no_secrets(data)  # a last guard: redaction must have left nothing
    return canonical(data)


def nothing_to_fix(strings: list[str]) -> bool:
    """Whether every one of ``strings`` is UTF-8-encodable and free of secret lookalikes.

    Judged on the strings joined by NUL, which no secret pattern matches and ``\\b`` sees
    as a non-word character like a string's start: a match in the joined text is a match
    in one string. ASCII text that holds none of the patterns' literals (:data:`_LITERALS`;
    only the credential schemes are matched case-insensitively, and in ASCII text that is
    plain lowercasing) cannot match, which a scan for the literals shows without the
    regular expression, several times slower.
    """
    text = "\x00".join(strings)
    if text.isascii():
        lowered = text.lower()
        if not any(literal in text for literal in _LITERALS) and not any(
            scheme in lowered for scheme in _SCHEMES
        ):
            return True
    elif not _encodable(text):
        return False
    return _ANY_SECRET.search(text) is None


def redact_secrets(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with credential lookalikes replaced by ``[redacted]``, listed in ``redacted``."""
    paths: list[str] = list(data.get("redacted", ()))
    result = _walk(data, "", lambda text, path: _redact(text, path, paths))
    if paths:
        result["redacted"] = paths
    return result


def _redact(text: str, path: str, paths: list[str]) -> str:
    if not _ANY_SECRET.search(text):
        return text
    redacted = text
    for pattern in _SECRETS:
        redacted = pattern.sub(REDACTED, redacted)
    if redacted == text:
        return text
    paths.append(path)
    return _cut_begun_secrets(_clip_unless_reason(redacted, path))


def _clip_unless_reason(text: str, path: str) -> str:
    return text if path.startswith("decision.reasons") else clip(text)


def _cut_begun_secrets(text: str) -> str:
    """``text`` cut before any lookalike its clip completed, the clip's ``...`` included
    (``Bearer`` and 13 characters, ``eyJabcd``: redacted text has none of its own)."""
    while (match := _ANY_SECRET.search(text)) is not None:
        text = text[: match.start()] + CLIPPED
    return text


def escape_unencodable(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with every string UTF-8 cannot carry escaped, and listed in ``escaped``."""
    paths: list[str] = list(data.get("escaped", ()))
    result = _walk(data, "", lambda text, path: _escape(text, path, paths))
    if paths:
        result["escaped"] = paths
    return result


def _escape(text: str, path: str, paths: list[str]) -> str:
    if _encodable(text):
        return text
    paths.append(path)
    escaped = text.replace("\\", "\\\\").encode("utf-8", "backslashreplace").decode("utf-8")
    return _clip_unless_reason(escaped, path)


def _walk(data: dict[str, Any], path: str, fix: Callable[[str, str], str]) -> dict[str, Any]:
    """A copy of ``data`` with ``fix(text, path)`` applied to every string value."""
    return {key: _fix(value, f"{path}.{key}" if path else key, fix) for key, value in data.items()}


def _fix(value: Any, path: str, fix: Callable[[str, str], str]) -> Any:
    if isinstance(value, str):
        return fix(value, path)
    if isinstance(value, dict):
        return _walk(value, path, fix)
    if isinstance(value, list | tuple):
        return [_fix(item, f"{path}[{i}]", fix) for i, item in enumerate(value)]
    return value


def unescape(text: str) -> str:
    """The original of a string listed in an entry's ``escaped`` field."""
    return _ESCAPE.sub(lambda m: "\\" if m[1] == "\\" else chr(int(m[1][1:], 16)), text)


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode_entry(data: bytes) -> AuditEntry:
    """Parse canonical entry bytes back into an :class:`AuditEntry` (strictly)."""
    try:
        return AuditEntry.model_validate(loads(data))
    except ValidationError as exc:
        raise EntryError("invalid-entry", _first_error(exc)) from exc


def check_no_secrets(value: Any, path: str = "entry") -> None:
    """Refuse (``secret-in-entry``) any string in ``value`` that looks like a credential."""
    if isinstance(value, str):
        if _ANY_SECRET.search(value):
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
