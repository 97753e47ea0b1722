"""Fixtures for the certs tests: one PKI per key type, built once per module."""

from __future__ import annotations

import pytest

from tests.certs.pki_builders import Pki


@pytest.fixture(scope="module", params=["ec-p256", "ed25519"])
def pki(request: pytest.FixtureRequest) -> Pki:
    """A root + issuing CA of each supported key type."""
    return Pki.create(request.param)


@pytest.fixture(scope="module")
def ec_pki() -> Pki:
    """An ECDSA P-256 root + issuing CA."""
    return Pki.create("ec-p256")
