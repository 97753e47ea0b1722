"""The storage-backed helpers agree with the list-based reference, for every index."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit import (
    Frontier,
    NodeID,
    ProofError,
    consistency_proof,
    consistency_proof_nodes,
    frontier_ids,
    inclusion_proof,
    inclusion_proof_nodes,
    root_hash,
)
from gateway.audit.compact import ProofNodes, range_nodes
from gateway.audit.merkle import EMPTY_ROOT
from tests.audit.helpers import leaves


def _grow(tree: list[bytes]) -> tuple[Frontier, dict[NodeID, bytes]]:
    """Append every leaf, keeping what a storage layer would keep."""
    frontier, store = Frontier(), {}
    for h in tree:
        frontier, nodes = frontier.append(h)
        store.update({n.id: n.hash for n in nodes})
    return frontier, store


def test_range_nodes_cover_ragged_edges() -> None:
    assert range_nodes(4, 7) == [NodeID(1, 2), NodeID(0, 6)]
    assert range_nodes(0, 13) == [NodeID(3, 0), NodeID(2, 2), NodeID(0, 12)]
    assert range_nodes(8, 8) == []
    assert frontier_ids(6) == [NodeID(2, 0), NodeID(1, 2)]
    # Ranges starting off a power of two: the first node's size is bounded by the start.
    assert range_nodes(3, 8) == [NodeID(0, 3), NodeID(2, 1)]
    assert range_nodes(6, 13) == [NodeID(1, 3), NodeID(2, 2), NodeID(0, 12)]
    assert range_nodes(5, 6) == [NodeID(0, 5)]
    assert range_nodes(12, 16) == [NodeID(2, 3)]


def test_each_compact_refusal_says_why() -> None:
    with pytest.raises(ProofError) as frontier:
        Frontier(3, (bytes(32),))
    assert (frontier.value.code, frontier.value.detail) == ("bad-frontier", "1 hashes for size 3")
    plan = ProofNodes(((NodeID(0, 0),), (NodeID(0, 1),)))
    with pytest.raises(ProofError) as count:
        plan.combine([bytes(32)])
    assert (count.value.code, count.value.detail) == ("wrong-node-count", "1 hashes for 2")
    with pytest.raises(ProofError) as length:
        Frontier.from_hashes(1, [b"x"])
    assert (length.value.code, length.value.detail) == (
        "bad-hash-length",
        "every hash must be 32 bytes",
    )
    assert Frontier.from_hashes(1, [bytes(32)]) == Frontier(1, (bytes(32),))


def test_empty_frontier() -> None:
    assert Frontier().root() == EMPTY_ROOT == root_hash([])


def test_append_reports_each_completed_node() -> None:
    frontier, _ = _grow(leaves(7))
    _, nodes = frontier.append(leaves(8)[7])
    assert [n.id for n in nodes] == [NodeID(0, 7), NodeID(1, 3), NodeID(2, 1), NodeID(3, 0)]


@settings(max_examples=25, deadline=None)
@given(size=st.integers(min_value=0, max_value=300))
def test_frontier_matches_the_reference(size: int) -> None:
    tree = leaves(size, salt=b"frontier")
    frontier, store = _grow(tree)
    assert frontier.root() == root_hash(tree)
    assert len(store) == 2 * size - size.bit_count()  # every perfect subtree, once
    for node, h in store.items():
        begin = node.index << node.level
        assert h == root_hash(tree[begin : begin + (1 << node.level)])
    rebuilt = Frontier.from_hashes(size, [store[i] for i in frontier_ids(size)])
    assert rebuilt == frontier


@settings(max_examples=25, deadline=None)
@given(size=st.integers(min_value=1, max_value=300))
def test_inclusion_plans_match_for_every_index(size: int) -> None:
    tree = leaves(size, salt=b"inclusion")
    _, store = _grow(tree)
    for index in range(size):
        plan = inclusion_proof_nodes(index, size)
        assert sum(len(group) > 1 for group in plan.groups) <= 1  # at most one ragged element
        assert plan.combine([store[i] for i in plan.ids]) == inclusion_proof(tree, index, size)


@settings(max_examples=25, deadline=None)
@given(size=st.integers(min_value=1, max_value=300))
def test_consistency_plans_match_for_every_older_size(size: int) -> None:
    tree = leaves(size, salt=b"consistency")
    _, store = _grow(tree)
    for size1 in range(1, size + 1):
        plan = consistency_proof_nodes(size1, size)
        assert sum(len(group) > 1 for group in plan.groups) <= 1
        assert plan.combine([store[i] for i in plan.ids]) == consistency_proof(tree, size1, size)


@settings(max_examples=25, deadline=None)
@given(size=st.integers(min_value=2, max_value=300), data=st.data())
def test_plans_only_name_nodes_complete_at_that_size(size: int, data: st.DataObject) -> None:
    _, store = _grow(leaves(size))
    old = data.draw(st.integers(min_value=1, max_value=size))
    index = data.draw(st.integers(min_value=0, max_value=old - 1))
    _, store_then = _grow(leaves(old))
    assert set(inclusion_proof_nodes(index, old).ids) <= set(store_then)
    assert set(consistency_proof_nodes(old, size).ids) <= set(store)


def test_combine_refuses_the_wrong_hashes() -> None:
    plan = inclusion_proof_nodes(2, 7)
    with pytest.raises(ProofError, match="wrong-node-count"):
        plan.combine([])
    with pytest.raises(ProofError, match="bad-hash-length"):
        plan.combine([b"short"] * len(plan.ids))


@pytest.mark.parametrize(
    ("size", "hashes"),
    [(3, (b"\x00" * 32,)), (-1, ()), (1, (b"\x00" * 31,))],
)
def test_inconsistent_frontier_is_refused(size: int, hashes: tuple[bytes, ...]) -> None:
    with pytest.raises(ProofError):
        Frontier(size, hashes)


def test_append_refuses_a_bad_leaf_hash() -> None:
    with pytest.raises(ProofError, match="bad-hash-length"):
        Frontier().append(b"not a hash")
