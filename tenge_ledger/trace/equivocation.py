"""A proof of equivocation: two checkpoints of one log, both signed by its key, that no append-only history can
explain. tlog-checkpoint: "A log MUST not sign any checkpoint which is inconsistent with any checkpoint it
previously signed."

The proof holds both signed notes. When their sizes differ it also holds the root the larger tree has at the
smaller size and the RFC 6962 consistency proof from there to the larger root: that proof pins the larger tree's
prefix (by SHA-256's collision resistance), and the prefix differs from what the smaller checkpoint signed. Anyone
re-checks it with nothing but this file; `--key` says whose key must have signed both (the operator's)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import InputError
from . import checkpoint as cps
from . import merkle

FORMAT = "tenge-equivocation-proof/1"


def build(
    first: cps.SignedCheckpoint, second: cps.SignedCheckpoint, leaves: list[bytes], log_key: bytes
) -> dict:
    """The proof that `first` conflicts with `second`, whose tree is `leaves` (first is no larger), both signed
    by `log_key` (an Ed25519 signature does not name its key, so the proof does)."""
    m, n = first.checkpoint.tree_size, second.checkpoint.tree_size
    if m == n:  # two roots for one size need no tree to show it
        prefix, path = second.checkpoint.root, []
    else:
        prefix, path = merkle.root(leaves[:m]), merkle.consistency_proof(leaves, m, n)
    return {
        "format": FORMAT,
        "origin": first.checkpoint.origin,
        "log_key": log_key.hex(),
        "first": first.render(),
        "second": second.render(),
        "prefix_root": prefix.hex(),
        "consistency_proof": [p.hex() for p in path],
    }


@dataclass(frozen=True, slots=True)
class Finding:
    proven: bool
    reason: str
    key: str = ""  # hex key that signed both


def check(proof: object, public_key: bytes | None = None) -> Finding:
    """Does `proof` show two conflicting checkpoints signed by one key (by `public_key` when given)?"""
    if not isinstance(proof, dict) or proof.get("format") != FORMAT:
        raise InputError(f"not a {FORMAT} document")
    try:
        first = cps.parse(str(proof["first"]), "first")
        second = cps.parse(str(proof["second"]), "second")
        prefix = bytes.fromhex(str(proof.get("prefix_root", "")))
        log_key = bytes.fromhex(str(proof["log_key"]))
        path = [bytes.fromhex(str(p)) for p in proof.get("consistency_proof", [])]
    except (KeyError, TypeError, ValueError):
        raise InputError("a malformed proof of equivocation") from None
    a, b = first.checkpoint, second.checkpoint
    if a.origin != b.origin:
        return Finding(False, f"the checkpoints are of two logs ({a.origin}, {b.origin})")
    if public_key is not None and public_key != log_key:
        return Finding(False, f"the proof is about the key {log_key.hex()}, not {public_key.hex()}")
    signer = _common_signer(first, second, log_key)
    if signer is None:
        return Finding(False, f"the two checkpoints are not both signed by the key {log_key.hex()}")
    if a.tree_size > b.tree_size:
        return Finding(False, "the first checkpoint must be the smaller")
    if a.tree_size == b.tree_size:
        if a.root != b.root:
            return Finding(
                True, f"two roots for {a.tree_size} records: {a.root.hex()} and {b.root.hex()}", signer
            )
        return Finding(False, "the two checkpoints agree")
    if prefix == a.root:
        return Finding(False, "the larger tree's prefix is the smaller checkpoint: they agree")
    if not merkle.verify_consistency(a.tree_size, b.tree_size, prefix, b.root, path):
        return Finding(False, "the consistency proof does not bind the larger tree's prefix")
    return Finding(
        True,
        f"the checkpoint of {b.tree_size} records (root {b.root.hex()}) has root {prefix.hex()} at "
        f"{a.tree_size} records, not the {a.root.hex()} signed for {a.tree_size}",
        signer,
    )


def _common_signer(first: cps.SignedCheckpoint, second: cps.SignedCheckpoint, key: bytes) -> str | None:
    """`key` (hex) when both notes carry its valid signature under the origin's key name, else None."""
    return key.hex() if first.signed_by(key) and second.signed_by(key) else None
