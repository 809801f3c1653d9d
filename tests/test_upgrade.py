"""Upgrading a ledger written by schema version 1 (tests/data/v1-ledger.db, written by that code) to the compact
journal of version 2: every balance, account, operation id, signed document, trace leaf and checkpoint survives,
and the upgraded ledger checks clean and goes on applying operations."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from bank_support import fresh_schema, pg_base_url

from tenge_ledger.app import ledger_over
from tenge_ledger.core.records import Transfer
from tenge_ledger.ledger.journal import check_journal
from tenge_ledger.ledger.signing import sign
from tenge_ledger.store import open_store
from tenge_ledger.store.base import SCHEMA_VERSION

V1 = Path(__file__).parent / "data" / "v1-ledger.db"


@pytest.fixture
def v1(tmp_path) -> tuple[str, dict]:
    """A copy of the version 1 ledger, and what its tables held before the upgrade."""
    path = str(tmp_path / "v1.db")
    shutil.copy(V1, path)
    conn = sqlite3.connect(path)
    before = {
        "balances": {
            (a, t): b for a, t, b in conn.execute("SELECT account, tag, balance_tiyn FROM balances") if b
        },
        "accounts": conn.execute("SELECT * FROM accounts ORDER BY handle").fetchall(),
        "operations": conn.execute(
            "SELECT seq, op_id, document, at, entry_hash, prev_hash FROM operations"
        ).fetchall(),
        "postings": conn.execute(
            "SELECT seq, account, tag, amount_tiyn FROM postings ORDER BY seq, idx"
        ).fetchall(),
        "traces": conn.execute("SELECT * FROM traces ORDER BY idx").fetchall(),
        "meta": dict(conn.execute("SELECT key, value FROM meta")),
        "supply": conn.execute("SELECT issued_tiyn, redeemed_tiyn FROM supply").fetchone(),
        "version": conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0],
    }
    conn.close()
    assert before["version"] == 1
    return path, before


def test_upgrade__every_row_survives(v1) -> None:
    path, before = v1
    store = open_store(path)
    try:
        assert store.balances() == before["balances"]
        assert store.supply() == before["supply"]
        assert [
            (a.handle, a.kind.value, a.public_key, a.tier, a.bank, a.status.value) for a in store.accounts()
        ] == [(r[0], r[1], r[2], r[3], r[4], r[6]) for r in before["accounts"]]
        entries = list(store.journal())
        assert [(o.seq, o.op_id, o.document, o.at, o.entry_hash, o.prev_hash) for o, _ in entries] == [
            (seq, op_id, doc, at, bytes(link), bytes(prev))
            for seq, op_id, doc, at, link, prev in before["operations"]
        ]
        assert [(p.seq, p.account, p.tag, p.amount_tiyn) for _, ps in entries for p in ps] == before[
            "postings"
        ]
        assert [(i, t.op_id, t.at, t.mode, t.payload, t.leaf_hash) for i, t in store.traces()] == [
            (r[0], r[1], r[2], r[3], bytes(r[4]), bytes(r[5])) for r in before["traces"]
        ]
        settings = json.loads(before["meta"]["settings"])
        assert store.meta().settings == settings and settings["trace_checkpoints"]
        assert check_journal(store).ok, check_journal(store).problems
    finally:
        store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert {"journal", "legs", "activity", "tag_names"} <= tables
    assert not {"operations", "postings"} & tables


def test_upgrade__split_keeps_its_legs_and_plain_transfers_none(v1) -> None:
    path, _ = v1
    open_store(path).close()
    conn = sqlite3.connect(path)
    legs = dict(
        conn.execute(
            "SELECT j.op_id, COUNT(l.idx) FROM journal j LEFT JOIN legs l ON l.seq = j.seq GROUP BY j.seq"
        )
    )
    # schema 7: each decision's text kept once, every row that had one naming it by its key
    kept, named, texts = conn.execute(
        "SELECT (SELECT COUNT(*) FROM decisions), (SELECT COUNT(*) FROM journal WHERE decision_key IS NOT NULL),"
        " (SELECT COUNT(*) FROM journal WHERE decision IS NOT NULL)"
    ).fetchone()
    conn.close()
    assert 1 <= kept <= named and texts == 0
    assert legs["salary-1"] == 0  # two legs, implied by the row
    assert legs["hold-1"] == 0
    assert sum(1 for n in legs.values() if n == 3) >= 2  # the VAT split and the partial post keep theirs


def test_upgrade__ledger_goes_on_with_history_windows(v1, tmp_path) -> None:
    path, before = v1
    store = open_store(path)
    meta = store.meta()
    ledger = ledger_over(store, clock=lambda: 1_790_000_000)
    history = store.history("aigerim", 50)
    assert history and history[0][1].account == "aigerim"
    # a transfer signed now, after the upgrade, with the key the fixture never kept: verified=True applies it
    # as a bank's pre-checked batch would; the journal chains on from the upgraded head
    op = sign(meta.ledger_id, _op(), _throwaway_key())
    result = ledger.apply(op, verified=True)
    assert result.code.value == "ok", result
    with store.transaction() as tx:
        total, count = tx.window("halyk", "out", 0)
    postings = [p for p in before["postings"] if p[1] == "halyk" and p[3] < 0]
    assert (total, count) == (sum(-p[3] for p in postings) + 100, len(postings) + 1)
    # the key was not halyk's: check finds it, although the pre-checked path journaled it
    assert check_journal(store).problems == [
        "journal entry #28 (after-upgrade): its signature does not verify with halyk's journaled key"
    ]
    assert check_journal(store, signatures=False).ok
    store.close()


def _op():
    from tenge_ledger.core.records import Operation

    return Operation("after-upgrade", "halyk", Transfer("halyk", "aigerim", 100))


def _throwaway_key():
    import nacl.signing

    return nacl.signing.SigningKey.generate()


@pytest.mark.skipif(not pg_base_url(), reason="needs $TENGE_TEST_PG_URL (.ci/run starts a server)")
def test_upgrade__postgres_version_1_schema(v1) -> None:
    """The same version 1 rows, loaded into a PostgreSQL schema of version 1, upgrade there too."""
    import psycopg

    from tenge_ledger.store import postgres

    path, before = v1
    source = sqlite3.connect(path)
    with fresh_schema(pg_base_url()) as url:
        with psycopg.connect(url, autocommit=True) as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                        " applied_at BIGINT NOT NULL)")  # fmt: skip
            postgres.MIGRATIONS[1](cur, "nbk")
            cur.execute("INSERT INTO schema_migrations VALUES (1, '_migration_1', 0)")
            cur.execute("DELETE FROM supply")
            cur.execute("DELETE FROM journal_head")
            for table in ("meta", "accounts", "balances", "operations", "postings", "holds", "tags", "supply",
                          "journal_head", "reports"):  # fmt: skip
                rows = source.execute(f"SELECT * FROM {table}").fetchall()
                if rows:
                    marks = ", ".join(["%s"] * len(rows[0]))
                    cur.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
            rows = source.execute(
                "SELECT op_id, at, mode, payload, leaf_hash FROM traces ORDER BY idx"
            ).fetchall()
            cur.executemany(
                "INSERT INTO traces (op_id, at, mode, payload, leaf_hash) VALUES (%s,%s,%s,%s,%s)", rows
            )
        store = open_store(url)
        try:
            assert store.balances() == before["balances"]
            entries = list(store.journal())
            assert [(o.op_id, o.document, o.entry_hash) for o, _ in entries] == [
                (op_id, doc, bytes(link)) for _, op_id, doc, _, link, _ in before["operations"]
            ]
            assert check_journal(store).ok, check_journal(store).problems
        finally:
            store.close()
    source.close()
