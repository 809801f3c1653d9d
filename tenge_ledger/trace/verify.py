"""Offline verification of an audit bundle (or of a live database, through the same bundle shape).

Finds and names: a trace record changed (its leaf hash no longer matches, or its op id / time columns differ
from its payload), removed (a gap in the indices, or fewer leaves than a checkpoint signed), reordered (indices
out of order, op records out of journal order), inserted (a record the journal does not know, or a signed root
that no longer matches the leaves it covered); a journal entry changed, removed, reordered or inserted (the hash
chain); a signed document that is not what its fields hash says, or whose client signature does not verify with
the signer's key as the journaled account openings set it; checkpoints not signed by the given key, two signed
checkpoints that conflict, and (with witness keys) a history no quorum of witnesses cosigned. With an earlier
bundle, each changed leaf is named exactly.

The journal's entry hash is a parameter (`entry_hash`): the trace package does not import the ledger's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.signing

from ..core import compact
from ..core.canonical import canonical_bytes
from ..core.records import Posting
from ..store.entries import operation_from_document, orphan_leaf_seq, parse_leaf_payload
from . import checkpoint as cps
from . import equivocation, merkle
from . import witness as witnessing
from .bundle import Bundle

GENESIS_HASH = bytes(32)
problems_listed_max = 200


@dataclass
class Verification:
    traces: int = 0
    journal: int = 0
    checkpoints: int = 0
    signatures: int = 0  # client signatures re-checked against the journaled keys
    witnessed: int = 0  # records covered by a checkpoint with the witness quorum's cosignatures
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, text: str) -> None:
        if len(self.problems) < problems_listed_max:
            self.problems.append(text)
        elif len(self.problems) == problems_listed_max:
            self.problems.append("... more problems not listed")

    def to_json(self) -> dict:
        return {
            "ok": self.ok,
            "traces": self.traces,
            "journal_entries": self.journal,
            "checkpoints": self.checkpoints,
            "signatures": self.signatures,
            "witnessed": self.witnessed,
            "problems": self.problems,
            "notes": self.notes,
        }


def _ranges(numbers: list[int]) -> list[tuple[int, int]]:
    """[1, 2, 3, 7] -> [(1, 3), (7, 7)]"""
    out: list[tuple[int, int]] = []
    for n in numbers:
        if out and out[-1][1] == n - 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def _name(t: dict) -> str:
    return f"trace #{t['idx']} ({t['op_id']})"


def verify(
    bundle: Bundle,
    public_key: str,
    entry_hash: Callable[..., bytes] | None = None,
    earlier: Bundle | None = None,
    witnesses: Sequence[bytes] = (),
    quorum: int = 0,
    verify_many: Callable[[list[tuple[bytes, bytes, bytes]]], list[bool]] | None = None,
) -> Verification:
    """Everything the bundle can show wrong. With `witnesses`, some checkpoint the log still matches must carry
    valid cosignatures of `quorum` of them (all of them when `quorum` is 0). `verify_many` checks (message,
    signature, public key) triples in bulk (on every core, say); without it they are checked one by one here."""
    v = Verification(traces=len(bundle.traces), checkpoints=len(bundle.checkpoints))
    traces = bundle.traces
    leaves: list[bytes] = []
    op_seqs: list[tuple[dict, int]] = []
    derived_links: dict[int, bytes] = {}  # trace idx -> the chain link its derived leaf commits to
    # 1. each record against its own leaf hash and columns; indices contiguous and in order.
    seen: set[int] = set()
    highest = 0
    for t in traces:
        idx = t["idx"]
        if idx in seen:
            v.add(f"{_name(t)} appears twice: inserted")
        elif idx < highest:
            v.add(f"{_name(t)} is out of order (it comes after #{highest}): reordered")
        seen.add(idx)
        highest = max(highest, idx)
        if merkle.leaf_hash(t["payload"]) != t["leaf_hash"]:
            v.add(f"{_name(t)} was changed: its content does not match its leaf hash")
        leaves.append(t["leaf_hash"])
        # a ledger's mode is fixed when it is made: every record was written in it (the bundle's own word for it
        # is signed by nothing, so the records' pin it)
        if t["mode"] != bundle.privacy_mode:
            v.add(
                f"{_name(t)} says mode {t['mode']}, the bundle {bundle.privacy_mode}: one of them was changed"
            )
        derived = parse_leaf_payload(t["payload"])
        if derived is not None:  # its journal row is its content: checked against the journal below
            if t["mode"] != "transparent":
                v.add(
                    f"{_name(t)} is derived from the journal, as only a transparent ledger's are: mode changed"
                )
            op_seqs.append((t, derived[0]))
            derived_links[idx] = derived[1]
            continue
        orphan = orphan_leaf_seq(t["payload"])
        if orphan is not None:
            v.add(
                f"trace #{idx} is derived from journal entry #{orphan}, which the ledger no longer has: removed"
            )
            continue
        try:
            doc = compact.load_doc(t["payload"])  # JSON, or the privacy modes' compact form
        except (ValueError, UnicodeDecodeError):
            v.add(f"{_name(t)} was changed: its content is not a trace record")
            continue
        if doc.get("op_id") != t["op_id"] or doc.get("at") != t["at"]:
            v.add(f"{_name(t)} was changed: its op id or time column differs from its signed content")
        if doc.get("mode", t["mode"]) != t["mode"]:
            v.add(f"{_name(t)} was changed: its mode column differs from its signed content")
        if doc.get("type", "op") == "op" and isinstance(doc.get("seq"), int):
            op_seqs.append((t, doc["seq"]))
    for first, last in _ranges(sorted(set(range(1, highest + 1)) - seen)):
        v.add(f"trace {f'#{first}' if first == last else f'#{first}..#{last}'} missing: removed from the log")
    # 2. signed checkpoints (C2SP notes): the operator's signature, size and root over the leaves they cover.
    last_good = 0
    origin = cps.origin_for(bundle.ledger_id)
    signed: list[cps.SignedCheckpoint] = []
    key = bytes.fromhex(public_key)
    for cp in sorted(bundle.checkpoints, key=lambda c: (c.checkpoint.tree_size, c.at)):
        head = cp.checkpoint
        when = f"checkpoint of {head.tree_size} records signed at {cp.at}"
        if head.origin != origin:
            v.add(f"{when} belongs to {head.origin}, not {origin}")
            continue
        if not cp.signed_by(key):
            v.add(f"{when} is not signed by the key {public_key[:16]}...: signed by another key or edited")
            continue
        signed.append(cp)
        if head.tree_size > len(leaves):
            v.add(
                f"{when}: the log has only {len(leaves)} of the records it signed: "
                f"{head.tree_size - len(leaves)} removed"
            )
            continue
        if merkle.root(leaves[: head.tree_size]) != head.root:
            v.add(
                f"{when}: the records it covers no longer match it; a change, removal, insertion or reordering"
                f" among trace #{last_good + 1}..#{head.tree_size}"
            )
        else:
            last_good = max(last_good, head.tree_size)
    _equivocations(v, signed, key)
    if witnesses:
        _witnessed(v, signed, leaves, witnesses, quorum)
    if not bundle.checkpoints:
        v.notes.append("no signed checkpoint: records whose leaf hash was recomputed cannot be detected")
    elif len(leaves) > max(c.checkpoint.tree_size for c in bundle.checkpoints):
        covered = max(c.checkpoint.tree_size for c in bundle.checkpoints)
        v.notes.append(f"trace records after #{covered} are not yet covered by a checkpoint")
    # 3. against an earlier bundle: every leaf it had must be unchanged, in place.
    if earlier is not None:
        before = {t["idx"]: t for t in earlier.traces}
        now = {t["idx"]: t for t in traces}
        for idx, old in sorted(before.items()):
            new = now.get(idx)
            if new is None:
                v.add(f"trace #{idx} ({old['op_id']}) of the earlier bundle was removed")
            elif new["leaf_hash"] != old["leaf_hash"] or new["payload"] != old["payload"]:
                v.add(
                    f"trace #{idx} ({old['op_id']}) differs from the earlier bundle: changed, inserted or reordered"
                )
        _earlier_checkpoints(v, earlier, leaves, key)
    # 4. the journal's hash chain.
    journal = bundle.journal
    if journal is None:
        v.notes.append("the bundle carries no journal: only the trace log was verified")
        return v
    v.journal = len(journal)
    by_seq: dict[int, dict] = {}
    prev = GENESIS_HASH
    expected_seq = 1
    for j in journal:
        name = f"journal entry #{j['seq']} ({j['op_id']})"
        if j["seq"] != expected_seq:
            v.add(f"{name}: expected #{expected_seq}; entries removed, inserted or reordered")
        expected_seq = j["seq"] + 1
        if j["prev_hash"] != prev:
            v.add(f"{name} does not chain to the entry before it")
        if entry_hash is not None:
            postings = [Posting(a, x, t) for a, t, x in j["postings"]]
            if (
                entry_hash(
                    j["prev_hash"],
                    j["seq"],
                    j["at"],
                    j["fields_hash"],
                    j["signature"],
                    postings,
                    j.get("chained"),
                )
                != j["entry_hash"]
            ):
                v.add(f"{name} was changed: its hash does not match its content")
        prev = j["entry_hash"]
        by_seq[j["seq"]] = j
    _journal_heads(v, traces, by_seq)
    _signatures(v, bundle, journal, verify_many)
    # 5. the trace log against the journal: each applied op's record names its journal entry, in order.
    last_seq = 0
    traced: dict[int, int] = {}  # journal seq -> the first trace that names it
    for t, seq in op_seqs:
        j = by_seq.get(seq)
        if j is None:
            v.add(f"{_name(t)} names journal entry #{seq}, which is not in the journal: inserted")
        elif j["op_id"] != t["op_id"]:
            v.add(f"{_name(t)} names journal entry #{seq}, which is {j['op_id']}: changed or inserted")
        elif t["idx"] in derived_links and derived_links[t["idx"]] != j["entry_hash"]:
            v.add(f"{_name(t)} commits to a journal entry #{seq} other than the bundle's: changed")
        elif t["idx"] in derived_links and t["at"] != j["at"]:
            v.add(
                f"{_name(t)} says time {t['at']}, but journal entry #{seq} was applied at {j['at']}: changed"
            )
        if seq in traced:
            v.add(f"{_name(t)} names journal entry #{seq}, which trace #{traced[seq]} names too: inserted")
        elif seq <= last_seq:
            v.add(f"{_name(t)} (journal #{seq}) comes after journal #{last_seq}: reordered")
        last_seq = max(last_seq, seq)
        traced.setdefault(seq, t["idx"])
    for seq, j in sorted(by_seq.items()):
        if seq not in traced and not j["op_id"].startswith("genesis:"):
            v.add(f"journal entry #{seq} ({j['op_id']}) has no trace record: its record was removed")
    return v


def _journal_heads(v: Verification, traces: list[dict], by_seq: dict[int, dict]) -> None:
    """Each journal-head record names a chain link the journal must still have (the witnessed tree binds it)."""
    bound = 0
    for idx, seq, link in cps.journal_heads([(t["idx"], t["payload"]) for t in traces]):
        j = by_seq.get(seq)
        if j is None:
            v.add(f"journal entry #{seq}, whose head trace #{idx} records, is missing: entries removed")
        elif j["entry_hash"] != link:
            v.add(
                f"journal entry #{seq} ({j['op_id']}) differs from the head trace #{idx} recorded: the journal"
                f" was rewritten at or before #{seq}"
            )
        bound = max(bound, seq)
    if by_seq and max(by_seq) > bound:
        v.notes.append(f"journal entries after #{bound} are not yet bound into the tree by a checkpoint")


def _signatures(
    v: Verification,
    bundle: Bundle,
    journal: list[dict],
    verify_many: Callable[[list[tuple[bytes, bytes, bytes]]], list[bool]] | None,
) -> None:
    """Rebuild each entry's canonical bytes from its document; compare the fields hash; verify the client's
    signature with the key the journal itself gave the signer (never the accounts table)."""
    keys: dict[str, str] = {}
    queued: list[tuple[bytes, str, str]] = []  # (message, signature hex, key hex) of each signed entry
    named: list[tuple[str, str]] = []
    opened: list[tuple[int, str, str]] = []
    for j in journal:
        name = f"journal entry #{j['seq']} ({j['op_id']})"
        try:
            op = operation_from_document(json.loads(j["document"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            v.add(f"{name}: its signed document cannot be read: it was changed")
            continue
        canonical = canonical_bytes(bundle.ledger_id, op)
        if op.id != j["op_id"] or hashlib.sha256(canonical).digest() != j["fields_hash"]:
            v.add(f"{name}: its signed document is not the one its fields hash was made from: it was changed")
        if op.signature != j["signature"]:
            v.add(f"{name}: the signature in its document differs from the journaled one")
        genesis = j["op_id"].startswith("genesis:") and not op.signature
        if not genesis:
            signer_key = keys.get(op.signer)
            if signer_key is None:
                v.add(f"{name}: its signer {op.signer} has no key opened in the journal before it")
            else:
                queued.append((canonical, op.signature, signer_key))
                named.append((name, op.signer))
        if op.kind.value == "open_account":
            body = op.body
            keys[body.handle] = body.public_key  # type: ignore[attr-defined]
            opened.append((j["seq"], body.handle, body.public_key))  # type: ignore[attr-defined]
    if verify_many is None:
        flags = [_signature_verifies(m, s, k) for m, s, k in queued]
    else:
        flags = verify_many([(m, _unhex(s), _unhex(k)) for m, s, k in queued])
    for ok, (name, signer) in zip(flags, named, strict=True):
        if ok:
            v.signatures += 1
        else:
            v.add(f"{name}: the signature does not verify with {signer}'s journaled key: forged, or the document"
                  " was changed")  # fmt: skip
    if bundle.public_keys and bundle.public_keys != opened:
        v.add("the bundle's list of public keys is not the one its journaled account openings give")


def _unhex(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        return b""  # verifies nothing


def _signature_verifies(message: bytes, signature_hex: str, public_key_hex: str) -> bool:
    try:
        nacl.signing.VerifyKey(bytes.fromhex(public_key_hex)).verify(message, bytes.fromhex(signature_hex))
        return len(signature_hex) == 128
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError, TypeError):
        return False


def _equivocations(v: Verification, signed: list[cps.SignedCheckpoint], key: bytes) -> None:
    """Two checkpoints signed by the operator that no append-only history explains: one of the same size with
    another root. (Differing sizes conflict through the leaves: each is compared with them above.)"""
    by_size: dict[int, cps.SignedCheckpoint] = {}
    for cp in signed:
        other = by_size.setdefault(cp.checkpoint.tree_size, cp)
        if other.checkpoint.root != cp.checkpoint.root:
            proof = equivocation.check(
                equivocation.build(other, cp, [], key) | {"consistency_proof": []}, key
            )
            if proof.proven:
                v.add(f"the operator signed two conflicting checkpoints (equivocation): {proof.reason}")


def _witnessed(
    v: Verification,
    signed: list[cps.SignedCheckpoint],
    leaves: list[bytes],
    witnesses: Sequence[bytes],
    quorum: int,
) -> None:
    need = quorum or len(witnesses)
    best = None
    for cp in signed:
        head = cp.checkpoint
        if head.tree_size > len(leaves) or merkle.root(leaves[: head.tree_size]) != head.root:
            continue
        count = sum(1 for w in set(witnesses) if witnessing.cosigned_by(cp.note, w) is not None)
        if count >= need and (best is None or head.tree_size > best.tree_size):
            best = head
    if best is None:
        v.add(
            f"no checkpoint that matches the log carries cosignatures of {need} of the {len(set(witnesses))}"
            f" witnesses given: the history is not witnessed"
        )
        return
    v.witnessed = best.tree_size
    if best.tree_size < len(leaves):
        v.notes.append(
            f"witnessed by {need} of {len(set(witnesses))} witnesses up to trace #{best.tree_size}; the"
            f" {len(leaves) - best.tree_size} records after it are not yet"
        )


def _earlier_checkpoints(v: Verification, earlier: Bundle, leaves: list[bytes], key: bytes) -> None:
    """Every checkpoint the earlier bundle holds, signed by the key, must be a prefix of this log: two signed
    checkpoints that conflict are an equivocation, whatever the leaves of either bundle say."""
    for cp in earlier.checkpoints:
        head = cp.checkpoint
        if not cp.signed_by(key):
            continue
        if head.tree_size > len(leaves):
            v.add(f"the earlier bundle's signed checkpoint of {head.tree_size} records is longer than this log"
                  f" ({len(leaves)} records): records removed")  # fmt: skip
        elif merkle.root(leaves[: head.tree_size]) != head.root:
            v.add(
                f"the earlier bundle's signed checkpoint of {head.tree_size} records (root {head.root.hex()})"
                f" conflicts with this log's first {head.tree_size} records (root"
                f" {merkle.root(leaves[: head.tree_size]).hex()}): history rewritten"
            )
