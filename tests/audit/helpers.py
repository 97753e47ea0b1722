"""Small builders shared by the audit tests, and where the shared vectors live.

The vectors live in ``<workspace>/shared/vectors/merkle`` beside the repository; they are
read in place and never copied into the project (see its SOURCES.md for provenance).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.audit.merkle import leaf_hash
from tests.support.shared import VECTORS

MERKLE_VECTORS = VECTORS / "merkle"
MISSING = f"conformance vectors not present at {MERKLE_VECTORS}"


def read_vectors(path: Path) -> Any:
    """One JSON vector file."""
    return json.loads(path.read_text(encoding="utf-8"))


def probe_params(name: str) -> list[Any]:
    """Collection-time parameters, one per probe, or one visible skip when absent."""
    if not (MERKLE_VECTORS / name).is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=MISSING), id="absent")]
    probes = read_vectors(MERKLE_VECTORS / name)["probes"]
    return [pytest.param(p, id=p["file"].removeprefix("testdata/")) for p in probes]


def leaves(size: int, salt: bytes = b"") -> list[bytes]:
    """``size`` distinct leaf hashes."""
    return [leaf_hash(salt + i.to_bytes(8, "big")) for i in range(size)]


def flip(data: bytes, bit: int) -> bytes:
    """``data`` with one bit flipped (``bit`` taken modulo its length in bits)."""
    bit %= len(data) * 8
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def unhex(values: list[str]) -> list[bytes]:
    """Hex strings to bytes."""
    return [bytes.fromhex(v) for v in values]
