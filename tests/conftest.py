"""Suite-wide fixtures: the shared/ test material and a PKI made in the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.shared import VECTORS


@pytest.fixture(scope="session")
def shared_vectors() -> Path:
    """``../shared/vectors``; skips with a reason where it is absent."""
    path = VECTORS
    if not path.is_dir():
        pytest.skip(f"conformance vectors not present at {path}")
    return path
