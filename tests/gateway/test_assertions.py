"""Client assertions, pure: lifetime caps and the acceptance boundary (injected clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from gateway.auth import windows
from gateway.auth.assertions import AssertionRejected, verify_private_key_jwt

ISSUER = "https://gateway.example"
CLIENT = "NTRNL-40000002"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MOMENT = int(NOW.timestamp())
MICROSECOND = timedelta(microseconds=1)
KEY = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
KEY.ensure_kid()


def _verify(now: datetime = NOW, **claims: object) -> object:
    values: dict[str, object] = {"iss": CLIENT, "sub": CLIENT, "aud": ISSUER, "jti": "j"}
    values.update(claims)
    token = jwt.encode({"alg": "ES256", "kid": KEY.kid}, values, KEY)
    public = ECKey.import_key(KEY.as_dict(private=False))
    return verify_private_key_jwt(
        token, client_id=CLIENT, keys=KeySet([public]), issuer=ISSUER, now=now
    )


def _code(now: datetime = NOW, **claims: object) -> str:
    with pytest.raises(AssertionRejected) as refused:
        _verify(now, **claims)
    return refused.value.code


def test_an_iat_in_the_future_buys_no_extra_life() -> None:
    # iat 30 s ahead (allowed skew) and exp 300 s after it: 330 s of life from now.
    assert _code(iat=MOMENT + 30, exp=MOMENT + 330) == "too-long-lived"
    assert _code(iat=MOMENT + 30, exp=MOMENT + 301) == "too-long-lived"
    assert _verify(iat=MOMENT + 30, exp=MOMENT + 300)
    assert _verify(iat=MOMENT - 10, exp=MOMENT + 290)
    assert _code(iat=MOMENT - 10, exp=MOMENT + 291) == "too-long-lived"
    assert _code(exp=MOMENT + 301) == "too-long-lived"  # no iat: counted from now


def test_acceptance_ends_exactly_at_exp_plus_the_leeway() -> None:
    exp = MOMENT + 60
    end = windows.accepted_until(exp, windows.ASSERTION_LEEWAY)
    assert end == datetime.fromtimestamp(exp + 30, UTC)
    assert _verify(end - MICROSECOND, iat=MOMENT, exp=exp)
    assert _code(end, iat=MOMENT, exp=exp) == "expired"


@given(
    exp=st.integers(min_value=0, max_value=4_000_000_000),
    offset=st.integers(min_value=-(10**9), max_value=10**9),
)
def test_no_record_is_purged_while_its_credential_is_accepted(exp: int, offset: int) -> None:
    now = datetime.fromtimestamp(exp, UTC) + timedelta(microseconds=offset)
    stored = datetime.fromtimestamp(exp, UTC)
    for leeway, purge_before in (
        (windows.ASSERTION_LEEWAY, windows.assertion_purge_before),
        (windows.TOKEN_LEEWAY, windows.token_purge_before),
    ):
        if not windows.is_expired(exp, now, leeway):
            assert not stored < purge_before(now)  # the purge keeps it
