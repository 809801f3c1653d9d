"""The trace log's tables edited directly, leaf by leaf, as an operator with write access to a SQLite ledger could:
stored records in `traces`, derived leaves in `trace_runs` (store/leaves.py). A leaf's content is its stored row
(op_id, at, mode, payload, leaf_hash) or, for a derived leaf, the seq of the journal row it names."""

from __future__ import annotations

import sqlite3

STORED = "op_id, at, mode, payload, leaf_hash"


def leaf(conn: sqlite3.Connection, idx: int) -> tuple | int | None:
    """The content of leaf `idx` (a stored row, or a derived leaf's seq), None when there is none."""
    row = conn.execute(f"SELECT {STORED} FROM traces WHERE idx = ?", (idx,)).fetchone()
    if row is not None:
        return row
    run = _run_holding(conn, idx)
    return None if run is None else run[1] + idx - run[0]


def last(conn: sqlite3.Connection) -> int:
    (stored,) = conn.execute("SELECT COALESCE(MAX(idx), 0) FROM traces").fetchone()
    (derived,) = conn.execute("SELECT COALESCE(MAX(idx + count - 1), 0) FROM trace_runs").fetchone()
    return max(stored, derived)


def remove(conn: sqlite3.Connection, idx: int) -> None:
    """Leaf `idx` deleted, the others left where they are (a run is split around it)."""
    conn.execute("DELETE FROM traces WHERE idx = ?", (idx,))
    run = _run_holding(conn, idx)
    if run is None:
        return
    first, seq, count = run
    conn.execute("DELETE FROM trace_runs WHERE idx = ?", (first,))
    if idx > first:
        conn.execute("INSERT INTO trace_runs VALUES (?, ?, ?)", (first, seq, idx - first))
    if idx < first + count - 1:
        conn.execute(
            "INSERT INTO trace_runs VALUES (?, ?, ?)",
            (idx + 1, seq + idx + 1 - first, first + count - 1 - idx),
        )


def cut(conn: sqlite3.Connection, idx: int) -> None:
    """Every leaf from `idx` on deleted."""
    conn.execute("DELETE FROM traces WHERE idx >= ?", (idx,))
    conn.execute("DELETE FROM trace_runs WHERE idx >= ?", (idx,))
    conn.execute("UPDATE trace_runs SET count = ? - idx WHERE idx + count > ?", (idx, idx))


def put(conn: sqlite3.Connection, idx: int, content: tuple | int) -> None:
    """A leaf at `idx`, which holds none."""
    if isinstance(content, int):
        conn.execute("INSERT INTO trace_runs (idx, seq, count) VALUES (?, ?, 1)", (idx, content))
    else:
        conn.execute(f"INSERT INTO traces (idx, {STORED}) VALUES (?, ?, ?, ?, ?, ?)", (idx, *content))


def swap(conn: sqlite3.Connection, a: int, b: int) -> None:
    """Leaves `a` and `b` exchange their contents."""
    first, second = leaf(conn, a), leaf(conn, b)
    remove(conn, a)
    remove(conn, b)
    put(conn, a, second)  # type: ignore[arg-type]
    put(conn, b, first)  # type: ignore[arg-type]


def to_schema_5(conn: sqlite3.Connection) -> None:
    """The trace tables of a SQLite ledger as schema 5 kept them (schema_5's statements)."""
    for statement in schema_5(postgres=False):
        conn.execute(statement)


def schema_6(postgres: bool) -> list[str]:
    """Statements that turn a ledger back into schema 6's: each row's decision text in its own `decision`
    column again, and schema 7 no longer recorded as applied."""
    back = (
        "UPDATE journal SET decision = d.text FROM decisions d WHERE d.key = journal.decision_key"
        if postgres
        else "UPDATE journal SET decision = (SELECT text FROM decisions d WHERE d.key = journal.decision_key)"
        " WHERE decision_key IS NOT NULL"
    )
    return [
        back,
        "ALTER TABLE journal DROP COLUMN decision_key",
        "DROP TABLE decisions",
        "DELETE FROM schema_migrations WHERE version >= 7",
    ]


def schema_5(postgres: bool) -> list[str]:
    """Statements that turn the trace tables back into schema 5's: one `traces` row per leaf, a derived one
    holding only its seq, and schemas 6 and later no longer recorded as applied (schema 7's undone first)."""
    if postgres:
        return [
            *schema_6(postgres=True),
            *(f"ALTER TABLE traces ALTER COLUMN {c} DROP NOT NULL" for c in STORED.split(", ")),
            "ALTER TABLE traces ADD COLUMN seq BIGINT",
            "INSERT INTO traces (idx, seq) SELECT r.idx + g, r.seq + g FROM trace_runs r,"
            " generate_series(0, r.count - 1) AS g",
            "ALTER TABLE traces ADD CONSTRAINT traces_stored_or_derived CHECK ((seq IS NULL AND op_id IS NOT NULL"
            " AND at IS NOT NULL AND mode IS NOT NULL AND payload IS NOT NULL AND leaf_hash IS NOT NULL)"
            " OR (seq IS NOT NULL AND op_id IS NULL AND at IS NULL AND mode IS NULL AND payload IS NULL"
            " AND leaf_hash IS NULL))",
            "ALTER TABLE traces ALTER COLUMN idx ADD GENERATED ALWAYS AS IDENTITY",
            "SELECT setval(pg_get_serial_sequence('traces', 'idx'), (SELECT COALESCE(MAX(idx), 0) + 1 FROM traces),"
            " false)",
            "DROP TABLE trace_runs",
            "DELETE FROM schema_migrations WHERE version >= 6",
        ]
    return [
        *schema_6(postgres=False),
        "CREATE TABLE traces_v5 (idx INTEGER PRIMARY KEY, op_id TEXT, at INTEGER, mode TEXT, payload BLOB,"
        " leaf_hash BLOB, seq INTEGER,"
        " CHECK ((seq IS NULL AND op_id IS NOT NULL AND at IS NOT NULL AND mode IS NOT NULL"
        " AND payload IS NOT NULL AND leaf_hash IS NOT NULL) OR (seq IS NOT NULL AND op_id IS NULL AND at IS NULL"
        " AND mode IS NULL AND payload IS NULL AND leaf_hash IS NULL)))",
        f"INSERT INTO traces_v5 (idx, {STORED}) SELECT idx, {STORED} FROM traces",
        "WITH RECURSIVE leaf (idx, seq, rest) AS (SELECT idx, seq, count - 1 FROM trace_runs"
        " UNION ALL SELECT idx + 1, seq + 1, rest - 1 FROM leaf WHERE rest > 0)"
        " INSERT INTO traces_v5 (idx, seq) SELECT idx, seq FROM leaf",
        "DROP TABLE traces",
        "DROP TABLE trace_runs",
        "ALTER TABLE traces_v5 RENAME TO traces",
        "DELETE FROM schema_migrations WHERE version >= 6",
    ]


def _run_holding(conn: sqlite3.Connection, idx: int) -> tuple[int, int, int] | None:
    return conn.execute(
        "SELECT idx, seq, count FROM trace_runs WHERE idx <= ? AND idx + count > ? ORDER BY idx DESC LIMIT 1",
        (idx, idx),
    ).fetchone()
