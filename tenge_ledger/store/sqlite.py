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
from typing import Any

import sqlite_utils

from ..core.errors import StoreError, WriteConflict
from ..core.hooks import EncodedTrace
from ..core.records import Account, HoldRecord
from . import codec
from .base import (
    GENESIS_HASH,
    SCHEMA_VERSION,
    ChangeSet,
    JournalPosting,
    LedgerMeta,
    ReportRow,
    StoredOperation,
)
from .reads import SqlTxReads

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


# Registered migrations, by the schema version they bring the database to. A database records each it applied.
MIGRATIONS: dict[int, Callable[[sqlite_utils.Database, str], None]] = {1: _migration_1}
assert max(MIGRATIONS) == SCHEMA_VERSION


_PREFETCH_GROUP = 500  # values bound in one IN (...) query, well under SQLite's variable limit


def _groups(values: set[str]) -> list[tuple[str, ...]]:
    ordered = sorted(values)
    return [tuple(ordered[i : i + _PREFETCH_GROUP]) for i in range(0, len(ordered), _PREFETCH_GROUP)]


def _marks(group: tuple[str, ...]) -> str:
    return ",".join("?" * len(group))


# The same row always makes the same (immutable) Account: chunks that read the same accounts again reuse them.
_account_from_row_cached = functools.lru_cache(maxsize=1 << 16)(codec.account_from_row)


class SqliteTx(SqlTxReads):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    def _one(self, sql: str, args: tuple = ()) -> Any:
        return self._c.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple = ()) -> list[Any]:
        return self._c.execute(sql, args).fetchall()

    def head(self) -> tuple[int, bytes]:
        seq, entry_hash = self._c.execute("SELECT seq, entry_hash FROM journal_head WHERE id = 1").fetchone()
        return seq, bytes(entry_hash)

    def windows(
        self, handles: set[str], direction: str, sinces: tuple[int, ...]
    ) -> dict[tuple[str, int], tuple[int, int]]:
        """`window` for many accounts and start times at once (untagged windows): one grouped query per group of
        handles; (handle, since) -> (sum, count), absent where there are no such postings."""
        out: dict[tuple[str, int], tuple[int, int]] = {}
        for group in _groups(handles):
            sql, args = codec.windows_query("?", direction, sinces, f"account IN ({_marks(group)})", group)
            rows = self._c.execute(sql, args)
            out.update(codec.windows_from_rows(rows, sinces))
        return out

    def prefetch(
        self, handles: set[str], bucket_accounts: set[str], op_ids: set[str]
    ) -> tuple[dict[str, Account], dict[tuple[str, str], int], dict[str, StoredOperation]]:
        """The accounts, every bucket of `bucket_accounts`, and the applied operations among `op_ids` that exist,
        a few queries for a whole chunk instead of one per operation."""
        accounts = {
            row[0]: _account_from_row_cached(row)
            for group in _groups(handles)
            for row in self._c.execute(
                f"SELECT {codec.ACCOUNT_COLUMNS} FROM accounts WHERE handle IN ({_marks(group)})", group
            )
        }
        balances = {
            (a, t): b
            for group in _groups(bucket_accounts)
            for a, t, b in self._c.execute(
                f"SELECT account, tag, balance_tiyn FROM balances WHERE account IN ({_marks(group)})", group
            )
        }
        operations = {
            row[1]: codec.operation_from_row(row)
            for group in _groups(op_ids)
            for row in self._c.execute(
                f"SELECT {codec.OPERATION_COLUMNS} FROM operations WHERE op_id IN ({_marks(group)})", group
            )
        }
        return accounts, balances, operations

    def write(self, ch: ChangeSet) -> None:
        c = self._c
        if ch.accounts:
            c.executemany(
                f"INSERT INTO accounts ({codec.ACCOUNT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)"
                " ON CONFLICT(handle) DO UPDATE SET kind=excluded.kind, public_key=excluded.public_key,"
                " tier=excluded.tier, bank=excluded.bank, attrs=excluded.attrs, status=excluded.status,"
                " opened_at=excluded.opened_at",
                [codec.account_row(a) for a in ch.accounts.values()],
            )
        if ch.bucket_deltas:
            # Insert missing buckets at zero, then add: an upsert would test the CHECK on the inserted row.
            deltas = [(d, a, t) for (a, t), d in ch.bucket_deltas.items() if d]
            c.executemany(
                "INSERT OR IGNORE INTO balances (account, tag, balance_tiyn) VALUES (?, ?, 0)",
                [(a, t) for _, a, t in deltas],
            )
            c.executemany(
                "UPDATE balances SET balance_tiyn = balance_tiyn + ? WHERE account = ? AND tag = ?", deltas
            )
        if ch.operations:
            c.executemany(
                f"INSERT INTO operations ({codec.OPERATION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [codec.operation_row(o) for o in ch.operations],
            )
        if ch.postings:
            c.executemany(
                f"INSERT INTO postings ({codec.POSTING_COLUMNS}) VALUES (?,?,?,?,?,?)",
                [codec.posting_row(p) for p in ch.postings],
            )
        if ch.holds:
            c.executemany(
                f"INSERT OR REPLACE INTO holds ({codec.HOLD_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
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
        if ch.head is not None:
            c.execute("UPDATE journal_head SET seq = ?, entry_hash = ? WHERE id = 1", ch.head)
        if ch.traces:
            c.executemany(
                f"INSERT INTO traces ({codec.TRACE_COLUMNS}) VALUES (?,?,?,?,?)",
                [codec.trace_row(t) for t in ch.traces],
            )
        if ch.reports:
            c.executemany(
                f"INSERT INTO reports ({codec.REPORT_COLUMNS}) VALUES (?,?,?,?,?,?)",
                [codec.report_row(r) for r in ch.reports],
            )


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
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute(f"PRAGMA synchronous = {synchronous}")
            self._conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not a tenge ledger (SQLite says: {exc})") from None
        self._db = sqlite_utils.Database(self._conn)
        if tables and "meta" not in tables:
            raise StoreError(f"{path} is an SQLite database but not a tenge ledger")
        if "meta" in tables:
            self._migrate()
        elif not create:
            raise StoreError(f"{path} holds no ledger yet: create one with 'tenge --db {path} init'")

    # ---- schema --------------------------------------------------------------------------------------------

    def _applied_version(self) -> int:
        if "schema_migrations" not in self._db.table_names():
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
        if "meta" in self._db.table_names():
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
    def transaction(self) -> Iterator[SqliteTx]:
        try:
            with self._write() as conn:
                yield SqliteTx(conn)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise WriteConflict(str(exc)) from None
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

    @_locked
    def accounts(self) -> list[Account]:
        rows = self._conn.execute(f"SELECT {codec.ACCOUNT_COLUMNS} FROM accounts ORDER BY handle")
        return [codec.account_from_row(r) for r in rows]

    @_locked
    def account(self, handle: str) -> Account | None:
        return SqliteTx(self._conn).account(handle)

    @_locked
    def balances(self, handle: str | None = None) -> dict[tuple[str, str], int]:
        if handle is None:
            rows = self._conn.execute("SELECT account, tag, balance_tiyn FROM balances ORDER BY account, tag")
        else:
            rows = self._conn.execute(
                "SELECT account, tag, balance_tiyn FROM balances WHERE account = ? ORDER BY tag", (handle,)
            )
        return {(a, t): b for a, t, b in rows if b}

    @_locked
    def supply(self) -> tuple[int, int]:
        return self._conn.execute("SELECT issued_tiyn, redeemed_tiyn FROM supply WHERE id = 1").fetchone()

    @_locked
    def head(self) -> tuple[int, bytes]:
        return SqliteTx(self._conn).head()

    @_locked
    def operation(self, op_id: str) -> StoredOperation | None:
        return SqliteTx(self._conn).operation(op_id)

    def journal(self, after_seq: int = 0) -> Iterator[tuple[StoredOperation, list[JournalPosting]]]:
        with self._lock:
            ops = self._conn.execute(
                f"SELECT {codec.OPERATION_COLUMNS} FROM operations WHERE seq > ? ORDER BY seq", (after_seq,)
            )
            postings = self._conn.cursor().execute(
                f"SELECT {codec.POSTING_COLUMNS} FROM postings WHERE seq > ? ORDER BY seq, idx", (after_seq,)
            )
            yield from codec.pair_journal(ops, postings)

    @_locked
    def history(self, handle: str, limit: int) -> list[tuple[StoredOperation, JournalPosting]]:
        return codec.history_from_rows(self._conn.execute(codec.history_sql("?"), (handle, limit)))

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
        with self._lock:
            rows = self._conn.execute(
                f"SELECT idx, {codec.TRACE_COLUMNS} FROM traces WHERE idx > ? ORDER BY idx", (after,)
            )
            for row in rows:
                yield row[0], codec.trace_from_row(row[1:])

    @_locked
    def reports(self, agency: str | None = None) -> list[ReportRow]:
        sql = f"SELECT {codec.REPORT_COLUMNS} FROM reports"
        args: tuple = ()
        if agency:
            sql += " WHERE agency = ?"
            args = (agency,)
        return [codec.report_from_row(r) for r in self._conn.execute(sql + " ORDER BY id", args)]

    def close(self) -> None:
        self._conn.close()
