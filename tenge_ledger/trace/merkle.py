"""The trace log's Merkle tree, hashed exactly as RFC 6962 / RFC 9162 (SHA-256, 0x00 leaf and 0x01 node
prefixes), with inclusion proofs (PATH) and consistency proofs (PROOF) and their verifiers (RFC 9162 2.1.3.2
and 2.1.4.2).

Functions take leaf *hashes* (`leaf_hash(payload)`), so a tree of a million records is a list of 32-byte values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(payload: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + payload).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes, computed bottom-up without recursion (same result as the RFC's recursion:
    an odd node at the end of a level is carried up unchanged)."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """PATH(index, D[size]): the audit path of leaf `index` in the tree of the first `size` leaves."""
    n = len(leaves) if size is None else size
    if not 0 <= index < n <= len(leaves):
        raise ValueError(f"no leaf {index} in a tree of {n} leaves")
    proof: list[bytes] = []
    lo, hi, m = 0, n, index
    stack: list[tuple[int, int]] = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            stack.append((lo + k, hi))
            hi = lo + k
        else:
            stack.append((lo, lo + k))
            m -= k
            lo = lo + k
    for a, b in reversed(stack):
        proof.append(root(leaves[a:b]))
    return proof


def consistency_proof(leaves: Sequence[bytes], first: int, second: int | None = None) -> list[bytes]:
    """PROOF(first, D[second]): proves the tree of `first` leaves is a prefix of the tree of `second`."""
    n = len(leaves) if second is None else second
    if not 0 <= first <= n <= len(leaves):
        raise ValueError(f"no consistency proof from {first} to {n} leaves")
    if first == 0 or first == n:
        return []
    out: list[bytes] = []
    # SUBPROOF(m, D[lo:hi], b), unrolled: each step records the sibling subtree; collected in reverse.
    m, lo, hi, b = first, 0, n, True
    while True:
        if m == hi - lo:
            if not b:
                out.append(root(leaves[lo:hi]))
            break
        k = _split(hi - lo)
        if m <= k:
            out.append(root(leaves[lo + k : hi]))
            hi = lo + k
        else:
            out.append(root(leaves[lo : lo + k]))
            m -= k
            lo = lo + k
            b = False
    # The recursion appends the sibling after the subproof; we visited top-down, so reverse the siblings,
    # keeping the terminal node (if any) first.
    if m == hi - lo and not b:
        terminal, siblings = out[-1:], out[:-1]
    else:
        terminal, siblings = [], out
    return terminal + list(reversed(siblings))


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    """RFC 9162 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2."""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first root is the first node of the path
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root
