"""Checkpoints of the trace log as C2SP tlog-checkpoint signed notes (https://c2sp.org/tlog-checkpoint):

    tenge-ledger/<ledger id>            the origin: one ledger, one log
    <tree size>                         decimal, the number of trace records covered
    <base64 RFC 6962 root hash>
    <blank line>
    — tenge-ledger/<ledger id> <base64(key ID || Ed25519 signature)>     the operator's
    — <witness name> <base64(key ID || timestamp || Ed25519 signature)> a witness's cosignature, per witness

No extension lines: a witness vouches only for these three lines (tlog-cosignature), so everything the
checkpoint must guarantee is in the tree. That includes the journal: before signing, `make` appends a
`journal-head` trace record naming the journal's head (seq and chain link) whenever it moved since the last one.
The chain link of journal entry N hashes every entry up to N, so the tree a witness cosigned commits to the
whole journal up to that head; rewriting any journal row changes that link, and the record that named it can
only follow by changing a leaf the witness already holds in its root.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
import json
from dataclasses import dataclass

import nacl.signing

from ..core.errors import InputError
from ..core.hooks import EncodedTrace
from ..store.base import ChangeSet, Store
from ..store.entries import parse_leaf_payload
from . import merkle
from . import note as notes

CHECKPOINTS_SETTING = "trace_checkpoint_notes"
EVERY_SETTING = "checkpoint_every_records"
checkpoints_kept_max = 10_000
# Sign a checkpoint once this many trace records are not covered by one (the default of EVERY_SETTING): a
# witness can vouch for nothing newer than the last checkpoint, so this bounds what the operator can still drop
# unnoticed, at the cost of one signature and one journal-head record per interval.
checkpoint_every_records_default = 1_000
ORIGIN_PREFIX = "tenge-ledger/"
JOURNAL_HEAD_TYPE = "journal-head"


def origin_for(ledger_id: str) -> str:
    return ORIGIN_PREFIX + ledger_id


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The three lines a checkpoint asserts."""

    origin: str
    tree_size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.tree_size}\n{base64.b64encode(self.root).decode()}\n"

    def describe(self) -> str:
        return f"{self.tree_size} records, root {self.root.hex()}"


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: notes.Note
    at: int = 0  # when the operator signed it (kept beside the note; not part of what is signed)

    def render(self) -> str:
        return self.note.render()

    def signed_by(self, public_key: bytes) -> bool:
        """The operator's signature: key name is the origin (tlog-checkpoint recommends it)."""
        return notes.verify_ed25519(self.note, self.checkpoint.origin, public_key)

    def to_json(self) -> dict:
        return {"note": self.render(), "at": self.at}


def parse_text(text: str, where: str = "checkpoint") -> Checkpoint:
    """The checkpoint a note text asserts; extension lines are refused (this ledger writes none)."""
    lines = text.split("\n")
    if len(lines) != 4 or lines[3] != "":
        raise InputError("a checkpoint is exactly three lines: origin, tree size, root hash", where=where)
    origin, size, root = lines[:3]
    if not origin or not size.isdigit() or (size != "0" and size.startswith("0")):
        raise InputError("a checkpoint's origin is non-empty and its size a decimal number", where=where)
    try:
        digest = base64.b64decode(root, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 32:
        raise InputError("a checkpoint's root hash is 32 bytes in base64", where=where)
    return Checkpoint(origin, int(size), digest)


def parse(text: str, where: str = "checkpoint", at: int = 0) -> SignedCheckpoint:
    note = notes.parse(text, where)
    return SignedCheckpoint(parse_text(note.text, where), note, at)


def from_json(data: object, where: str = "checkpoint") -> SignedCheckpoint:
    if not isinstance(data, dict) or not isinstance(data.get("note"), str):
        raise InputError("not a checkpoint", where=where)
    try:
        at = int(data.get("at", 0))
    except (TypeError, ValueError):
        raise InputError("not a checkpoint", where=where) from None
    return parse(data["note"], where, at)


def journal_head_record(seq: int, link: bytes, at: int, mode: str) -> EncodedTrace:
    """The trace record that binds the journal into the tree: the head's seq and chain link, nothing personal."""
    doc = {"v": 1, "type": JOURNAL_HEAD_TYPE, "op_id": f"journal-head:{seq}", "at": at, "seq": seq,
           "link": link.hex()}  # fmt: skip
    payload = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return EncodedTrace(doc["op_id"], at, mode, payload, merkle.leaf_hash(payload))


def journal_heads(records: list[tuple[int, bytes]]) -> list[tuple[int, int, bytes]]:
    """(trace idx, journal seq, link) of every record among (idx, payload) that binds a journal row: the
    journal-head records, and the leaves derived from journal rows (each names its row's link)."""
    out = []
    for idx, payload in records:
        derived = parse_leaf_payload(payload)
        if derived is not None:
            out.append((idx, *derived))
            continue
        if b'"type":"journal-head"' not in payload:
            continue
        try:
            doc = json.loads(payload)
            out.append((idx, int(doc["seq"]), bytes.fromhex(doc["link"])))
        except (ValueError, KeyError, TypeError):
            continue  # a changed record: the leaf hash or the checkpoints say so
    return out


def _anchor_journal(store: Store, at: int, mode: str) -> None:
    """Append a journal-head record unless the last one already names the current head. The last one, when
    the head has not moved, is the last leaf of the largest kept checkpoint: only the records from there on are
    read (a missed one costs a duplicate record, never a missing one)."""
    if head_is_bound(store):
        return
    seq, link = store.head()
    with store.transaction() as tx:
        tx.write(ChangeSet(traces=[journal_head_record(seq, link, at, mode)]))


def head_is_bound(store: Store) -> bool:
    """Does the log's last journal-head record name the journal's current head (or is the journal empty)?

    A journal-head record is appended right before a checkpoint is signed, so the last one is the last leaf of
    the largest checkpoint that ends with one: only those leaves are read, not the log. (Records written after a
    checkpoint whose signing then failed are not seen: the cost is a duplicate record, never a missing one.)"""
    seq, link = store.head()
    if seq == 0:
        return True
    for size in sorted({c.checkpoint.tree_size for c in saved(store)}, reverse=True):
        with contextlib.closing(iter(store.traces(after=size - 1))) as rows:  # type: ignore[type-var]
            last = next(rows, None)
        if last is None or last[0] != size:
            continue  # the log no longer has that leaf where the checkpoint had it
        heads = journal_heads([(last[0], last[1].payload)])
        if heads:
            return heads[-1][1:] == (seq, link)
    return False


def make(store: Store, key: nacl.signing.SigningKey, at: int, mode: str) -> SignedCheckpoint:
    """Bind the journal head into the log, then sign the tree of every trace record."""
    _anchor_journal(store, at, mode)
    leaves = [t.leaf_hash for _, t in store.traces()]
    cp = Checkpoint(origin_for(store.meta().ledger_id), len(leaves), merkle.root(leaves))
    line = notes.sign_ed25519(cp.text(), cp.origin, key)
    return SignedCheckpoint(cp, notes.Note(cp.text(), (line,)), at)


def saved(store: Store) -> list[SignedCheckpoint]:
    return [from_json(c, "stored checkpoint") for c in store.meta().settings.get(CHECKPOINTS_SETTING, [])]


def save(store: Store, cp: SignedCheckpoint) -> SignedCheckpoint:
    """Keep `cp`; a checkpoint with the same three lines is merged into the kept one (its signature lines added),
    so the cosignatures of one tree head stay on one note. Returns what is kept."""
    kept = saved(store)
    for i, old in enumerate(kept):
        if old.checkpoint == cp.checkpoint:
            merged = old.note
            for line in cp.note.signatures:
                merged = merged.with_signature(line)
            kept[i] = SignedCheckpoint(old.checkpoint, merged, old.at or cp.at)
            cp = kept[i]
            break
    else:
        kept = kept[-(checkpoints_kept_max - 1) :] + [cp]
    store.set_setting(CHECKPOINTS_SETTING, [c.to_json() for c in kept])
    return cp


def records_since_last(store: Store, enough: int) -> int:
    """Trace records not covered by the largest kept checkpoint, counted up to `enough` (reads no further)."""
    last = max((c.checkpoint.tree_size for c in saved(store)), default=0)
    with contextlib.closing(iter(store.traces(after=last))) as rows:  # type: ignore[type-var]  # holds a lock
        return sum(1 for _ in itertools.islice(rows, enough))


def every(store: Store) -> int:
    return int(store.meta().settings.get(EVERY_SETTING, checkpoint_every_records_default))


def keep(store: Store, key: nacl.signing.SigningKey, at: int, mode: str) -> SignedCheckpoint:
    """Sign a checkpoint of the log as it is now and keep it."""
    return save(store, make(store, key, at, mode))
