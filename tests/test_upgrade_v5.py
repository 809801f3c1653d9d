"""Upgrading a ledger written by schema version 5 (tests/data/v5-ledger.db, written by that code) to the trace runs
of version 6: every leaf keeps its index and its bytes, so every signed checkpoint still holds; the derived leaves
become runs, the stored records stay; and the ledger goes on appending leaves where the log ended."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from bank_support import fresh_schema, pg_base_url
from click.testing import CliRunner

from tenge_cli.main import cli
from tenge_ledger.app import ledger_over
from tenge_ledger.client.keystore import Keystore
from tenge_ledger.client.wallet import Wallet
from tenge_ledger.ledger.journal import check_journal
from tenge_ledger.store import open_store
from tenge_ledger.store.base import SCHEMA_VERSION
from tenge_ledger.store.entries import leaf_payload
from tenge_ledger.trace import checkpoint as cps
from tenge_ledger.trace import merkle

V5 = Path(__file__).parent / "data" / "v5-ledger.db"
# The v5 ledger's log: 21 applied operations, the rejection inside the submitted chunk, 24 applied, a rejection,
# an access and a journal-head record, one applied, a journal-head record, one applied.
RUNS = [(1, 3, 21), (23, 24, 24), (50, 48, 1), (52, 49, 1)]
STORED = [22, 47, 48, 49, 51]


@pytest.fixture
def v5(tmp_path) -> tuple[str, list[tuple]]:
    """A copy of the version 5 ledger and its keystore, and its leaves as version 5 read them."""
    path = str(tmp_path / "v5.db")
    shutil.copy(V5, path)
    shutil.copytree(f"{V5}.keys", f"{path}.keys")
    for folder, _, files in os.walk(
        f"{path}.keys"
    ):  # git keeps no file modes: the keystores want them private
        os.chmod(folder, 0o700)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o600)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == 5
    rows = conn.execute(
        "SELECT t.idx, t.op_id, t.at, t.mode, t.payload, t.leaf_hash, t.seq, j.op_id, j.at, j.link"
        " FROM traces t LEFT JOIN journal j ON j.seq = t.seq ORDER BY t.idx"
    ).fetchall()
    conn.close()
    return path, [_v5_leaf(r) for r in rows]


def _v5_leaf(row: tuple) -> tuple:
    """(idx, op_id, at, mode, payload, leaf_hash) of a version-5 `traces` row, as that version's store read it."""
    idx, op_id, at, mode, payload, leaf_hash, seq, journal_op_id, journal_at, link = row
    if seq is None:
        return idx, op_id, at, mode, bytes(payload), bytes(leaf_hash)
    data = leaf_payload(seq, bytes(link))
    return idx, journal_op_id, journal_at, "transparent", data, merkle.leaf_hash(data)


def _leaves(store) -> list[tuple]:
    return [(i, t.op_id, t.at, t.mode, t.payload, t.leaf_hash) for i, t in store.traces()]


def _checkpoints_hold(store, leaves: list[tuple]) -> int:
    kept = cps.saved(store)
    for cp in kept:
        assert cp.checkpoint.root == merkle.root([leaf[5] for leaf in leaves[: cp.checkpoint.tree_size]])
    return len(kept)


def _cli(path: str, *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["--db", path, *args])
    return r.exit_code, r.output


def test_schema_6__every_leaf_and_checkpoint_survives(v5) -> None:
    path, before = v5
    assert [leaf[0] for leaf in before] == list(range(1, 53))
    store = open_store(path)
    try:
        assert _leaves(store) == before
        assert _checkpoints_hold(store, before) == 2
        assert check_journal(store).ok, check_journal(store).problems
    finally:
        store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT idx, seq, count FROM trace_runs ORDER BY idx").fetchall() == RUNS
    assert [r[0] for r in conn.execute("SELECT idx FROM traces ORDER BY idx")] == STORED
    assert [r[1] for r in conn.execute("PRAGMA table_info(traces)")] == [
        "idx", "op_id", "at", "mode", "payload", "leaf_hash"
    ]  # fmt: skip
    conn.close()
    code, output = _cli(path, "audit", "verify")
    assert code == 0 and "verified 52 trace records" in output, output


def test_schema_6__ledger_goes_on_after_the_last_leaf(v5) -> None:
    path, before = v5
    assert _cli(path, "transfer", "halyk", "aigerim", "9", "--id", "after-1")[0] == 0
    assert _cli(path, "transfer", "aigerim", "cafe", "99999999", "--id", "after-too-much")[0] == 1
    assert _cli(path, "transfer", "halyk", "aigerim", "10", "--id", "after-2")[0] == 0
    assert _cli(path, "checkpoint")[0] == 0
    store = open_store(path)
    try:
        after = _leaves(store)
        assert after[:52] == before
        assert [(leaf[0], leaf[1]) for leaf in after[52:55]] == [
            (53, "after-1"),
            (54, "after-too-much"),
            (55, "after-2"),
        ]
        assert [leaf[0] for leaf in after] == list(range(1, len(after) + 1))
        assert _checkpoints_hold(store, after) == 3
    finally:
        store.close()
    code, output = _cli(path, "audit", "verify")
    assert code == 0, output


@pytest.mark.skipif(not pg_base_url(), reason="needs $TENGE_TEST_PG_URL (.ci/run starts a server)")
def test_schema_6__postgres(v5) -> None:
    """The same version 5 rows, loaded into a PostgreSQL schema of version 5, upgrade there too."""
    import psycopg

    from tenge_ledger.store import postgres

    path, before = v5
    source = sqlite3.connect(path)
    with fresh_schema(pg_base_url()) as url:
        with psycopg.connect(url, autocommit=True) as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                        " applied_at BIGINT NOT NULL)")  # fmt: skip
            for number in range(1, 6):
                postgres.MIGRATIONS[number](cur, "nbk")
                cur.execute("INSERT INTO schema_migrations VALUES (%s, 'v5', 0)", (number,))
            tables = [r[0] for r in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                if table == "schema_migrations":
                    continue
                names = [r[1] for r in source.execute(f"PRAGMA table_info({table})")]
                rows = source.execute(f"SELECT {', '.join(names)} FROM {table}").fetchall()
                cur.execute(f"DELETE FROM {table}")  # the rows the migrations seed: the file has them
                if rows:
                    marks = ", ".join(["%s"] * len(names))
                    cur.executemany(
                        f"INSERT INTO {table} ({', '.join(names)}) OVERRIDING SYSTEM VALUE VALUES ({marks})",
                        rows,
                    )
        store = open_store(url)
        try:
            assert _leaves(store) == before
            assert _checkpoints_hold(store, before) == 2
            assert check_journal(store).ok, check_journal(store).problems
            ledger = ledger_over(store)
            wallet = Wallet(ledger, Keystore(Path(f"{path}.keys")))
            assert wallet.transfer("halyk", "aigerim", 900, op_id="after-1").succeeded
            assert not wallet.transfer("aigerim", "cafe", 10**10, op_id="after-too-much").succeeded
            assert wallet.transfer("halyk", "aigerim", 1_000, op_id="after-2").succeeded
            after = _leaves(store)
            assert after[:52] == before
            assert [(leaf[0], leaf[1]) for leaf in after[52:]] == [
                (53, "after-1"), (54, "after-too-much"), (55, "after-2")
            ]  # fmt: skip
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT idx, seq, count FROM trace_runs ORDER BY idx").fetchall() == [
                    *RUNS, (53, 50, 1), (55, 51, 1)
                ]  # fmt: skip
        finally:
            store.close()
    source.close()
