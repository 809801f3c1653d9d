"""The embedded store: SQLite in WAL mode. Schema and migrations through sqlite-utils; the hot path writes
whole change sets with executemany on the raw connection."""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..core.errors import InvariantViolation, KnownOperationId, StoreError, WriteConflict
from ..core.files import create_private
from ..core.hooks import EncodedTrace
from ..core.limits import trace_run_leaves_max
from ..core.records import Account, HoldRecord, TagRecord
from . import codec, filters, leaves, upgrade
from .base import (
    GENESIS_HASH,
    HOLDS_ON_TIMEOUT_COLUMN,
    SCHEMA_VERSION,
    BucketRow,
    ChangeSet,
    JournalPosting,
    LedgerMeta,
    ReportRow,
    StoredOperation,
)
from .entries import (
    DECISIONS_NAMED,
    DECISIONS_TABLE,
    JOURNAL_COLUMNS,
    JOURNAL_JOINED,
    JOURNAL_READ,
    LEG_COLUMNS,
    PLAIN_JOURNAL_COLUMNS,
    STORED_JOURNAL_COLUMNS,
    UNTAGGED_ID,
    keyed_decisions,
    keyed_texts,
    link_deferred,
)
from .reads import SqlTxReads
from .upgrade import CENTRAL_BANK_ID

if TYPE_CHECKING:
    import sqlite_utils

    from .committer import Committer

BUSY_TIMEOUT_MS = 10_000
CACHE_KIB = 65_536  # page cache per connection: the journal indexes take random inserts, kept off the disk


def _migration_1(db: sqlite_utils.Database, central_bank: str) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key", not_null={"value"})
    db["accounts"].create(
        {
            "handle": str,
            "kind": str,
            "public_key": str,
            "tier": int,
            "bank": str,
            "attrs": str,
            "status": str,
            "opened_at": int,
        },
        pk="handle",
        not_null={"kind", "public_key", "attrs", "status", "opened_at"},
    )
    # Only the central bank's buckets go negative (they mirror circulating supply); the database itself refuses
    # any other negative balance, so a bug in the service cannot write one.
    assert "'" not in central_bank  # handles are checked against a strict pattern before they get here
    db.execute(
        "CREATE TABLE balances (account TEXT NOT NULL, tag TEXT NOT NULL, balance_tiyn INTEGER NOT NULL,"
        f" PRIMARY KEY (account, tag), CHECK (balance_tiyn >= 0 OR account = '{central_bank}'))"
    )
    db["operations"].create(
        {
            "seq": int,
            "op_id": str,
            "kind": str,
            "signer": str,
            "document": str,
            "fields_hash": bytes,
            "at": int,
            "message": str,
            "decision": str,
            "prev_hash": bytes,
            "entry_hash": bytes,
        },
        pk="seq",
        not_null={"op_id", "kind", "signer", "document", "fields_hash", "at", "prev_hash", "entry_hash"},
    )
    db["operations"].create_index(["op_id"], unique=True)
    db["postings"].create(
        {"seq": int, "idx": int, "account": str, "tag": str, "amount_tiyn": int, "at": int},
        pk=("seq", "idx"),
        not_null={"account", "tag", "amount_tiyn", "at"},
    )
    # Covering: history windows (sum / count over a time range) are answered from the index alone.
    db["postings"].create_index(["account", "at", "amount_tiyn", "tag"])
    db["holds"].create(
        {
            "hold_id": str,
            "payer": str,
            "payee": str,
            "amount_tiyn": int,
            "tag": str,
            "releaser": str,
            "deadline": int,
            "status": str,
        },
        pk="hold_id",
        not_null={"payer", "payee", "amount_tiyn", "tag", "releaser", "deadline", "status"},
    )
    db["holds"].create_index(["status", "deadline"])
    db["tags"].create({"tag": str, "expires_on": str, "created_at": int}, pk="tag")
    db["supply"].create({"id": int, "issued_tiyn": int, "redeemed_tiyn": int}, pk="id")
    db["supply"].insert({"id": 1, "issued_tiyn": 0, "redeemed_tiyn": 0})
    db["journal_head"].create({"id": int, "seq": int, "entry_hash": bytes}, pk="id")
    db["journal_head"].insert({"id": 1, "seq": 0, "entry_hash": GENESIS_HASH})
    db.execute(
        "CREATE TABLE traces (idx INTEGER PRIMARY KEY, op_id TEXT NOT NULL, at INTEGER NOT NULL,"
        " mode TEXT NOT NULL, payload BLOB NOT NULL, leaf_hash BLOB NOT NULL)"
    )
    db.execute(
        "CREATE TABLE reports (id INTEGER PRIMARY KEY, seq INTEGER, op_id TEXT NOT NULL, agency TEXT NOT NULL,"
        " reason TEXT NOT NULL, rule TEXT NOT NULL, at INTEGER NOT NULL)"
    )
    db["reports"].create_index(["agency"])


_V2_TABLES = [
    # Accounts get integer ids: the journal, the balances and the activity refer to them.
    "CREATE TABLE accounts_v2 (id INTEGER PRIMARY KEY, handle TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,"
    " public_key TEXT NOT NULL, tier INTEGER, bank TEXT, attrs TEXT NOT NULL, status TEXT NOT NULL,"
    " opened_at INTEGER NOT NULL)",
    "CREATE TABLE tag_names (id INTEGER PRIMARY KEY, tag TEXT NOT NULL UNIQUE)",
    # Only the central bank's buckets go negative (they mirror circulating supply); the database itself refuses
    # any other negative balance, so a bug in the service cannot write one. Running flows feed history windows.
    "CREATE TABLE balances_v2 (account INTEGER NOT NULL, tag INTEGER NOT NULL, balance_tiyn INTEGER NOT NULL,"
    " out_tiyn INTEGER NOT NULL, out_count INTEGER NOT NULL, in_tiyn INTEGER NOT NULL, in_count INTEGER NOT NULL,"
    " minute INTEGER NOT NULL, PRIMARY KEY (account, tag),"
    f" CHECK (balance_tiyn >= 0 OR account = {CENTRAL_BANK_ID}),"
    # SQLite turns an integer sum that overflows into a float: refuse that, as PostgreSQL's bigint does.
    " CHECK (typeof(balance_tiyn) = 'integer' AND typeof(out_tiyn) = 'integer' AND typeof(in_tiyn) = 'integer'"
    " AND typeof(out_count) = 'integer' AND typeof(in_count) = 'integer')) WITHOUT ROWID",
    "CREATE TABLE supply_v2 (id INTEGER PRIMARY KEY, issued_tiyn INTEGER NOT NULL, redeemed_tiyn INTEGER NOT NULL,"
    " CHECK (typeof(issued_tiyn) = 'integer' AND typeof(redeemed_tiyn) = 'integer'))",
    # A bucket's running flows before its first posting of each minute it moved in: a window's sum is the flow
    # now less the flow before the first such minute inside the window, one b-tree probe however long the past.
    "CREATE TABLE activity (account INTEGER NOT NULL, tag INTEGER NOT NULL, minute INTEGER NOT NULL,"
    " out_tiyn INTEGER NOT NULL, out_count INTEGER NOT NULL, in_tiyn INTEGER NOT NULL, in_count INTEGER NOT NULL,"
    " PRIMARY KEY (account, tag, minute), CHECK (typeof(out_tiyn) = 'integer' AND typeof(in_tiyn) = 'integer'))"
    " WITHOUT ROWID",
    "CREATE TABLE journal (seq INTEGER PRIMARY KEY, op_id TEXT NOT NULL UNIQUE, kind INTEGER NOT NULL,"
    " signer INTEGER NOT NULL, payer INTEGER, payee INTEGER, amount INTEGER, tag INTEGER, at INTEGER NOT NULL,"
    " signature BLOB NOT NULL, link BLOB NOT NULL, flags INTEGER NOT NULL, body TEXT, decision TEXT, policy INTEGER,"
    " CHECK (amount IS NULL OR typeof(amount) = 'integer'))",
    "CREATE TABLE legs (seq INTEGER NOT NULL, idx INTEGER NOT NULL, account INTEGER NOT NULL,"
    " tag INTEGER NOT NULL, amount INTEGER NOT NULL, PRIMARY KEY (seq, idx), CHECK (typeof(amount) = 'integer'))"
    " WITHOUT ROWID",
]


def _migration_2(db: sqlite_utils.Database, central_bank: str) -> None:
    """The compact journal (store/upgrade.py): every row of version 1 converted, then the old tables dropped."""
    c = db.conn
    for statement in _V2_TABLES:
        c.execute(statement)
    new = upgrade.convert(
        central_bank,
        c.execute(f"SELECT {codec.ACCOUNT_COLUMNS} FROM accounts"),
        c.execute("SELECT seq, op_id, document, at, decision, entry_hash FROM operations ORDER BY seq"),
        c.execute("SELECT seq, account, tag, amount_tiyn, at FROM postings ORDER BY seq, idx"),
        c.execute("SELECT account, tag, balance_tiyn FROM balances"),
        json.loads(dict(c.execute("SELECT key, value FROM meta").fetchall()).get("settings", "{}")),
    )
    c.executemany("INSERT INTO accounts_v2 VALUES (?,?,?,?,?,?,?,?,?)", new.accounts)
    c.executemany("INSERT INTO tag_names VALUES (?,?)", new.tag_names)
    c.executemany("INSERT INTO balances_v2 VALUES (?,?,?,?,?,?,?,?)", new.balances)
    c.executemany("INSERT INTO activity VALUES (?,?,?,?,?,?,?)", new.activity)
    c.executemany(f"INSERT INTO journal ({JOURNAL_COLUMNS}) VALUES ({','.join('?' * 15)})", new.journal)
    c.executemany(f"INSERT INTO legs ({LEG_COLUMNS}) VALUES (?,?,?,?,?)", new.legs)
    c.execute("INSERT INTO supply_v2 SELECT id, issued_tiyn, redeemed_tiyn FROM supply")
    for table in ("operations", "postings", "balances", "accounts", "supply"):
        c.execute(f"DROP TABLE {table}")
    for table in ("accounts", "balances", "supply"):
        c.execute(f"ALTER TABLE {table}_v2 RENAME TO {table}")


def _migration_3(db: sqlite_utils.Database, central_bank: str) -> None:
    """Trace leaves derived from the journal (trace/journal_leaf.py): a row holds either a stored record (op id,
    time, mode, payload, leaf hash) or only the seq of the journal row its leaf is derived from. The records
    already stored stay as they are, byte for byte: the checkpoints signed them."""
    c = db.conn
    c.execute(
        "CREATE TABLE traces_v3 (idx INTEGER PRIMARY KEY, op_id TEXT, at INTEGER, mode TEXT, payload BLOB,"
        " leaf_hash BLOB, seq INTEGER,"
        " CHECK ((seq IS NULL AND op_id IS NOT NULL AND at IS NOT NULL AND mode IS NOT NULL"
        " AND payload IS NOT NULL AND leaf_hash IS NOT NULL) OR (seq IS NOT NULL AND op_id IS NULL AND at IS NULL"
        " AND mode IS NULL AND payload IS NULL AND leaf_hash IS NULL)))"
    )
    c.execute(
        "INSERT INTO traces_v3 (idx, op_id, at, mode, payload, leaf_hash)"
        " SELECT idx, op_id, at, mode, payload, leaf_hash FROM traces ORDER BY idx"
    )
    c.execute("DROP TABLE traces")
    c.execute("ALTER TABLE traces_v3 RENAME TO traces")


def _migration_4(db: sqlite_utils.Database, central_bank: str) -> None:
    """A hold keeps what a sweep does at its timeout; every hold made before did "void" (back to the payer)."""
    db.conn.execute(HOLDS_ON_TIMEOUT_COLUMN)


def _migration_5(db: sqlite_utils.Database, central_bank: str) -> None:
    """Counterparty-filtered running flows (core/windows.py): one row per (account, filter key) the enabled
    policy set names, and its snapshots before each minute it moved in, read as `activity` is. Empty until a
    set that names a filter is enabled (which builds them from the journal)."""
    db.conn.execute(
        "CREATE TABLE filter_flows (account INTEGER NOT NULL, filter TEXT NOT NULL, out_tiyn INTEGER NOT NULL,"
        " out_count INTEGER NOT NULL, in_tiyn INTEGER NOT NULL, in_count INTEGER NOT NULL,"
        " minute INTEGER NOT NULL, PRIMARY KEY (account, filter),"
        " CHECK (typeof(out_tiyn) = 'integer' AND typeof(in_tiyn) = 'integer')) WITHOUT ROWID"
    )
    db.conn.execute(
        "CREATE TABLE filter_activity (account INTEGER NOT NULL, filter TEXT NOT NULL, minute INTEGER NOT NULL,"
        " out_tiyn INTEGER NOT NULL, out_count INTEGER NOT NULL, in_tiyn INTEGER NOT NULL,"
        " in_count INTEGER NOT NULL, PRIMARY KEY (account, filter, minute),"
        " CHECK (typeof(out_tiyn) = 'integer' AND typeof(in_tiyn) = 'integer')) WITHOUT ROWID"
    )


# A run of derived trace leaves: `count` leaves from index `idx` on, derived from the journal rows from `seq` on.
TRACE_RUNS_TABLE = (
    "CREATE TABLE trace_runs (idx INTEGER PRIMARY KEY, seq INTEGER NOT NULL, count INTEGER NOT NULL,"
    f" CHECK (idx >= 1 AND seq >= 1 AND count >= 1 AND count <= {trace_run_leaves_max}))"
)


def _migration_6(db: sqlite_utils.Database, central_bank: str) -> None:
    """Derived trace leaves as runs (store/leaves.py): every `traces` row that held only a seq becomes part of a
    `trace_runs` row, each stretch of consecutive leaves naming consecutive journal rows one run; the stored
    records keep their rows and leaf indexes, byte for byte. Every leaf keeps its index and its bytes, so every
    root and checkpoint still holds."""
    c = db.conn
    c.execute(TRACE_RUNS_TABLE)
    runs = leaves.runs_of(c.execute("SELECT idx, seq FROM traces WHERE seq IS NOT NULL ORDER BY idx"))
    c.executemany(f"INSERT INTO trace_runs ({leaves.RUN_COLUMNS}) VALUES (?,?,?)", runs)
    c.execute(
        "CREATE TABLE traces_v6 (idx INTEGER PRIMARY KEY, op_id TEXT NOT NULL, at INTEGER NOT NULL,"
        " mode TEXT NOT NULL, payload BLOB NOT NULL, leaf_hash BLOB NOT NULL)"
    )
    c.execute(
        f"INSERT INTO traces_v6 ({leaves.TRACE_COLUMNS}) SELECT {leaves.TRACE_COLUMNS} FROM traces"
        " WHERE seq IS NULL ORDER BY idx"
    )
    c.execute("DROP TABLE traces")
    c.execute("ALTER TABLE traces_v6 RENAME TO traces")


def _migration_7(db: sqlite_utils.Database, central_bank: str) -> None:
    """Each decision's text kept once, in `decisions` (store/entries.py): every row that held a text holds its key
    instead, and `decision` is NULL in every row. The texts and so every link are unchanged."""
    c = db.conn
    c.execute(DECISIONS_TABLE.format(blob="BLOB") + " WITHOUT ROWID")
    c.execute("ALTER TABLE journal ADD COLUMN decision_key BLOB")
    texts, named = keyed_texts(c.execute("SELECT seq, decision FROM journal WHERE decision IS NOT NULL"))
    c.executemany("INSERT INTO decisions (key, text) VALUES (?, ?)", texts)
    c.executemany("UPDATE journal SET decision_key = ?, decision = NULL WHERE seq = ?", named)


# Registered migrations, by the schema version they bring the database to. A database records each it applied.
MIGRATIONS: dict[int, Callable[[sqlite_utils.Database, str], None]] = {
    1: _migration_1,
    2: _migration_2,
    3: _migration_3,
    4: _migration_4,
    5: _migration_5,
    6: _migration_6,
    7: _migration_7,
}
assert max(MIGRATIONS) == SCHEMA_VERSION


# A filtered flow's row adds the chunk's flows (or is inserted with them); `minute` is the chunk's latest.
_FILTER_UPSERT = (
    "INSERT INTO filter_flows (out_tiyn, out_count, in_tiyn, in_count, minute, account, filter)"
    " VALUES (?,?,?,?,?,?,?) ON CONFLICT (account, filter) DO UPDATE SET"
    " out_tiyn = filter_flows.out_tiyn + excluded.out_tiyn, out_count = filter_flows.out_count + excluded.out_count,"
    " in_tiyn = filter_flows.in_tiyn + excluded.in_tiyn, in_count = filter_flows.in_count + excluded.in_count,"
    " minute = excluded.minute"
)


class SqliteTx(SqlTxReads):
    takes_bucket_upserts = True

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    def _one(self, sql: str, args: tuple = ()) -> Any:
        return self._c.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple = ()) -> list[Any]:
        return self._c.execute(sql, args).fetchall()

    def head(self) -> tuple[int, bytes]:
        seq, entry_hash = self._c.execute("SELECT seq, entry_hash FROM journal_head WHERE id = 1").fetchone()
        return seq, bytes(entry_hash)

    def trace_size(self) -> int:
        return self._c.execute(_NEXT_LEAF).fetchone()[0]

    def settings_epoch(self) -> int:
        row = self._c.execute("SELECT value FROM meta WHERE key = 'settings_epoch'").fetchone()
        return int(row[0]) if row else 0

    def data_version(self) -> int:
        """Changes when another connection commits (PRAGMA data_version): what this process holds in memory
        is still the ledger's state exactly when it has not changed since."""
        return self._c.execute("PRAGMA data_version").fetchone()[0]

    def write(self, ch: ChangeSet) -> None:
        c = self._c
        if ch.accounts:
            c.executemany(
                f"INSERT INTO accounts (id, {codec.ACCOUNT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(handle) DO UPDATE SET kind=excluded.kind, public_key=excluded.public_key,"
                " tier=excluded.tier, bank=excluded.bank, attrs=excluded.attrs, status=excluded.status,"
                " opened_at=excluded.opened_at",
                [(i, *codec.account_row(a)) for i, a in ch.accounts],
            )
        if ch.tag_names:
            c.executemany("INSERT INTO tag_names (id, tag) VALUES (?, ?)", ch.tag_names)
        if ch.new_buckets:
            c.executemany(
                "INSERT INTO balances (balance_tiyn, out_tiyn, out_count, in_tiyn, in_count, minute, account, tag)"
                " VALUES (?,?,?,?,?,?,?,?)",
                ch.new_buckets,
            )
        if ch.buckets:
            c.executemany(
                "UPDATE balances SET balance_tiyn = balance_tiyn + ?, out_tiyn = out_tiyn + ?,"
                " out_count = out_count + ?, in_tiyn = in_tiyn + ?, in_count = in_count + ?, minute = ?"
                " WHERE account = ? AND tag = ?",
                ch.buckets,
            )
        if ch.bucket_upserts:
            c.executemany(_BUCKET_UPSERT, ch.bucket_upserts)
        if ch.activity_reset:
            c.execute("DELETE FROM activity")
        if ch.activity:
            c.executemany("INSERT INTO activity VALUES (?,?,?,?,?,?,?)", ch.activity)
        if ch.filters_reset:
            c.execute("DELETE FROM filter_flows")
            c.execute("DELETE FROM filter_activity")
        if ch.filter_flows:
            c.executemany(_FILTER_UPSERT, ch.filter_flows)
        if ch.filter_activity:
            c.executemany("INSERT INTO filter_activity VALUES (?,?,?,?,?,?,?)", ch.filter_activity)
        if ch.settings is not None:
            c.execute(
                "UPDATE meta SET value = ? WHERE key = 'settings'", (json.dumps(ch.settings, sort_keys=True),)
            )
            c.execute(_NEXT_SETTINGS_EPOCH)
        entries, plain_entries, head = ch.entries, ch.plain_entries, ch.head
        if ch.links_deferred:
            entries, plain_entries, head = self._linked(ch)
        if entries:
            entries, decisions = keyed_decisions(entries)
            if decisions:
                c.executemany("INSERT OR IGNORE INTO decisions (key, text) VALUES (?, ?)", decisions)
            c.executemany(
                f"INSERT INTO journal ({STORED_JOURNAL_COLUMNS}) VALUES ({_JOURNAL_MARKS})", entries
            )
        if plain_entries:
            c.executemany(
                f"INSERT INTO journal ({PLAIN_JOURNAL_COLUMNS}) VALUES ({_PLAIN_MARKS})", plain_entries
            )
            if ch.legs_from_rows:
                self._move_by_legs(plain_entries)
        if ch.legs:
            c.executemany(f"INSERT INTO legs ({LEG_COLUMNS}) VALUES (?,?,?,?,?)", ch.legs)
        if ch.holds:
            c.executemany(
                f"INSERT OR REPLACE INTO holds ({codec.HOLD_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                [codec.hold_row(h) for h in ch.holds.values()],
            )
        if ch.tags:
            c.executemany(
                "INSERT INTO tags (tag, expires_on, created_at) VALUES (?,?,?)",
                [(t.tag, t.expires_on, t.created_at) for t in ch.tags.values()],
            )
        if ch.issued_delta or ch.redeemed_delta:
            c.execute(
                "UPDATE supply SET issued_tiyn = issued_tiyn + ?, redeemed_tiyn = redeemed_tiyn + ? WHERE id = 1",
                (ch.issued_delta, ch.redeemed_delta),
            )
        if head is not None:
            c.execute("UPDATE journal_head SET seq = ?, entry_hash = ? WHERE id = 1", head)
        if ch.traces:
            stored, runs = leaves.place(ch.traces, self.trace_size() + 1)
            if stored:
                c.executemany(f"INSERT INTO traces ({leaves.TRACE_COLUMNS}) VALUES (?,?,?,?,?,?)", stored)
            if runs:
                c.executemany(f"INSERT INTO trace_runs ({leaves.RUN_COLUMNS}) VALUES (?,?,?)", runs)
        if ch.reports:
            c.executemany(
                f"INSERT INTO reports ({codec.REPORT_COLUMNS}) VALUES (?,?,?,?,?,?)",
                [codec.report_row(r) for r in ch.reports],
            )

    def _move_by_legs(self, rows: list[tuple]) -> None:
        """Move the buckets by the two legs of plain transfers' journal rows (ChangeSet.legs_from_rows): every
        payee credited, then every payer debited. A sum does not depend on its order, and credits first keep each
        balance at or above where the chunk leaves it (so the CHECK never refuses a step the ledger allowed), and
        give a payer paid in this chunk its row before its debit."""
        c = self._c
        # PLAIN_JOURNAL_COLUMNS: payer 4, payee 5, amount 6, at 7
        c.executemany(_CREDIT, [(r[6], r[7], r[5]) for r in rows])
        debited = c.executemany(_DEBIT, [(r[6], r[7], r[4]) for r in rows]).rowcount
        if debited != len(rows):
            raise InvariantViolation(f"{len(rows) - debited} payers of plain transfers have no balance row")

    def _linked(self, ch: ChangeSet) -> tuple[list[tuple], list[tuple], tuple[int, bytes] | None]:
        """The journal rows of a change set handed over unlinked (`ChangeSet.links_deferred`), linked on this
        store's journal head, which the committer checked is the one they were worked out on."""
        head = self.head()
        if ch.head is None or ch.head[0] != head[0] + len(ch.entries) + len(ch.plain_entries):
            raise InvariantViolation(
                f"an unlinked change set ending at {ch.head} does not follow journal head #{head[0]}"
            )
        try:
            return link_deferred(head, ch.entries, ch.plain_entries)
        except ValueError as exc:
            raise InvariantViolation(f"an unlinked change set cannot be linked: {exc}") from None


# SQLite checks CHECK constraints on the row to insert before it finds the conflict, so a bucket's negative
# change cannot be that row's balance: the update adds the parameter itself. Only a bucket with a row can go
# down over a chunk (it ends at or above 0), so the 0 is never inserted, but for the central bank, which may
# be negative and is inserted as it is.
_BUCKET_UPSERT = (
    "INSERT INTO balances (balance_tiyn, out_tiyn, out_count, in_tiyn, in_count, minute, account, tag)"
    f" VALUES (CASE WHEN ?1 < 0 AND ?7 <> {CENTRAL_BANK_ID} THEN 0 ELSE ?1 END, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    " ON CONFLICT (account, tag) DO UPDATE SET balance_tiyn = balance_tiyn + ?1, out_tiyn = out_tiyn + ?2,"
    " out_count = out_count + ?3, in_tiyn = in_tiyn + ?4, in_count = in_count + ?5, minute = MAX(minute, ?6)"
)
# One leg of a plain transfer's row (SqliteTx._move_by_legs): ?1 the amount, ?2 the ledger time, ?3 the account.
_CREDIT = (
    "INSERT INTO balances (balance_tiyn, out_tiyn, out_count, in_tiyn, in_count, minute, account, tag)"
    f" VALUES (?1, 0, 0, ?1, 1, ?2 / 60, ?3, {UNTAGGED_ID}) ON CONFLICT (account, tag) DO UPDATE SET"
    " balance_tiyn = balance_tiyn + ?1, in_tiyn = in_tiyn + ?1, in_count = in_count + 1,"
    " minute = MAX(minute, ?2 / 60)"
)
_DEBIT = (
    "UPDATE balances SET balance_tiyn = balance_tiyn - ?1, out_tiyn = out_tiyn + ?1, out_count = out_count + 1,"
    f" minute = MAX(minute, ?2 / 60) WHERE account = ?3 AND tag = {UNTAGGED_ID}"
)
# Every settings change moves the epoch on, so a writer in another process sees it at its next chunk.
_NEXT_SETTINGS_EPOCH = (
    "INSERT INTO meta (key, value) VALUES ('settings_epoch', '1')"
    " ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
)
_JOURNAL_MARKS = ",".join("?" * len(JOURNAL_COLUMNS.split(",")))
_PLAIN_MARKS = ",".join("?" * len(PLAIN_JOURNAL_COLUMNS.split(",")))
_NEXT_LEAF = f"SELECT MAX({', '.join(leaves.NEXT_LEAF_BASE)})"
_RUNS_AFTER = leaves.RUNS_AFTER.format(m="?")
_STORED_AFTER = leaves.STORED_AFTER.format(m="?")
_JOURNAL_RANGE = leaves.JOURNAL_RANGE.format(m="?")


def _locked(method: Callable) -> Callable:
    """Run a read of SqliteStore holding its connection's lock, so no thread reads inside another's write."""

    @functools.wraps(method)
    def wrapper(self: SqliteStore, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class SqliteStore:
    def __init__(self, path: str, create: bool = False, synchronous: str = "FULL") -> None:
        self.url = path
        # The file the committer process opens: as of now, whatever the working directory is when it starts
        self._path = path if path == ":memory:" else os.path.abspath(path)
        self._synchronous = synchronous
        self._committer: Committer | None = None
        self._committer_free = threading.Lock()
        self._closed = False
        # One connection, shared by the threads of a process: each takes it whole, for a transaction or a read.
        self._lock = threading.RLock()
        if path != ":memory:" and not create and not os.path.exists(path):
            raise StoreError(f"no ledger at {path}: create one with 'tenge --db {path} init'")
        if path != ":memory:" and os.path.isdir(path):
            raise StoreError(f"{path} is a directory, not a ledger file")
        if path != ":memory:" and not create and os.path.getsize(path) == 0:
            # SQLite would quietly make the empty file a database
            raise StoreError(
                f"{path} is an empty file, not a ledger: create it with 'tenge --db {path} init'"
            )
        folder = os.path.dirname(os.path.abspath(path))
        if create and not os.path.isdir(folder):
            raise StoreError(f"cannot create {path}: the directory {folder} does not exist")
        try:
            if create and path != ":memory:":
                create_private(path)  # SQLite gives the WAL and shared-memory files the same mode
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute(f"PRAGMA synchronous = {synchronous}")
            self._conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            tables = self._table_names()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not a tenge ledger (SQLite says: {exc})") from None
        if tables and "meta" not in tables:
            raise StoreError(f"{path} is an SQLite database but not a tenge ledger")
        if "meta" in tables:
            self._migrate()
        elif not create:
            raise StoreError(f"{path} holds no ledger yet: create one with 'tenge --db {path} init'")

    # ---- schema --------------------------------------------------------------------------------------------

    @functools.cached_property
    def _db(self) -> sqlite_utils.Database:
        """sqlite-utils over the connection, for creating and migrating the schema: imported only then (a ledger
        that is up to date, and the committer process, open without it)."""
        import sqlite_utils

        return sqlite_utils.Database(self._conn)

    def _table_names(self) -> set[str]:
        return {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _applied_version(self) -> int:
        if "schema_migrations" not in self._table_names():
            return 0
        row = self._conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return row[0] or 0

    def _migrate(self, central_bank: str | None = None) -> None:
        version = self._applied_version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.url} has schema version {version}, newer than this tenge-ledger knows "
                f"({SCHEMA_VERSION}): upgrade tenge-ledger"
            )
        if version == SCHEMA_VERSION:
            return
        if central_bank is None:
            central_bank = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())["central_bank"]
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            if "schema_migrations" not in self._db.table_names():
                self._db["schema_migrations"].create(
                    {"version": int, "name": str, "applied_at": int}, pk="version"
                )
            for number in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[number](self._db, central_bank)
                self._conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (number, MIGRATIONS[number].__name__, int(time.time())),
                )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def initialise(self, meta: LedgerMeta) -> None:
        if "meta" in self._table_names():
            existing = self.meta()
            raise StoreError(f"{self.url} already holds the ledger {existing.name!r} ({existing.ledger_id})")
        self._migrate(central_bank=meta.central_bank)
        with self._write():
            self._conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", codec.meta_to_rows(meta))

    # ---- transactions --------------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise WriteConflict(str(exc)) from None
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    @contextmanager
    def transaction(self, optimistic: bool = False) -> Iterator[SqliteTx]:
        """A write transaction (BEGIN IMMEDIATE: one writer at a time; `optimistic` changes nothing here, where
        the write lock is the database's and Python work never waits on another process's)."""
        try:
            with self._write() as conn:
                yield SqliteTx(conn)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise WriteConflict(str(exc)) from None
            raise
        except sqlite3.IntegrityError as exc:
            if "CHECK constraint failed" in str(exc):
                raise InvariantViolation(f"the database refused a write: {exc}") from None
            if "journal.op_id" in str(exc):  # a repeated id the chunk did not read (WorkingSet.ids_unread)
                raise KnownOperationId(str(exc)) from None
            raise

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read inside sees one state of the ledger, whatever other writers commit meanwhile (a WAL read
        transaction on this connection). For checks that compare several tables."""
        with self._lock:
            if self._conn.in_transaction:  # already inside a transaction or snapshot: it is one state already
                yield
                return
            self._conn.execute("BEGIN")
            try:
                self._conn.execute("SELECT 1 FROM journal_head").fetchall()  # the snapshot starts at a read
                yield
            finally:
                # A reader left suspended (`traces`, interrupted by Ctrl-C in its caller's loop) is finalised
                # after the store closed: the connection ended its snapshot already.
                if not self._closed:
                    self._conn.execute("COMMIT")

    # ---- reads outside the write path ----------------------------------------------------------------------

    @_locked
    def meta(self) -> LedgerMeta:
        return SqliteTx(self._conn).meta()

    def set_setting(self, key: str, value: object) -> None:
        """Change one per-ledger setting (tier limits, enabled policy set, ...) atomically."""
        with self._write() as conn:
            settings = dict(SqliteTx(conn).meta().settings, **{key: value})
            conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'settings'", (json.dumps(settings, sort_keys=True),)
            )
            conn.execute(_NEXT_SETTINGS_EPOCH)

    @_locked
    def accounts(self) -> list[Account]:
        rows = self._conn.execute(f"SELECT {codec.ACCOUNT_COLUMNS} FROM accounts ORDER BY handle")
        return [codec.account_from_row(r) for r in rows]

    @_locked
    def account(self, handle: str) -> Account | None:
        return SqliteTx(self._conn).account(handle)

    @_locked
    def balances(self, handle: str | None = None) -> dict[tuple[str, str], int]:
        sql = (
            "SELECT a.handle, t.tag, b.balance_tiyn FROM balances b JOIN accounts a ON a.id = b.account"
            " JOIN tag_names t ON t.id = b.tag"
        )
        if handle is None:
            rows = self._conn.execute(sql + " ORDER BY a.handle, t.tag")
        else:
            rows = self._conn.execute(sql + " WHERE a.handle = ? ORDER BY t.tag", (handle,))
        return {(a, t): b for a, t, b in rows if b}

    @_locked
    def journaled_public_key(self, handle: str) -> str | None:
        return SqliteTx(self._conn).journaled_public_key(handle)

    @_locked
    def witness_registrations(self) -> dict[str, str]:
        return SqliteTx(self._conn).witness_registrations()

    @_locked
    def tags(self) -> list[TagRecord]:
        return SqliteTx(self._conn).all_tags()

    @_locked
    def bucket_flows(self) -> dict[tuple[str, str], BucketRow]:
        return SqliteTx(self._conn).all_bucket_rows()

    @_locked
    def activity(self) -> dict[tuple[str, str, int], tuple[int, int, int, int]]:
        return SqliteTx(self._conn).activity_rows()

    @_locked
    def filter_flows(self) -> dict[tuple[str, str], BucketRow]:
        return SqliteTx(self._conn).all_filter_rows()

    def rebuild_window_filters(
        self, keys: frozenset[str], settings: dict | None = None, activity: bool | None = None
    ) -> bool:
        return filters.rebuild_window_filters(self, keys, settings, activity)

    @_locked
    def filter_activity(self) -> dict[tuple[str, str, int], tuple[int, int, int, int]]:
        return SqliteTx(self._conn).filter_activity_rows()

    @_locked
    def supply(self) -> tuple[int, int]:
        return self._conn.execute("SELECT issued_tiyn, redeemed_tiyn FROM supply WHERE id = 1").fetchone()

    @_locked
    def head(self) -> tuple[int, bytes]:
        return SqliteTx(self._conn).head()

    @_locked
    def trace_size(self) -> int:
        return SqliteTx(self._conn).trace_size()

    @_locked
    def operation(self, op_id: str) -> StoredOperation | None:
        return SqliteTx(self._conn).operation(op_id)

    def journal(self, after_seq: int = 0) -> Iterator[tuple[StoredOperation, list[JournalPosting]]]:
        with self._lock, self.snapshot():
            tx = SqliteTx(self._conn)
            reader = codec.EntryReader(tx.meta(), tx._names())
            prev = self._conn.execute("SELECT link FROM journal WHERE seq = ?", (after_seq,)).fetchone()
            rows = self._conn.execute(
                f"SELECT {JOURNAL_READ} FROM {JOURNAL_JOINED} WHERE j.seq > ? ORDER BY j.seq", (after_seq,)
            )
            legs = self._conn.cursor().execute(
                f"SELECT {LEG_COLUMNS} FROM legs WHERE seq > ? ORDER BY seq, idx", (after_seq,)
            )
            yield from reader.journal(rows, legs, bytes(prev[0]) if prev else GENESIS_HASH)

    @_locked
    def history(self, handle: str, limit: int) -> list[tuple[StoredOperation, JournalPosting]]:
        """The account's postings with their operations, newest first. The journal has no per-account index
        (it would grow with every posting and slow every write): this reads the journal backwards, in slices,
        until it has `limit` postings of the account."""
        with self.snapshot():  # the head and every slice read from one state of the ledger
            tx = SqliteTx(self._conn)
            ids = tx.account_ids([handle])
            if handle not in ids:
                return []
            return tx.history(ids[handle], handle, limit)

    @_locked
    def hold(self, hold_id: str) -> HoldRecord | None:
        return SqliteTx(self._conn).hold(hold_id)

    @_locked
    def holds(self, status: str | None = None) -> list[HoldRecord]:
        sql = f"SELECT {codec.HOLD_COLUMNS} FROM holds"
        args: tuple = ()
        if status:
            sql += " WHERE status = ?"
            args = (status,)
        return [codec.hold_from_row(r) for r in self._conn.execute(sql + " ORDER BY hold_id", args)]

    def traces(self, after: int = 0) -> Iterator[tuple[int, EncodedTrace]]:
        with self._lock, self.snapshot():  # stored rows, runs and journal rows of one state of the ledger
            stored = self._conn.execute(_STORED_AFTER, (after,))
            runs = leaves.runs_after(self._conn.cursor().execute(_RUNS_AFTER, (after, after)), after)
            journal = self._conn.cursor()
            yield from leaves.merge(stored, runs, lambda a, b: journal.execute(_JOURNAL_RANGE, (a, b)))

    @_locked
    def reports(self, agency: str | None = None) -> list[ReportRow]:
        sql = f"SELECT {codec.REPORT_COLUMNS} FROM reports"
        args: tuple = ()
        if agency:
            sql += " WHERE agency = ?"
            args = (agency,)
        return [codec.report_from_row(r) for r in self._conn.execute(sql + " ORDER BY id", args)]

    @_locked
    def decisions(self) -> list[tuple[bytes, str, int]]:
        return [(bytes(k), t, n) for k, t, n in self._conn.execute(DECISIONS_NAMED)]

    @contextmanager
    def committing(self) -> Iterator[Committer | None]:
        """The process that writes this ledger's change sets off the apply loop (store/committer.py), started on
        first use and kept until `close`, for one caller at a time: None for an in-memory database, while
        another thread has it, when the system gives no process, or once one stopped unasked."""
        if self.url == ":memory:" or not self._committer_free.acquire(blocking=False):
            yield None
            return
        try:
            if self._committer is None:
                try:
                    from .committer import Committer  # (subprocess and all) only for a ledger that uses one

                    self._committer = Committer(self._path, self._synchronous, self._reading)
                except OSError:  # the system gives no process now (its limits): the caller commits itself
                    yield None
                    return
            yield None if self._committer.stopped else self._committer
        finally:
            self._committer_free.release()

    @contextmanager
    def _reading(self) -> Iterator[SqliteTx]:
        """A read transaction (BEGIN, not IMMEDIATE): one state of the ledger, without the write lock."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield SqliteTx(self._conn)
            finally:
                self._conn.execute("COMMIT")

    def close(self) -> None:
        if self._committer is not None:
            self._committer.close()
            self._committer = None
        self._closed = True
        self._conn.close()
