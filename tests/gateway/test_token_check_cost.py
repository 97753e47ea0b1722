"""What one first-request token check does, counted (issue 10: p50 <= 150 µs).

The resource-server check reads the token's header and claims once (not once to find the
issuer and again to check), and caller JSON too shallow to nest past the bound is parsed
without the character-by-character depth scan. Counts, not wall-clock times.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gateway import json_input
from gateway.auth import tokens
from gateway.json_input import JsonInputError, loads_bounded
from tests.gateway.test_token_memo import _counting
from tests.gateway.test_token_windows import T0, _fresh_token, _world
from tests.support.databases import database_url
from tests.support.pki import Pki


def test_a_bearer_check_reads_the_token_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    real = tokens.peek

    def counting(token: str) -> Any:
        reads.append(token)
        return real(token)

    async def main(url: str) -> None:
        async with _world(url, Pki(tmp_path / "pki")) as world:
            token = await _fresh_token(world, "once", T0)
            monkeypatch.setattr(tokens, "peek", counting)
            checked = await world.oauth.check_bearer(token, world.caller, T0)
            assert checked.claims.jti
            assert reads == [token]

    with database_url("sqlite", tmp_path) as url:
        asyncio.run(main(url))


def test_shallow_json_skips_the_depth_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    scans: list[str] = []
    real = json_input.nesting_depth

    def counting(text: str) -> int:
        scans.append(text)
        return real(text)

    monkeypatch.setattr(json_input, "nesting_depth", counting)
    shallow = '{"cnf": {"x5t#S256": "[[[[{{{{"}, "aud": ["a"]}'
    assert loads_bounded(shallow, max_depth=2) == {"cnf": {"x5t#S256": "[[[[{{{{"}, "aud": ["a"]}
    assert scans == [shallow]  # brackets inside strings count as openers: scanned, accepted
    scans.clear()
    assert loads_bounded('{"a": [1, {"b": 2}]}', max_depth=3) == {"a": [1, {"b": 2}]}
    assert scans == []  # three openers cannot nest deeper than three
    with pytest.raises(JsonInputError):
        loads_bounded("[" * 4 + "]" * 4, max_depth=3)
    assert len(scans) == 1


def test_a_token_checked_again_without_its_connection_is_verified_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """check_bearer with no connection memo (a new TLS connection each time) verifies a
    token's signature once (tokens.VerifiedTokens); a second token is verified on its own."""

    async def main(url: str) -> None:
        async with _world(url, Pki(tmp_path / "pki")) as world:
            token = await _fresh_token(world, "once", T0)
            other = await _fresh_token(world, "twice", T0)
            verified = _counting(monkeypatch)
            for _ in range(3):
                assert (await world.oauth.check_bearer(token, world.caller, T0)).claims.jti
            await world.oauth.check_bearer(other, world.caller, T0)
            assert verified == [token, other]

    with database_url("sqlite", tmp_path) as url:
        asyncio.run(main(url))
