"""A witness: an independent party's Ed25519 key and the last checkpoint it cosigned, kept in its own directory,
outside the operator's database and keystore.

The witness cosigns a checkpoint only after an RFC 6962 consistency proof shows it extends the one it cosigned
before (c2sp.org/tlog-cosignature: "the consistent tree head with the largest size the cosigner has observed"),
then keeps it. When the operator shows it a history that does not extend what it saw (a fork, a rollback, a
rewrite, a removed tail) it refuses, naming both tree heads; when both heads are signed by the operator's key the
refusal carries a proof of equivocation that anyone can re-check (equivocation.py).

The directory holds `witness.key` (mode 0600: the name and the secret key) and `witness.json` (the ledger's
origin, the operator key the witness pinned on its first cosignature, and the last checkpoint it cosigned).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.signing

from ..core.errors import InputError
from . import checkpoint as cps
from . import equivocation, merkle
from . import note as notes

KEY_FILE = "witness.key"
STATE_FILE = "witness.json"
COSIGNATURE_HEADER = "cosignature/v1\n"
timestamp_max = 2**63 - 1  # tlog-cosignature: a timestamp must not exceed it


def cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    """tlog-cosignature's Ed25519 signed message: header line, time line, then the checkpoint's note text."""
    return f"{COSIGNATURE_HEADER}time {timestamp}\n{checkpoint_text}".encode()


def cosign(text: str, name: str, key: nacl.signing.SigningKey, timestamp: int) -> notes.SignatureLine:
    if not 0 <= timestamp <= timestamp_max:
        raise InputError(f"a cosignature time of {timestamp} is out of range")
    signature = key.sign(cosigned_message(text, timestamp)).signature
    kid = notes.key_id(name, notes.COSIGNATURE_V1, bytes(key.verify_key))
    return notes.SignatureLine(name, kid, timestamp.to_bytes(8, "big") + signature)


def cosigned_by(note: notes.Note, public_key: bytes) -> int | None:
    """The time of a valid cosignature of `note` by `public_key` (any key name whose key ID matches), else None.
    A line whose name and key ID match the key but whose signature fails counts as none."""
    for s in note.signatures:
        if s.key_id != notes.key_id(s.name, notes.COSIGNATURE_V1, public_key) or len(s.signature) != 72:
            continue
        timestamp = int.from_bytes(s.signature[:8], "big")
        try:
            nacl.signing.VerifyKey(public_key).verify(cosigned_message(note.text, timestamp), s.signature[8:])
            return timestamp
        except (nacl.exceptions.BadSignatureError, ValueError):
            return None
    return None


def parse_public_key(text: str, where: str = "--witness") -> bytes:
    """A witness's public key: 64 hex digits, or a signed-note verifier key `name+keyid+base64(0x04||key)`."""
    text = (text or "").strip()
    if "+" in text:
        try:
            raw = base64.b64decode(text.split("+", 2)[-1], validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == 33 and raw[0] == notes.COSIGNATURE_V1:
            return raw[1:]
        raise InputError("not a witness verifier key (name+keyid+base64 of 0x04 and 32 bytes)", where=where)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InputError("not an Ed25519 public key (64 hex digits)", where=where)
    return raw


def verifier_key(name: str, public_key: bytes) -> str:
    """The signed-note verifier key string of a cosigner (what Go's note package and Sigsum tools read)."""
    kid = notes.key_id(name, notes.COSIGNATURE_V1, public_key)
    return f"{name}+{kid.hex()}+{base64.b64encode(bytes([notes.COSIGNATURE_V1]) + public_key).decode()}"


@dataclass
class Witness:
    folder: Path
    name: str
    key: nacl.signing.SigningKey
    origin: str | None  # the log it follows, set on its first cosignature
    log_key: bytes | None  # the operator key pinned then
    last: cps.SignedCheckpoint | None  # the last checkpoint it cosigned

    @property
    def public_key(self) -> bytes:
        return bytes(self.key.verify_key)

    def save(self) -> None:
        state = {
            "origin": self.origin,
            "log_key": self.log_key.hex() if self.log_key else None,
            "checkpoint": self.last.to_json() if self.last else None,
        }
        _write_private(self.folder / STATE_FILE, json.dumps(state, indent=2, sort_keys=True) + "\n")


def _write_private(path: Path, text: str) -> None:
    """Write `text` through a 0600 temporary file renamed into place (never a moment readable by others)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def init(folder: str, name: str) -> Witness:
    """Create a witness key in `folder` (made 0700 if new); refuses to replace an existing one."""
    notes.check_key_name(name, "--name")
    path = Path(folder)
    if (path / KEY_FILE).exists():
        raise InputError(
            "a witness key is already there; a witness keeps one key", where=str(path / KEY_FILE)
        )
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = nacl.signing.SigningKey.generate()
    _write_private(path / KEY_FILE, json.dumps({"name": name, "secret_key": bytes(key).hex()}) + "\n")
    w = Witness(path, name, key, None, None, None)
    w.save()
    return w


def load(folder: str) -> Witness:
    path = Path(folder)
    key_file = path / KEY_FILE
    if not key_file.exists():
        raise InputError("no witness key there: create one with tenge witness init", where=str(path))
    if key_file.stat().st_mode & 0o077:
        raise InputError("the witness key is readable by others: chmod 600 it", where=str(key_file))
    try:
        data = json.loads(key_file.read_text())
        key = nacl.signing.SigningKey(bytes.fromhex(data["secret_key"]))
        name = notes.check_key_name(str(data["name"]), str(key_file))
        state = json.loads((path / STATE_FILE).read_text()) if (path / STATE_FILE).exists() else {}
        last = state.get("checkpoint")
        return Witness(
            path,
            name,
            key,
            state.get("origin"),
            bytes.fromhex(state["log_key"]) if state.get("log_key") else None,
            cps.from_json(last, str(path / STATE_FILE)) if last else None,
        )
    except InputError:
        raise
    except (ValueError, KeyError, TypeError):
        raise InputError("the witness state cannot be read", where=str(path)) from None


class NotAnExtension(InputError):
    """The history shown to a witness does not extend what it cosigned. `proof` is a proof of equivocation
    when both tree heads are signed by the operator and their conflict can be shown, else None."""

    def __init__(self, message: str, proof: dict | None = None) -> None:
        super().__init__(message)
        self.proof = proof


def heads(old: cps.Checkpoint, new: cps.Checkpoint) -> str:
    return (
        f"it cosigned {old.tree_size} records with root {old.root.hex()}; "
        f"now shown {new.tree_size} records with root {new.root.hex()}"
    )


def check_extension(
    w: Witness, new: cps.SignedCheckpoint, leaves: list[bytes] | None, proof: list[bytes] | None
) -> None:
    """Raise NotAnExtension unless `new` extends the witness's last checkpoint. The proof comes from the log
    (`leaves` are the log's leaf hashes, used to build it and, on a conflict, the proof of equivocation)."""
    if w.origin is not None and new.checkpoint.origin != w.origin:
        raise InputError(f"this witness follows {w.origin}, not {new.checkpoint.origin}")
    if w.log_key is not None and not new.signed_by(w.log_key):
        raise InputError(
            f"the checkpoint is not signed by the operator key {w.log_key.hex()} this witness pinned"
        )
    old = w.last
    if old is None:
        return
    a, b = old.checkpoint, new.checkpoint
    if b.tree_size < a.tree_size:
        raise NotAnExtension(
            f"not an extension of what witness {w.name} cosigned: {heads(a, b)}; the log shrank: "
            "an older copy was restored (rollback) or records were removed from its end"
        )
    if proof is None and leaves is not None:
        proof = merkle.consistency_proof(leaves, a.tree_size, b.tree_size)
    if merkle.verify_consistency(a.tree_size, b.tree_size, a.root, b.root, proof or []):
        return
    evidence = None
    if (
        w.log_key is not None
        and leaves is not None
        and len(leaves) >= b.tree_size
        and merkle.root(leaves[: b.tree_size]) == b.root
    ):
        evidence = equivocation.build(old, new, leaves[: b.tree_size], w.log_key)
    raise NotAnExtension(
        f"not an extension of what witness {w.name} cosigned: {heads(a, b)}; the consistency proof fails: "
        "the log was forked, or an earlier record rewritten",
        evidence,
    )


def cosign_checkpoint(
    w: Witness, new: cps.SignedCheckpoint, leaves: list[bytes], timestamp: int, log_key: bytes
) -> cps.SignedCheckpoint:
    """Check, cosign and remember `new`; returns it with the witness's cosignature line added."""
    if w.log_key is None and not new.signed_by(log_key):
        raise InputError("the checkpoint is not signed by the operator's key")
    check_extension(w, new, leaves, None)
    line = cosign(new.note.text, w.name, w.key, timestamp)
    cosigned = cps.SignedCheckpoint(new.checkpoint, new.note.with_signature(line), new.at)
    w.origin = new.checkpoint.origin
    w.log_key = w.log_key or log_key
    w.last = cps.SignedCheckpoint(new.checkpoint, notes.Note(new.note.text, tuple(
        s for s in cosigned.note.signatures if s.name in (new.checkpoint.origin, w.name))), new.at)  # fmt: skip
    w.save()
    return cosigned
