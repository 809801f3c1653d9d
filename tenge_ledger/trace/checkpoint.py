"""Signed checkpoints: the operator's Ed25519 signature over (ledger, tree size, root, journal head, time).

A checkpoint commits to the trace log (its Merkle root at a size) and to the journal (its head seq and entry
hash), so a later change to either, or a truncation, shows against it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import nacl.exceptions
import nacl.signing

from ..core.errors import InputError
from ..store.base import Store
from . import merkle

CHECKPOINTS_SETTING = "trace_checkpoints"
checkpoints_kept_max = 10_000


@dataclass(frozen=True, slots=True)
class Checkpoint:
    ledger_id: str
    tree_size: int
    root: str  # hex
    journal_seq: int
    journal_head: str  # hex entry hash of journal entry `journal_seq`
    at: int
    key: str  # hex Ed25519 verify key that signed it
    signature: str = ""  # hex

    def body(self) -> bytes:
        return (
            "tenge-ledger checkpoint v1\n"
            f"{self.ledger_id}\n{self.tree_size}\n{self.root}\n{self.journal_seq}\n{self.journal_head}\n{self.at}\n"
        ).encode()

    def signed(self, key: nacl.signing.SigningKey) -> Checkpoint:
        sig = key.sign(self.body()).signature.hex()
        return Checkpoint(**{**asdict(self), "key": bytes(key.verify_key).hex(), "signature": sig})

    def verifies(self, public_key_hex: str) -> bool:
        try:
            nacl.signing.VerifyKey(bytes.fromhex(public_key_hex)).verify(
                self.body(), bytes.fromhex(self.signature)
            )
            return True
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            return False

    def to_json(self) -> dict:
        return asdict(self)


def from_json(data: object, where: str = "checkpoint") -> Checkpoint:
    try:
        d = dict(data)  # type: ignore[call-overload]
        return Checkpoint(
            ledger_id=str(d["ledger_id"]),
            tree_size=int(d["tree_size"]),
            root=str(d["root"]),
            journal_seq=int(d["journal_seq"]),
            journal_head=str(d["journal_head"]),
            at=int(d["at"]),
            key=str(d["key"]),
            signature=str(d["signature"]),
        )
    except (KeyError, TypeError, ValueError):
        raise InputError("not a checkpoint", where=where) from None


def make(store: Store, key: nacl.signing.SigningKey, at: int) -> Checkpoint:
    """Sign the current state: the root of every trace leaf, and the journal head."""
    leaves = [t.leaf_hash for _, t in store.traces()]
    seq, head = store.head()  # type: ignore[attr-defined]
    cp = Checkpoint(store.meta().ledger_id, len(leaves), merkle.root(leaves).hex(), seq, head.hex(), at, "")
    return cp.signed(key)


def saved(store: Store) -> list[Checkpoint]:
    return [from_json(c) for c in store.meta().settings.get(CHECKPOINTS_SETTING, [])]


def save(store: Store, cp: Checkpoint) -> None:
    kept = [c.to_json() for c in saved(store)][-(checkpoints_kept_max - 1) :]
    store.set_setting(CHECKPOINTS_SETTING, kept + [cp.to_json()])  # type: ignore[attr-defined]
