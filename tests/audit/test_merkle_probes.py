"""transparency-dev/merkle's 98 inclusion and 98 consistency probes, each its own test.

Valid probes must verify; every ``wantErr`` probe must raise :class:`ProofError`.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.audit import ProofError, verify_consistency, verify_inclusion
from tests.audit.helpers import MERKLE_VECTORS, probe_params, read_vectors, unhex


@pytest.mark.parametrize("probe", probe_params("inclusion_probes.hex.json"))
def test_inclusion_probe(probe: Any) -> None:
    args = (
        bytes.fromhex(probe["leafHash"]),
        probe["leafIdx"],
        probe["treeSize"],
        unhex(probe["proof"]),
        bytes.fromhex(probe["root"]),
    )
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("probe", probe_params("consistency_probes.hex.json"))
def test_consistency_probe(probe: Any) -> None:
    args = (
        probe["size1"],
        probe["size2"],
        unhex(probe["proof"]),
        bytes.fromhex(probe["root1"]),
        bytes.fromhex(probe["root2"]),
    )
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


@pytest.mark.usefixtures("merkle_vectors")
@pytest.mark.parametrize("name", ["inclusion_probes.hex.json", "consistency_probes.hex.json"])
def test_probe_sets_are_complete(name: str) -> None:
    probes = read_vectors(MERKLE_VECTORS / name)["probes"]
    assert len(probes) == 98
    assert sum(not p["wantErr"] for p in probes) == 6
