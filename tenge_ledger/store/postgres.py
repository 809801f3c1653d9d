"""The server store: PostgreSQL through psycopg 3 and its connection pool.

Concurrency. Every write transaction starts with `SELECT ... FROM journal_head ... FOR UPDATE` under READ
COMMITTED. The journal is one hash chain, so writers are serial by nature: each entry names the hash of the one
before. Taking the head row first makes that explicit and cheap. A writer that waits for the lock reads every row
after the holder committed (each READ COMMITTED statement takes a fresh snapshot), so balances, ids and holds it
reads are current; no two writers ever wait on each other in different orders (nothing is locked before the head),
so there is no deadlock; a duplicate id submitted at the same moment is seen by the second writer as `exists`.
We chose this over SERIALIZABLE + retry: every writer updates the head row anyway, so under SERIALIZABLE almost
every concurrent pair would conflict and retry, spending the work twice. Serialization failures, deadlocks, lock
timeouts and a unique violation on op_id can still only mean a concurrent writer got in the way: they become
WriteConflict, and the service retries the whole unit.

Faults. A wrong URL, an unreachable server, a database that is not a tenge ledger, a server that goes away: a
StoreError with one line. A transaction is all or nothing; if the connection drops during COMMIT the outcome is
unknown, and resubmitting the same operation ids answers `exists` for what did commit.

Keys are shardable by account: balances by (account, tag), postings by (account, seq, idx), accounts by handle;
see docs/scaling.md for the distribution key of every table.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
import psycopg.errors
import psycopg_pool
from psycopg import sql
from psycopg.pq import TransactionStatus

from ..core.errors import InvariantViolation, StoreError, WriteConflict
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
    keyed_decisions,
    keyed_texts,
)
from .reads import SqlTxReads
from .upgrade import CENTRAL_BANK_ID

CONNECT_TIMEOUT_S = 10
POOL_SIZE_MAX = 8
POOL_WAIT_S = 15.0
LOCK_TIMEOUT_MS = 15_000  # waiting for the journal head longer than this is a WriteConflict
JOURNAL_FETCH_ROWS = 2_000
MIGRATION_LOCK_KEY = 0x7465_6E67_6500  # advisory lock taken while migrating ("tenge")

# The pool logs each failed reconnection; a user sees one StoreError line instead, so keep the log off stderr
# unless the application configured logging itself.
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())


def _migration_1(cur: psycopg.Cursor, central_bank: str) -> None:
    statements = [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE accounts (handle TEXT PRIMARY KEY, kind TEXT NOT NULL, public_key TEXT NOT NULL,"
        " tier INTEGER, bank TEXT, attrs TEXT NOT NULL, status TEXT NOT NULL, opened_at BIGINT NOT NULL)",
        # Only the central bank's buckets go negative (they mirror circulating supply); the database itself
        # refuses any other negative balance, so a bug in the service cannot write one.
        sql.SQL(
            "CREATE TABLE balances (account TEXT NOT NULL, tag TEXT NOT NULL, balance_tiyn BIGINT NOT NULL,"
            " PRIMARY KEY (account, tag), CHECK (balance_tiyn >= 0 OR account = {}))"
        ).format(sql.Literal(central_bank)),
        # op_id is the key (and the distribution key when sharded); seq orders the journal.
        "CREATE TABLE operations (seq BIGINT NOT NULL UNIQUE, op_id TEXT PRIMARY KEY, kind TEXT NOT NULL,"
        " signer TEXT NOT NULL, document TEXT NOT NULL, fields_hash BYTEA NOT NULL, at BIGINT NOT NULL,"
        " message TEXT, decision TEXT, prev_hash BYTEA NOT NULL, entry_hash BYTEA NOT NULL)",
        # The key leads with the account so postings shard with the balances they move.
        "CREATE TABLE postings (seq BIGINT NOT NULL, idx INTEGER NOT NULL, account TEXT NOT NULL,"
        " tag TEXT NOT NULL, amount_tiyn BIGINT NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (account, seq, idx))",
        "CREATE INDEX postings_account_at ON postings (account, at) INCLUDE (amount_tiyn, tag)",
        "CREATE INDEX postings_seq ON postings (seq, idx)",
        "CREATE TABLE holds (hold_id TEXT PRIMARY KEY, payer TEXT NOT NULL, payee TEXT NOT NULL,"
        " amount_tiyn BIGINT NOT NULL, tag TEXT NOT NULL, releaser TEXT NOT NULL, deadline BIGINT NOT NULL,"
        " status TEXT NOT NULL)",
        "CREATE INDEX holds_status_deadline ON holds (status, deadline)",
        "CREATE TABLE tags (tag TEXT PRIMARY KEY, expires_on TEXT, created_at BIGINT)",
        "CREATE TABLE supply (id INTEGER PRIMARY KEY, issued_tiyn BIGINT NOT NULL, redeemed_tiyn BIGINT NOT NULL)",
        "INSERT INTO supply (id, issued_tiyn, redeemed_tiyn) VALUES (1, 0, 0)",
        "CREATE TABLE journal_head (id INTEGER PRIMARY KEY, seq BIGINT NOT NULL, entry_hash BYTEA NOT NULL)",
        "CREATE TABLE traces (idx BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, op_id TEXT NOT NULL,"
        " at BIGINT NOT NULL, mode TEXT NOT NULL, payload BYTEA NOT NULL, leaf_hash BYTEA NOT NULL)",
        "CREATE TABLE reports (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, seq BIGINT, op_id TEXT NOT NULL,"
        " agency TEXT NOT NULL, reason TEXT NOT NULL, rule TEXT NOT NULL, at BIGINT NOT NULL)",
        "CREATE INDEX reports_agency ON reports (agency)",
    ]
    for statement in statements:
        cur.execute(statement)
    cur.execute("INSERT INTO journal_head (id, seq, entry_hash) VALUES (1, 0, %s)", (GENESIS_HASH,))


_V2_TABLES = [
    # Accounts get integer ids: the journal, the balances and the activity refer to them.
    "CREATE TABLE accounts_v2 (id BIGINT PRIMARY KEY, handle TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,"
    " public_key TEXT NOT NULL, tier INTEGER, bank TEXT, attrs TEXT NOT NULL, status TEXT NOT NULL,"
    " opened_at BIGINT NOT NULL)",
    "CREATE TABLE tag_names (id BIGINT PRIMARY KEY, tag TEXT NOT NULL UNIQUE)",
    # Only the central bank's buckets go negative (they mirror circulating supply); running flows feed windows.
    "CREATE TABLE balances_v2 (account BIGINT NOT NULL, tag BIGINT NOT NULL, balance_tiyn BIGINT NOT NULL,"
    " out_tiyn BIGINT NOT NULL, out_count BIGINT NOT NULL, in_tiyn BIGINT NOT NULL, in_count BIGINT NOT NULL,"
    " minute BIGINT NOT NULL, PRIMARY KEY (account, tag),"
    f" CHECK (balance_tiyn >= 0 OR account = {CENTRAL_BANK_ID}))",
    "CREATE TABLE activity (account BIGINT NOT NULL, tag BIGINT NOT NULL, minute BIGINT NOT NULL,"
    " out_tiyn BIGINT NOT NULL, out_count BIGINT NOT NULL, in_tiyn BIGINT NOT NULL, in_count BIGINT NOT NULL,"
    " PRIMARY KEY (account, tag, minute))",
    # op_id is unique (and the distribution key when sharded); seq orders the journal.
    "CREATE TABLE journal (seq BIGINT PRIMARY KEY, op_id TEXT NOT NULL UNIQUE, kind SMALLINT NOT NULL,"
    " signer BIGINT NOT NULL, payer BIGINT, payee BIGINT, amount BIGINT, tag BIGINT, at BIGINT NOT NULL,"
    " signature BYTEA NOT NULL, link BYTEA NOT NULL, flags SMALLINT NOT NULL, body TEXT, decision TEXT,"
    " policy INTEGER)",
    "CREATE TABLE legs (seq BIGINT NOT NULL, idx INTEGER NOT NULL, account BIGINT NOT NULL,"
    " tag BIGINT NOT NULL, amount BIGINT NOT NULL, PRIMARY KEY (seq, idx))",
]


def _migration_2(cur: psycopg.Cursor, central_bank: str) -> None:
    """The compact journal (store/upgrade.py): every row of version 1 converted, then the old tables dropped."""
    for statement in _V2_TABLES:
        cur.execute(statement)

    def rows(query: str) -> list[tuple]:
        return cur.execute(query).fetchall()

    new = upgrade.convert(
        central_bank,
        rows(f"SELECT {codec.ACCOUNT_COLUMNS} FROM accounts"),
        rows("SELECT seq, op_id, document, at, decision, entry_hash FROM operations ORDER BY seq"),
        rows("SELECT seq, account, tag, amount_tiyn, at FROM postings ORDER BY seq, idx"),
        rows("SELECT account, tag, balance_tiyn FROM balances"),
        json.loads(dict(rows("SELECT key, value FROM meta")).get("settings", "{}")),
    )
    inserts = [
        ("accounts_v2", 9, new.accounts),
        ("tag_names", 2, new.tag_names),
        ("balances_v2", 8, new.balances),
        ("activity", 7, new.activity),
        (f"journal ({JOURNAL_COLUMNS})", 15, new.journal),
        (f"legs ({LEG_COLUMNS})", 5, new.legs),
    ]
    for table, width, values in inserts:
        if values:
            cur.executemany(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * width)})", values)
    for table in ("operations", "postings", "balances", "accounts"):
        cur.execute(f"DROP TABLE {table}")
    cur.execute("ALTER TABLE accounts_v2 RENAME TO accounts")
    cur.execute("ALTER TABLE balances_v2 RENAME TO balances")


def _migration_3(cur: psycopg.Cursor, central_bank: str) -> None:
    """Trace leaves derived from the journal (trace/journal_leaf.py): a row holds either a stored record or only
    the seq of the journal row its leaf is derived from; the records already stored stay as they are."""
    for column in ("op_id", "at", "mode", "payload", "leaf_hash"):
        cur.execute(f"ALTER TABLE traces ALTER COLUMN {column} DROP NOT NULL")
    cur.execute("ALTER TABLE traces ADD COLUMN seq BIGINT")
    cur.execute(
        "ALTER TABLE traces ADD CONSTRAINT traces_stored_or_derived CHECK ((seq IS NULL AND op_id IS NOT NULL"
        " AND at IS NOT NULL AND mode IS NOT NULL AND payload IS NOT NULL AND leaf_hash IS NOT NULL)"
        " OR (seq IS NOT NULL AND op_id IS NULL AND at IS NULL AND mode IS NULL AND payload IS NULL"
        " AND leaf_hash IS NULL))"
    )


def _migration_4(cur: psycopg.Cursor, central_bank: str) -> None:
    """A hold keeps what a sweep does at its timeout; every hold made before did "void" (back to the payer)."""
    cur.execute(HOLDS_ON_TIMEOUT_COLUMN)


def _migration_5(cur: psycopg.Cursor, central_bank: str) -> None:
    """Counterparty-filtered running flows (core/windows.py), as in the SQLite store's migration 5."""
    cur.execute(
        "CREATE TABLE filter_flows (account BIGINT NOT NULL, filter TEXT NOT NULL, out_tiyn BIGINT NOT NULL,"
        " out_count BIGINT NOT NULL, in_tiyn BIGINT NOT NULL, in_count BIGINT NOT NULL, minute BIGINT NOT NULL,"
        " PRIMARY KEY (account, filter))"
    )
    cur.execute(
        "CREATE TABLE filter_activity (account BIGINT NOT NULL, filter TEXT NOT NULL, minute BIGINT NOT NULL,"
        " out_tiyn BIGINT NOT NULL, out_count BIGINT NOT NULL, in_tiyn BIGINT NOT NULL, in_count BIGINT NOT NULL,"
        " PRIMARY KEY (account, filter, minute))"
    )


def _migration_6(cur: psycopg.Cursor, central_bank: str) -> None:
    """Derived trace leaves as runs (store/leaves.py), as in the SQLite store's migration 6. The store gives leaf
    indexes itself from now on, over both tables: `traces.idx` is no identity any more."""
    cur.execute(
        "CREATE TABLE trace_runs (idx BIGINT PRIMARY KEY, seq BIGINT NOT NULL, count BIGINT NOT NULL,"
        f" CHECK (idx >= 1 AND seq >= 1 AND count >= 1 AND count <= {trace_run_leaves_max}))"
    )
    runs = leaves.runs_of(
        cur.execute("SELECT idx, seq FROM traces WHERE seq IS NOT NULL ORDER BY idx").fetchall()
    )
    if runs:
        cur.executemany(f"INSERT INTO trace_runs ({leaves.RUN_COLUMNS}) VALUES (%s, %s, %s)", runs)
    cur.execute("DELETE FROM traces WHERE seq IS NOT NULL")
    # Dropping the column drops the CHECK that named it: every row left is a stored record.
    cur.execute("ALTER TABLE traces DROP COLUMN seq")
    for column in ("op_id", "at", "mode", "payload", "leaf_hash"):
        cur.execute(f"ALTER TABLE traces ALTER COLUMN {column} SET NOT NULL")
    cur.execute("ALTER TABLE traces ALTER COLUMN idx DROP IDENTITY")


def _migration_7(cur: psycopg.Cursor, central_bank: str) -> None:
    """Each decision's text kept once, in `decisions`, as in the SQLite store's migration 7."""
    cur.execute(DECISIONS_TABLE.format(blob="BYTEA"))
    cur.execute("ALTER TABLE journal ADD COLUMN decision_key BYTEA")
    texts, named = keyed_texts(cur.execute("SELECT seq, decision FROM journal WHERE decision IS NOT NULL"))
    if texts:
        cur.executemany("INSERT INTO decisions (key, text) VALUES (%s, %s)", texts)
        cur.executemany("UPDATE journal SET decision_key = %s, decision = NULL WHERE seq = %s", named)


# Registered migrations, by the schema version they bring the database to. A database records each it applied.
MIGRATIONS: dict[int, Callable[[psycopg.Cursor, str], None]] = {
    1: _migration_1,
    2: _migration_2,
    3: _migration_3,
    4: _migration_4,
    5: _migration_5,
    6: _migration_6,
    7: _migration_7,
}
if max(MIGRATIONS) != SCHEMA_VERSION:  # pragma: no cover - a packaging mistake
    raise RuntimeError("the PostgreSQL store has no migration to the current schema version")


_RUNS_AFTER = leaves.RUNS_AFTER.format(m="%s")
_STORED_AFTER = leaves.STORED_AFTER.format(m="%s")
_JOURNAL_RANGE = leaves.JOURNAL_RANGE.format(m="%s")


def _spans(runs: list[leaves.Run]) -> list[tuple[int, int]]:
    """The journal rows `runs` derive their leaves from, as few ranges (first, last seq) of at most
    JOURNAL_FETCH_ROWS rows: one query each, however many runs (a chunk's run starts where the one before ends)."""
    seqs = sorted((seq, seq + count - 1) for _, seq, count in runs)
    out: list[tuple[int, int]] = []
    for first, last in seqs:
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return [
        (a, min(a + JOURNAL_FETCH_ROWS - 1, last))
        for first, last in out
        for a in range(first, last + 1, JOURNAL_FETCH_ROWS)
    ]


def redact(url: str) -> str:
    """The URL with any password replaced, fit for an error message."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].strip() if text else type(exc).__name__


def _is_op_id_violation(exc: psycopg.errors.UniqueViolation) -> bool:
    diag = exc.diag
    return diag.table_name == "operations" or "operations" in (diag.constraint_name or "")


def _configure(conn: psycopg.Connection) -> None:
    """Each new pooled connection: wait for the journal head at most LOCK_TIMEOUT_MS (then WriteConflict).
    Set here, not in the URL's `options`, which keep the user's search_path."""
    conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")


# Every settings change moves the epoch on, so a writer in another process sees it at its next chunk.
_NEXT_SETTINGS_EPOCH = (
    "INSERT INTO meta (key, value) VALUES ('settings_epoch', '1') ON CONFLICT (key)"
    " DO UPDATE SET value = (meta.value::bigint + 1)::text"
)
# With the head, the settings epoch (store/base.py StoreTx.settings_epoch): one round trip still.
_HEAD_AND_EPOCH = "SELECT seq, entry_hash, (SELECT value FROM meta WHERE key = 'settings_epoch') FROM journal_head WHERE id = 1"
_BEGIN_AND_LOCK_HEAD = f"BEGIN; {_HEAD_AND_EPOCH} FOR UPDATE"
# Optimistic: read one snapshot without the lock; the write takes the lock first, and if another writer moved
# the head since the snapshot, REPEATABLE READ makes that lock fail with a serialization error (a WriteConflict,
# retried), so the lock is held only while the write runs, not during the Python work before it.
_BEGIN_SNAPSHOT = f"BEGIN ISOLATION LEVEL REPEATABLE READ; {_HEAD_AND_EPOCH}"
_LOCK_HEAD = "SELECT 1 FROM journal_head WHERE id = 1 FOR UPDATE"


class PostgresTx(SqlTxReads):
    """Reads inside one write transaction; the journal head is already locked and read."""

    takes_bucket_upserts = False  # see StoreTx: `write` refuses a change set that leaves its buckets to it

    def __init__(
        self, cur: psycopg.Cursor, head: tuple[int, bytes], locked: bool = True, settings_epoch: int = 0
    ) -> None:
        self._cur = cur
        self._head = head
        self._settings_epoch = settings_epoch
        self._locked = locked  # whether the head is locked already, or the write must lock it first
        self.committed = False

    mark = "%s"

    def _one(self, sql: str, args: tuple = ()) -> Any:
        return self._cur.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple = ()) -> list[Any]:
        return self._cur.execute(sql, args).fetchall()

    def head(self) -> tuple[int, bytes]:
        return self._head

    def trace_size(self) -> int:
        return self._one(_TRACE_SIZE)[0]

    def settings_epoch(self) -> int:
        return self._settings_epoch

    def write(self, ch: ChangeSet) -> None:
        # only a SQLite store's committer is handed any of these
        if ch.links_deferred or ch.bucket_upserts or ch.legs_from_rows:
            raise InvariantViolation(
                "this store takes no unlinked journal rows, no bucket upserts and no buckets moved by the rows' legs"
            )
        if ch.head is not None and ch.head[0] < self._head[0]:  # protects the chain: never stripped by -O
            raise InvariantViolation(f"journal head would go back from #{self._head[0]} to #{ch.head[0]}")
        # Every statement and the COMMIT go as one query string: one round trip, one server parse per
        # statement. Values are bound on the client by psycopg's own quoting (ClientCursor.mogrify), never by
        # string formatting. If a statement fails the server skips the rest, COMMIT included, and the
        # transaction is rolled back. The write ends the transaction.
        script = _write_script(psycopg.ClientCursor(self._cur.connection), ch)
        self._cur.execute(script if self._locked else f"{_LOCK_HEAD};\n{script}")
        self.committed = True
        if ch.head is not None:
            self._head = ch.head


def _values(m: Callable[[str, tuple], str], rows: list[tuple]) -> str:
    return ", ".join(m("(" + ", ".join(["%s"] * len(row)) + ")", row) for row in rows)


def _write_script(client: psycopg.ClientCursor, ch: ChangeSet) -> str:
    m = client.mogrify
    out: list[str] = []
    if ch.accounts:
        rows = [(i, *codec.account_row(a)) for i, a in sorted(ch.accounts)]
        out.append(
            f"INSERT INTO accounts (id, {codec.ACCOUNT_COLUMNS}) VALUES {_values(m, rows)}"
            " ON CONFLICT (handle) DO UPDATE SET kind=excluded.kind, public_key=excluded.public_key,"
            " tier=excluded.tier, bank=excluded.bank, attrs=excluded.attrs, status=excluded.status,"
            " opened_at=excluded.opened_at"
        )
    if ch.tag_names:
        out.append(f"INSERT INTO tag_names (id, tag) VALUES {_values(m, ch.tag_names)}")
    if ch.new_buckets:
        out.append(
            "INSERT INTO balances (balance_tiyn, out_tiyn, out_count, in_tiyn, in_count, minute, account, tag)"
            f" VALUES {_values(m, sorted(ch.new_buckets, key=lambda r: (r[6], r[7])))}"
        )
    # Rows in a fixed order (account, tag), so concurrent writers take row locks in one order.
    for row in sorted(ch.buckets, key=lambda r: (r[6], r[7])):
        out.append(
            m(
                "UPDATE balances SET balance_tiyn = balance_tiyn + %s, out_tiyn = out_tiyn + %s,"
                " out_count = out_count + %s, in_tiyn = in_tiyn + %s, in_count = in_count + %s, minute = %s"
                " WHERE account = %s AND tag = %s",
                row,
            )
        )
    if ch.activity_reset:
        out.append("DELETE FROM activity")
    if ch.activity:
        out.append(f"INSERT INTO activity VALUES {_values(m, ch.activity)}")
    if ch.filters_reset:
        out += ["DELETE FROM filter_flows", "DELETE FROM filter_activity"]
    if ch.filter_flows:  # in (account, filter) order, as the balances: row locks taken in one order
        rows = sorted(ch.filter_flows, key=lambda r: (r[5], r[6]))
        out.append(
            "INSERT INTO filter_flows (out_tiyn, out_count, in_tiyn, in_count, minute, account, filter)"
            f" VALUES {_values(m, rows)} ON CONFLICT (account, filter) DO UPDATE SET"
            " out_tiyn = filter_flows.out_tiyn + excluded.out_tiyn,"
            " out_count = filter_flows.out_count + excluded.out_count,"
            " in_tiyn = filter_flows.in_tiyn + excluded.in_tiyn, in_count = filter_flows.in_count + excluded.in_count,"
            " minute = excluded.minute"
        )
    if ch.filter_activity:
        out.append(f"INSERT INTO filter_activity VALUES {_values(m, ch.filter_activity)}")
    if ch.settings is not None:
        out.append(
            m("UPDATE meta SET value = %s WHERE key = 'settings'", (json.dumps(ch.settings, sort_keys=True),))
        )
        out.append(_NEXT_SETTINGS_EPOCH)
    if ch.entries:
        entries, decisions = keyed_decisions(ch.entries)
        if decisions:
            out.append(
                f"INSERT INTO decisions (key, text) VALUES {_values(m, decisions)} ON CONFLICT DO NOTHING"
            )
        out.append(f"INSERT INTO journal ({STORED_JOURNAL_COLUMNS}) VALUES {_values(m, entries)}")
    if ch.plain_entries:
        out.append(f"INSERT INTO journal ({PLAIN_JOURNAL_COLUMNS}) VALUES {_values(m, ch.plain_entries)}")
    if ch.legs:
        out.append(f"INSERT INTO legs ({LEG_COLUMNS}) VALUES {_values(m, ch.legs)}")
    if ch.holds:
        rows = [codec.hold_row(h) for h in sorted(ch.holds.values(), key=lambda h: h.hold_id)]
        out.append(
            f"INSERT INTO holds ({codec.HOLD_COLUMNS}) VALUES {_values(m, rows)}"
            " ON CONFLICT (hold_id) DO UPDATE SET payer=excluded.payer, payee=excluded.payee,"
            " amount_tiyn=excluded.amount_tiyn, tag=excluded.tag, releaser=excluded.releaser,"
            " deadline=excluded.deadline, status=excluded.status, on_timeout=excluded.on_timeout"
        )
    if ch.tags:
        rows = [(t.tag, t.expires_on, t.created_at) for t in ch.tags.values()]
        out.append(f"INSERT INTO tags (tag, expires_on, created_at) VALUES {_values(m, rows)}")
    if ch.issued_delta or ch.redeemed_delta:
        out.append(
            m(
                "UPDATE supply SET issued_tiyn = issued_tiyn + %s, redeemed_tiyn = redeemed_tiyn + %s"
                " WHERE id = 1",
                (ch.issued_delta, ch.redeemed_delta),
            )
        )
    if ch.head is not None:
        out.append(m("UPDATE journal_head SET seq = %s, entry_hash = %s WHERE id = 1", ch.head))
    elif ch.traces or ch.settings is not None:
        # The new leaves' indexes follow the last leaf this transaction sees, and writers follow the settings. An
        # optimistic writer sees its snapshot: every write that adds leaves or changes the settings updates the
        # head row, so one that began before this commits fails to lock the head (a WriteConflict, retried)
        # instead of giving the same indexes again or deciding under the old settings.
        out.append("UPDATE journal_head SET seq = seq WHERE id = 1")
    if ch.traces:
        out.append(_traces_insert(m, ch.traces))
    if ch.reports:
        rows = [codec.report_row(r) for r in ch.reports]
        out.append(f"INSERT INTO reports ({codec.REPORT_COLUMNS}) VALUES {_values(m, rows)}")
    out.append("COMMIT")
    return ";\n".join(out)


_NEXT_LEAF = f"n AS (SELECT GREATEST({', '.join(leaves.NEXT_LEAF_BASE)}) AS base)"
_TRACE_SIZE = f"SELECT GREATEST({', '.join(leaves.NEXT_LEAF_BASE)})"


def _traces_insert(m: Callable[[str, tuple], str], traces: list) -> str:
    """One statement that writes the new leaves from the next free index on: the stored records into `traces`,
    the derived leaves' runs into `trace_runs`, both placed from one read of the last index (every part of a
    statement sees one snapshot, so the first insert does not move the second's base)."""
    stored, runs = leaves.place(traces, 1)  # indexes relative to the base, read in the statement
    parts = [_NEXT_LEAF]
    insert_stored = (
        "INSERT INTO traces (idx, op_id, at, mode, payload, leaf_hash) SELECT n.base + v.o, v.op_id, v.at, v.mode,"
        f" v.payload, v.leaf_hash FROM n, (VALUES {_values(m, stored)}) AS v (o, op_id, at, mode, payload,"
        " leaf_hash)"
    )
    insert_runs = (
        "INSERT INTO trace_runs (idx, seq, count) SELECT n.base + v.o, v.seq, v.count"
        f" FROM n, (VALUES {_values(m, runs)}) AS v (o, seq, count)"
    )
    if stored and runs:
        parts.append(f"s AS ({insert_stored})")
        return f"WITH {', '.join(parts)} {insert_runs}"
    return f"WITH {parts[0]} {insert_stored if stored else insert_runs}"


class PostgresStore:
    """A ledger in one PostgreSQL schema (the connection's search_path), shared by any number of processes."""

    def __init__(self, url: str, create: bool = False) -> None:
        self.url = url
        self._shown = redact(url)
        self._lock = threading.Lock()
        self._pinned = threading.local()  # the connection a snapshot() pins for this thread's reads
        self._pool: psycopg_pool.ConnectionPool | None = None
        with self._errors(), self._connect() as conn:
            schema = conn.execute("SELECT current_schema()").fetchone()[0]
            if schema is None:
                raise StoreError(f"{self._shown}: the search_path names no schema that exists")
            tables = {
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                ).fetchall()
            }
        if tables and "meta" not in tables:
            raise StoreError(f"{self._shown} is a PostgreSQL database but not a tenge ledger")
        if "meta" in tables:
            self._migrate()
        elif not create:
            raise StoreError(f"{self._shown} holds no ledger yet: create one with 'tenge --db URL init'")

    # ---- connections and errors ----------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, application_name="tenge-ledger"
            )
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self._shown}: {_one_line(exc)}") from None

    def _pool_open(self) -> psycopg_pool.ConnectionPool:
        with self._lock:
            if self._pool is None:
                self._pool = psycopg_pool.ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=POOL_SIZE_MAX,
                    timeout=POOL_WAIT_S,
                    kwargs={
                        "autocommit": True,
                        "connect_timeout": CONNECT_TIMEOUT_S,
                        "application_name": "tenge-ledger",
                    },
                    configure=_configure,
                    reconnect_timeout=POOL_WAIT_S,
                    open=True,
                    name="tenge-ledger",
                )
            return self._pool

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn what the server or the network says into StoreError, one line each."""
        try:
            yield
        except psycopg_pool.PoolTimeout:
            raise StoreError(
                f"no connection to {self._shown} within {POOL_WAIT_S:.0f} s: is the server running?"
            ) from None
        except psycopg.errors.UndefinedTable as exc:
            raise StoreError(f"{self._shown} is not a tenge ledger: {_one_line(exc)}") from None
        except psycopg.OperationalError as exc:
            raise StoreError(
                f"lost the PostgreSQL server at {self._shown}: {_one_line(exc)}; nothing of the unit in flight"
                " was applied unless it had reached COMMIT: resubmit with the same ids to find out"
            ) from None
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL error at {self._shown}: {_one_line(exc)}") from None

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection]:
        with self._errors(), self._pool_open().connection() as conn:
            yield conn

    # ---- schema --------------------------------------------------------------------------------------------

    def _migrate(self, central_bank: str | None = None) -> None:
        with self._conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                         " name TEXT NOT NULL, applied_at BIGINT NOT NULL)")  # fmt: skip
            version = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self._shown} has schema version {version}, newer than this tenge-ledger knows "
                    f"({SCHEMA_VERSION}): upgrade tenge-ledger"
                )
            if version == SCHEMA_VERSION:
                return
            if central_bank is None:
                central_bank = conn.execute("SELECT value FROM meta WHERE key = 'central_bank'").fetchone()[0]
            with conn.cursor() as cur:
                for number in range(version + 1, SCHEMA_VERSION + 1):
                    MIGRATIONS[number](cur, central_bank)
                    cur.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                        (number, MIGRATIONS[number].__name__, int(time.time())),
                    )

    def initialise(self, meta: LedgerMeta) -> None:
        with self._conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            if conn.execute("SELECT to_regclass('meta')").fetchone()[0] is not None:
                existing = self.meta()
                raise StoreError(
                    f"{self._shown} already holds the ledger {existing.name!r} ({existing.ledger_id})"
                )
        # Schema and meta row in one transaction: a failure leaves no half-made ledger behind.
        with self._conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            if conn.execute("SELECT to_regclass('meta')").fetchone()[0] is not None:
                raise StoreError(f"{self._shown} was initialised by someone else just now")
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                         " name TEXT NOT NULL, applied_at BIGINT NOT NULL)")  # fmt: skip
            with conn.cursor() as cur:
                for number in range(1, SCHEMA_VERSION + 1):
                    MIGRATIONS[number](cur, meta.central_bank)
                    cur.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                        (number, MIGRATIONS[number].__name__, int(time.time())),
                    )
                cur.executemany("INSERT INTO meta (key, value) VALUES (%s, %s)", codec.meta_to_rows(meta))

    # ---- transactions --------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self, optimistic: bool = False) -> Iterator[PostgresTx]:
        """A write transaction. By default it locks the journal head first (writers queue); `optimistic` reads
        a snapshot unlocked and locks only at the write, failing with WriteConflict if another writer moved the
        head meanwhile (the caller retries, then without it, so a busy ledger still makes progress)."""
        with self._errors():
            try:
                with self._pool_open().connection() as conn, conn.cursor() as cur:
                    head, epoch = self._begin(conn, cur, optimistic)
                    tx = PostgresTx(cur, head, locked=not optimistic, settings_epoch=epoch)
                    try:
                        yield tx
                        if not tx.committed:
                            cur.execute("COMMIT")
                    finally:
                        if not tx.committed and conn.info.transaction_status != TransactionStatus.IDLE:
                            with suppress(psycopg.Error):  # a broken connection: the pool discards it
                                conn.execute("ROLLBACK")
            except (
                psycopg.errors.SerializationFailure,
                psycopg.errors.DeadlockDetected,
                psycopg.errors.LockNotAvailable,
            ) as exc:
                raise WriteConflict(_one_line(exc)) from None
            except psycopg.errors.UniqueViolation as exc:
                if _is_op_id_violation(exc):  # the same id submitted twice at once: a retry answers `exists`
                    raise WriteConflict(_one_line(exc)) from None
                raise
            except psycopg.errors.CheckViolation as exc:
                raise InvariantViolation(f"the database refused a write: {_one_line(exc)}") from None

    def _begin(
        self, conn: psycopg.Connection, cur: psycopg.Cursor, optimistic: bool
    ) -> tuple[tuple[int, bytes], int]:
        """BEGIN and read (and unless optimistic, lock) the journal head, with the settings epoch, in one round
        trip (no parameters: the simple query protocol)."""
        try:
            cur.execute(_BEGIN_SNAPSHOT if optimistic else _BEGIN_AND_LOCK_HEAD)
        except psycopg.OperationalError as exc:
            if conn.broken:  # a pooled connection the server dropped (it restarted): retry on a fresh one
                if self._pool is not None:  # discard the idle connections that died with it, all at once
                    self._pool.check()
                raise WriteConflict(_one_line(exc)) from None
            raise
        while cur.description is None and cur.nextset():
            pass
        row = cur.fetchone()
        if row is None:
            raise StoreError("the journal head row is missing: this is not a complete tenge ledger")
        return (row[0], bytes(row[1])), int(row[2] or 0)

    # ---- reads outside the write path ----------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read of this thread inside sees one state of the ledger (one REPEATABLE READ, READ ONLY
        transaction on one pinned connection), whatever other writers commit meanwhile."""
        if getattr(self._pinned, "conn", None) is not None:
            yield
            return
        with self._conn() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            self._pinned.conn = conn
            try:
                yield
            finally:
                self._pinned.conn = None

    def _rows(self, query: str, args: tuple = ()) -> list[tuple]:
        pinned = getattr(self._pinned, "conn", None)
        if pinned is not None:
            with self._errors():
                return pinned.execute(query, args).fetchall()
        # Each pooled connection the server dropped (it restarted) fails once and is discarded; a read is safe
        # to repeat, so try until a live connection answers.
        for attempt in range(POOL_SIZE_MAX + 1):
            with self._errors(), self._pool_open().connection() as conn:
                try:
                    return conn.execute(query, args).fetchall()
                except psycopg.OperationalError:
                    if attempt < POOL_SIZE_MAX and conn.broken:
                        continue
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def meta(self) -> LedgerMeta:
        return codec.meta_from_rows(dict(self._rows("SELECT key, value FROM meta")))

    def set_setting(self, key: str, value: object) -> None:
        """Change one per-ledger setting (tier limits, enabled policy set, ...) atomically."""
        with self._conn() as conn, conn.transaction():
            # Serialise with writers, and make the head row new: an optimistic writer whose snapshot predates
            # this change then fails to lock it (a WriteConflict) and retries with the new settings.
            conn.execute("UPDATE journal_head SET seq = seq WHERE id = 1")
            rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            settings = dict(codec.meta_from_rows(rows).settings, **{key: value})
            conn.execute(
                "UPDATE meta SET value = %s WHERE key = 'settings'", (json.dumps(settings, sort_keys=True),)
            )
            conn.execute(_NEXT_SETTINGS_EPOCH)

    def accounts(self) -> list[Account]:
        rows = self._rows(f"SELECT {codec.ACCOUNT_COLUMNS} FROM accounts ORDER BY handle")
        return [codec.account_from_row(r) for r in rows]

    def account(self, handle: str) -> Account | None:
        rows = self._rows(f"SELECT {codec.ACCOUNT_COLUMNS} FROM accounts WHERE handle = %s", (handle,))
        return codec.account_from_row(rows[0]) if rows else None

    def balances(self, handle: str | None = None) -> dict[tuple[str, str], int]:
        # One statement: one snapshot, so the balances read together always sum to the supply.
        sql = (
            "SELECT a.handle, t.tag, b.balance_tiyn FROM balances b JOIN accounts a ON a.id = b.account"
            " JOIN tag_names t ON t.id = b.tag"
        )
        if handle is None:
            rows = self._rows(sql + " ORDER BY a.handle, t.tag")
        else:
            rows = self._rows(sql + " WHERE a.handle = %s ORDER BY t.tag", (handle,))
        return {(a, t): int(b) for a, t, b in rows if b}

    def journaled_public_key(self, handle: str) -> str | None:
        with self.snapshot():
            return PostgresTx(self._pinned.conn.cursor(), (0, b"")).journaled_public_key(handle)

    def witness_registrations(self) -> dict[str, str]:
        with self.snapshot():
            return PostgresTx(self._pinned.conn.cursor(), (0, b"")).witness_registrations()

    def tags(self) -> list[TagRecord]:
        with self.snapshot():
            return PostgresTx(self._pinned.conn.cursor(), (0, b"")).all_tags()

    def bucket_flows(self) -> dict[tuple[str, str], BucketRow]:
        with self.snapshot():
            return PostgresTx(self._pinned.conn.cursor(), (0, b"")).all_bucket_rows()

    def activity(self) -> dict[tuple[str, str, int], tuple[int, int, int, int]]:
        with self.snapshot():
            return PostgresTx(self._pinned.conn.cursor(), (0, b"")).activity_rows()

    def filter_flows(self) -> dict[tuple[str, str], BucketRow]:
        with self.snapshot():
            return PostgresTx(self._pinned.conn.cursor(), (0, b"")).all_filter_rows()

    def rebuild_window_filters(
        self, keys: frozenset[str], settings: dict | None = None, activity: bool | None = None
    ) -> bool:
        return filters.rebuild_window_filters(self, keys, settings, activity)

    def filter_activity(self) -> dict[tuple[str, str, int], tuple[int, int, int, int]]:
        with self.snapshot():
            return PostgresTx(self._pinned.conn.cursor(), (0, b"")).filter_activity_rows()

    def supply(self) -> tuple[int, int]:
        issued, redeemed = self._rows("SELECT issued_tiyn, redeemed_tiyn FROM supply WHERE id = 1")[0]
        return issued, redeemed

    def head(self) -> tuple[int, bytes]:
        seq, entry_hash = self._rows("SELECT seq, entry_hash FROM journal_head WHERE id = 1")[0]
        return seq, bytes(entry_hash)

    def trace_size(self) -> int:
        return self._rows(_TRACE_SIZE)[0][0]

    def operation(self, op_id: str) -> StoredOperation | None:
        with self.snapshot():
            return PostgresTx(self._pinned.conn.cursor(), (0, b"")).operation(op_id)

    def journal(self, after_seq: int = 0) -> Iterator[tuple[StoredOperation, list[JournalPosting]]]:
        # Both cursors read one snapshot, streamed from the server a few thousand rows at a time.
        pinned = getattr(self._pinned, "conn", None)
        if pinned is not None:
            yield from self._journal_on(pinned, after_seq)
            return
        with self._conn() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield from self._journal_on(conn, after_seq)

    def _journal_on(
        self, conn: psycopg.Connection, after_seq: int
    ) -> Iterator[tuple[StoredOperation, list[JournalPosting]]]:
        tx = PostgresTx(conn.cursor(), (0, b""))
        reader = codec.EntryReader(tx.meta(), tx._names())
        prev = tx._one("SELECT link FROM journal WHERE seq = %s", (after_seq,))
        rows = conn.cursor(name="tenge_journal_rows")
        rows.itersize = JOURNAL_FETCH_ROWS
        legs = conn.cursor(name="tenge_journal_legs")
        legs.itersize = JOURNAL_FETCH_ROWS
        rows.execute(
            f"SELECT {JOURNAL_READ} FROM {JOURNAL_JOINED} WHERE j.seq > %s ORDER BY j.seq", (after_seq,)
        )
        legs.execute(f"SELECT {LEG_COLUMNS} FROM legs WHERE seq > %s ORDER BY seq, idx", (after_seq,))
        yield from reader.journal(rows, legs, bytes(prev[0]) if prev else GENESIS_HASH)
        rows.close()
        legs.close()

    def history(self, handle: str, limit: int) -> list[tuple[StoredOperation, JournalPosting]]:
        """The account's postings with their operations, newest first (see SqliteStore.history)."""
        with self.snapshot():  # the head and every slice read from one state of the ledger
            tx = PostgresTx(self._pinned.conn.cursor(), self.head())
            ids = tx.account_ids([handle])
            if handle not in ids:
                return []
            return tx.history(ids[handle], handle, limit)

    def hold(self, hold_id: str) -> HoldRecord | None:
        rows = self._rows(f"SELECT {codec.HOLD_COLUMNS} FROM holds WHERE hold_id = %s", (hold_id,))
        return codec.hold_from_row(rows[0]) if rows else None

    def holds(self, status: str | None = None) -> list[HoldRecord]:
        query = f"SELECT {codec.HOLD_COLUMNS} FROM holds"
        args: tuple = ()
        if status:
            query += " WHERE status = %s"
            args = (status,)
        return [codec.hold_from_row(r) for r in self._rows(query + " ORDER BY hold_id", args)]

    def traces(self, after: int = 0) -> Iterator[tuple[int, EncodedTrace]]:
        # Read whole from one snapshot, then handed out: no connection stays pinned while the caller iterates.
        with self.snapshot():
            stored = self._rows(_STORED_AFTER, (after,))
            runs = list(leaves.runs_after(self._rows(_RUNS_AFTER, (after, after)), after))
            journal = {
                row[0]: row
                for first, last in _spans(runs)
                for row in self._rows(_JOURNAL_RANGE, (first, last))
            }
        yield from leaves.merge(
            stored, runs, lambda a, b: (journal[s] for s in range(a, b + 1) if s in journal)
        )

    def reports(self, agency: str | None = None) -> list[ReportRow]:
        query = f"SELECT {codec.REPORT_COLUMNS} FROM reports"
        args: tuple = ()
        if agency:
            query += " WHERE agency = %s"
            args = (agency,)
        return [codec.report_from_row(r) for r in self._rows(query + " ORDER BY id", args)]

    def decisions(self) -> list[tuple[bytes, str, int]]:
        return [(bytes(k), t, n) for k, t, n in self._rows(DECISIONS_NAMED)]

    @contextmanager
    def committing(self) -> Iterator[None]:
        """None: the server orders writers itself, and a writer holds its lock only for the write."""
        yield None

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
