"""Suite-wide fixtures: the shared/ test material and a PKI made in the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.shared import VECTORS

# pytest-xdist's workers start with COLUMNS=80 and LINES=24 in their environment. The CLI's
# rich consoles (gateway/cli/output.py) fix their width from COLUMNS when they are made, so
# the CLI tests, which set COLUMNS per invocation, would see 80 for good in a worker.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def shared_vectors() -> Path:
    """``../shared/vectors``; skips with a reason where it is absent."""
    path = VECTORS
    if not path.is_dir():
        pytest.skip(f"conformance vectors not present at {path}")
    return path
