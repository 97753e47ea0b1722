"""RFC 9068 access tokens bound to a client certificate (RFC 8705): mint and check. Pure.

A token is accepted only when every one of these holds, in this order:

1. it is a compact JWS of sane size whose header says ``typ: at+jwt`` (``JWT`` is refused:
   an ID token or a client assertion must never pass as an access token);
2. ``alg`` is on the issuer's allow-list (``none`` and every HMAC algorithm never are, so a
   token "signed" with the public key as an HMAC secret goes nowhere);
3. ``iss`` is our issuer or a trusted external one, and ``kid`` names one of its keys;
4. the signature verifies;
5. ``aud`` contains our audience; ``exp``, ``iat`` (and ``nbf`` when present) hold at ``now``
   with at most 60 s leeway (gateway/auth/windows.py); ``sub``, ``client_id`` and ``jti``
   are present;
6. ``cnf.x5t#S256`` equals the thumbprint of the certificate on this connection, compared
   in constant time.

Revocation needs the database and is checked by the caller (gateway/oauth).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from gateway.auth.jose import JoseInputError, Key, peek, verify_signature
from gateway.auth.windows import TOKEN_LEEWAY, is_expired

MAX_LEEWAY = TOKEN_LEEWAY  # the old name, kept for importers
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})


class TokenRejected(Exception):
    """An access token was refused. ``error`` is the RFC 6750 error code."""

    def __init__(self, code: str, detail: str, *, error: str = "invalid_token") -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.error = error


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """An issuer whose access tokens we accept, with its keys and allowed algorithms."""

    issuer: str
    keys: KeySet
    algorithms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says."""

    issuer: str
    subject: str
    client_id: str
    audience: tuple[str, ...]
    scopes: frozenset[str]
    jti: str
    issued_at: int
    expires_at: int
    thumbprint: str


def mint(
    *,
    key: Key,
    alg: str,
    issuer: str,
    client_id: str,
    audience: str,
    scopes: frozenset[str],
    thumbprint: str,
    jti: str,
    now: datetime,
    lifetime: timedelta,
) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds."""
    issued = int(now.timestamp())
    seconds = int(lifetime.total_seconds())
    claims = {
        "iss": issuer,
        "sub": client_id,
        "client_id": client_id,
        "aud": audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + seconds,
        "jti": jti,
        "scope": " ".join(sorted(scopes)),
        "cnf": {"x5t#S256": thumbprint},
    }
    header = {"typ": "at+jwt", "alg": alg, "kid": key.kid}
    return jwt.encode(header, claims, key, algorithms=[alg]), seconds


@dataclass(frozen=True, slots=True)
class Peeked:
    """A token's header and claims, UNVERIFIED, read once per check (:func:`read`) and
    passed to :func:`unverified_issuer` and :func:`check`; each uses it only for the very
    ``token`` it was read from (another text is read again, never paired with these)."""

    token: str
    header: dict[str, Any]
    claims: dict[str, Any]


def read(token: str) -> Peeked:
    """``token`` read (not verified) once; TokenRejected if unreadable."""
    return Peeked(token, *_peek(token))


def _read(token: str, peeked: Peeked | None) -> tuple[dict[str, Any], dict[str, Any]]:
    if peeked is None or peeked.token != token:
        return _peek(token)
    return peeked.header, peeked.claims


def unverified_issuer(token: str, *, peeked: Peeked | None = None) -> tuple[str, str | None]:
    """(``iss``, ``kid``) read without verification, to find keys; TokenRejected if unreadable.

    ``peeked``: what :func:`read` returned for ``token``."""
    header, claims = _read(token, peeked)
    issuer = claims.get("iss")
    kid = header.get("kid")
    if not isinstance(issuer, str):
        raise TokenRejected("no-issuer", "the token names no issuer")
    return issuer, kid if isinstance(kid, str) else None


@dataclass(slots=True)
class VerifiedMemo:
    """The last token whose signature verified on one connection: the token, the key object
    that verified it and its claims.

    Verifying a signature is a pure function of the token's text and the key, so the very
    same text under the very same key object (a rotation or reload makes new ones) needs no
    second verification. Only step 4 is skipped; every other step runs on every request.
    """

    token: str = ""
    key: Key | None = None
    claims: dict[str, Any] | None = None

    def claims_for(self, token: str, key: Key) -> dict[str, Any] | None:
        """The remembered claims when ``token`` is the one verified with ``key``, else None."""
        if self.key is key and self.token == token:
            return self.claims
        return None

    def remember(self, token: str, key: Key, claims: dict[str, Any]) -> None:
        """Keep ``token`` (its signature just verified with ``key``) and its claims."""
        self.token, self.key, self.claims = token, key, claims


VERIFIED_TOKENS = 4096  # tokens a process remembers as verified (VerifiedTokens)


class VerifiedTokens:
    """The tokens whose signatures verified in this process, most recent first, at most
    ``capacity`` (the least recently used is forgotten): a client that opens a new TLS
    connection per request (a script, a proxy's pool) pays the signature check once per
    token, not once per connection, as with an API gateway's JWT cache.

    Kept by SHA-256 of the text (the tokens themselves are not held), with the key object
    that verified each and the claims read from it. The same rule as :class:`VerifiedMemo`:
    only the very same text under the very same key object (a rotation or reload makes new
    ones) skips the signature check; every other step of :func:`check`, and the caller's
    client and revocation checks, run on every request. A token that did not verify is
    never kept. Used from the event loop only (not locked).
    """

    def __init__(self, capacity: int = VERIFIED_TOKENS) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._kept: OrderedDict[bytes, tuple[Key, dict[str, Any]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def claims_for(self, token: str, key: Key) -> dict[str, Any] | None:
        """The kept claims when ``token`` verified with ``key`` here, else None."""
        digest = hashlib.sha256(token.encode()).digest()
        kept = self._kept.get(digest)
        if kept is None or kept[0] is not key:
            return None
        self._kept.move_to_end(digest)
        return kept[1]

    def remember(self, token: str, key: Key, claims: dict[str, Any]) -> None:
        """Keep ``token`` (its signature just verified with ``key``) and its claims."""
        digest = hashlib.sha256(token.encode()).digest()
        self._kept[digest] = (key, claims)
        self._kept.move_to_end(digest)
        if len(self._kept) > self._capacity:
            self._kept.popitem(last=False)


def check(
    token: str,
    issuers: Mapping[str, TrustedIssuer],
    *,
    audience: str,
    thumbprint: str,
    now: datetime,
    leeway: int = MAX_LEEWAY,
    memo: VerifiedMemo | None = None,
    verified: VerifiedTokens | None = None,
    peeked: Peeked | None = None,
) -> AccessClaims:
    """Verify ``token`` as described in the module docstring; TokenRejected otherwise.

    ``memo`` (one per connection) and then ``verified`` (one per process) skip the
    signature check of a token they saw verify with the same key object (see
    :class:`VerifiedMemo`, :class:`VerifiedTokens`). ``peeked``: what :func:`read` returned
    for ``token`` (read once; the claims checked are those of the signed payload it read).
    """
    header, unverified = _read(token, peeked)
    _check_header(header)
    trusted = issuers.get(str(unverified.get("iss")))
    if trusted is None:
        raise TokenRejected("unknown-issuer", "the token's issuer is not trusted")
    if header["alg"] not in trusted.algorithms:
        raise TokenRejected("algorithm-not-allowed", f"alg {header['alg']} is not accepted")
    key = _key(trusted.keys, header.get("kid"))
    claims = memo.claims_for(token, key) if memo is not None else None
    if claims is None:
        claims = verified.claims_for(token, key) if verified is not None else None
        if claims is None:
            try:  # joserfc verifies; the claims are the ones read from the signed payload
                verify_signature(token, key, trusted.algorithms, header)
                claims = unverified
            except (JoseError, ValueError) as exc:
                raise TokenRejected(
                    "bad-signature", "the token's signature does not verify"
                ) from exc
            if verified is not None:
                verified.remember(token, key, claims)
        if memo is not None:
            memo.remember(token, key, claims)
    leeway = min(leeway, MAX_LEEWAY)
    return _check_claims(claims, trusted.issuer, audience, thumbprint, now=now, leeway=leeway)


def _peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        return peek(token)
    except JoseInputError as exc:
        raise TokenRejected("malformed", str(exc)) from exc


def _check_header(header: dict[str, Any]) -> None:
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        raise TokenRejected("wrong-type", "the token is not an access token (typ must be at+jwt)")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none" or alg.upper().startswith("HS"):
        raise TokenRejected("algorithm-not-allowed", f"alg {alg!r} is never accepted")
    if "crit" in header:
        raise TokenRejected("malformed", "critical header parameters are not supported")


def _key(keys: KeySet, kid: object) -> Key:
    if not isinstance(kid, str):
        raise TokenRejected("unknown-key", "the token names no key id")
    for key in keys.keys:
        if key.kid == kid:
            assert isinstance(key, Key)  # noqa: S101 - KeySets here hold only signature keys
            return key
    raise TokenRejected("unknown-key", "the token's key id is not published by its issuer")


def _check_claims(
    claims: dict[str, Any],
    issuer: str,
    audience: str,
    thumbprint: str,
    *,
    now: datetime,
    leeway: int,
) -> AccessClaims:
    moment = int(now.timestamp())
    if claims.get("iss") != issuer:
        raise TokenRejected("wrong-issuer", "the token's issuer does not match")
    aud = claims.get("aud")
    audiences = (aud,) if isinstance(aud, str) else tuple(aud) if isinstance(aud, list) else ()
    if audience not in audiences:
        raise TokenRejected("wrong-audience", "the token is meant for another audience")
    exp, iat, nbf = _numeric(claims, "exp"), _numeric(claims, "iat"), _numeric(claims, "nbf")
    if is_expired(exp, now, leeway):
        raise TokenRejected("expired", "the token has expired")
    if iat > moment + leeway or nbf > moment + leeway:
        raise TokenRejected("not-yet-valid", "the token is not valid yet")
    subject, client_id, jti = claims.get("sub"), claims.get("client_id"), claims.get("jti")
    if not (_present(subject) and _present(client_id) and _present(jti)):
        raise TokenRejected("malformed", "sub, client_id and jti must be present")
    bound = _bound_thumbprint(claims)
    if not hmac.compare_digest(bound.encode(), thumbprint.encode()):
        raise TokenRejected("wrong-certificate", "the token is bound to another certificate")
    scope = claims.get("scope", "")
    return AccessClaims(
        issuer=issuer,
        subject=str(subject),
        client_id=str(client_id),
        audience=audiences if isinstance(aud, str) else tuple(map(str, audiences)),
        scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
        jti=str(jti),
        issued_at=iat,
        expires_at=exp,
        thumbprint=bound,
    )


def _present(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _numeric(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name, 0 if name == "nbf" else None)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TokenRejected("malformed", f"{name} must be present as an integer NumericDate")
    return value


def _bound_thumbprint(claims: dict[str, Any]) -> str:
    cnf = claims.get("cnf")
    value = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
    if not isinstance(value, str) or not value:
        raise TokenRejected("unbound", "the token is not bound to a certificate (cnf.x5t#S256)")
    return value
