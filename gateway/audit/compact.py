"""O(log n) appends and proofs over stored tree nodes (pure, storage-agnostic).

A log that keeps only its leaves pays O(n) per root or proof. This module lets a storage
layer keep the tree's *perfect subtree* nodes instead, and pay O(log n):

Node coordinates
    ``NodeID(level, index)`` is the root of the perfect subtree over the leaves
    ``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes. Such a
    node is complete, and never changes, as soon as the tree has ``(index + 1) * 2**level``
    leaves. Only complete nodes are ever stored, so storage is append-only.

Appending: :class:`Frontier`
    The frontier of a tree of ``size`` leaves is its decomposition into perfect subtrees,
    one per set bit of ``size``, largest (leftmost) first: O(log n) hashes, enough to
    append the next leaf and to compute the root. ``Frontier.append`` returns a new
    frontier plus every node the leaf completed (the leaf itself, then each parent it
    closed); the storage layer writes those nodes and the entry in one transaction. The
    frontier is immutable, so a failed write leaves the old one intact. A restarted writer
    rebuilds it with ``Frontier.from_hashes(size, hashes)`` after fetching the nodes named
    by ``frontier_ids(size)``.

Proofs: :class:`ProofNodes`
    Every element of an RFC 9162 proof is the root of a subtree of the RFC tree. Most are
    perfect, hence one stored node. At most one per proof is *ragged*: a subtree on the
    right edge of a tree whose size is not a power of two, e.g. leaves ``[4, 7)`` of a
    7-leaf tree. Its root is never stored (it changes as the log grows), but it is the
    right-to-left fold ``node_hash(a, node_hash(b, c))`` of the perfect nodes covering
    its range, ``[4, 6)`` and ``[6, 7)`` here, which are stored. So
    :func:`inclusion_proof_nodes` and :func:`consistency_proof_nodes` return a plan: one
    group of node IDs per proof element (a single ID, or a ragged element's cover).
    ``plan.ids`` lists all IDs to fetch, in order; ``plan.combine(hashes)`` takes their
    hashes in that order and returns the proof, folding each group into one hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.audit.errors import ProofError
from gateway.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    consistency_ranges,
    inclusion_ranges,
    node_hash,
)


@dataclass(frozen=True, slots=True, order=True)
class NodeID:
    """A perfect subtree: ``level`` 0 are leaves; it covers ``index * 2**level`` onwards."""

    level: int
    index: int


@dataclass(frozen=True, slots=True)
class Node:
    """A completed node and its hash, as :meth:`Frontier.append` hands it to storage."""

    level: int
    index: int
    hash: bytes

    @property
    def id(self) -> NodeID:
        """The node's coordinates, without its hash."""
        return NodeID(self.level, self.index)


def range_nodes(begin: int, end: int) -> list[NodeID]:
    """The perfect subtrees covering leaves ``[begin, end)``, left to right, largest first."""
    nodes: list[NodeID] = []
    while begin < end:
        level = (end - begin).bit_length() - 1
        if begin:
            level = min(level, (begin & -begin).bit_length() - 1)
        nodes.append(NodeID(level, begin >> level))
        begin += 1 << level
    return nodes


def frontier_ids(size: int) -> list[NodeID]:
    """The nodes a :class:`Frontier` of ``size`` leaves is made of."""
    return range_nodes(0, size)


def fold(hashes: Sequence[bytes]) -> bytes:
    """Root of adjacent perfect subtrees, largest first: fold right to left."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


@dataclass(frozen=True)
class Frontier:
    """The right edge of a tree: one hash per set bit of ``size``, largest subtree first."""

    size: int = 0
    hashes: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.size < 0 or len(self.hashes) != self.size.bit_count():
            raise ProofError("bad-frontier", f"{len(self.hashes)} hashes for size {self.size}")
        _check_lengths(self.hashes)

    @classmethod
    def from_hashes(cls, size: int, hashes: Sequence[bytes]) -> Frontier:
        """Rebuild from the stored hashes of ``frontier_ids(size)``, in that order."""
        return cls(size, tuple(hashes))

    def root(self) -> bytes:
        """The tree's root hash (MTH of all ``size`` leaves)."""
        return fold(self.hashes)

    def append(self, leaf_hash: bytes) -> tuple[Frontier, tuple[Node, ...]]:
        """Add one leaf: the new frontier, and every node completed (leaf first)."""
        _check_lengths((leaf_hash,))
        stack, h, level, index = list(self.hashes), leaf_hash, 0, self.size
        completed = [Node(0, index, h)]
        while self.size >> level & 1:
            h = node_hash(stack.pop(), h)
            level, index = level + 1, index >> 1
            completed.append(Node(level, index, h))
        return Frontier(self.size + 1, (*stack, h)), tuple(completed)


@dataclass(frozen=True)
class ProofNodes:
    """Which stored nodes make up a proof, one group per proof element (see module doc)."""

    groups: tuple[tuple[NodeID, ...], ...]

    @property
    def ids(self) -> tuple[NodeID, ...]:
        """Every node to fetch, in the order :meth:`combine` expects their hashes."""
        return tuple(node for group in self.groups for node in group)

    def combine(self, hashes: Sequence[bytes]) -> list[bytes]:
        """The proof, from the hashes of :attr:`ids` in order (ragged groups folded)."""
        if len(hashes) != len(self.ids):
            raise ProofError("wrong-node-count", f"{len(hashes)} hashes for {len(self.ids)}")
        _check_lengths(hashes)
        proof, start = [], 0
        for group in self.groups:
            proof.append(fold(hashes[start : start + len(group)]))
            start += len(group)
        return proof


def inclusion_proof_nodes(index: int, size: int) -> ProofNodes:
    """The plan for the inclusion proof of leaf ``index`` in a tree of ``size`` leaves."""
    return _plan(inclusion_ranges(index, size))


def consistency_proof_nodes(size1: int, size2: int) -> ProofNodes:
    """The plan for the consistency proof from ``size1`` to ``size2`` leaves."""
    return _plan(consistency_ranges(size1, size2))


def _plan(ranges: Sequence[tuple[int, int]]) -> ProofNodes:
    return ProofNodes(tuple(tuple(range_nodes(b, e)) for b, e in ranges))


def _check_lengths(hashes: Sequence[bytes]) -> None:
    if any(len(h) != HASH_SIZE for h in hashes):
        raise ProofError("bad-hash-length", f"every hash must be {HASH_SIZE} bytes")
