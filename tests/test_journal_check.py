"""check_journal: the hash chain, postings summing to zero, and balances rebuilt from the journal.

Each tamper test edits one row directly in SQLite and expects check_journal to name what it found."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import build_ledger

from tenge_ledger.ledger.journal import check_journal
from tenge_ledger.store import open_store


@pytest.fixture
def tampered(sqlite_url, tmp_path):
    """A SQLite ledger with a few operations, closed; yields (url, sql connection for tampering)."""
    env = build_ledger(sqlite_url, tmp_path / "keys")
    env.open_basic()
    env.wallet.issue("halyk", 100_000, op_id="issue-1")
    env.wallet.transfer("halyk", "aigerim", 2_500, op_id="pay-1")
    env.wallet.transfer("aigerim", "cafe", 1_000, op_id="pay-2")
    env.check()
    env.store.close()
    conn = sqlite3.connect(sqlite_url, isolation_level=None)
    yield sqlite_url, conn
    conn.close()


def _problems(url: str) -> list[str]:
    store = open_store(url)
    try:
        return check_journal(store).problems
    finally:
        store.close()


def _seq(conn, op_id: str) -> int:
    return conn.execute("SELECT seq FROM operations WHERE op_id = ?", (op_id,)).fetchone()[0]


def test_check__clean_ledger_ok(tampered) -> None:
    url, _ = tampered
    assert _problems(url) == []


def test_check__edited_posting_named(tampered) -> None:
    url, conn = tampered
    seq = _seq(conn, "pay-1")
    conn.execute("UPDATE postings SET amount_tiyn = 9999 WHERE seq = ? AND amount_tiyn > 0", (seq,))
    problems = _problems(url)
    text = "\n".join(problems)
    assert f"#{seq} (pay-1)" in text
    assert "does not match its content" in text
    assert "postings sum to" in text
    assert "balance of aigerim" in text


def test_check__posting_moved_between_accounts_named(tampered) -> None:
    url, conn = tampered
    seq = _seq(conn, "pay-2")
    conn.execute("UPDATE postings SET account = 'roads' WHERE seq = ? AND account = 'cafe'", (seq,))
    text = "\n".join(_problems(url))
    assert f"#{seq} (pay-2): its hash does not match" in text


def test_check__edited_balance_named(tampered) -> None:
    url, conn = tampered
    conn.execute("UPDATE balances SET balance_tiyn = balance_tiyn + 1 WHERE account = 'cafe' AND tag = ''")
    problems = _problems(url)
    assert problems == ["balance of cafe [untagged]: stored 1001 tiyn, journal gives 1000 tiyn"]


def test_check__inserted_balance_named(tampered) -> None:
    url, conn = tampered
    conn.execute("INSERT INTO balances (account, tag, balance_tiyn) VALUES ('roads', 'gift', 500)")
    assert any("balance of roads [gift]" in p for p in _problems(url))


def test_check__edited_operation_row_named(tampered) -> None:
    url, conn = tampered
    seq = _seq(conn, "pay-1")
    conn.execute("UPDATE operations SET fields_hash = ? WHERE seq = ?", (bytes(32), seq))
    assert any(f"#{seq} (pay-1)" in p for p in _problems(url))


def test_check__edited_operation_time_named(tampered) -> None:
    url, conn = tampered
    seq = _seq(conn, "issue-1")
    conn.execute("UPDATE operations SET at = at - 86400 WHERE seq = ?", (seq,))
    assert any(f"#{seq} (issue-1): its hash does not match" in p for p in _problems(url))


def test_check__deleted_operation_named(tampered) -> None:
    url, conn = tampered
    seq = _seq(conn, "pay-1")
    conn.execute("DELETE FROM postings WHERE seq = ?", (seq,))
    conn.execute("DELETE FROM operations WHERE seq = ?", (seq,))
    text = "\n".join(_problems(url))
    assert f"expected seq {seq}" in text


def test_check__edited_supply_named(tampered) -> None:
    url, conn = tampered
    conn.execute("UPDATE supply SET issued_tiyn = issued_tiyn + 5")
    assert any("supply counters" in p for p in _problems(url))


def test_check__cli_reports_problems_and_fails(tampered) -> None:
    from click.testing import CliRunner

    from tenge_cli.main import cli

    url, conn = tampered
    conn.execute("UPDATE balances SET balance_tiyn = 1 WHERE account = 'cafe' AND tag = ''")
    result = CliRunner().invoke(cli, ["--db", url, "check"])
    assert result.exit_code != 0
    assert "balance of cafe" in result.output
