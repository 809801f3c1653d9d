"""The storage interface. Narrow on purpose: a store reads rows and writes one ChangeSet atomically.

Every store (SQLite embedded, PostgreSQL server) implements exactly this; the ledger service never writes SQL.
Keys are chosen so that a distributed engine can shard by account handle (see docs/scaling.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from ..core.hooks import EncodedTrace
from ..core.records import Account, HoldRecord, Operation, TagRecord

SCHEMA_VERSION = 7
# Schema version 4 (both stores): what a sweep does with a hold at its timeout.
HOLDS_ON_TIMEOUT_COLUMN = "ALTER TABLE holds ADD COLUMN on_timeout TEXT NOT NULL DEFAULT 'void'"
GENESIS_HASH = bytes(32)


@dataclass(frozen=True, slots=True)
class LedgerMeta:
    ledger_id: str  # 32 hex digits; domain-separates signatures
    name: str
    central_bank: str  # handle of the central bank account
    created_at: int
    privacy_mode: str = "transparent"
    settings: dict = field(default_factory=dict)  # tier limits and other per-ledger settings, JSON
    settings_epoch: int = 0  # moved on by every settings change (StoreTx.settings_epoch)


@dataclass(frozen=True, slots=True)
class StoredOperation:
    """An applied operation as read back from its compact journal row (store/entries.py): every field but
    `seq`, `op_id`, `at`, `decision` and `entry_hash` (the row's chain link) is re-derived from the row."""

    seq: int
    op_id: str
    kind: str
    signer: str
    document: str  # canonical JSON document with signature: what was signed, verbatim
    fields_hash: bytes  # sha256 of the canonical bytes: the same id with other fields is detected by it
    at: int
    message: str
    decision: str  # JSON: rules, reasons, reports, policy_set_id
    prev_hash: bytes
    entry_hash: bytes  # hash chain over (prev_hash, seq, at, fields_hash, signature, postings)
    operation: Operation  # the signed operation the row keeps (what `document` says), decoded
    # what a version-2 link also covers: the stored decision (None when none) and the policy set's version;
    # None for a row whose link is version 1
    chained: tuple[str | None, int | None] | None = None


class BucketRow(NamedTuple):
    """A stored bucket: its balance and its running flows (totals since the account opened, never decreasing),
    and the last minute (ledger time // 60) in which it moved. History windows subtract running totals.
    A tuple: the apply loop makes one per bucket a chunk moved."""

    balance_tiyn: int
    out_tiyn: int = 0
    out_count: int = 0
    in_tiyn: int = 0
    in_count: int = 0
    minute: int = -1


class JournalPosting(NamedTuple):  # a tuple: the apply loop makes two per transfer a policy set reads
    seq: int  # the operation's journal seq
    idx: int  # position within the operation
    account: str
    tag: str
    amount_tiyn: int
    at: int


@dataclass(frozen=True, slots=True)
class ReportRow:
    seq: int
    op_id: str
    agency: str
    reason: str
    rule: str
    at: int


@dataclass
class ChangeSet:
    """Everything one unit of work changes, written by the store in one database transaction. Rows are tuples
    in the column order of store/entries.py (journal, legs) and of the statements below."""

    accounts: list[tuple[int, Account]] = field(default_factory=list)  # (id, account) upserts, whole rows
    tag_names: list[tuple[int, str]] = field(default_factory=list)  # new (id, tag)
    # (delta, out_tiyn, out_count, in_tiyn, in_count, minute, account id, tag id): existing rows add, new rows
    # (`new_buckets`) are inserted with these values.
    buckets: list[tuple[int, int, int, int, int, int, int, int]] = field(default_factory=list)
    new_buckets: list[tuple[int, int, int, int, int, int, int, int]] = field(default_factory=list)
    # (account id, tag id, minute, out_tiyn, out_count, in_tiyn, in_count): running flows before a minute
    activity: list[tuple[int, int, int, int, int, int, int]] = field(default_factory=list)
    # The same as `buckets` rows, each added to the bucket's row or inserted as its first (minute: the later of
    # the two), from a ledger that knows balances but keeps no stored rows: it keeps no activity, and its store
    # `takes_bucket_upserts`.
    bucket_upserts: list[tuple[int, int, int, int, int, int, int, int]] = field(default_factory=list)
    activity_reset: bool = (
        False  # every activity row is deleted first (a rebuild from the journal, or a drop)
    )
    # No bucket rows at all: every bucket moves by the two legs of the `plain_entries` rows alone (payer -amount,
    # payee +amount, untagged; `entries` is empty), which the store applies row by row as it writes them, from a
    # ledger that keeps no stored rows (as for `bucket_upserts`). What the ledger would otherwise add up per
    # bucket and hand over, the store's statements do on the rows it has.
    legs_from_rows: bool = False
    entries: list[tuple] = field(default_factory=list)  # journal rows
    plain_entries: list[tuple] = field(default_factory=list)  # journal rows in PLAIN_JOURNAL_COLUMNS
    legs: list[tuple[int, int, int, int, int]] = field(
        default_factory=list
    )  # (seq, idx, account, tag, amount)
    holds: dict[str, HoldRecord] = field(default_factory=dict)  # upserts
    tags: dict[str, TagRecord] = field(default_factory=dict)  # inserts
    issued_delta: int = 0
    redeemed_delta: int = 0
    head: tuple[int, bytes] | None = None  # the new (seq, entry_hash) of the journal
    # new leaves in order; an int is the seq of a journal row written with them whose leaf is derived from it
    traces: list[EncodedTrace | int] = field(default_factory=list)
    reports: list[ReportRow] = field(default_factory=list)
    # Counterparty-filtered running flows (core/windows.py), kept like a bucket's: (out_tiyn, out_count,
    # in_tiyn, in_count, minute, account id, filter key) added to the row of (account, filter), or inserted ...
    filter_flows: list[tuple[int, int, int, int, int, int, str]] = field(default_factory=list)
    # ... and (account id, filter key, minute, out_tiyn, out_count, in_tiyn, in_count): flows before a minute
    filter_activity: list[tuple[int, str, int, int, int, int, int]] = field(default_factory=list)
    filters_reset: bool = False  # every filtered row is deleted first (a rebuild from the journal)
    settings: dict | None = None  # the ledger's settings, replaced whole (with a rebuild: the filters kept)
    # Journal rows of plain transfers handed to a committer without their chain links: each row's link column
    # holds its own part of its link (core/chain.two_leg_suffix), and `head` is (last seq, None). The store
    # hashes each on the link before it as it writes (store/entries.link_deferred): only it knows its head.
    # Only a SQLite store's committer takes such a set (ledger/service.py, pipelined).
    links_deferred: bool = False

    def is_empty(self) -> bool:
        return not (self.entries or self.plain_entries or self.traces or self.accounts)


class StoreTx(Protocol):
    """Reads inside one transaction, and the write that ends it."""

    # Whether `write` takes `ChangeSet.bucket_upserts` and `legs_from_rows`: buckets moved by the store's own
    # statements, from a ledger that knows the balances but keeps no stored rows (SQLite; PostgreSQL refuses).
    takes_bucket_upserts: bool

    def meta(self) -> LedgerMeta: ...

    def account(self, handle: str) -> Account | None: ...

    def bucket(self, handle: str, tag: str) -> int: ...

    def buckets(self, handle: str) -> dict[str, int]: ...

    def operation(self, op_id: str) -> StoredOperation | None: ...

    def hold(self, hold_id: str) -> HoldRecord | None: ...

    def holds_due(self, as_of: int) -> list[HoldRecord]: ...

    def pending_holds(self, payer: str) -> list[HoldRecord]:
        """The pending holds of money `payer` paid in (it returns there if voided or timed out)."""
        ...

    def tag(self, tag: str) -> TagRecord | None: ...

    def tags_expiring(self, as_of_date: str) -> list[TagRecord]: ...

    def tag_holders(self, tag: str) -> dict[str, int]: ...

    def head(self) -> tuple[int, bytes]: ...

    def trace_size(self) -> int:
        """How many leaves the trace log holds (the index of its last)."""
        ...

    def settings_epoch(self) -> int:
        """A number every change of the ledger's settings (`set_setting`) moves on; 0 before the first. A writer
        compares it with the one it loaded its policy set and limits at."""
        ...

    def window(
        self, handle: str, direction: str, since: int, tag: str | None = None, counterparty: str | None = None
    ) -> tuple[int, int]:
        """(sum, count) of the account's outgoing or incoming postings from the start of the minute `since` falls
        in (every bucket, or the one `tag`; or, given `counterparty`, the filtered aggregate of that key)."""
        ...

    def windows(
        self,
        accounts: dict[int, str],
        direction: str,
        sinces: tuple[int, ...],
        counterparty: str | None = None,
    ) -> dict[tuple[str, int], tuple[int, int]]:
        """Untagged (or one filtered aggregate's) windows of many accounts (id -> handle) and start times at
        once, keyed (handle, since); absent where there were no postings."""
        ...

    def filter_rows(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], BucketRow]:
        """The stored filtered flows of these (handle, filter key) pairs (balance 0), where there are any."""
        ...

    def account_ids(self, handles: set[str]) -> dict[str, int]: ...

    def tag_ids(self) -> dict[str, int]: ...

    def next_ids(self) -> tuple[int, int]:
        """The next free account id and tag id."""
        ...

    def bucket_rows(self, handles: set[str]) -> dict[tuple[str, str], BucketRow]:
        """Every stored bucket of these accounts, with its running flows."""
        ...

    def entry_rows(self, op_ids: set[str]) -> list[tuple]:
        """The journal rows of those of `op_ids` that were applied."""
        ...

    def stored_operations(self, rows: list[tuple]) -> dict[str, StoredOperation]: ...

    def write(self, changes: ChangeSet) -> None: ...


class Committer(Protocol):
    """Group commit off the apply loop (store/committer.py): change sets written in order, each in its own
    transaction, by another process, while the ledger works out the next from read transactions."""

    waiting: int  # submitted and not yet answered

    def reading(self) -> AbstractContextManager[StoreTx]:
        """A read-only transaction: one state of the ledger, without the write lock the committer needs."""
        ...

    def submit(self, change: ChangeSet, expected: tuple[tuple[int, bytes | None], int]) -> None:
        """Queue `change`, written only if the store's (journal head, settings epoch) is still `expected`. A
        head (seq, None) is the one the committer's own last write left, at that seq (its link the store made)."""
        ...

    def committed(self) -> tuple[int, bytes]:
        """Wait for the oldest submitted change set: return the journal head it left once committed, or raise
        what writing it raised (WriteConflict when the store moved on; CommitterStopped when the process ended
        unasked)."""
        ...

    def answered(self) -> bool:
        """Whether the oldest change set's answer is in already (`committed` would not wait)."""
        ...

    def resume(self) -> None:
        """After a failure (every change set behind it is refused with it), once every answer is taken: write
        what is submitted from now on."""
        ...


class Store(Protocol):
    url: str

    def initialise(self, meta: LedgerMeta) -> None:
        """Create the schema and the ledger's meta row; StoreError if this database already holds a ledger."""
        ...

    def transaction(self, optimistic: bool = False) -> AbstractContextManager[StoreTx]:
        """A serialisable read-write unit. Raises WriteConflict if a concurrent writer got in the way; with
        `optimistic`, the store may defer its write lock to the write and raise WriteConflict there instead."""
        ...

    def meta(self) -> LedgerMeta: ...

    def set_setting(self, key: str, value: object) -> None:
        """Change one per-ledger setting (tier limits, the enabled policy set, ...) atomically."""
        ...

    def snapshot(self) -> AbstractContextManager[None]:
        """Reads inside see one state of the ledger, whatever concurrent writers commit meanwhile."""
        ...

    def account(self, handle: str) -> Account | None: ...

    def head(self) -> tuple[int, bytes]: ...

    def trace_size(self) -> int:
        """How many leaves the trace log holds (the index of its last)."""
        ...

    def accounts(self) -> list[Account]: ...

    def balances(self, handle: str | None = None) -> dict[tuple[str, str], int]: ...

    def supply(self) -> tuple[int, int]:
        """(issued_tiyn, redeemed_tiyn)."""
        ...

    def bucket_flows(self) -> dict[tuple[str, str], BucketRow]:
        """Every stored bucket with its running flows, zero balances included."""
        ...

    def activity(self) -> dict[tuple[str, str, int], tuple[int, int, int, int]]:
        """Every stored activity snapshot: (handle, tag, minute) -> (out, out count, in, in count) before it."""
        ...

    def filter_flows(self) -> dict[tuple[str, str], BucketRow]:
        """Every stored counterparty-filtered running flow: (handle, filter key) -> its row (balance 0)."""
        ...

    def filter_activity(self) -> dict[tuple[str, str, int], tuple[int, int, int, int]]:
        """Every stored filtered snapshot: (handle, filter key, minute) -> flows before it."""
        ...

    def rebuild_window_filters(
        self, keys: frozenset[str], settings: dict | None = None, activity: bool | None = None
    ) -> bool:
        """Keep the filtered flows of exactly `keys` from now on, and the activity snapshots when `activity`
        (None: as they are), built from the journal (store/filters.py), and change `settings` in the same
        transaction; False when those were kept already."""
        ...

    def journal(self, after_seq: int = 0) -> Iterator[tuple[StoredOperation, list[JournalPosting]]]: ...

    def history(self, handle: str, limit: int) -> list[tuple[StoredOperation, JournalPosting]]: ...

    def operation(self, op_id: str) -> StoredOperation | None: ...

    def hold(self, hold_id: str) -> HoldRecord | None: ...

    def holds(self, status: str | None = None) -> list[HoldRecord]: ...

    def journaled_public_key(self, handle: str) -> str | None:
        """The public key the journal opened `handle` with (what signatures are checked against), or None."""
        ...

    def witness_registrations(self) -> dict[str, str]:
        """Registered witnesses (name -> public key hex), derived from the journal's add_witness operations."""
        ...

    def tags(self) -> list[TagRecord]:
        """Every tag's record (its expiry, fixed by its first issuance)."""
        ...

    def traces(self, after: int = 0) -> Iterator[tuple[int, EncodedTrace]]:
        """(idx, record) of every leaf after `after`; a leaf derived from a journal row comes with the row's op
        id and time and the bytes trace/journal_leaf.py defines as its payload."""
        ...

    def reports(self, agency: str | None = None) -> list[ReportRow]: ...

    def decisions(self) -> list[tuple[bytes, str, int]]:
        """Every kept decision text (store/entries.py): (key, text, how many journal rows name it)."""
        ...

    def committing(self) -> AbstractContextManager[Committer | None]:
        """The store's committer for one caller at a time, if it has one (an embedded file store); None where
        writes stay in the caller's transaction (a server store serialises writers itself), or while another
        thread has it."""
        ...

    def close(self) -> None: ...
