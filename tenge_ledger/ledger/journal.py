"""The journal's hash chain, and the projection of balances from it.

Each applied operation is one journal entry; its hash covers the previous entry's hash, its sequence number,
its ledger time, the hash of its signed fields, its signature and its postings. Changing, removing, reordering
or inserting an entry breaks the chain from that entry on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from enum import Enum

from ..core.canonical import canonical_bytes
from ..core.chain import entry_hash_of_legs
from ..core.hooks import PolicyEngine
from ..core.records import Operation, Posting
from ..core.windows import FilterReplay, history_not_kept, keeps_activity, kept_filters, parse_filter
from ..store.base import GENESIS_HASH, JournalPosting, ReportRow, Store, StoredOperation
from ..store.entries import add_flow, decision_key
from .checks import tier_limits
from .replay import Replay

GENESIS_ENTRIES = 2  # the central bank's account and the holds account, opened by Ledger.create


def entry_hash(
    prev_hash: bytes,
    seq: int,
    at: int,
    fields_hash: bytes,
    signature: str,
    postings: Iterable[Posting],
    chained: tuple[str | None, int | None] | None = None,
) -> bytes:
    """The chain link. Version 2 (`chained` given: the stored decision and the policy set's version) also covers
    what the ledger decided, so a rewritten decision breaks the chain; rows written before it keep version 1."""
    return entry_hash_of_legs(
        prev_hash,
        seq,
        at,
        fields_hash,
        signature,
        [(p.account, p.amount_tiyn, p.tag) for p in postings],
        chained,
    )


@dataclass
class JournalCheck:
    """What `tenge check` found: problems are sentences naming the entry or the account."""

    entries: int = 0
    problems: list[str] = field(default_factory=list)
    rebuilt: dict[tuple[str, str], int] = field(default_factory=dict)
    # (handle, tag) -> [out, out count, in, in count, last minute]: the running flows history windows read
    flows: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    activity: dict[tuple[str, str, int], tuple[int, int, int, int]] = field(default_factory=dict)
    signatures_checked: int | None = None  # None when signatures were not verified

    @property
    def ok(self) -> bool:
        return not self.problems


def check_journal(
    store: Store,
    signatures: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    policy: PolicyEngine | None = None,
) -> JournalCheck:
    """Walk the journal and re-derive everything else from it: the chain, postings summing to zero, every
    signature against the signer's key as journaled when it signed (on every core; `signatures=False` skips
    only that), balances, running flows, activity, supply, accounts, holds and tags, each compared with what the
    store holds. All of it is read in one snapshot, so writers working meanwhile cannot make it see tables of
    different moments. `progress(step, done, total)` hears of long steps. `policy`, the enabled set's engine:
    the history its windows read must be kept (settings edited by hand could say otherwise)."""
    with store.snapshot():
        result = _check_journal(store, signatures, progress)
        if policy is not None:
            _history_kept_for(policy, store.meta().settings, result)
        return result


def _history_kept_for(policy: PolicyEngine, settings: dict, result: JournalCheck) -> None:
    """The history the enabled set's windows read is kept: otherwise they read short (a looser limit) until
    the next write rebuilds it."""
    activity, missing = history_not_kept(policy, keeps_activity(settings), kept_filters(settings))
    if activity:
        result.problems.append(
            "the enabled policy set reads unfiltered history windows, but the ledger keeps no activity snapshots"
            " (window_activity is off): its windows read short until the next write rebuilds them"
        )
    if missing:
        result.problems.append(
            f"the enabled policy set reads windows filtered by {', '.join(sorted(missing))},"
            " but the ledger keeps no flows of them (window_filters): they read short until the next write"
            " rebuilds them"
        )


def _check_decisions(store: Store, result: JournalCheck) -> None:
    """Every kept decision text is one a journal row names, under the key its text gives (the rows' links cover
    the texts they name, so a text changed is found there too, at each row)."""
    for key, text, named in store.decisions():
        if type(text) is not str or decision_key(text) != key:
            result.problems.append(f"decision {key.hex()}: kept under a key that is not its text's")
        if not named:
            result.problems.append(f"decision {key.hex()}: no journal row names it")


def _check_journal(
    store: Store, signatures: bool, progress: Callable[[str, int, int], None] | None
) -> JournalCheck:
    result = JournalCheck()
    meta = store.meta()
    replay = Replay(
        tier_limits=tier_limits(meta.settings),
        # an account's total just before the operation being replayed (its postings are added after it)
        totals=lambda handle: sum(v for (a, _), v in result.rebuilt.items() if a == handle),
    )
    to_verify: list[tuple[bytes, bytes, bytes]] = []
    verified_entries: list[tuple[int, str, str]] = []
    reports: list[ReportRow] = []
    prev_hash = GENESIS_HASH
    expected_seq = 1
    issued = redeemed = 0
    central_bank = meta.central_bank
    filters = _filter_replay(store, meta.settings, result)
    for op, postings in _readable(store.journal(), result):
        result.entries += 1
        operation = op.operation
        _signature(result, replay, meta.ledger_id, op, operation, to_verify, verified_entries, signatures)
        decision = json.loads(op.decision)
        legs = [(p.account, p.amount_tiyn, p.tag) for p in postings]
        try:
            replay.apply(operation, op.at, legs, decision)
            filters.apply(operation, op.at, legs)
        except (KeyError, ValueError, IndexError, TypeError) as exc:
            result.problems.append(f"journal entry #{op.seq} ({op.op_id}): cannot be replayed: {exc!r}")
        for r in decision.get("reports", ()):
            reports.append(ReportRow(op.seq, op.op_id, r["agency"], r["reason"], r["rule"], op.at))
        if op.seq != expected_seq:
            result.problems.append(f"journal entry #{op.seq} ({op.op_id}): expected seq {expected_seq}")
        expected_seq = op.seq + 1
        if op.prev_hash != prev_hash:
            result.problems.append(
                f"journal entry #{op.seq} ({op.op_id}): does not chain to the entry before it"
            )
        recomputed = entry_hash(
            op.prev_hash,
            op.seq,
            op.at,
            op.fields_hash,
            operation.signature,
            _as_postings(postings),
            op.chained,
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
        if type(stored.get(key, 0)) is not int:
            result.problems.append(
                f"balance of {key[0]} [{key[1] or 'untagged'}] is stored as {stored[key]!r}"
            )
        if stored.get(key, 0) != result.rebuilt.get(key, 0):
            acct, tag = key
            result.problems.append(
                f"balance of {acct} [{tag or 'untagged'}]: stored {stored.get(key, 0)} tiyn, "
                f"journal gives {result.rebuilt.get(key, 0)} tiyn"
            )
        if key[0] != central_bank and result.rebuilt.get(key, 0) < 0:
            result.problems.append(f"balance of {key[0]} [{key[1] or 'untagged'}] is negative")
    _compare_flows(store, result)
    _compare_filtered(store, filters, result)
    _readable_table("decisions", lambda: _check_decisions(store, result), result)
    _readable_table("accounts, holds or tags", lambda: _compare_tables(store, replay, result), result)
    filed = [r for r in store.reports() if r.seq is not None]  # a rejection's reports are in its trace only
    if sorted(filed, key=_report_key) != sorted(reports, key=_report_key):
        missing = sorted(set(reports) - set(filed), key=_report_key)
        extra = sorted(set(filed) - set(reports), key=_report_key)
        result.problems.append(
            f"reports of applied operations: not in the journal's decisions {extra}, missing {missing}"
        )
    if signatures:
        from .signing import verify_all  # PyNaCl: loaded only when signatures are checked

        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            if progress:
                progress("verifying signatures", done[0], len(to_verify))

        for ok, (seq, op_id, signer) in zip(verify_all(to_verify, tick), verified_entries, strict=True):
            if not ok:
                result.problems.append(
                    f"journal entry #{seq} ({op_id}): its signature does not verify with {signer}'s journaled key"
                )
    result.signatures_checked = len(to_verify) if signatures else None
    stored_issued, stored_redeemed = store.supply()
    if type(stored_issued) is not int or type(stored_redeemed) is not int:
        result.problems.append(f"supply counters are not integers: {stored_issued!r}, {stored_redeemed!r}")
    if (stored_issued, stored_redeemed) != (issued, redeemed):
        result.problems.append(
            f"supply counters say issued {stored_issued}, redeemed {stored_redeemed}; "
            f"the journal gives issued {issued}, redeemed {redeemed}"
        )
    return result


def _signature(
    result: JournalCheck,
    replay: Replay,
    ledger_id: str,
    op: StoredOperation,
    operation: Operation,
    to_verify: list[tuple[bytes, bytes, bytes]],
    entries: list[tuple[int, str, str]],
    signatures: bool,
) -> None:
    """Queue the entry's signature for verification with the key its signer had then (from the journal)."""
    if op.seq <= GENESIS_ENTRIES and op.op_id.startswith("genesis:") and not operation.signature:
        return  # the ledger's creation opens the central bank and the holds account: nobody signs those
    key = replay.key_of(operation.signer)
    if key is None:
        result.problems.append(
            f"journal entry #{op.seq} ({op.op_id}): signed by {operation.signer}, which had no account then"
        )
        return
    if signatures:
        to_verify.append(
            (canonical_bytes(ledger_id, operation), bytes.fromhex(operation.signature), bytes.fromhex(key))
        )
        entries.append((op.seq, op.op_id, operation.signer))


def _compare_tables(store: Store, replay: Replay, result: JournalCheck) -> None:
    """Accounts, holds and tags as stored, against the journal's."""
    _compare_records(result, "accounts row of", {a.handle: a for a in store.accounts()}, replay.accounts)
    stored_holds = {h.hold_id: h for h in store.holds()}
    journal_holds = dict(replay.holds)
    for hold_id in replay.policy_holds & stored_holds.keys() & journal_holds.keys():
        have = stored_holds[hold_id]  # a rule's releaser and deadline: not journaled
        journal_holds[hold_id] = replace(
            journal_holds[hold_id], releaser=have.releaser, deadline=have.deadline
        )
    _compare_records(result, "hold", stored_holds, journal_holds)
    _compare_records(result, "tag", {t.tag: t for t in store.tags()}, replay.tags)


def _compare_records(result: JournalCheck, what: str, stored: dict, journal: dict) -> None:
    """Each record stored against the journal's, by key: a difference named by the fields that differ."""
    for key in sorted(stored.keys() | journal.keys()):
        have, want = stored.get(key), journal.get(key)
        if have != want:
            diff = [] if have is None or want is None else _differing(have, want)
            result.problems.append(
                f"{what} {key}: stored {_fields(have, diff)}, journal gives {_fields(want, diff)}"
            )


def _readable(entries: Iterator, result: JournalCheck) -> Iterator:
    """The journal's entries until one cannot be read back into an operation: that is a finding (and the walk
    stops there, since every later link depends on it)."""
    seq = 0
    while True:
        try:
            entry = next(entries)
        except StopIteration:
            return
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            result.problems.append(
                f"journal entry after #{seq} cannot be read back into an operation: {exc!r}"
            )
            return
        seq = entry[0].seq
        yield entry


def _readable_table(name: str, compare: Callable[[], None], result: JournalCheck) -> None:
    try:
        compare()
    except (ValueError, KeyError, TypeError) as exc:
        result.problems.append(f"the {name} table holds a row that cannot be read: {exc!r}")


def _report_key(r: ReportRow) -> tuple:
    return (r.seq, r.op_id, r.agency, r.reason, r.rule, r.at)


def _fields(record: object, names: list[str]) -> str:
    """A stored or replayed record's fields `names` as a reader wants them: `status=frozen`, not the enum's or
    the dataclass's repr."""
    if record is None:
        return "no row"

    def value(v: object) -> str:
        return v.value if isinstance(v, Enum) else repr(v)  # type: ignore[return-value]

    return ", ".join(f"{n}={value(getattr(record, n))}" for n in names)


def _differing(have: object, want: object) -> list[str]:
    return [f.name for f in dataclasses.fields(have) if getattr(have, f.name) != getattr(want, f.name)]  # type: ignore[arg-type]


def _flow(result: JournalCheck, key: tuple[str, str], amount: int, minute: int) -> None:
    """Replay what a chunk's write does to a bucket's running flows and activity snapshots."""
    snapshot = add_flow(result.flows, key, amount, minute)
    if snapshot is not None:
        result.activity[(*key, minute)] = snapshot


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
    # a ledger that does not keep activity (its `window_activity` setting) holds none: a row is a leftover
    kept = keeps_activity(store.meta().settings)
    want = result.activity if kept else {}
    for key in sorted(set(snapshots) | set(want)):
        if not kept:
            acct, tag, minute = key
            result.problems.append(
                f"activity of {acct} [{tag or 'untagged'}] at minute {minute} is stored, but the ledger does "
                "not keep activity (its window_activity setting is off)"
            )
        elif snapshots.get(key) != want.get(key):
            acct, tag, minute = key
            result.problems.append(
                f"activity of {acct} [{tag or 'untagged'}] at minute {minute}: stored {snapshots.get(key)}, "
                f"journal gives {want.get(key)}"
            )


def _filter_replay(store: Store, settings: dict, result: JournalCheck) -> FilterReplay:
    """A replay of the filtered flows the ledger says it keeps (its `window_filters` setting), and of any filter
    the store holds rows of without saying so (found as extra rows)."""
    keys = set(kept_filters(settings)) | {key for _, key in store.filter_flows()}
    good = set()
    for key in keys:
        try:
            parse_filter(key)
            good.add(key)
        except ValueError:
            result.problems.append(
                f"filtered history flows are kept under a key that is not a filter: {key!r}"
            )
    return FilterReplay(good, store.meta().central_bank)


def _compare_filtered(store: Store, replay: FilterReplay, result: JournalCheck) -> None:
    """The counterparty-filtered running flows and snapshots, against the journal's."""
    kept = kept_filters(store.meta().settings)
    stored = store.filter_flows()
    want_flows = {k: v for k, v in replay.flows.items() if k[1] in kept}
    for key in sorted(set(stored) | set(want_flows)):
        row = stored.get(key)
        have = None if row is None else [row.out_tiyn, row.out_count, row.in_tiyn, row.in_count, row.minute]
        if have != want_flows.get(key):
            result.problems.append(
                f"filtered history flows of {key[0]} {key[1]}: stored {have}, journal gives {want_flows.get(key)}"
            )
    snapshots = store.filter_activity()
    want = {k: v for k, v in replay.activity.items() if k[1] in kept}
    for key in sorted(set(snapshots) | set(want)):
        if snapshots.get(key) != want.get(key):
            result.problems.append(
                f"filtered activity of {key[0]} {key[1]} at minute {key[2]}: stored {snapshots.get(key)}, "
                f"journal gives {want.get(key)}"
            )


def _as_postings(rows: list[JournalPosting]) -> list[Posting]:
    return [Posting(r.account, r.amount_tiyn, r.tag) for r in rows]


def fields_hash(canonical: bytes) -> bytes:
    return hashlib.sha256(canonical).digest()


__all__ = ["entry_hash", "check_journal", "JournalCheck", "fields_hash", "StoredOperation"]
