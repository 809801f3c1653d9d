"""The journal's hash chain, and the projection of balances from it.

Each applied operation is one journal entry; its hash covers the previous entry's hash, its sequence number,
its ledger time, the hash of its signed fields, its signature and its postings. Changing, removing, reordering
or inserting an entry breaks the chain from that entry on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..core.records import Posting
from ..store.base import GENESIS_HASH, JournalPosting, Store, StoredOperation

_DOMAIN = b"tenge-ledger/journal/v1\n"


def entry_hash(
    prev_hash: bytes, seq: int, at: int, fields_hash: bytes, signature: str, postings: Iterable[Posting]
) -> bytes:
    h = hashlib.sha256(_DOMAIN)
    h.update(prev_hash)
    h.update(seq.to_bytes(8, "big"))
    h.update(at.to_bytes(8, "big", signed=True))
    h.update(fields_hash)
    h.update(signature.encode("ascii"))
    for p in postings:
        h.update(f"{p.account}\0{p.tag}\0{p.amount_tiyn}\n".encode())
    return h.digest()


@dataclass
class JournalCheck:
    """What `tenge check` found: problems are sentences naming the entry or the account."""

    entries: int = 0
    problems: list[str] = field(default_factory=list)
    rebuilt: dict[tuple[str, str], int] = field(default_factory=dict)
    # (handle, tag) -> [out, out count, in, in count, last minute]: the running flows history windows read
    flows: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    activity: dict[tuple[str, str, int], tuple[int, int, int, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_journal(store: Store) -> JournalCheck:
    """Walk the journal: verify the chain and that each entry's postings sum to zero, rebuild every balance
    from the postings, and compare with the stored balances and the supply counters. All of it is read in one
    snapshot, so writers working meanwhile cannot make it see a journal and balances of different moments."""
    snapshot = getattr(store, "snapshot", None)
    if snapshot is None:
        return _check_journal(store)
    with snapshot():
        return _check_journal(store)


def _check_journal(store: Store) -> JournalCheck:
    result = JournalCheck()
    prev_hash = GENESIS_HASH
    expected_seq = 1
    issued = redeemed = 0
    central_bank = store.meta().central_bank
    for op, postings in store.journal():
        result.entries += 1
        if op.seq != expected_seq:
            result.problems.append(f"journal entry #{op.seq} ({op.op_id}): expected seq {expected_seq}")
        expected_seq = op.seq + 1
        if op.prev_hash != prev_hash:
            result.problems.append(
                f"journal entry #{op.seq} ({op.op_id}): does not chain to the entry before it"
            )
        signature = json.loads(op.document).get("signature", "")
        recomputed = entry_hash(
            op.prev_hash, op.seq, op.at, op.fields_hash, signature, _as_postings(postings)
        )
        if recomputed != op.entry_hash:
            result.problems.append(
                f"journal entry #{op.seq} ({op.op_id}): its hash does not match its content"
            )
        prev_hash = op.entry_hash
        total = sum(p.amount_tiyn for p in postings)
        if total != 0:
            result.problems.append(f"journal entry #{op.seq} ({op.op_id}): postings sum to {total}, not 0")
        for p in postings:
            key = (p.account, p.tag)
            result.rebuilt[key] = result.rebuilt.get(key, 0) + p.amount_tiyn
            _flow(result, key, p.amount_tiyn, op.at // 60)
            if p.account == central_bank:
                if p.amount_tiyn < 0:
                    issued -= p.amount_tiyn
                else:
                    redeemed += p.amount_tiyn
    head_seq, head_hash = store.head()
    if head_seq != expected_seq - 1 or head_hash != prev_hash:
        result.problems.append(f"journal head says #{head_seq} but the journal ends at #{expected_seq - 1}")
    result.rebuilt = {k: v for k, v in result.rebuilt.items() if v}
    stored = store.balances()
    for key in sorted(set(stored) | set(result.rebuilt)):
        if stored.get(key, 0) != result.rebuilt.get(key, 0):
            acct, tag = key
            result.problems.append(
                f"balance of {acct} [{tag or 'untagged'}]: stored {stored.get(key, 0)} tiyn, "
                f"journal gives {result.rebuilt.get(key, 0)} tiyn"
            )
        if key[0] != central_bank and result.rebuilt.get(key, 0) < 0:
            result.problems.append(f"balance of {key[0]} [{key[1] or 'untagged'}] is negative")
    _compare_flows(store, result)
    stored_issued, stored_redeemed = store.supply()
    if (stored_issued, stored_redeemed) != (issued, redeemed):
        result.problems.append(
            f"supply counters say issued {stored_issued}, redeemed {stored_redeemed}; "
            f"the journal gives issued {issued}, redeemed {redeemed}"
        )
    return result


def _flow(result: JournalCheck, key: tuple[str, str], amount: int, minute: int) -> None:
    """Replay what a chunk's write does to a bucket's running flows and activity snapshots."""
    flow = result.flows.get(key)
    if flow is None:
        flow = result.flows[key] = [0, 0, 0, 0, -1]
    if flow[4] < minute:
        result.activity[(*key, minute)] = (flow[0], flow[1], flow[2], flow[3])
        flow[4] = minute
    if amount < 0:
        flow[0] -= amount
        flow[1] += 1
    elif amount > 0:
        flow[2] += amount
        flow[3] += 1


def _compare_flows(store: Store, result: JournalCheck) -> None:
    """The running flows and activity snapshots that history windows read, against the journal's."""
    stored = store.bucket_flows()
    for key in sorted(set(stored) | set(result.flows)):
        row = stored.get(key)
        want = result.flows.get(key)
        have = None if row is None else [row.out_tiyn, row.out_count, row.in_tiyn, row.in_count, row.minute]
        if have != want:
            acct, tag = key
            result.problems.append(
                f"history flows of {acct} [{tag or 'untagged'}]: stored {have}, journal gives {want}"
            )
    snapshots = store.activity()
    for key in sorted(set(snapshots) | set(result.activity)):
        if snapshots.get(key) != result.activity.get(key):
            acct, tag, minute = key
            result.problems.append(
                f"activity of {acct} [{tag or 'untagged'}] at minute {minute}: stored {snapshots.get(key)}, "
                f"journal gives {result.activity.get(key)}"
            )


def _as_postings(rows: list[JournalPosting]) -> list[Posting]:
    return [Posting(r.account, r.amount_tiyn, r.tag) for r in rows]


def fields_hash(canonical: bytes) -> bytes:
    return hashlib.sha256(canonical).digest()


__all__ = ["entry_hash", "check_journal", "JournalCheck", "fields_hash", "StoredOperation"]
