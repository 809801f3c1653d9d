"""The ledger service: every operation takes the same path.

    look up id -> signer -> signature -> authority -> handler (shape, policy decision) -> built-in checks
    -> postings, journal entry, hash chain -> trace

all inside one working set that is merged only when the operation succeeds, and written by the store in one
transaction. A rejection is a Result, never an exception, and leaves nothing behind but its trace record.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import operator
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from ..core import limits
from ..core.canonical import canonical_bytes, check_operation_text, date_start
from ..core.chain import chain_tail, entry_hash_of_legs
from ..core.describe import duration
from ..core.errors import (
    CommitterStopped,
    InputError,
    InvariantViolation,
    KnownOperationId,
    LedgerStateError,
    WriteConflict,
)
from ..core.hooks import PolicyEngine, Proposal, TraceSink
from ..core.money import format_tiyn
from ..core.records import (
    CENTRAL_BANK_KINDS,
    HOLD_ON_TIMEOUT_DEFAULT,
    HOLDS_ACCOUNT,
    KIND_BY_BODY,
    KINDS_SERVED_BY_BANK,
    LEDGER_KINDS,
    Account,
    AccountKind,
    AccountStatus,
    AddWitness,
    Batch,
    Close,
    Decision,
    Freeze,
    Hold,
    HoldRecord,
    Issue,
    OpenAccount,
    Operation,
    OpKind,
    Post,
    Posting,
    Redeem,
    Report,
    Seize,
    Sweep,
    TagRecord,
    TraceRecord,
    Transfer,
    Unfreeze,
    UpdateAccount,
    Void,
)
from ..core.results import Result, ResultCode
from ..core.windows import (
    ACTIVITY_SETTING,
    history_not_kept,
    keeps_activity,
    kept_filters,
    parse_filter,
    window_start,
)
from ..store.base import ChangeSet, Committer, LedgerMeta, ReportRow, Store, StoreTx
from ..store.entries import FLAG_LEGS, FLAG_LINK_V2, body_columns, journal_row, standard_legs
from ..trace.record import PlainTraceSink
from . import checks, signing
from .journal import fields_hash
from .plain import apply_plain_transfers, plain_context
from .state import StoredState
from .working import WorkingSet

NO_KEY = "00" * 32  # the public key of accounts no one can sign for (system accounts)


class Rejected(Exception):
    """Internal control flow of the apply path; always turned into a Result before it leaves the service."""

    def __init__(
        self, code: ResultCode, message: str, reports: tuple[Report, ...] = (), decision=None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reports = reports
        self.decision = decision


@dataclass
class _Applied:
    """What a handler hands back: the postings to write and what to say about them."""

    message: str
    postings: tuple[Posting, ...] = ()
    decision: Decision | None = None
    status_exempt: frozenset[str] = frozenset()
    payer: str | None = None
    payee: str | None = None
    amount_tiyn: int | None = None
    tag: str | None = None
    memo: str | None = None
    hold: HoldRecord | None = None  # the hold this operation opens, kept only once every check has passed


# Kinds whose handlers change nothing before the built-in checks pass: they run in the working set they were
# given, not in a child of it (one fewer object and merge per payment); every other kind gets a child.
_DIRECT_KINDS = frozenset({OpKind.transfer, OpKind.hold, OpKind.redeem, OpKind.seize})


_NO_POLICY_DECISION = Decision()


class AllowAll:
    """The policy engine of a ledger with no policy set enabled: built-in checks only."""

    policy_set_id = None
    version = None
    windows: frozenset = frozenset()
    filters: frozenset[str] = frozenset()
    activity = False

    def decide(self, proposal: Proposal, view) -> Decision:
        return Decision()


class _HistoryNotKept(Exception):
    """Internal: the chunk's engine reads history windows whose history the store does not keep (unfiltered
    snapshots, or a counterparty filter's flows); the chunk is rolled back, the history built, and tried again."""


def system_clock() -> int:
    return int(time.time())


class Ledger:
    """One ledger over one store. Build it with `Ledger.open(store)` or `Ledger.create(store, ...)`."""

    def __init__(
        self,
        store: Store,
        policy: PolicyEngine | None = None,
        trace: TraceSink | None = None,
        clock: Callable[[], int] = system_clock,
        settings_loader: Callable[[dict], PolicyEngine | None] | None = None,
    ) -> None:
        """`settings_loader`: the policy engine the store's settings name. The ledger always follows the store's
        tier limits (changed by another process, they are taken at this ledger's next chunk); given a loader,
        also the policy set enabled there."""
        self.store = store
        self.meta: LedgerMeta = store.meta()
        self.policy: PolicyEngine = policy or AllowAll()
        self.trace: TraceSink = trace or PlainTraceSink()
        self.clock = clock
        # Plain transfers skip the general path's objects (ledger/plain.py); False applies every operation the
        # general way, which the equivalence test compares against.
        self.plain_transfers = True
        self._state = StoredState()  # what this process knows of the store between chunks
        # apply_many hands its writes to the store's committer from this many operations on (it starts a process)
        self.committer_operations_min = limits.committer_operations_min
        self._calm = limits.calm_chunks_min  # chunks in a row that found no other writer's entries
        # Decisions the engine hands out again and again share their parts: their JSON is made once, keyed by the
        # identity of the parts, which the entry holds so the key cannot be reused while it is kept.
        self._decision_texts: dict[int, tuple[tuple, str]] = {}
        self._parsed_filters: dict[frozenset[str], tuple] = {}
        self._chain_tails: dict[
            tuple[str | None, int | None], bytes
        ] = {}  # (decision, version) -> chain_tail
        self._windows_by_needs: dict[frozenset, tuple] = {}  # the enabled set's windows, grouped once
        self.tier_limits = checks.tier_limits(self.meta.settings)
        self._settings_loader = settings_loader
        self._settings_epoch = self.meta.settings_epoch  # the settings this ledger took are as of this epoch
        # Whether the store keeps `activity` (store/filters.py): every writer writes it exactly while it is kept
        self._keeps_activity = keeps_activity(self.meta.settings)
        self._kept_filters = kept_filters(self.meta.settings)  # the filters whose flows the store keeps

    @property
    def ledger_id(self) -> str:
        return self.meta.ledger_id

    @property
    def central_bank(self) -> str:
        return self.meta.central_bank

    # ---- creation ------------------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        store: Store,
        name: str,
        central_bank_key: str,
        central_bank: str = "nbk",
        privacy_mode: str = "transparent",
        settings: dict | None = None,
        clock: Callable[[], int] = system_clock,
    ) -> Ledger:
        """Initialise an empty store as a ledger whose central bank verifies with `central_bank_key`.

        The genesis entries open the central bank's account and the escrow account for holds; they are journal
        entries like any other, so replaying the journal rebuilds every account."""
        now = clock()
        meta = LedgerMeta(
            ledger_id=secrets.token_hex(16),
            name=name,
            central_bank=central_bank,
            created_at=now,
            privacy_mode=privacy_mode,
            # a new ledger keeps no activity until a policy set that reads unfiltered windows is enabled
            settings={ACTIVITY_SETTING: False, **(settings or {})},
        )
        store.initialise(meta)
        ledger = cls(store, clock=clock)
        genesis = [
            Account(central_bank, AccountKind.central_bank, central_bank_key, opened_at=now),
            Account(HOLDS_ACCOUNT, AccountKind.system, NO_KEY, opened_at=now),
        ]
        with store.transaction() as tx:
            ws = WorkingSet(tx=tx)
            for account in genesis:
                op = Operation(
                    id=f"genesis:{account.handle.lstrip('@')}",
                    signer=central_bank,
                    body=OpenAccount(account.handle, account.kind, account.public_key),
                )
                ws.accounts[account.handle] = account
                ledger._journal(ws, op, now, (), None)
            tx.write(ws.changeset(now))
        return ledger

    # ---- applying ------------------------------------------------------------------------------------------

    def verified_upfront(
        self,
        ops: Sequence[Operation],
        progress: Callable[[int], None] | None = None,
        signed_with: dict[int, bytes] | None = None,
    ) -> list[bool]:
        """Which of `ops`' signatures verify, checked before they apply and on every core
        (`signing.verify_all`), for `apply_many(ops, verified=flags)`: an operation flagged False is checked by
        the ledger as it applies, and rejected there if its signature is bad. Only transfers are checked here
        (what the plain transfer path takes), against their signer's key as the store has it; a transfer whose
        signer is opened by an operation of the same list is left to the ledger, which knows that key only by
        then. `progress(n)` is told of each group checked.

        `signed_with` maps an operation's index to the public key of the key the caller signed it with just now
        (a wallet signing a file's lines): where that is its signer's key as the store has it, the signature
        verifies (Ed25519 signing with a key makes a signature its public half verifies, over the same canonical
        bytes), so it is not checked again; any other is checked as above."""
        opened = {op.body.handle for op in ops if isinstance(op.body, OpenAccount)}
        keys: dict[str, bytes | None] = {}
        wanted: list[int] = []
        items: list[tuple[bytes, bytes, bytes]] = []
        flags = [False] * len(ops)
        signed_here = signed_with or {}
        for i, op in enumerate(ops):
            if type(op.body) is not Transfer or op.signer in opened or len(op.signature) != 128:
                continue
            if op.signer not in keys:
                account = self.store.account(op.signer)
                keys[op.signer] = None if account is None else bytes.fromhex(account.public_key)
            key = keys[op.signer]
            if key is not None and signed_here.get(i) == key:
                flags[i] = True
                continue
            try:
                signature = bytes.fromhex(op.signature)
            except ValueError:
                continue
            if key is not None:
                wanted.append(i)
                items.append((canonical_bytes(self.ledger_id, op), signature, key))
        if progress and len(items) < len(ops):
            progress(len(ops) - len(items))  # what needs no check here is done
        for i, ok in zip(wanted, signing.verify_all(items, progress), strict=True):
            flags[i] = ok
        return flags

    def apply(self, op: Operation, verified: bool = False) -> Result:
        return self.apply_many([op], verified=verified)[0]

    def apply_many(
        self,
        ops: Sequence[Operation],
        verified: bool | Sequence[bool] = False,
        chunk: int | None = None,
        on_results: Callable[[list[Result]], None] | None = None,
    ) -> list[Result]:
        """Apply operations in order. Each is atomic on its own; up to `chunk` of them share one database
        transaction (group commit). `verified` says the signatures were checked already, for all or per op.
        `on_results` is told each chunk's results once they are committed, in order: a progress bar, or a caller
        that must know what was applied before a failure raised (tenge submit removes the keys it made only for
        accounts that were not opened)."""
        size = chunk or limits.submit_chunk_operations
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"chunk is a number of operations, 1 or more: not {chunk!r}")
        flags = [verified] * len(ops) if isinstance(verified, bool) else list(verified)
        if len(flags) != len(ops):
            raise ValueError("one verified flag per operation")
        results: list[Result] = []

        def deliver(part: list[Result]) -> None:
            results.extend(part)
            if on_results is not None:
                on_results(part)

        with _cycle_collection_paused():
            if self._committer_pays(len(ops), size):
                with self.store.committing() as committer:
                    if committer is not None:
                        self._apply_pipelined(committer, ops, flags, size, deliver)
                        return results
            for start in range(0, len(ops), size):
                deliver(self._apply_chunk(ops[start : start + size], flags[start : start + size]))
        return results

    def _committer_pays(self, count: int, size: int) -> bool:
        """Whether writing off the apply loop (the store's committer) can pay and cannot change a decision:
        enough chunks to overlap, trace leaves derived from the journal (sealing sinks stay in the transaction),
        and no policy windows (a window reads the store's flows, which lag the chunks the committer holds)."""
        return (
            count >= self.committer_operations_min
            and count > limits.committer_chunks_min * size
            and not self.policy.windows
            and self.trace.journal_leaves
        )

    def _work_out(
        self,
        tx: StoreTx,
        ops: Sequence[Operation],
        flags: Sequence[bool],
        at: int,
        head: tuple[int, bytes] | None,
        resolve_base: Callable[[], tuple[int, bytes]] | None = None,
        defer_links: bool = False,
        read_ids: bool = True,
    ) -> tuple[WorkingSet, list[Result]]:
        """Apply a chunk to a working set on `tx`: the store's journal head `head`, or, None, this ledger's state
        as it stands ahead of the store (the chunks a committer holds). With `resolve_base` a committer writes
        the chunk; with `defer_links` too, plain transfers' rows are left for the store to link
        (WorkingSet.links_deferred), and `resolve_base` gives the link of a base the committer holds, when one
        must be linked here; without `read_ids`, the store's operation ids are not read (WorkingSet.ids_unread)."""
        self._follow_settings(tx)
        if self._history_missing():
            raise _HistoryNotKept  # (dropped meanwhile) never decided on windows that read short
        upsert = tx.takes_bucket_upserts and not self._keeps_activity
        if self._state.rows_stale and not upsert:  # a snapshot would read stale rows: they are read again
            if head is None:
                raise _HistoryNotKept  # (kept meanwhile) the chunks held are written first, the state dropped
            self._state.clear()
        if head is None:
            root = WorkingSet(tx=tx, state=self._state)
            root.base_head = self._state.head
        else:
            root = WorkingSet(tx=tx, state=self._state.since(head))
        if resolve_base is not None:
            root.links_deferred = defer_links
            root.resolve_base = resolve_base
            root.ids_unread = not read_ids
        root.upsert_buckets = upsert
        root.prefetch(*_touched(ops))
        windows = self.policy.windows
        if windows:
            root.filters = self._filters()
            root.zone_filters = any(n == "zone" for _, pairs, _ in root.filters for n, _ in pairs)
            by_needs = self._windows_by_needs.get(windows)
            if by_needs is None:
                self._windows_by_needs = {windows: (by_needs := _windows_by_needs(windows))}
            root.prefetch_windows(_window_requests(root, ops, by_needs, at))
        return root, self._apply_all(root, ops, flags, at)

    def _apply_pipelined(
        self,
        committer: Committer,
        ops: Sequence[Operation],
        flags: Sequence[bool],
        size: int,
        deliver: Callable[[list[Result]], None],
        read_ids: bool = False,
        times: Sequence[int] = (),
    ) -> None:
        """`apply_many` with group commit off the apply loop, handing each chunk's results to `deliver` once
        they are final: each chunk is worked out in a read transaction on
        top of the chunks before it, which the committer may not have written yet (this ledger's state runs
        ahead of the store, `pending_ops` answers for their ids), and its change set is handed to the committer
        with the journal head and settings epoch it was worked out on. A chunk's results count once the
        committer confirms it. A chunk with an operation other than a transfer is worked out only once every
        chunk before it is confirmed, and a chunk whose changes a later one might read from the store (accounts,
        holds, tags, legs, reports, settings, supply) is confirmed before the next is worked out. If another
        writer got in (WriteConflict), the committer stopped, or it may not be used any more (the settings
        changed so, or a window read the store's lagging history), the chunks it wrote count (its answers, or
        after a stop the store's journal head, say which) and every other one is worked out again the
        synchronous way; any other failure clears the state and is raised once every answer is in.

        The chunks read no operation ids from the store (`read_ids` False): as in TigerBeetle and the issue's
        prototype, the journal's unique key refuses a repeated one as the committer writes it (KnownOperationId).
        The chunks from that one on are then pipelined again, reading ids, so a call that repeats operations (a
        file submitted again after a crash) answers `exists` for them. Those chunks were worked out already, each
        at its moment: worked out again, each keeps it (`times`, one per chunk from the first), so a refused id
        moves no operation's ledger time, and the call journals what the synchronous way would."""
        state = self._state
        held: deque[_Held] = deque()  # oldest first
        confirmed = 0  # ops[:confirmed] are committed and their results delivered
        # Plain transfers' links are left to the store until a chunk journals the general way (a transfer a
        # policy splits, the central bank's, one verified here): it links what its chunk left, after waiting for
        # the chunks held if its base is one of them. Chunks like it tend to follow, so from then on this call
        # links every row here and never waits for that.
        defer_links = True

        def confirm_oldest() -> None:
            nonlocal confirmed
            written = committer.committed()
            end, part, ids, _, _, _ = held.popleft()
            deliver(part)
            for op_id in ids:
                state.pending_ops.pop(op_id, None)
            confirmed = end
            if state.head is not None and state.head[0] == written[0]:
                state.head = written  # with the link the store made, when it linked the rows

        def resolve_base() -> tuple[int, bytes]:
            """The journal head with its link, once every chunk held is written (the store linked them)."""
            while held:
                confirm_oldest()
            return state.head  # type: ignore[return-value]

        def confirm_found(found: tuple[int, bytes], found_leaves: int) -> None:
            """After the committer stopped unasked: the chunks it wrote without answering. The store's journal
            head and trace size say which: both only grow, and every chunk that changed anything added a leaf,
            so they are the last chunk written's, a chunk that only rejected included (worked out again, its
            rejections would be traced twice). Another writer's leaves in between: the chunks up to the one whose
            journal head the store has; the rest are worked out again."""
            nonlocal confirmed
            count = 0
            for k, chunk in enumerate(held):
                if chunk[4] == (found[0], found_leaves):
                    count = k + 1  # the last: a chunk that added nothing leaves what the one before it left
            journaled = [chunk for chunk in list(held)[:count] if chunk[3] is not None]
            if journaled and not _wrote(self.store, journaled[-1], found):
                count = 0
            if not count:
                written = [k for k, chunk in enumerate(held) if _wrote(self.store, chunk, found)]
                count = written[0] + 1 if written else 0
            for _ in range(count):
                end, part, _, _, _, _ = held.popleft()
                deliver(part)
                confirmed = end

        start, n = confirmed, len(ops)
        chunks = 0  # worked out by this call
        working_at: int | None = None  # the ledger time of the chunk being worked out, until it is held
        leaves = 0  # the trace log's size once the chunks submitted are written
        try:
            while start < n:
                while len(held) >= limits.committer_chunks_ahead_max:
                    confirm_oldest()
                end = min(start + size, n)
                if held and not all(type(op.body) is Transfer for op in ops[start:end]):
                    # Only a transfer reads nothing but what the state holds (accounts, balances, flows, ids):
                    # a sweep reads a tag's holders from the store, a post its hold, an issue the supply.
                    while held:
                        confirm_oldest()
                with committer.reading() as tx:
                    at = working_at = times[chunks] if chunks < len(times) else self.clock()
                    chunks += 1
                    head = None if held else tx.head()
                    if head is not None:
                        leaves = tx.trace_size()
                    root, part = self._work_out(
                        tx, ops[start:end], flags[start:end], at, head, resolve_base, defer_links, read_ids
                    )
                    defer_links = root.links_deferred
                    if held and (root.read_history_ahead or not self._committer_pays(n, size)):
                        # A window read the store's history, which lacks the chunks held (an engine that does
                        # not declare it, or a set another process enabled meanwhile): the store must answer.
                        raise _HistoryNotKept
                    change = root.changeset(at, self._keeps_activity)
                base = state.head if head is None else head
                committer.submit(change, (base, self._settings_epoch))  # type: ignore[arg-type]
                if root.head_value is not None:
                    state.committed(root.head_value, root.accounts)
                state.pending_ops.update(root.operations)
                leaves += len(change.traces)
                after = root.head_value or base
                held.append((end, part, root.operations, root.head_value, (after[0], leaves), at))
                working_at = None
                start = end
                # answers already in are taken now: the caller hears of each chunk soon after it is written
                while held and committer.answered():
                    confirm_oldest()
                if _read_back(change) or len(state.balances) > limits.state_buckets_max:
                    while held:
                        confirm_oldest()
            while held:
                confirm_oldest()
        except (WriteConflict, CommitterStopped, _HistoryNotKept) as failure:
            try:  # the chunks written before the one that could not be are this call's: their results stand
                # (only answers owed: a chunk whose answer was the failure stays held, its answer taken)
                while held and committer.waiting:
                    confirm_oldest()
            except (WriteConflict, CommitterStopped):
                pass
            finally:  # also before any other failure of taking them is raised
                _settle(committer)
                state.clear()
            if committer.stopped and held:
                confirm_found(self.store.head(), self.store.trace_size())
            if isinstance(failure, KnownOperationId) and not committer.stopped and not read_ids:
                again = [chunk[5] for chunk in held] + ([] if working_at is None else [working_at])
                self._apply_pipelined(
                    committer, ops[confirmed:], flags[confirmed:], size, deliver, True, again
                )
                return
            for i in range(confirmed, n, size):
                deliver(self._apply_chunk(ops[i : i + size], flags[i : i + size]))
        except BaseException:
            _settle(committer)
            state.clear()
            raise

    def _apply_chunk(self, ops: Sequence[Operation], flags: Sequence[bool]) -> list[Result]:
        if self._history_missing():
            self._build_history()
        for attempt in range(limits.write_conflict_retries_max):
            # A writer alone holds no lock while Python works (a server store locks only to write). Once another
            # writer got in the way, this one queues for the lock first (no work thrown away), until it has
            # found the journal head where it left it for `calm_chunks_min` chunks in a row.
            optimistic = attempt == 0 and self._calm >= limits.calm_chunks_min
            try:
                with self.store.transaction(optimistic=optimistic) as tx:
                    # Operations committed together share one ledger time: the moment their chunk applied.
                    at = self.clock()
                    head = tx.head()
                    alone = head == self._state.head
                    root, results = self._work_out(tx, ops, flags, at, head)
                    tx.write(root.changeset(at, self._keeps_activity))
            except _HistoryNotKept:
                self._state.clear()
                self._build_history()
                continue
            except WriteConflict:
                self._state.clear()
                self._calm = 0
                time.sleep(min(0.001 * 2**attempt, 0.1) * (1 + secrets.randbelow(100) / 100))
                continue
            except BaseException:
                self._state.clear()  # the rollback undid what it read or allocated
                raise
            if root.head_value is not None:
                self._state.committed(root.head_value, root.accounts)
            self._calm = self._calm + 1 if alone else 0
            return results
        raise LedgerStateError(
            f"gave up after {limits.write_conflict_retries_max} write conflicts with concurrent writers; try again"
        )

    def _follow_settings(self, tx: StoreTx) -> None:
        """Take the store's settings if another process changed them since this ledger read them: the enabled
        policy set (kept as it is when its id and version did not change, so nothing is compiled again) and the
        tier limits. Read under the chunk's write lock (or, optimistic, in its snapshot, which a settings change
        makes conflict), so no chunk decides with a set that another process replaced before it committed."""
        epoch = tx.settings_epoch()
        if epoch == self._settings_epoch:
            return
        meta = tx.meta()
        # Whether activity is kept and the tier limits are the store's to say, not the engine's: followed by
        # every writer, also one given its engine by the caller, so no chunk leaves a gap in kept snapshots or a
        # row where none are, and none lets a wallet hold more than its tier now allows.
        self._keeps_activity = keeps_activity(meta.settings)
        self._kept_filters = kept_filters(meta.settings)
        self.meta = meta
        self.tier_limits = checks.tier_limits(meta.settings)
        if self._settings_loader is not None:
            loaded = self._settings_loader(meta.settings) or AllowAll()
            if (loaded.policy_set_id, loaded.version) != (self.policy.policy_set_id, self.policy.version):
                self.policy = loaded
        self._settings_epoch = epoch  # last: a set that failed to load is tried again, never skipped

    def _history_missing(self) -> bool:
        activity, filters = history_not_kept(self.policy, self._keeps_activity, self._kept_filters)
        return activity or bool(filters)

    def _build_history(self) -> None:
        """Keep, from now on, the history the engine this ledger was given (or was assigned) reads and the store
        does not keep: unfiltered snapshots, a counterparty filter's flows. Windows would read them short (a
        looser limit) otherwise. Built from the journal by the same rebuild that enabling such a set makes,
        keeping what the store kept; writers in other processes follow the setting."""
        before = self._settings_epoch
        keys = kept_filters(self.store.meta().settings) | self.policy.filters
        if self.store.rebuild_window_filters(keys, activity=True if self.policy.activity else None):
            meta = self.store.meta()
            # no change but this one since: nothing to follow, so the engine the caller gave stays
            if meta.settings_epoch == before + 1:
                self._settings_epoch, self.meta = meta.settings_epoch, meta
        # as of the rebuild; the chunk's transaction reads the settings again
        self._keeps_activity = self._keeps_activity or self.policy.activity
        self._kept_filters = keys

    def _apply_all(
        self, root: WorkingSet, ops: Sequence[Operation], flags: Sequence[bool], at: int
    ) -> list[Result]:
        """Each operation in order: a plain transfer by ledger/plain.py, which only a ledger whose trace leaves
        are derived from the journal can take; anything else, and whatever that path hands on, the general way."""
        if not (self.plain_transfers and self.trace.journal_leaves):
            return [self._apply(root, op, at, ok) for op, ok in zip(ops, flags, strict=True)]
        results: list[Result] = []
        policy = None if type(self.policy) is AllowAll else self.policy
        ctx = plain_context(
            self.ledger_id, self.tier_limits, policy, self.central_bank, self._transfer_with_effects
        )
        i, n = 0, len(ops)
        while i < n:
            i = apply_plain_transfers(root, ops, flags, i, results, at, ctx)
            if i < n:
                results.append(self._apply(root, ops[i], at, flags[i]))
                i += 1
        return results

    def _apply(self, ws: WorkingSet, op: Operation, at: int, verified: bool) -> Result:
        try:
            check_operation_text(op)  # a library caller's operation was never a document the parser checked
        except InputError as e:
            # Refused at input, as the CLI refuses the same fields: not traced, since the text is what must not
            # be kept or shown.
            return Result(op.id, ResultCode.invalid_operation, str(e))
        canonical = canonical_bytes(self.ledger_id, op)
        digest = fields_hash(canonical)
        existing = ws.operation(op.id)
        if existing is not None:
            seq, known = existing
            if known == digest:
                result = Result(op.id, ResultCode.exists, f"already applied as #{seq}", seq)
            else:
                result = Result(
                    op.id,
                    ResultCode.exists_with_different_fields,
                    f"id {op.id} was already used (#{seq}) for an operation with other fields",
                )
            self._trace(ws, op, at, result, None)
            return result
        direct = op.kind in _DIRECT_KINDS
        child = ws if direct else ws.child()
        try:
            signer = child.account(op.signer)
            if signer is None:
                raise Rejected(ResultCode.unknown_account, f"no account {op.signer!r} to sign")
            if not verified and not signing.verify_bytes(canonical, op.signature, signer.public_key):
                raise Rejected(
                    ResultCode.bad_signature, f"the signature does not verify with {op.signer}'s key"
                )
            self._authorise(child, op, signer)
            applied = _HANDLERS[op.kind](self, child, op, at, verified)
            rejection = checks.check_postings(
                child, applied.postings, self.tier_limits, applied.status_exempt
            )
            if rejection is not None:
                raise Rejected(*rejection, decision=applied.decision)
            if applied.hold is not None:
                child.holds[op.id] = applied.hold
            seq = self._journal(child, op, at, applied.postings, applied.decision, digest)
            if child.root.filters and applied.postings:
                child.add_filtered(op.kind, op.body, applied.postings, self.central_bank)
        except Rejected as r:
            result = Result(op.id, r.code, r.message, reports=_report_dicts(r.reports))
            self._file_reports(ws, op.id, None, at, r.reports)
            self._trace(ws, op, at, result, r.decision, reports=r.reports)
            return result
        reports = applied.decision.reports if applied.decision else ()
        self._file_reports(child, op.id, seq, at, reports)
        result = Result(op.id, ResultCode.ok, applied.message, seq, reports=_report_dicts(reports))
        if self.trace.journal_leaves:  # the leaf is derived from the journal row: the log keeps only its seq
            child.traces.append(seq)
        else:
            self._trace(child, op, at, result, applied.decision, applied, reports)
        if not direct:
            child.merge_into_parent()
        return result

    def _transfer_with_effects(
        self, ws: WorkingSet, op: Operation, at: int, decision: Decision, digest: bytes
    ) -> Result | None:
        """The rest of the general path for a transfer ledger/plain.py checked as far as the policy set, which
        allowed it with effects: what `_apply` and `_transfer` would still do (the decision's reshape, the built-in
        checks of the final postings, the journal, the filtered flows, the reports), in the same functions. None,
        with nothing changed, when a check refuses: the general path then rejects it, with the same decision."""
        b: Transfer = op.body  # type: ignore[assignment]
        tag, base, text = _moved(b)
        try:
            postings = self._reshape(ws, base, decision)
        except Rejected:
            return None
        if checks.check_postings(ws, postings, self.tier_limits) is not None:
            return None
        seq = self._journal(ws, op, at, postings, decision, digest)
        if ws.filters:
            ws.add_filtered(op.kind, b, postings, self.central_bank)
        reports = decision.reports
        self._file_reports(ws, op.id, seq, at, reports)
        ws.traces.append(seq)  # the plain path runs only where trace leaves are derived from the journal
        return Result(op.id, ResultCode.ok, f"transferred {text}", seq, reports=_report_dicts(reports))

    def _filters(self) -> tuple[tuple[str, tuple[tuple[str, str], ...], str | None], ...]:
        """The counterparty filters of the enabled set, parsed once per set, in key order: (key, what the
        counterparty must be, the tag the posting must have or None)."""
        keys = self.policy.filters
        found = self._parsed_filters.get(keys)
        if found is None:
            parsed = []
            for key in sorted(keys):
                pairs = parse_filter(key)
                tags = [v for n, v in pairs if n == "tag"]
                parsed.append((key, tuple(p for p in pairs if p[0] != "tag"), tags[0] if tags else None))
            found = self._parsed_filters[keys] = tuple(parsed)
        return found

    def _authorise(self, ws: WorkingSet, op: Operation, signer: Account) -> None:
        kind = op.kind
        if kind in CENTRAL_BANK_KINDS:
            if signer.handle != self.central_bank:
                raise Rejected(
                    ResultCode.signer_not_allowed, f"only the central bank may sign a {kind.value}"
                )
            return
        body = op.body
        if isinstance(body, Transfer | Hold) and op.signer != body.payer:
            raise Rejected(ResultCode.signer_not_allowed, f"a {kind.value} must be signed by its payer")
        if signer.status is not AccountStatus.active:
            code = (
                ResultCode.account_frozen
                if signer.status is AccountStatus.frozen
                else ResultCode.account_closed
            )
            raise Rejected(code, f"account {signer.handle} is {signer.status.value} and cannot sign")

    def _journal(
        self,
        ws: WorkingSet,
        op: Operation,
        at: int,
        postings: tuple[Posting, ...],
        decision: Decision | None,
        digest: bytes | None = None,
    ) -> int:
        legs = tuple(postings)  # a Posting is the (account, amount, tag) a leg is
        total = sum([leg[1] for leg in legs])
        if total != 0:  # protects money: never stripped by python -O
            raise InvariantViolation(f"operation {op.id}: postings sum to {total}, not 0")
        seq, prev = ws.head()
        seq += 1
        if digest is None:
            digest = fields_hash(canonical_bytes(self.ledger_id, op))
        decision_text = self._decision_json(decision)
        version = self.policy.version
        chained = (decision_text, version)
        tail = self._chain_tails.get(chained)
        if tail is None:
            if len(self._chain_tails) >= limits.decision_texts_kept_max:
                self._chain_tails.clear()
            tail = self._chain_tails[chained] = chain_tail(*chained)
        # decoded once: the row keeps its bytes, the link covers its text as stored (their hex), which
        # verification re-derives
        signature = bytearray.fromhex(op.signature)
        entry = entry_hash_of_legs(prev, seq, at, digest, signature.hex(), legs, chained, tail)
        body = op.body
        kind = KIND_BY_BODY[type(body)]
        central_bank = self.meta.central_bank
        columns = body_columns(body)
        payer, payee, amount, tag = columns
        implied = standard_legs(kind, payer, payee, amount, tag or "", central_bank, HOLDS_ACCOUNT)
        flags = FLAG_LINK_V2
        if implied != legs:
            flags |= FLAG_LEGS
            ws.legs.extend((seq, i, ws.account_id(a), ws.tag_id(t), x) for i, (a, x, t) in enumerate(legs))
        ws.entries.append(
            journal_row(
                seq,
                op,
                at,
                entry,
                flags,
                decision_text,
                version,
                ws.account_id,
                ws.tag_id,
                signature,
                columns,
            )
        )
        ws.operations[op.id] = (seq, digest)
        ws.add_legs(legs)
        for account, amount, _ in legs:
            if account == central_bank:
                if amount < 0:
                    ws.issued_delta -= amount
                else:
                    ws.redeemed_delta += amount
        ws.head_value = (seq, entry)
        return seq

    def _decision_json(self, decision: Decision | None) -> str | None:
        """The decision as stored with its operation, for explain: None when no rule decided anything (the
        journal keeps nothing for it). The postings a decision reshaped are not repeated: they are its legs."""
        if decision is None or not (
            decision.rules or decision.reasons or decision.reports or decision.detail
        ):
            return None
        policy_set_id = self.policy.policy_set_id
        parts = (decision.detail, decision.rules, decision.reasons, decision.reports, policy_set_id)
        cache = self._decision_texts
        found = cache.get(id(decision.detail))
        if found is None or not all(map(operator.is_, found[0], parts)):
            if len(cache) >= limits.decision_texts_kept_max:
                cache.clear()
            found = cache[id(decision.detail)] = (parts, _decision_text(decision, policy_set_id))
        return found[1]

    def _file_reports(self, ws: WorkingSet, op_id: str, seq: int | None, at: int, reports) -> None:
        for r in reports:
            ws.reports.append(ReportRow(seq, op_id, r.agency, r.reason, r.rule, at))

    def _trace(self, ws, op, at, result, decision, applied=None, reports=()) -> None:
        body = op.body
        payer = applied.payer if applied else getattr(body, "payer", None)
        payee = applied.payee if applied else getattr(body, "payee", None)
        record = TraceRecord(
            op_id=op.id,
            kind=op.kind.value,
            at=at,
            code=result.code.value,
            message=result.message,
            signer=op.signer,
            payer=payer,
            payee=payee,
            amount_tiyn=applied.amount_tiyn if applied else getattr(body, "amount_tiyn", None),
            tag=applied.tag if applied else getattr(body, "tag", None),
            memo=applied.memo if applied else getattr(body, "memo", None),
            seq=result.seq if result.code is ResultCode.ok else None,
            postings=applied.postings if applied else (),
            reports=tuple(reports),
            policy_set_id=decision.policy_set_id if decision else self.policy.policy_set_id,
            rules=decision.rules if decision else (),
            payer_account=ws.account(payer) if payer else None,
            payee_account=ws.account(payee) if payee else None,
        )
        ws.traces.append(self.trace.encode(record))

    # ---- policy --------------------------------------------------------------------------------------------

    def _decide(
        self,
        ws: WorkingSet,
        op: Operation,
        at: int,
        payer,
        payee,
        amount,
        tag,
        postings,
        accounts=(None, None),
        hold: HoldRecord | None = None,
    ) -> Decision:
        if type(self.policy) is AllowAll:  # built-in checks only: nothing to propose
            return _NO_POLICY_DECISION
        root = ws.root
        try:
            if root.decided is not None and root.decided[0] is op:  # asked already (ledger/plain.py)
                answer, root.decided = root.decided[1], None
                if isinstance(answer, Exception):
                    raise answer
                decision = answer
            else:
                decision = self.policy.decide(
                    Proposal(op, at, payer, payee, amount, tag, postings, *accounts, hold), ws
                )
        except Exception as exc:  # a failing rule denies: fail closed, and say why
            raise Rejected(ResultCode.policy_denied, f"policy error, denied: {exc}") from None
        if not decision.allowed:
            reasons = "; ".join(decision.reasons) or "denied by policy"
            raise Rejected(ResultCode.policy_denied, reasons, decision.reports, decision)
        return decision

    def _reshape(self, ws: WorkingSet, base: tuple[Posting, ...], decision: Decision) -> tuple[Posting, ...]:
        """A decision may redirect credits (splits, routes, tag changes) but never debit anyone more."""
        if decision.postings is None:
            return base
        new = tuple(decision.postings)
        debits_before = sorted([(a, t, x) for a, x, t in base if x < 0])
        debits_after = sorted([(a, t, x) for a, x, t in new if x < 0])
        if debits_before != debits_after or sum([p[1] for p in new]) != 0:
            raise Rejected(
                ResultCode.policy_denied,
                "policy error, denied: rules reshaped the payment without conserving it",
            )
        named = [p[0] for p in base]
        for p in new:  # an account a rule names that does not exist is the rule's mistake: name the rule
            if p.account not in named and ws.account(p.account) is None:
                raise Rejected(
                    ResultCode.policy_denied,
                    f"policy error, denied: {', '.join(decision.rules) or 'the rules'} send money to"
                    f" {p.account!r}, which has no account",
                )
        return new

    # ---- handlers ------------------------------------------------------------------------------------------

    def _need(self, ws: WorkingSet, handle: str, role: str) -> Account:
        account = ws.account(handle)
        if account is None:
            raise Rejected(ResultCode.unknown_account, f"no {role + ' ' if role else ''}account {handle!r}")
        return account

    def _open_account(self, ws: WorkingSet, op: Operation, at: int, verified: bool) -> _Applied:
        b: OpenAccount = op.body  # type: ignore[assignment]
        if ws.account(b.handle) is not None:
            raise Rejected(ResultCode.account_exists, f"account {b.handle} exists already")
        if b.account_kind in LEDGER_KINDS:
            raise Rejected(
                ResultCode.invalid_operation, f"a {b.account_kind.value} account is opened only by init"
            )
        if b.bank is not None:
            bank = self._need(ws, b.bank, "bank")
            if bank.kind is not AccountKind.bank:
                raise Rejected(ResultCode.invalid_operation, f"{b.bank} is a {bank.kind.value}, not a bank")
        elif b.account_kind in KINDS_SERVED_BY_BANK:
            raise Rejected(
                ResultCode.invalid_operation,
                f"a {b.account_kind.value} account needs the bank that serves it",
            )
        account = Account(b.handle, b.account_kind, b.public_key, b.tier, b.bank, b.attrs, opened_at=at)
        # Rules see the account as it would be opened, as both parties; a denial opens nothing.
        decision = self._decide(ws, op, at, b.handle, b.handle, None, "", (), (account, account))
        ws.accounts[b.handle] = account
        return _Applied(f"opened {b.account_kind.value} account {b.handle}", decision=decision)

    def _update_account(self, ws: WorkingSet, op: Operation, at: int, verified: bool) -> _Applied:
        b: UpdateAccount = op.body  # type: ignore[assignment]
        account = self._need(ws, b.handle, "")
        if account.status is AccountStatus.closed:
            raise Rejected(ResultCode.account_closed, f"account {b.handle} is closed")
        attrs = account.attrs_dict()
        for key, value in b.attrs:
            if value == "":
                attrs.pop(key, None)
            else:
                attrs[key] = value
        if len(attrs) > limits.attrs_count_max:
            raise Rejected(ResultCode.invalid_operation, f"at most {limits.attrs_count_max} attributes")
        tier = b.tier if b.tier is not None else account.tier
        ws.accounts[b.handle] = replace(account, tier=tier, attrs=tuple(sorted(attrs.items())))
        return _Applied(f"updated account {b.handle}")

    def _issue(self, ws: WorkingSet, op: Operation, at: int, verified: bool) -> _Applied:
        b: Issue = op.body  # type: ignore[assignment]
        payee = self._need(ws, b.payee, "payee")
        if payee.kind in LEDGER_KINDS:  # as a redeem by them is refused
            raise Rejected(ResultCode.invalid_operation, f"{b.payee} cannot be issued to")
        circulating = -ws.account_total(self.central_bank)
        if circulating + b.amount_tiyn > limits.supply_tiyn_max:
            raise Rejected(
                ResultCode.limit_exceeded,
                f"issuing {format_tiyn(b.amount_tiyn)} KZT would put {format_tiyn(circulating + b.amount_tiyn)} KZT"
                f" in circulation, over the ledger's limit of {format_tiyn(limits.supply_tiyn_max)} KZT",
            )
        tag = b.tag or ""
        if b.expires_on and not tag:
            raise Rejected(
                ResultCode.invalid_operation, "only tagged money can expire: give a tag with --expires"
            )
        if tag:
            known = ws.tag(tag)
            if known is None:
                if b.expires_on is not None and date_start(b.expires_on) <= at:
                    raise Rejected(ResultCode.tag_expired, f"{b.expires_on} is not in the future")
                ws.tags[tag] = TagRecord(tag, b.expires_on, at)
            else:
                if b.expires_on is not None and b.expires_on != known.expires_on:
                    raise Rejected(
                        ResultCode.tag_expiry_conflict,
                        f"tag {tag} expires on {known.expires_on or 'no date'}, not {b.expires_on}",
                    )
                if known.expires_on is not None and date_start(known.expires_on) <= at:
                    raise Rejected(ResultCode.tag_expired, f"tag {tag} expired on {known.expires_on}")
        base = (Posting(self.central_bank, -b.amount_tiyn, tag), Posting(b.payee, b.amount_tiyn, tag))
        decision = self._decide(ws, op, at, self.central_bank, b.payee, b.amount_tiyn, tag, base)
        return _Applied(
            f"issued {format_tiyn(b.amount_tiyn)} KZT{_tag_text(tag)} to {b.payee}",
            self._reshape(ws, base, decision),
            decision,
            payer=self.central_bank,
            payee=b.payee,
            amount_tiyn=b.amount_tiyn,
            tag=tag or None,
            memo=b.memo,
        )

    def _redeem(self, ws: WorkingSet, op: Operation, at: int, verified: bool) -> _Applied:
        b: Redeem = op.body  # type: ignore[assignment]
        payer = self._need(ws, b.payer, "payer")
        if payer.kind in LEDGER_KINDS:
            raise Rejected(ResultCode.invalid_operation, f"{b.payer} cannot redeem")
        tag = b.tag or ""
        base = (Posting(b.payer, -b.amount_tiyn, tag), Posting(self.central_bank, b.amount_tiyn, tag))
        decision = self._decide(ws, op, at, b.payer, self.central_bank, b.amount_tiyn, tag, base)
        return _Applied(
            f"redeemed {format_tiyn(b.amount_tiyn)} KZT{_tag_text(tag)} from {b.payer}",
            self._reshape(ws, base, decision),
            decision,
            payer=b.payer,
            payee=self.central_bank,
            amount_tiyn=b.amount_tiyn,
            tag=tag or None,
            memo=b.memo,
        )

    def _transfer(self, ws: WorkingSet, op: Operation, at: int, verified: bool) -> _Applied:
        b: Transfer | Hold = op.body  # type: ignore[assignment]
        payer = self._need(ws, b.payer, "payer")
        payee = self._need(ws, b.payee, "payee")
        if b.payer == b.payee:
            raise Rejected(ResultCode.same_account, "payer and payee are the same account")
        if payee.kind in LEDGER_KINDS:
            raise Rejected(
                ResultCode.invalid_operation, f"pay the central bank with redeem, not a {op.kind.value}"
            )
        tag, base, text = _moved(b)
        decision = self._decide(ws, op, at, b.payer, b.payee, b.amount_tiyn, tag, base, (payer, payee))
        timeout_s = b.timeout_s if isinstance(b, Hold) else decision.hold_timeout_s
        releaser = (b.releaser if isinstance(b, Hold) else None) or decision.hold_releaser or b.payer
        on_timeout = (
            b.on_timeout if isinstance(b, Hold) else decision.hold_on_timeout
        ) or HOLD_ON_TIMEOUT_DEFAULT
        if timeout_s is None:
            return _Applied(
                f"transferred {text}", self._reshape(ws, base, decision), decision, frozenset(),
                b.payer, b.payee, b.amount_tiyn, tag or None, b.memo,
            )  # fmt: skip
        if decision.postings is not None:
            raise Rejected(
                ResultCode.policy_denied, "policy error, denied: a payment cannot be both held and split"
            )
        self._need(ws, releaser, "releaser")
        hold = HoldRecord(
            op.id, b.payer, b.payee, b.amount_tiyn, tag, releaser, at + timeout_s, on_timeout=on_timeout
        )
        postings = (Posting(b.payer, -b.amount_tiyn, tag), Posting(HOLDS_ACCOUNT, b.amount_tiyn, tag))
        return _Applied(
            f"held {text} until posted by {releaser} ({_timeout_text(timeout_s, on_timeout)})",
            postings, decision, frozenset(), b.payer, b.payee, b.amount_tiyn, tag or None, b.memo, hold,
        )  # fmt: skip

    def _post_or_void(self, ws: WorkingSet, op: Operation, at: int, verified: bool) -> _Applied:
        b: Post | Void = op.body  # type: ignore[assignment]
        hold = ws.hold(b.hold_id)
        if hold is None:
            raise Rejected(ResultCode.hold_not_found, f"no hold {b.hold_id}")
        if hold.status != "pending":
            raise Rejected(ResultCode.hold_not_pending, f"hold {b.hold_id} is {hold.status} already")
        allowed = {hold.releaser} if isinstance(b, Post) else {hold.releaser, hold.payee}
        if op.signer not in allowed:
            raise Rejected(
                ResultCode.signer_not_allowed,
                f"only {' or '.join(sorted(allowed))} may {op.kind.value} this hold",
            )
        if at >= hold.deadline:
            raise Rejected(
                ResultCode.hold_not_pending,
                f"hold {b.hold_id} timed out; a sweep "
                + ("posts it to the payee" if hold.on_timeout == "post" else "returns it to the payer"),
            )
        amount = hold.amount_tiyn if isinstance(b, Void) or b.amount_tiyn is None else b.amount_tiyn
        if amount > hold.amount_tiyn:
            raise Rejected(
                ResultCode.hold_amount_exceeded,
                f"cannot post {format_tiyn(amount)} KZT of a hold of {format_tiyn(hold.amount_tiyn)} KZT",
            )
        if isinstance(b, Void):
            postings = (Posting(HOLDS_ACCOUNT, -amount, hold.tag), Posting(hold.payer, amount, hold.tag))
            # Rules see the hold's parties and the amount that goes back; a denial leaves the hold pending.
            decision = self._decide(ws, op, at, hold.payer, hold.payee, amount, hold.tag, postings, hold=hold)
            ws.holds[hold.hold_id] = replace(hold, status="voided")
            return _Applied(
                f"voided hold {hold.hold_id}: {format_tiyn(amount)} KZT back to {hold.payer}",
                postings, decision, frozenset({hold.payer}), HOLDS_ACCOUNT, hold.payer, amount, hold.tag or None,
            )  # fmt: skip
        legs = [
            Posting(HOLDS_ACCOUNT, -hold.amount_tiyn, hold.tag),
            Posting(hold.payee, amount, hold.tag),
        ]
        rest = hold.amount_tiyn - amount
        if rest:
            legs.append(Posting(hold.payer, rest, hold.tag))
        postings = tuple(legs)
        decision = self._decide(ws, op, at, hold.payer, hold.payee, amount, hold.tag, postings, hold=hold)
        ws.holds[hold.hold_id] = replace(hold, status="posted")
        return _Applied(
            f"posted {format_tiyn(amount)} KZT of hold {hold.hold_id} to {hold.payee}"
            + (f", {format_tiyn(rest)} KZT back to {hold.payer}" if rest else ""),
            postings, decision, frozenset({hold.payer}), HOLDS_ACCOUNT, hold.payee, amount, hold.tag or None,
        )  # fmt: skip

    def _sweep(self, ws: WorkingSet, op: Operation, at: int, verified: bool) -> _Applied:
        b: Sweep = op.body  # type: ignore[assignment]
        postings: list[Posting] = []
        exempt: set[str] = set()
        holds = ws.holds_due(b.as_of)
        posted = 0
        waiting: list[str] = []  # holds that cannot be posted to their payee now: pending, for the next sweep
        incoming: dict[str, int] = {}
        for hold in holds:
            # A hold that posts at its timeout (a provisional seizure) pays its payee, whatever the payee's
            # status (the money was committed when it was held), unless the payee is closed or the credit would
            # put it over its tier's holding limit: then it waits for a later sweep rather than fail this one.
            # A hold that returns to its payer does so whatever the payer's status (its own money), but not past
            # its holding limit (it may have received up to it meanwhile): it waits too, so that one account
            # cannot fail every other hold's sweep.
            to = hold.payee if hold.on_timeout == "post" else hold.payer
            if not self._can_receive(ws, to, incoming.get(to, 0) + hold.amount_tiyn, to == hold.payer):
                waiting.append(hold.hold_id)
                continue
            incoming[to] = incoming.get(to, 0) + hold.amount_tiyn
            ws.holds[hold.hold_id] = replace(hold, status="posted" if to == hold.payee else "expired")
            postings += [
                Posting(HOLDS_ACCOUNT, -hold.amount_tiyn, hold.tag),
                Posting(to, hold.amount_tiyn, hold.tag),
            ]
            exempt.add(to)
            posted += to == hold.payee
        as_of_date = dt.datetime.fromtimestamp(b.as_of, tz=dt.UTC).date().isoformat()
        returned = 0
        tags = ws.tags_expiring(as_of_date)
        for tag in tags:
            for holder, balance in ws.tag_holders(tag.tag).items():
                if holder in (self.central_bank, HOLDS_ACCOUNT) or balance <= 0:
                    continue  # held money of an expired tag goes back to its payer first, at its own timeout
                postings += [Posting(holder, -balance, tag.tag), Posting(self.central_bank, balance, tag.tag)]
                exempt.add(holder)
                returned += balance
        # Rules on sweep see its time only (no parties, no amount); a denial sweeps nothing.
        decision = self._decide(ws, op, at, None, None, None, "", tuple(postings))
        return _Applied(
            f"sweep as of {as_of_date}: {len(holds) - len(waiting)} holds timed out"
            + (f" ({posted} posted to their payees)" if posted else "")
            + (
                f", {len(waiting)} wait for an account that cannot receive them now ({', '.join(waiting[:3])}"
                f"{', ...' if len(waiting) > 3 else ''})"
                if waiting
                else ""
            )
            + f", {format_tiyn(returned)} KZT of {len(tags)} expired tags returned to {self.central_bank}",
            tuple(postings),
            decision,
            frozenset(exempt),
        )

    def _can_receive(self, ws: WorkingSet, handle: str, amount: int, returned: bool = False) -> bool:
        """Whether `handle` may be credited `amount` more by a sweep: open (unless the money is `returned` to its
        payer), and within its tier's holding limit."""
        account = ws.account(handle)
        if account is None or (account.status is AccountStatus.closed and not returned):
            return False
        if account.tier is None:
            return True
        limit = self.tier_limits.get(account.tier, limits.amount_tiyn_max)
        return ws.account_total(handle) + amount <= limit

    def _status(self, ws: WorkingSet, op: Operation, at: int, verified: bool) -> _Applied:
        b: Freeze | Unfreeze | Close = op.body  # type: ignore[assignment]
        account = self._need(ws, b.account, "")
        if account.kind in LEDGER_KINDS:
            raise Rejected(ResultCode.invalid_operation, f"{b.account} cannot be frozen or closed")
        if account.status is AccountStatus.closed:
            raise Rejected(ResultCode.account_closed, f"account {b.account} is closed")
        if isinstance(b, Close):
            left = ws.account_total(b.account)
            if left:
                raise Rejected(
                    ResultCode.account_not_empty, f"account {b.account} still holds {format_tiyn(left)} KZT"
                )
            # held money returns to its payer when voided or timed out: a closed account could never move it on
            held = ws.pending_holds(b.account)
            if held:
                names = ", ".join(h.hold_id for h in held[:3]) + (", ..." if len(held) > 3 else "")
                raise Rejected(
                    ResultCode.account_not_empty,
                    f"account {b.account} still has {format_tiyn(sum(h.amount_tiyn for h in held))} KZT in"
                    f" {len(held)} pending hold{'s' if len(held) > 1 else ''} ({names}): post or void"
                    f" {'them' if len(held) > 1 else 'it'} first",
                )
            status = AccountStatus.closed
        else:
            status = AccountStatus.frozen if isinstance(b, Freeze) else AccountStatus.active
        decision = None
        if isinstance(b, Freeze):  # rules see the account as both parties, and the reason as the memo
            decision = self._decide(ws, op, at, b.account, b.account, None, "", (), (account, account))
        ws.accounts[b.account] = replace(account, status=status)
        reason = getattr(b, "reason", None)
        return _Applied(
            f"account {b.account} is {status.value}" + (f": {reason}" if reason else ""), decision=decision
        )

    def _seize(self, ws: WorkingSet, op: Operation, at: int, verified: bool) -> _Applied:
        b: Seize = op.body  # type: ignore[assignment]
        payer = self._need(ws, b.payer, "payer")
        payee = self._need(ws, b.payee, "payee")
        # From the central bank a seizure would issue past the issue's checks (the supply limit), to it redeem;
        # from or to @holds it would move held money no hold accounts for.
        for party in (payer, payee):
            if party.kind in LEDGER_KINDS:
                raise Rejected(ResultCode.invalid_operation, f"{party.handle} cannot be seized from or to")
        if b.payer == b.payee:
            raise Rejected(ResultCode.same_account, "payer and payee are the same account")
        if not b.order:
            raise Rejected(ResultCode.invalid_operation, "a seizure names the court order that orders it")
        tag, postings, moved = _moved(b)
        decision = self._decide(ws, op, at, b.payer, b.payee, b.amount_tiyn, tag, postings)
        text = f"{moved} under order {b.order}"
        if decision.hold_timeout_s is None:
            return _Applied(
                f"seized {text}",
                postings, decision, frozenset({b.payer}), b.payer, b.payee, b.amount_tiyn, tag or None, b.order,
            )  # fmt: skip
        # A provisional seizure: the money is held until the releaser (the court) posts or voids it, and at the
        # timeout the sweep does what the rule said (a seizure that becomes final says `on timeout post`).
        releaser = decision.hold_releaser or op.signer
        self._need(ws, releaser, "releaser")
        on_timeout = decision.hold_on_timeout or HOLD_ON_TIMEOUT_DEFAULT
        hold = HoldRecord(op.id, b.payer, b.payee, b.amount_tiyn, tag, releaser, at + decision.hold_timeout_s,
                          on_timeout=on_timeout)  # fmt: skip
        held = (Posting(b.payer, -b.amount_tiyn, tag), Posting(HOLDS_ACCOUNT, b.amount_tiyn, tag))
        return _Applied(
            f"provisionally seized {text}, held until posted by {releaser}"
            f" ({_timeout_text(decision.hold_timeout_s, on_timeout)})",
            held, decision, frozenset({b.payer}), b.payer, b.payee, b.amount_tiyn, tag or None, b.order, hold,
        )  # fmt: skip

    def _add_witness(self, ws: WorkingSet, op: Operation, at: int, verified: bool) -> _Applied:
        b: AddWitness = op.body  # type: ignore[assignment]
        known = ws.witness_registry().get(b.name)
        if known is not None:
            raise Rejected(
                ResultCode.invalid_operation,
                f"witness {b.name} is registered already"
                + ("" if known == b.public_key else " with another key"),
            )
        ws.witnesses[b.name] = b.public_key
        return _Applied(f"registered witness {b.name}")

    def _batch(self, ws: WorkingSet, op: Operation, at: int, verified: bool) -> _Applied:
        b: Batch = op.body  # type: ignore[assignment]
        # Each inner operation is journaled under its own id next to the batch's: one id for both would meet
        # the journal's unique index at the write and fail the whole chunk, not this operation alone.
        for i, inner in enumerate(b.operations):
            if inner.id == op.id:
                raise Rejected(
                    ResultCode.invalid_operation,
                    f"operation {i} has the batch's own id {op.id}: give it another",
                )
        for i, inner in enumerate(b.operations):
            result = self._apply(ws, inner, at, verified)
            if result.code is not ResultCode.ok:
                raise Rejected(
                    ResultCode.batch_failed,
                    f"operation {i} ({inner.id}) failed with {result.code.value}: {result.message}; nothing applied",
                )
        return _Applied(f"batch of {len(b.operations)} operations applied")


_HANDLERS: dict[OpKind, Callable[[Ledger, WorkingSet, Operation, int, bool], _Applied]] = {
    OpKind.open_account: Ledger._open_account,
    OpKind.update_account: Ledger._update_account,
    OpKind.issue: Ledger._issue,
    OpKind.redeem: Ledger._redeem,
    OpKind.transfer: Ledger._transfer,
    OpKind.hold: Ledger._transfer,
    OpKind.post: Ledger._post_or_void,
    OpKind.void: Ledger._post_or_void,
    OpKind.sweep: Ledger._sweep,
    OpKind.batch: Ledger._batch,
    OpKind.freeze: Ledger._status,
    OpKind.unfreeze: Ledger._status,
    OpKind.close: Ledger._status,
    OpKind.seize: Ledger._seize,
    OpKind.add_witness: Ledger._add_witness,
}
assert set(_HANDLERS) == set(OpKind)


# A chunk the committer holds: (the end of its operations, their results, the ids it applied, the journal head
# it leaves, None if it journals nothing, the journal's seq and the trace log's size once it is written, and the
# ledger time it applied at)
_Held = tuple[int, list[Result], dict[str, tuple[int, bytes]], tuple[int, bytes] | None, tuple[int, int], int]


def _read_back(change: ChangeSet) -> bool:
    """Whether a chunk wrote what a later chunk may read from the store rather than from the ledger's state:
    accounts, tags, holds, legs, reports, settings, supply. Balances, flows, journal rows, trace leaves and the
    head are the state's (or `pending_ops`') to answer."""
    return bool(
        change.accounts
        or change.tag_names
        or change.holds
        or change.tags
        or change.legs
        or change.reports
        or change.settings is not None
        or change.activity_reset
        or change.filters_reset
        or change.filter_flows
        or change.issued_delta
        or change.redeemed_delta
    )


def _wrote(store: Store, chunk: _Held, found: tuple[int, bytes]) -> bool:
    """Whether the store's journal head `found` is the one a chunk the committer held leaves. A chunk whose rows
    the store linked knows only its seq: it is the chunk exactly when its last operation is the one the store
    journaled there, with the same fields."""
    head = chunk[3]
    if head is None or head[0] != found[0]:
        return False
    if head[1] is not None:
        return head[1] == found[1]
    op_id, (seq, digest) = max(chunk[2].items(), key=lambda item: item[1][0])
    stored = store.operation(op_id)
    return seq == found[0] and stored is not None and stored.seq == seq and stored.fields_hash == digest


def _settle(committer: Committer) -> None:
    """Take every answer still owed (each an error after the first failure), so the next chunk starts from a
    committer that holds nothing and a store that no longer moves."""
    while committer.waiting:
        try:
            committer.committed()
        except CommitterStopped:
            return
        except BaseException:  # noqa: S112  (the failure is the caller's to report; these follow from it)
            continue
    committer.resume()


@contextmanager
def _cycle_collection_paused() -> Iterator[None]:
    """Pause Python's cycle collector while chunks apply. The loop allocates rows, results and keys that
    reference counting frees (none forms a cycle), yet every few thousand of them trigger a collection that
    walks the long-lived heap (the caller's operations, this ledger's cached accounts and balances): a third
    of the apply time at 100,000 operations. Whoever paused it resumes it, so nested or concurrent callers
    leave the collector as they found it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _touched(ops: Sequence[Operation]) -> tuple[set[str], set[str]]:
    """The accounts and operation ids a chunk will read first, for one prefetch."""
    bodies = list(map(_BODY, ops))
    if all(type(b) is Transfer for b in bodies):  # a busy chunk: the fields in C, without a loop in Python
        handles = set(map(_SIGNER, ops))
        handles.update(map(_PAYER, bodies))
        handles.update(map(_PAYEE, bodies))
        return handles, set(map(_ID, ops))
    handles = set()
    op_ids: set[str] = set()
    todo = list(ops)
    while todo:
        op = todo.pop()
        op_ids.add(op.id)
        handles.add(op.signer)
        body = op.body
        if type(body) is Transfer:  # most of a busy chunk: its fields without getattr
            handles.add(body.payer)
            handles.add(body.payee)
            continue
        if isinstance(body, Batch):
            todo.extend(body.operations)
            continue
        for name in ("payer", "payee"):
            handle = getattr(body, name, None)
            if handle is not None:
                handles.add(handle)
    return handles, op_ids


_BODY, _SIGNER, _ID = operator.attrgetter("body"), operator.attrgetter("signer"), operator.attrgetter("id")
_PAYER, _PAYEE = operator.attrgetter("payer"), operator.attrgetter("payee")


def _window_requests(
    ws: WorkingSet, ops: Sequence[Operation], by_needs: tuple, at: int
) -> dict[tuple[str, int, str | None], set[str]]:
    """The stored history windows a policy set will read for a chunk's payments: (direction, since, filter key
    or None) -> handles. `by_needs` (see _windows_by_needs) holds the set's untagged or filtered reads, known
    before it runs, by what a payment needs for a rule reading them to match; every payment of a chunk has the
    chunk's time. The accounts were prefetched, and payments alike in what rules can test share one answer."""
    requests: dict[tuple[str, int, str | None], set[str]] = {}
    starts: dict[int | str, int] = {}
    alike: dict[tuple, list[tuple[bool, set[str]]]] = {}
    account = ws.account
    for op in ops:
        body = op.body
        if not isinstance(body, Transfer | Hold):
            continue
        payer, payee = account(body.payer), account(body.payee)
        sig = (
            op.kind,
            body.tag,
            payer and payer.kind,
            payer and payer.tier,
            payee and payee.kind,
            payee and payee.tier,
        )
        reads = alike.get(sig)
        if reads is None:
            facts = _payment_facts(op.kind.value, body.tag, payer, payee)
            reads = alike[sig] = []
            for needs, windows in by_needs:
                if all(facts.get(name) in values for name, values in needs):
                    for party, direction, span, key in windows:
                        since = starts.get(span)
                        if since is None:
                            since = starts[span] = window_start(at, span)
                        reads.append((party == "payer", requests.setdefault((direction, since, key), set())))
        for of_payer, handles in reads:
            handles.add(body.payer if of_payer else body.payee)
    return requests


def _timeout_text(timeout_s: int, on_timeout: str) -> str:
    then = "posted to the payee" if on_timeout == "post" else "returned to the payer"
    return f"times out in {duration(timeout_s)}, then {then}"


def _windows_by_needs(windows: frozenset) -> tuple:
    """A set's windows (party, direction, span, filter key, needs) grouped by needs: ((needs, reads), ...)."""
    grouped: dict[tuple, set[tuple]] = {}
    for party, direction, span, key, needs in windows:
        grouped.setdefault(needs, set()).add((party, direction, span, key))
    return tuple((needs, tuple(sorted(reads, key=str))) for needs, reads in sorted(grouped.items(), key=str))


def _payment_facts(
    kind: str, tag: str | None, payer: Account | None, payee: Account | None
) -> dict[str, str]:
    """What a rule's guards can test of a payment before it is decided, as the planner writes the values."""
    facts = {"op": kind, "tag": tag or ""}
    for party, account in (("payer", payer), ("payee", payee)):
        if account is not None:
            facts[f"{party}.kind"] = str(account.kind)
            facts[f"{party}.tier"] = str(-1 if account.tier is None else account.tier)
    return facts


def _moved(b: Transfer | Hold | Seize) -> tuple[str, tuple[Posting, Posting], str]:
    """A move from payer to payee: its tag ("" untagged), the two postings its body implies, and how a message
    says it ("12.00 KZT [tag] from a to b"), the same on every path that applies one."""
    tag = b.tag or ""
    postings = (Posting(b.payer, -b.amount_tiyn, tag), Posting(b.payee, b.amount_tiyn, tag))
    return tag, postings, f"{format_tiyn(b.amount_tiyn)} KZT{_tag_text(tag)} from {b.payer} to {b.payee}"


def _tag_text(tag: str) -> str:
    return f" [{tag}]" if tag else ""


def _report_dicts(reports) -> tuple[dict, ...]:
    return tuple({"agency": r.agency, "reason": r.reason, "rule": r.rule} for r in reports)


def _decision_text(decision: Decision, policy_set_id: str | None) -> str:
    return json.dumps(
        {
            "policy_set_id": decision.policy_set_id or policy_set_id,
            "rules": list(decision.rules),
            "reasons": list(decision.reasons),
            "reports": list(_report_dicts(decision.reports)),
            "detail": decision.detail,
        },
        sort_keys=True,
        default=str,
    )
