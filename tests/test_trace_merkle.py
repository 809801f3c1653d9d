"""RFC 6962 / RFC 9162 Merkle tree: the published test vectors, and proofs round-tripping for many sizes."""

from __future__ import annotations

import hashlib
import random

import pytest

from tenge_ledger.trace.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# certificate-transparency's test vectors (RFC 6962 section 2.1 trees over these leaf inputs).
INPUTS = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
LEAVES = [leaf_hash(bytes.fromhex(x)) for x in INPUTS]
ROOTS = {
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
CONSISTENCY = {
    (2, 8): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}


def test_hashes_use_the_rfc_prefixes():
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT


@pytest.mark.parametrize("size", sorted(ROOTS))
def test_published_root__vector(size):
    assert root(LEAVES[:size]).hex() == ROOTS[size]


@pytest.mark.parametrize("key", sorted(INCLUSION))
def test_published_inclusion_proof__vector(key):
    index, size = key
    proof = inclusion_proof(LEAVES, index, size)
    assert [p.hex() for p in proof] == INCLUSION[key]
    assert verify_inclusion(LEAVES[index], index, size, proof, bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize("key", sorted(CONSISTENCY))
def test_published_consistency_proof__vector(key):
    first, second = key
    proof = consistency_proof(LEAVES, first, second)
    assert [p.hex() for p in proof] == CONSISTENCY[key]
    assert verify_consistency(first, second, bytes.fromhex(ROOTS[first]), bytes.fromhex(ROOTS[second]), proof)


def _leaves(n: int, seed: int = 6962) -> list[bytes]:
    rng = random.Random(seed)
    return [leaf_hash(rng.randbytes(rng.randint(0, 40))) for _ in range(n)]


def test_inclusion_round_trip__every_leaf_of_every_size_to_70():
    leaves = _leaves(70)
    for n in range(1, 71):
        r = root(leaves[:n])
        for i in range(n):
            proof = inclusion_proof(leaves, i, n)
            assert verify_inclusion(leaves[i], i, n, proof, r), (i, n)
            assert not verify_inclusion(leaves[(i + 1) % n] if n > 1 else b"x" * 32, i, n, proof, r)


def test_consistency_round_trip__every_pair_to_50():
    leaves = _leaves(50)
    roots = [root(leaves[:n]) for n in range(51)]
    for second in range(51):
        for first in range(second + 1):
            proof = consistency_proof(leaves, first, second)
            assert verify_consistency(first, second, roots[first], roots[second], proof), (first, second)
            if 0 < first < second:
                assert not verify_consistency(first, second, roots[first], roots[first], proof)


def test_tampered_proofs_fail__flipped_byte_wrong_index_wrong_size():
    leaves = _leaves(13)
    r = root(leaves)
    proof = inclusion_proof(leaves, 5)
    bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:]] + proof[1:]
    assert not verify_inclusion(leaves[5], 5, 13, bad, r)
    assert not verify_inclusion(leaves[5], 6, 13, proof, r)
    assert not verify_inclusion(leaves[5], 5, 14, proof, root(leaves + [leaves[0]]))
    cproof = consistency_proof(leaves, 7)
    assert not verify_consistency(7, 13, root(leaves[:7]), r, cproof[:-1])
    assert not verify_consistency(7, 13, root(leaves[:6]), r, cproof)


def test_root_is_order_sensitive_and_commits_to_size():
    leaves = _leaves(6)
    assert root(leaves) != root([leaves[1], leaves[0]] + leaves[2:])
    assert root(leaves[:3]) != root(leaves[:3] + [leaves[2]])


def test_proof_of_a_missing_leaf__is_refused():
    with pytest.raises(ValueError):
        inclusion_proof(_leaves(3), 3)
    with pytest.raises(ValueError):
        consistency_proof(_leaves(3), 4)
