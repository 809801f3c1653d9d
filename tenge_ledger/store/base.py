"""The storage interface. Narrow on purpose: a store reads rows and writes one ChangeSet atomically.

Every store (SQLite embedded, PostgreSQL server) implements exactly this; the ledger service never writes SQL.
Keys are chosen so that a distributed engine can shard by account handle (see docs/scaling.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from ..core.hooks import EncodedTrace
from ..core.records import Account, HoldRecord, TagRecord

SCHEMA_VERSION = 1
GENESIS_HASH = bytes(32)


@dataclass(frozen=True, slots=True)
class LedgerMeta:
    ledger_id: str  # 32 hex digits; domain-separates signatures
    name: str
    central_bank: str  # handle of the central bank account
    created_at: int
    privacy_mode: str = "transparent"
    settings: dict = field(default_factory=dict)  # tier limits and other per-ledger settings, JSON


@dataclass(frozen=True, slots=True)
class StoredOperation:
    """An applied operation, one journal entry. The journal is this table plus its postings."""

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


@dataclass(frozen=True, slots=True)
class JournalPosting:
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
    """Everything one unit of work changes, written by the store in one database transaction."""

    accounts: dict[str, Account] = field(default_factory=dict)  # upserts, whole rows
    bucket_deltas: dict[tuple[str, str], int] = field(default_factory=dict)
    operations: list[StoredOperation] = field(default_factory=list)
    postings: list[JournalPosting] = field(default_factory=list)
    holds: dict[str, HoldRecord] = field(default_factory=dict)  # upserts
    tags: dict[str, TagRecord] = field(default_factory=dict)  # inserts
    issued_delta: int = 0
    redeemed_delta: int = 0
    head: tuple[int, bytes] | None = None  # the new (seq, entry_hash) of the journal
    traces: list[EncodedTrace] = field(default_factory=list)
    reports: list[ReportRow] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.operations or self.traces or self.accounts)


class StoreTx(Protocol):
    """Reads inside one transaction, and the write that ends it."""

    def meta(self) -> LedgerMeta: ...

    def account(self, handle: str) -> Account | None: ...

    def bucket(self, handle: str, tag: str) -> int: ...

    def buckets(self, handle: str) -> dict[str, int]: ...

    def operation(self, op_id: str) -> StoredOperation | None: ...

    def hold(self, hold_id: str) -> HoldRecord | None: ...

    def holds_due(self, as_of: int) -> list[HoldRecord]: ...

    def tag(self, tag: str) -> TagRecord | None: ...

    def tags_expiring(self, as_of_date: str) -> list[TagRecord]: ...

    def tag_holders(self, tag: str) -> dict[str, int]: ...

    def head(self) -> tuple[int, bytes]: ...

    def window(self, handle: str, direction: str, since: int, tag: str | None = None) -> tuple[int, int]: ...

    def write(self, changes: ChangeSet) -> None: ...

    # Optional, for speed: `prefetch(handles, bucket_accounts, op_ids)` reads what a chunk touches first, and
    # `windows(handles, direction, sinces)` many untagged history windows, each direction in one round trip.


class Store(Protocol):
    url: str

    def initialise(self, meta: LedgerMeta) -> None:
        """Create the schema and the ledger's meta row; StoreError if this database already holds a ledger."""
        ...

    def transaction(self) -> AbstractContextManager[StoreTx]:
        """A serialisable read-write unit. Raises WriteConflict if a concurrent writer got in the way."""
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

    def accounts(self) -> list[Account]: ...

    def balances(self, handle: str | None = None) -> dict[tuple[str, str], int]: ...

    def supply(self) -> tuple[int, int]:
        """(issued_tiyn, redeemed_tiyn)."""
        ...

    def journal(self, after_seq: int = 0) -> Iterator[tuple[StoredOperation, list[JournalPosting]]]: ...

    def history(self, handle: str, limit: int) -> list[tuple[StoredOperation, JournalPosting]]: ...

    def operation(self, op_id: str) -> StoredOperation | None: ...

    def hold(self, hold_id: str) -> HoldRecord | None: ...

    def holds(self, status: str | None = None) -> list[HoldRecord]: ...

    def traces(self, after: int = 0) -> Iterator[tuple[int, EncodedTrace]]: ...

    def reports(self, agency: str | None = None) -> list[ReportRow]: ...

    def close(self) -> None: ...
