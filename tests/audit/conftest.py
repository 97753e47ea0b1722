"""Fixtures for the audit-core tests: the shared conformance vectors, skipped when absent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.audit.helpers import MERKLE_VECTORS, MISSING, read_vectors


@pytest.fixture(scope="module")
def merkle_vectors() -> Path:
    """The shared merkle vector folder; skips the module's tests with a reason if absent."""
    if not MERKLE_VECTORS.is_dir():
        pytest.skip(MISSING)
    return MERKLE_VECTORS


@pytest.fixture(scope="module")
def reference_tree(merkle_vectors: Path) -> Any:
    """RFC 6962 reference tree (transparency-dev constants)."""
    return read_vectors(merkle_vectors / "rfc6962_reference_tree.json")


@pytest.fixture(scope="module")
def note_vectors(merkle_vectors: Path) -> Any:
    """C2SP / Go sumdb signed-note and checkpoint vectors."""
    return read_vectors(merkle_vectors / "signed_note_checkpoint_vectors.json")


@pytest.fixture(scope="module")
def rekor_proof(merkle_vectors: Path) -> Any:
    """A real production Rekor inclusion proof."""
    return read_vectors(merkle_vectors / "rekor_real_inclusion_proof.json")
