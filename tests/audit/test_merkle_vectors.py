"""Known-answer tests: the RFC 6962 reference tree and a real Rekor inclusion proof."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from gateway.audit import (
    Checkpoint,
    Frontier,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from gateway.audit.merkle import EMPTY_ROOT
from tests.audit.helpers import flip, unhex


def _leaf_hashes(tree: Any) -> list[bytes]:
    return [leaf_hash(bytes.fromhex(leaf)) for leaf in tree["leaves_hex"]]


def test_hasher_vectors(reference_tree: Any) -> None:
    ops: dict[str, Callable[[Any], bytes]] = {
        "empty_root": lambda _: root_hash([]),
        "leaf": lambda v: leaf_hash(bytes.fromhex(v["input_hex"])),
        "node": lambda v: node_hash(bytes.fromhex(v["left_hex"]), bytes.fromhex(v["right_hex"])),
    }
    for vector in reference_tree["hasher_vectors"]:
        assert ops[vector["op"]](vector).hex() == vector["want"], vector["desc"]
    assert root_hash([]) == EMPTY_ROOT


def test_leaf_hashes(reference_tree: Any) -> None:
    assert [h.hex() for h in _leaf_hashes(reference_tree)] == reference_tree["leaf_hashes"]


def test_roots_for_every_size(reference_tree: Any) -> None:
    hashes = _leaf_hashes(reference_tree)
    for size, want in reference_tree["roots_by_tree_size"].items():
        assert root_hash(hashes[: int(size)]).hex() == want


def test_frontier_emits_the_reference_nodes(reference_tree: Any) -> None:
    frontier, emitted = Frontier(), {}
    for h in _leaf_hashes(reference_tree):
        frontier, nodes = frontier.append(h)
        emitted.update({(n.level, n.index): n.hash.hex() for n in nodes})
    for level, hashes in enumerate(reference_tree["node_hashes_by_level"]):
        for index, want in enumerate(hashes):
            assert emitted[level, index] == want
    assert frontier.root().hex() == reference_tree["roots_by_tree_size"]["8"]


def test_reference_inclusion_proofs(reference_tree: Any) -> None:
    hashes = _leaf_hashes(reference_tree)
    for case in reference_tree["inclusion_proofs"]:
        index, size, proof = case["leaf_index"], case["tree_size"], unhex(case["proof"])
        assert inclusion_proof(hashes, index, size) == proof
        verify_inclusion(
            bytes.fromhex(case["leaf_hash"]), index, size, proof, bytes.fromhex(case["root"])
        )


def test_reference_consistency_proofs(reference_tree: Any) -> None:
    hashes = _leaf_hashes(reference_tree)
    for case in reference_tree["consistency_proofs"]:
        size1, size2, proof = case["size1"], case["size2"], unhex(case["proof"])
        assert consistency_proof(hashes, size1, size2) == proof
        roots = bytes.fromhex(case["root1"]), bytes.fromhex(case["root2"])
        verify_consistency(size1, size2, proof, *roots)


def _rekor_args(rekor: Any) -> tuple[bytes, int, int, list[bytes], bytes]:
    leaf = leaf_hash(base64.b64decode(rekor["canonicalized_body_b64"]))
    return (
        leaf,
        rekor["leaf_index"],
        rekor["tree_size"],
        unhex(rekor["proof"]),
        bytes.fromhex(rekor["root"]),
    )


def test_real_rekor_inclusion_proof(rekor_proof: Any) -> None:
    leaf, index, size, proof, root = _rekor_args(rekor_proof)
    assert leaf.hex() == rekor_proof["leaf_hash"]
    assert len(proof) == 18
    verify_inclusion(leaf, index, size, proof, root)


def test_rekor_checkpoint_body_names_the_same_tree(rekor_proof: Any) -> None:
    body = rekor_proof["checkpoint_envelope"].split("\n\n")[0] + "\n"
    checkpoint = Checkpoint.parse(body)
    assert checkpoint.size == rekor_proof["tree_size"]
    assert checkpoint.root_hash.hex() == rekor_proof["root"]


@pytest.mark.parametrize(
    "tamper",
    ["proof", "root", "leaf", "index", "size", "drop", "extra"],
)
def test_tampered_rekor_proof_fails(rekor_proof: Any, tamper: str) -> None:
    leaf, index, size, proof, root = _rekor_args(rekor_proof)
    if tamper == "proof":
        proof[7] = flip(proof[7], 100)
    elif tamper == "root":
        root = flip(root, 0)
    elif tamper == "leaf":
        leaf = flip(leaf, 255)
    elif tamper == "index":
        index -= 1
    elif tamper == "size":
        size *= 2  # (size + 1 may share the path's shape: the root binds the size, not the path)
    elif tamper == "drop":
        proof.pop()
    else:
        proof.append(root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof, root)
