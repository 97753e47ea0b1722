"""Attack tests and round-trip properties for the Merkle proofs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit import (
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from tests.audit.helpers import flip, leaves

SIZES = st.integers(min_value=1, max_value=300)


def _code(exc: pytest.ExceptionInfo[ProofError]) -> str:
    return exc.value.code


def test_second_preimage_leaf_never_verifies_as_node() -> None:
    tree = leaves(4)
    root = root_hash(tree)
    left, right = node_hash(tree[0], tree[1]), node_hash(tree[2], tree[3])
    assert root == node_hash(left, right)
    forged = leaf_hash(left + right)  # the interior node's preimage, submitted as entry data
    assert forged != root
    with pytest.raises(ProofError) as exc:
        verify_inclusion(forged, 0, 1, [], root)
    assert _code(exc) == "root-mismatch"


@given(size=st.integers(min_value=2, max_value=64), data=st.data())
def test_no_interior_node_passes_as_a_leaf(size: int, data: st.DataObject) -> None:
    tree = leaves(size)
    root = root_hash(tree)
    index = data.draw(st.integers(min_value=0, max_value=size - 2))
    proof = inclusion_proof(tree, index, size)
    concatenation = tree[index] + tree[index + 1]
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(concatenation), index, size, proof, root)
    parent = node_hash(tree[index], tree[index + 1])
    with pytest.raises(ProofError):  # a node hash posing as a leaf at its own position
        verify_inclusion(parent, index, size, proof, root)


@pytest.mark.parametrize(("index", "size"), [(8, 8), (9, 8), (-1, 8), (0, 0), (2**64, 2**64)])
def test_index_beyond_the_tree(index: int, size: int) -> None:
    tree = leaves(8)
    with pytest.raises(ProofError) as exc:
        verify_inclusion(tree[0], index, size, [], root_hash(tree))
    assert _code(exc) == "index-out-of-range"


def test_generators_refuse_impossible_requests() -> None:
    tree = leaves(5)
    with pytest.raises(ProofError, match="index-out-of-range"):
        inclusion_proof(tree, 5, 5)
    with pytest.raises(ProofError, match="size-out-of-range"):
        inclusion_proof(tree, 0, 6)
    with pytest.raises(ProofError, match="size-out-of-range"):
        consistency_proof(tree, 4, 3)
    with pytest.raises(ProofError, match="empty-tree"):
        consistency_proof(tree, 0, 5)
    assert consistency_proof(tree, 5, 5) == []


@pytest.mark.parametrize("change", ["truncate", "extend", "prepend", "empty"])
def test_resized_proofs_fail(change: str) -> None:
    tree = leaves(13)
    root, proof = root_hash(tree), inclusion_proof(tree, 6, 13)
    cproof = consistency_proof(tree, 6, 13)
    resized = {
        "truncate": (proof[:-1], cproof[:-1]),
        "extend": ([*proof, root], [*cproof, root]),
        "prepend": ([root, *proof], [root, *cproof]),
        "empty": ([], []),
    }[change]
    with pytest.raises(ProofError, match="wrong-proof-size"):
        verify_inclusion(tree[6], 6, 13, resized[0], root)
    with pytest.raises(ProofError, match="wrong-proof-size"):
        verify_consistency(6, 13, resized[1], root_hash(tree[:6]), root)


def test_swapped_roots_fail() -> None:
    tree = leaves(10)
    root1, root2 = root_hash(tree[:3]), root_hash(tree)
    proof = consistency_proof(tree, 3, 10)
    verify_consistency(3, 10, proof, root1, root2)
    with pytest.raises(ProofError, match="root-mismatch"):
        verify_consistency(3, 10, proof, root2, root1)


def test_hash_lengths_are_checked() -> None:
    tree = leaves(4)
    proof, root = inclusion_proof(tree, 1, 4), root_hash(tree)
    for bad in (tree[1][:31], tree[1] + b"\x00"):
        with pytest.raises(ProofError, match="bad-hash-length"):
            verify_inclusion(bad, 1, 4, proof, root)
    with pytest.raises(ProofError, match="bad-hash-length"):
        verify_inclusion(tree[1], 1, 4, [proof[0][:16], *proof[1:]], root)
    with pytest.raises(ProofError, match="bad-hash-length"):
        verify_consistency(2, 4, [b""], root_hash(tree[:2]), root)


def test_consistency_edge_cases() -> None:
    tree = leaves(3)
    root = root_hash(tree)
    verify_consistency(3, 3, [], root, root)
    with pytest.raises(ProofError, match="root-mismatch"):
        verify_consistency(3, 3, [], root, root_hash(tree[:2]))
    with pytest.raises(ProofError, match="wrong-proof-size"):
        verify_consistency(3, 3, [root], root, root)
    with pytest.raises(ProofError, match="empty-tree"):
        verify_consistency(0, 3, [], root_hash([]), root)
    with pytest.raises(ProofError, match="size-out-of-range"):
        verify_consistency(3, 2, [], root, root)


@settings(max_examples=60)
@given(size=SIZES, data=st.data())
def test_inclusion_round_trip_and_bit_flips(size: int, data: st.DataObject) -> None:
    tree = leaves(size, salt=b"incl")
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    proof, root = inclusion_proof(tree, index, size), root_hash(tree)
    verify_inclusion(tree[index], index, size, proof, root)
    bit = data.draw(st.integers(min_value=0, max_value=255), label="bit")
    with pytest.raises(ProofError):
        verify_inclusion(flip(tree[index], bit), index, size, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(tree[index], index, size, proof, flip(root, bit))
    if proof:
        at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="element")
        proof[at] = flip(proof[at], bit)
        with pytest.raises(ProofError):
            verify_inclusion(tree[index], index, size, proof, root)


@settings(max_examples=60)
@given(size2=SIZES, data=st.data())
def test_consistency_round_trip_and_bit_flips(size2: int, data: st.DataObject) -> None:
    tree = leaves(size2, salt=b"cons")
    size1 = data.draw(st.integers(min_value=1, max_value=size2), label="size1")
    proof = consistency_proof(tree, size1, size2)
    root1, root2 = root_hash(tree[:size1]), root_hash(tree)
    verify_consistency(size1, size2, proof, root1, root2)
    bit = data.draw(st.integers(min_value=0, max_value=255), label="bit")
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, flip(root1, bit), root2)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, root1, flip(root2, bit))
    if proof:
        at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="element")
        proof[at] = flip(proof[at], bit)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, proof, root1, root2)


def test_every_index_and_every_older_size() -> None:
    """Every tree of 1 to 40 leaves, each index and each older size: all of them, not a
    random draw (a consistency proof whose older subtree ends where the newer path does,
    5 of 6 leaves, 9 of 10, 9 of 12, was refused by a mutant only some draws reached)."""
    for size in range(1, 41):
        tree = leaves(size, salt=b"all")
        root = root_hash(tree)
        for index in range(size):
            verify_inclusion(tree[index], index, size, inclusion_proof(tree, index, size), root)
        for size1 in range(1, size + 1):
            proof = consistency_proof(tree, size1, size)
            verify_consistency(size1, size, proof, root_hash(tree[:size1]), root)


@pytest.mark.parametrize(
    ("size1", "size2", "code", "detail"),
    [
        (3, 2, "size-out-of-range", "need 0 <= size1 <= size2, got 3, 2"),
        (-1, 2, "size-out-of-range", "need 0 <= size1 <= size2, got -1, 2"),
        (0, 3, "empty-tree", "a consistency proof from the empty tree proves nothing"),
    ],
)
def test_impossible_sizes_are_refused_with_their_exact_code(
    size1: int, size2: int, code: str, detail: str
) -> None:
    """The code exactly (``match=`` above would accept ``XXempty-treeXX``: a survivor of
    ``make mutate``), and the detail as written."""
    tree = leaves(3)
    with pytest.raises(ProofError) as exc:
        verify_consistency(size1, size2, [], root_hash(tree[:1]), root_hash(tree))
    assert (exc.value.code, exc.value.detail) == (code, detail)


@pytest.mark.parametrize("which", ["root1", "root2"])
def test_a_root_of_the_wrong_length_is_a_hash_length_error(which: str) -> None:
    tree = leaves(5)
    proof = consistency_proof(tree, 3, 5)
    roots = {"root1": root_hash(tree[:3]), "root2": root_hash(tree)}
    roots[which] = roots[which][:31]
    with pytest.raises(ProofError) as exc:
        verify_consistency(3, 5, proof, roots["root1"], roots["root2"])
    assert exc.value.code == "bad-hash-length"  # said as what it is, not as a mismatch


def test_the_empty_tree_is_available_but_holds_no_leaf() -> None:
    """Size 0 is a tree the log has (``_check_available``): what fails is the request in it."""
    with pytest.raises(ProofError) as exc:
        inclusion_proof([], 0, 0)
    assert exc.value.code == "index-out-of-range"
    with pytest.raises(ProofError) as exc:
        consistency_proof(leaves(2), 0, 0)
    assert exc.value.code == "empty-tree"


def test_refusals_say_what_failed_in_words() -> None:
    """Codes and details exactly, for the refusals other tests only match loosely."""
    tree = leaves(2)
    with pytest.raises(ProofError) as exc:
        inclusion_proof(tree, 0, 3)
    assert (exc.value.code, exc.value.detail) == ("size-out-of-range", "tree size 3 beyond 2")
    with pytest.raises(ProofError) as exc:
        verify_inclusion(tree[0], 0, 2, [tree[0]], root_hash(tree))
    expected = ("root-mismatch", "calculated root does not match the expected root")
    assert (exc.value.code, exc.value.detail) == expected


def test_each_refusal_has_its_exact_code_and_detail() -> None:
    tree = leaves(4)
    root, proof = root_hash(tree), inclusion_proof(tree, 1, 4)
    cases = [
        (lambda: inclusion_proof(tree, 4, 4), "index-out-of-range",
         "leaf index 4 not in a tree of 4"),
        (lambda: verify_inclusion(tree[1], 1, 4, proof, root[:31]), "bad-hash-length",
         "every hash must be 32 bytes"),
        (lambda: verify_inclusion(tree[1], 1, 4, proof[:1], root), "wrong-proof-size",
         "proof does not fit the tree sizes (1/2)"),
    ]  # fmt: skip
    for call, code, detail in cases:
        with pytest.raises(ProofError) as exc:
            call()
        assert (exc.value.code, exc.value.detail) == (code, detail)
