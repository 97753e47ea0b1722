"""RFC 9162 Merkle tree hashing, proofs and their verification (pure, list-based).

Hashing is RFC 6962's, kept by RFC 9162 §2.1: ``leaf = SHA-256(0x00 || data)``,
``node = SHA-256(0x01 || left || right)``, and the empty tree's root is ``SHA-256("")``.
The tree over ``n`` leaves splits at ``k``, the largest power of two below ``n``.

Generators (:func:`inclusion_proof`, :func:`consistency_proof`) work over a list of leaf
hashes; they are the reference the storage-backed helpers in :mod:`gateway.audit.compact`
are tested against. Both rest on :func:`inclusion_ranges` / :func:`consistency_ranges`,
which name the leaf range ``[begin, end)`` of every subtree whose root is a proof element.

Verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step, after checking what
transparency-dev/merkle checks first (sizes, hash lengths, exact proof length), so each
failure has a stable :class:`ProofError` code. Edge cases follow transparency-dev: a
consistency proof between equal sizes is empty and compares the roots as given; one from
size 0 is refused (``empty-tree``), since it proves nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from gateway.audit.errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """The hash of one log entry: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n >= 2``): where MTH splits."""
    return 1 << ((n - 1).bit_length() - 1)


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the whole list (RFC 9162 §2.1.1); ``SHA-256("")`` for no leaves."""
    return _subtree_root(leaf_hashes, 0, len(leaf_hashes))


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges of the subtrees whose roots form PATH(index, D[size]), bottom-up."""
    _check_index(index, size)
    ranges: list[tuple[int, int]] = []
    begin, end = 0, size
    while end - begin > 1:
        mid = begin + split_point(end - begin)
        if index < mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((begin, mid))
            begin = mid
    ranges.reverse()
    return ranges


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Leaf ranges of the subtrees whose roots form PROOF(size1, D[size2]), in order."""
    _check_sizes(size1, size2)
    ranges: list[tuple[int, int]] = []
    begin, end, complete = 0, size2, True
    while size1 != end:
        mid = begin + split_point(end - begin)
        if size1 <= mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((begin, mid))
            begin, complete = mid, False
    if not complete:
        ranges.append((begin, end))
    ranges.reverse()
    return ranges


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """The audit path for leaf ``index`` in the tree of the first ``size`` leaves."""
    _check_available(leaf_hashes, size)
    return [_subtree_root(leaf_hashes, b, e) for b, e in inclusion_ranges(index, size)]


def consistency_proof(leaf_hashes: Sequence[bytes], size1: int, size2: int) -> list[bytes]:
    """The proof that the tree of ``size2`` leaves extends the one of ``size1`` leaves."""
    _check_available(leaf_hashes, size2)
    return [_subtree_root(leaf_hashes, b, e) for b, e in consistency_ranges(size1, size2)]


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof (RFC 9162 §2.1.3.2); raise :class:`ProofError` if it fails."""
    _check_index(index, size)
    _check_hash_lengths(leaf_hash, root, *proof)
    inner = (index ^ (size - 1)).bit_length()
    _check_proof_size(len(proof), inner + (index >> inner).bit_count())
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _shift_while_even(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    _check_reached_root(sn)
    _check_root(r, root)


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check a consistency proof (RFC 9162 §2.1.4.2); raise :class:`ProofError` if it fails."""
    _check_sizes(size1, size2)
    if size1 == size2:
        _check_proof_size(len(proof), 0)
        _check_root(root1, root2)
        return
    _check_hash_lengths(root1, root2, *proof)
    _check_proof_size(len(proof), _consistency_proof_size(size1, size2))
    path = [root1, *proof] if size1 & (size1 - 1) == 0 else list(proof)
    fr, sr = _consistency_roots(size1, size2, path)
    _check_root(fr, root1)
    _check_root(sr, root2)


def _consistency_roots(size1: int, size2: int, path: Sequence[bytes]) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2 steps 3-7: the two roots the path implies."""
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            fn, sn = _shift_while_even(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    _check_reached_root(sn)
    return fr, sr


def _subtree_root(leaf_hashes: Sequence[bytes], begin: int, end: int) -> bytes:
    """MTH(D[begin:end]) without copying the list."""
    if end - begin == 0:
        return EMPTY_ROOT
    if end - begin == 1:
        return leaf_hashes[begin]
    mid = begin + split_point(end - begin)
    return node_hash(_subtree_root(leaf_hashes, begin, mid), _subtree_root(leaf_hashes, mid, end))


def _shift_while_even(fn: int, sn: int) -> tuple[int, int]:
    """RFC 9162: right-shift both until LSB(fn) is set or fn is 0."""
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def _consistency_proof_size(size1: int, size2: int) -> int:
    """Exact proof length for ``0 < size1 < size2`` (transparency-dev's decomposition)."""
    inner = ((size1 - 1) ^ (size2 - 1)).bit_length()
    border = ((size1 - 1) >> inner).bit_count()
    shift = (size1 & -size1).bit_length() - 1
    seed_in_proof = 0 if size1 == 1 << shift else 1
    return seed_in_proof + inner - shift + border


def _check_index(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise ProofError("index-out-of-range", f"leaf index {index} not in a tree of {size}")


def _check_sizes(size1: int, size2: int) -> None:
    if not 0 <= size1 <= size2:
        raise ProofError("size-out-of-range", f"need 0 <= size1 <= size2, got {size1}, {size2}")
    if size1 == 0:
        raise ProofError("empty-tree", "a consistency proof from the empty tree proves nothing")


def _check_available(leaf_hashes: Sequence[bytes], size: int) -> None:
    if not 0 <= size <= len(leaf_hashes):
        raise ProofError("size-out-of-range", f"tree size {size} beyond {len(leaf_hashes)}")


def _check_hash_lengths(*hashes: bytes) -> None:
    if any(len(h) != HASH_SIZE for h in hashes):
        raise ProofError("bad-hash-length", f"every hash must be {HASH_SIZE} bytes")


def _check_proof_size(got: int, want: int) -> None:
    if got != want:
        raise ProofError("wrong-proof-size", f"proof does not fit the tree sizes ({got}/{want})")


def _check_reached_root(sn: int) -> None:
    """RFC 9162's final ``sn == 0`` test (the exact-length check above already implies it)."""
    if sn != 0:
        raise ProofError("wrong-proof-size", "proof ends below the root")


def _check_root(calculated: bytes, expected: bytes) -> None:
    if calculated != expected:
        raise ProofError("root-mismatch", "calculated root does not match the expected root")
