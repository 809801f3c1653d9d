"""Offline verification of an audit bundle (or of a live database, through the same bundle shape).

Finds and names: a trace record changed (its leaf hash no longer matches, or its op id / time columns differ
from its payload), removed (a gap in the indices, or fewer leaves than a checkpoint signed), reordered (indices
out of order, op records out of journal order), inserted (a record the journal does not know, or a signed root
that no longer matches the leaves it covered); a journal entry changed, removed, reordered or inserted (the hash
chain); checkpoints not signed by the given key. With an earlier bundle, each changed leaf is named exactly.

The journal's entry hash is a parameter (`entry_hash`): the trace package does not import the ledger's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.records import Posting
from . import merkle
from .bundle import Bundle

GENESIS_HASH = bytes(32)
problems_listed_max = 200


@dataclass
class Verification:
    traces: int = 0
    journal: int = 0
    checkpoints: int = 0
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
) -> Verification:
    v = Verification(traces=len(bundle.traces), checkpoints=len(bundle.checkpoints))
    traces = bundle.traces
    leaves: list[bytes] = []
    op_seqs: list[tuple[dict, int]] = []
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
        try:
            doc = json.loads(t["payload"])
        except ValueError:
            v.add(f"{_name(t)} was changed: its content is not a trace record")
            continue
        if doc.get("op_id") != t["op_id"] or doc.get("at") != t["at"]:
            v.add(f"{_name(t)} was changed: its op id or time column differs from its signed content")
        if doc.get("type", "op") == "op" and isinstance(doc.get("seq"), int):
            op_seqs.append((t, doc["seq"]))
    for first, last in _ranges(sorted(set(range(1, highest + 1)) - seen)):
        v.add(f"trace {f'#{first}' if first == last else f'#{first}..#{last}'} missing: removed from the log")
    # 2. signed checkpoints: signature, size and root over the leaves they cover.
    last_good = 0
    for cp in sorted(bundle.checkpoints, key=lambda c: (c.tree_size, c.at)):
        when = f"checkpoint of {cp.tree_size} records signed at {cp.at}"
        if cp.ledger_id != bundle.ledger_id:
            v.add(f"{when} belongs to ledger {cp.ledger_id}, not {bundle.ledger_id}")
            continue
        if not cp.verifies(public_key):
            v.add(f"{when} is not signed by the key {public_key[:16]}...: signed by another key or edited")
            continue
        if cp.tree_size > len(leaves):
            v.add(
                f"{when}: the log has only {len(leaves)} of the records it signed: "
                f"{cp.tree_size - len(leaves)} removed"
            )
            continue
        if merkle.root(leaves[: cp.tree_size]).hex() != cp.root:
            v.add(
                f"{when}: the records it covers no longer match it; a change, removal, insertion or reordering"
                f" among trace #{last_good + 1}..#{cp.tree_size}"
            )
        else:
            last_good = max(last_good, cp.tree_size)
    if not bundle.checkpoints:
        v.notes.append("no signed checkpoint: records whose leaf hash was recomputed cannot be detected")
    elif len(leaves) > max(c.tree_size for c in bundle.checkpoints):
        v.notes.append(
            f"trace records after #{max(c.tree_size for c in bundle.checkpoints)} are not yet covered by a checkpoint"
        )
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
                entry_hash(j["prev_hash"], j["seq"], j["at"], j["fields_hash"], j["signature"], postings)
                != j["entry_hash"]
            ):
                v.add(f"{name} was changed: its hash does not match its content")
        prev = j["entry_hash"]
        by_seq[j["seq"]] = j
    for cp in bundle.checkpoints:
        if not cp.verifies(public_key) or cp.journal_seq == 0:
            continue
        j = by_seq.get(cp.journal_seq)
        if j is None:
            v.add(
                f"journal entry #{cp.journal_seq} signed by the checkpoint at {cp.at} is missing: entries removed"
            )
        elif j["entry_hash"].hex() != cp.journal_head:
            v.add(
                f"journal entry #{cp.journal_seq} ({j['op_id']}) differs from the checkpoint signed at {cp.at}"
            )
    # 5. the trace log against the journal: each applied op's record names its journal entry, in order.
    last_seq = 0
    traced: set[int] = set()
    for t, seq in op_seqs:
        j = by_seq.get(seq)
        if j is None:
            v.add(f"{_name(t)} names journal entry #{seq}, which is not in the journal: inserted")
        elif j["op_id"] != t["op_id"]:
            v.add(f"{_name(t)} names journal entry #{seq}, which is {j['op_id']}: changed or inserted")
        if seq <= last_seq:
            v.add(f"{_name(t)} (journal #{seq}) comes after journal #{last_seq}: reordered")
        last_seq = max(last_seq, seq)
        traced.add(seq)
    for seq, j in sorted(by_seq.items()):
        if seq not in traced and not j["op_id"].startswith("genesis:"):
            v.add(f"journal entry #{seq} ({j['op_id']}) has no trace record: its record was removed")
    return v
