"""Suite-wide fixtures: the shared/ test material and a PKI made in the run."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared_vectors() -> Path:
    """``../shared/vectors``; skips with a reason where it is absent."""
    path = SHARED / "vectors"
    if not path.is_dir():
        pytest.skip(f"conformance vectors not present at {path}")
    return path
