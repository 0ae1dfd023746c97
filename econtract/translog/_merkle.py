"""RFC 9162 Merkle tree hashing, the shape of proofs, and proof verification.

Pure functions over hashes: no storage here. A tree of ``n`` leaves is the RFC's MTH; every
hash the log stores is the hash of a *perfect subtree* ``(level, index)``, covering the
``2**level`` leaves from ``index << level``. Any range a proof needs is a concatenation of
O(log n) perfect subtrees (``perfect_subtrees``), which is what makes proofs logarithmic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from econtract.translog._errors import ProofVerificationError

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HASH_SIZE = 32
#: The largest tree size and index the log accepts (a signed 64-bit integer in the database).
MAX_TREE_SIZE = 2**63 - 1
#: A proof has at most one hash per level of a tree of ``MAX_TREE_SIZE`` leaves (plus one).
MAX_PROOF_LENGTH = 64
#: MTH of the empty tree: the hash of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

Subtree = tuple[int, int]
"""A perfect subtree ``(level, index)``: the leaves ``[index << level, (index + 1) << level)``."""


def leaf_hash(entry: bytes) -> bytes:
    """The RFC 9162 hash of a leaf: SHA-256(0x00 ‖ entry)."""
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 9162 hash of an interior node: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (``size`` ≥ 2): where MTH splits."""
    return 1 << ((size - 1).bit_length() - 1)


def perfect_subtrees(start: int, end: int) -> list[Subtree]:
    """The perfect subtrees, left to right, that make up the leaves ``[start, end)``.

    ``start`` must be a multiple of the largest power of two not above ``end - start``; every
    range the RFC's recursion produces is (it is a perfect subtree, or a suffix of the tree).
    """
    out: list[Subtree] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start & ((1 << level) - 1):
            raise ValueError(f"The range [{start}, {end}) is not aligned for a Merkle subtree.")
        out.append((level, start >> level))
        start += 1 << level
    return out


def fold_subtrees(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from the hashes of its perfect subtrees, left to right.

    MTH splits at the largest power of two, so the leftmost subtree is a left child and the
    rest hang to its right: the fold runs from the right.
    """
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for left in reversed(hashes[:-1]):
        acc = node_hash(left, acc)
    return acc


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs make PATH(index, D[size]) (RFC 9162 2.1.3.1), in order."""
    lo, hi = 0, size
    out: list[tuple[int, int]] = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    # The recursion appends the sibling nearest the root last; the proof lists it last too.
    out.reverse()
    return out


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs make PROOF(first, D[second]) (RFC 9162 2.1.4.1), in order.

    ``0 < first <= second``.
    """
    lo, hi, m = 0, second, first
    whole = True
    out: list[tuple[int, int]] = []
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
            m -= k
            whole = False
    if not whole:
        out.append((lo, hi))
    out.reverse()
    return out


class CompactRange:
    """The hashes of the perfect subtrees of ``[0, size)``: enough to append and to root.

    Appending a leaf completes at most one subtree per level; ``append`` returns those, so
    that the log can store each complete subtree once, when it completes.
    """

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """Start from a tree of ``size`` leaves given by its perfect subtrees' hashes."""
        levels = [level for level, _ in perfect_subtrees(0, size)]
        if len(levels) != len(hashes):
            raise ValueError(
                f"A tree of {size} leaves has {len(levels)} perfect subtrees, not {len(hashes)}."
            )
        self.size = size
        self._levels = levels
        self._hashes = list(hashes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; return the subtrees it completes as ``(level, index, hash)``."""
        completed: list[tuple[int, int, bytes]] = []
        level, value = 0, leaf
        levels, hashes = self._levels, self._hashes
        while levels and levels[-1] == level:
            levels.pop()
            value = node_hash(hashes.pop(), value)
            level += 1
            completed.append((level, self.size >> level, value))
        levels.append(level)
        hashes.append(value)
        self.size += 1
        return completed

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The perfect subtrees' hashes, left to right (what ``__init__`` takes back)."""
        return tuple(self._hashes)

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        return fold_subtrees(self._hashes)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes, in O(n) time and O(log n) memory."""
    tree = CompactRange()
    for leaf in leaves:
        tree.append(leaf)
    return tree.root()


def _check_hashes(proof: Sequence[bytes], *hashes: bytes) -> None:
    if len(proof) > MAX_PROOF_LENGTH:
        raise ProofVerificationError(f"A proof of {len(proof)} hashes is too long to be valid.")
    for value in (*proof, *hashes):
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise ProofVerificationError("Every hash in a proof is 32 bytes (SHA-256).")


def verify_inclusion(
    leaf: bytes, leaf_index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ``ProofVerificationError`` unless ``proof`` shows ``leaf`` at ``leaf_index``.

    The algorithm of RFC 9162 section 2.1.3.2; ``leaf`` is the leaf *hash*.
    """
    _check_hashes(proof, leaf, root)
    if not 0 <= leaf_index < tree_size <= MAX_TREE_SIZE:
        raise ProofVerificationError(
            f"Leaf index {leaf_index} is not inside a tree of size {tree_size}."
        )
    fn, sn, r = leaf_index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofVerificationError("The inclusion proof is longer than the tree is deep.")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofVerificationError("The inclusion proof is shorter than the tree is deep.")
    if r != root:
        raise ProofVerificationError(
            f"The inclusion proof of leaf {leaf_index} does not lead to the root of the tree "
            f"of size {tree_size}."
        )


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise ``ProofVerificationError`` unless ``proof`` shows tree ``first`` is a prefix.

    The algorithm of RFC 9162 section 2.1.4.2, for ``0 < first <= second``.
    """
    _check_hashes(proof, first_root, second_root)
    if not 0 < first <= second <= MAX_TREE_SIZE:
        raise ProofVerificationError(
            f"A consistency proof is between sizes 0 < first <= second; not {first}, {second}."
        )
    if first == second:
        if proof:
            raise ProofVerificationError("A consistency proof between equal sizes is empty.")
        if first_root != second_root:
            raise ProofVerificationError(
                f"Two tree heads of size {first} have different roots: the log forked."
            )
        return
    if not proof:
        raise ProofVerificationError("The consistency proof is empty.")
    path = list(proof)
    if first & (first - 1) == 0:
        # The old tree is a perfect subtree of the new one; its root is the proof's start.
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofVerificationError("The consistency proof is longer than it can be.")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofVerificationError("The consistency proof is shorter than it must be.")
    if fr != first_root:
        raise ProofVerificationError(
            f"The consistency proof does not lead to the root of the tree of size {first}."
        )
    if sr != second_root:
        raise ProofVerificationError(
            f"The consistency proof does not lead to the root of the tree of size {second}."
        )
