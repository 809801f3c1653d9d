"""Schema versions: recorded in a table; newer databases and files that are not tenge ledgers are refused."""

from __future__ import annotations

import sqlite3

import pytest
import trace_tables
from conftest import build_ledger

from tenge_ledger.core.errors import StoreError
from tenge_ledger.store import open_store
from tenge_ledger.store.base import SCHEMA_VERSION


@pytest.fixture
def ledger_file(sqlite_url, tmp_path) -> str:
    env = build_ledger(sqlite_url, tmp_path / "keys")
    env.store.close()
    return sqlite_url


def test_schema_version__recorded(ledger_file) -> None:
    conn = sqlite3.connect(ledger_file)
    rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    conn.close()
    assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))
    assert all(r[1] for r in rows)


def test_schema_version__reopening_applies_nothing_again(ledger_file) -> None:
    open_store(ledger_file).close()
    conn = sqlite3.connect(ledger_file)
    assert conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_schema_version__newer_database_refused(ledger_file) -> None:
    conn = sqlite3.connect(ledger_file)
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)",
        (SCHEMA_VERSION + 1,),
    )
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=rf"schema version {SCHEMA_VERSION + 1}.*upgrade tenge-ledger"):
        open_store(ledger_file)


def test_open__sqlite_file_of_another_program_refused(tmp_path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a tenge ledger"):
        open_store(str(path))
    with pytest.raises(StoreError, match="not a tenge ledger"):
        open_store(str(path), create=True)


def test_open__random_file_refused(tmp_path) -> None:
    path = tmp_path / "random.db"
    path.write_bytes(bytes(range(256)) * 64)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a tenge ledger"):
        open_store(str(path))
    assert path.read_bytes() == before


def test_open__text_file_refused(tmp_path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a database\n" * 100)
    with pytest.raises(StoreError, match="not a tenge ledger"):
        open_store(str(path))


def test_open__missing_file_refused(tmp_path) -> None:
    with pytest.raises(StoreError, match="init"):
        open_store(str(tmp_path / "absent.db"))
    assert not (tmp_path / "absent.db").exists()


def test_initialise__twice_refused(ledger_file, tmp_path) -> None:
    with pytest.raises(StoreError, match="already holds the ledger"):
        build_ledger(ledger_file, tmp_path / "keys2")


def test_schema_4__holds_of_version_3_still_return_to_their_payers(sqlite_url, tmp_path) -> None:
    """Version 4 adds what a sweep does with a hold at its timeout; holds made before it did "void"."""
    env = build_ledger(sqlite_url, tmp_path / "keys")
    env.open_basic()
    assert env.wallet.issue("aigerim", 5_000).succeeded
    assert env.wallet.hold("aigerim", "cafe", 2_000, 60, op_id="old").succeeded
    env.store.close()
    conn = sqlite3.connect(sqlite_url, isolation_level=None)
    trace_tables.to_schema_5(conn)
    conn.execute("ALTER TABLE holds DROP COLUMN on_timeout")  # back to version 3, as an older tenge left it
    conn.execute("DROP TABLE filter_flows")
    conn.execute("DROP TABLE filter_activity")
    conn.execute("DELETE FROM schema_migrations WHERE version >= 4")
    conn.close()
    store = open_store(sqlite_url)
    try:
        assert store.hold("old").on_timeout == "void"
        conn = sqlite3.connect(sqlite_url)
        assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == SCHEMA_VERSION
        conn.close()
    finally:
        store.close()
