"""A refused request whose path holds NUL is still in the log, on PostgreSQL too.

The refusal's entry names the path as its ``target``; PostgreSQL's text cannot hold NUL,
so the filter column keeps it as U+FFFD (the entry's bytes keep it exactly). Before, the
batch holding such an entry failed, and every other entry in it with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.audit_site import Site, client, open_site
from tests.support.server import running_gateway


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    with open_site(request.param, tmp_path) as value:
        yield value


def test_a_refusal_at_a_nul_path_is_logged_and_found(site: Site) -> None:
    with running_gateway(site.settings()) as base:
        with client(site, base, "maker") as maker:
            refused = maker.get("/console/%00probe")
            assert refused.status_code == 403
            assert refused.json()["type"] == "urn:sluis:problem:role-required"
        with client(site, base, "officer") as officer:
            found = officer.get("/v1/audit/entries", params={"target": "/console/\x00probe"})
            assert found.status_code == 200, found.text
            (entry,) = [e["entry"] for e in found.json()["entries"]]
            assert entry["target"] == "/console/\x00probe"
            assert entry["decision"]["reasons"][0] == "role-required"
