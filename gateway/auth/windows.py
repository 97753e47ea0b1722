"""How long a credential can be accepted, and so how long its records must be kept. Pure.

Every acceptance rule for tokens and client assertions takes its clock leeway and its
maximum lifetime from here, and every retention horizon (spent assertion ``jti``, revoked
token ``jti``, published retired key, remembered bound certificate) is derived from the
same numbers, so a record can never be forgotten while the credential it guards is still
accepted:

* a client assertion is accepted while ``now < exp + ASSERTION_LEEWAY``; its spent ``jti``
  is kept until then (:func:`assertion_purge_before`);
* an access token is accepted while ``now < exp + TOKEN_LEEWAY``; a revocation, and the
  certificate it is bound to, are kept until then (:func:`token_purge_before`);
* a retired signing key stays trusted until ``retired + lifetime + TOKEN_LEEWAY``
  (:func:`key_published_until`).

Times are whole seconds (JWT NumericDate) for the credentials and exact datetimes for
``now``: the last instant a credential with ``exp`` is accepted is just before
``exp + leeway``; at ``exp + leeway`` it is refused, and only then may its record go.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: Clock skew allowed on client assertions (``exp``, ``iat``, ``nbf``), in seconds.
ASSERTION_LEEWAY = 30
#: Clock skew allowed on access tokens, ours and external issuers', in seconds.
TOKEN_LEEWAY = 60
#: FAPI 2.0 ``private_key_jwt``: seconds an assertion may live, counted from the earlier
#: of ``iat`` and the moment it is checked (so an ``iat`` in the future buys nothing).
FAPI_MAX_LIFETIME = 300
#: iSHARE: the same cap for iSHARE client assertions.
ISHARE_MAX_LIFETIME = 30


def _instant(numeric_date: int) -> datetime:
    return datetime.fromtimestamp(numeric_date, UTC)


def accepted_until(exp: int, leeway: int) -> datetime:
    """The first instant a credential expiring at ``exp`` is refused (with ``leeway`` s)."""
    return _instant(exp) + timedelta(seconds=leeway)


def is_expired(exp: int, now: datetime, leeway: int) -> bool:
    """Whether a credential expiring at ``exp`` is refused at ``now``."""
    return now >= accepted_until(exp, leeway)


def key_published_until(retired_at: datetime, lifetime: timedelta) -> datetime:
    """A retired signing key stays trusted until its last token is no longer accepted.

    The last token it signs is minted at ``retired_at`` at the latest (rollouts finish within
    one lifetime, see docs/oauth.md) and expires ``lifetime`` later (``iat`` is rounded
    down), accepted ``TOKEN_LEEWAY`` beyond.
    """
    return retired_at + lifetime + timedelta(seconds=TOKEN_LEEWAY)


def assertion_purge_before(now: datetime) -> datetime:
    """Spent-assertion rows with ``exp`` before this instant can no longer be replayed."""
    return now - timedelta(seconds=ASSERTION_LEEWAY)


def token_purge_before(now: datetime) -> datetime:
    """Revocation rows with ``exp`` before this instant guard tokens no longer accepted."""
    return now - timedelta(seconds=TOKEN_LEEWAY)
