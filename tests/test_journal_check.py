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
    env.wallet.hold("halyk", "cafe", 500, timeout_s=600, op_id="hold-1")
    env.wallet.post("halyk", "hold-1", amount_tiyn=300, op_id="post-1")  # three legs: stored in `legs`
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
    return conn.execute("SELECT seq FROM journal WHERE op_id = ?", (op_id,)).fetchone()[0]


def _id(conn, handle: str) -> int:
    return conn.execute("SELECT id FROM accounts WHERE handle = ?", (handle,)).fetchone()[0]


def test_check__clean_ledger_ok(tampered) -> None:
    url, _ = tampered
    assert _problems(url) == []


def test_check__edited_amount_named(tampered) -> None:
    url, conn = tampered
    seq = _seq(conn, "pay-1")
    conn.execute("UPDATE journal SET amount = 9999 WHERE seq = ?", (seq,))
    text = "\n".join(_problems(url))
    assert f"#{seq} (pay-1): its hash does not match its content" in text
    assert "balance of aigerim" in text


def test_check__edited_leg_named(tampered) -> None:
    url, conn = tampered
    seq = _seq(conn, "post-1")
    conn.execute("UPDATE legs SET amount = amount + 1 WHERE seq = ? AND idx = 1", (seq,))
    text = "\n".join(_problems(url))
    assert f"#{seq} (post-1): its hash does not match its content" in text
    assert f"#{seq} (post-1): postings sum to 1, not 0" in text


def test_check__posting_moved_between_accounts_named(tampered) -> None:
    url, conn = tampered
    seq = _seq(conn, "pay-2")
    conn.execute("UPDATE journal SET payee = ? WHERE seq = ?", (_id(conn, "roads"), seq))
    text = "\n".join(_problems(url))
    assert f"#{seq} (pay-2): its hash does not match" in text


def test_check__edited_balance_named(tampered) -> None:
    url, conn = tampered
    cafe = _id(conn, "cafe")
    conn.execute("UPDATE balances SET balance_tiyn = balance_tiyn + 1 WHERE account = ? AND tag = 0", (cafe,))
    problems = _problems(url)
    assert problems == ["balance of cafe [untagged]: stored 1301 tiyn, journal gives 1300 tiyn"]


def test_check__inserted_balance_named(tampered) -> None:
    url, conn = tampered
    conn.execute("INSERT INTO tag_names (id, tag) VALUES (99, 'gift')")
    conn.execute("INSERT INTO balances VALUES (?, 99, 500, 0, 0, 0, 0, 0)", (_id(conn, "roads"),))
    assert any("balance of roads [gift]" in p for p in _problems(url))


def test_check__edited_signed_field_named(tampered) -> None:
    url, conn = tampered
    seq = _seq(conn, "pay-1")
    conn.execute("""UPDATE journal SET body = '{"memo":"forged"}' WHERE seq = ?""", (seq,))
    assert any(f"#{seq} (pay-1): its hash does not match" in p for p in _problems(url))


def test_check__edited_signature_named(tampered) -> None:
    url, conn = tampered
    seq = _seq(conn, "pay-1")
    conn.execute("UPDATE journal SET signature = ? WHERE seq = ?", (bytes(64), seq))
    assert any(f"#{seq} (pay-1): its hash does not match" in p for p in _problems(url))


def test_check__edited_operation_time_named(tampered) -> None:
    url, conn = tampered
    seq = _seq(conn, "issue-1")
    conn.execute("UPDATE journal SET at = at - 86400 WHERE seq = ?", (seq,))
    assert any(f"#{seq} (issue-1): its hash does not match" in p for p in _problems(url))


def test_check__deleted_operation_named(tampered) -> None:
    url, conn = tampered
    seq = _seq(conn, "pay-1")
    conn.execute("DELETE FROM journal WHERE seq = ?", (seq,))
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
    conn.execute("UPDATE balances SET balance_tiyn = 1 WHERE account = ? AND tag = 0", (_id(conn, "cafe"),))
    result = CliRunner().invoke(cli, ["--db", url, "check"])
    assert result.exit_code != 0
    assert "balance of cafe" in result.output


def test_check__edited_history_flow_named(tampered) -> None:
    url, conn = tampered
    conn.execute(
        "UPDATE balances SET out_tiyn = out_tiyn + 7 WHERE account = ? AND tag = 0", (_id(conn, "aigerim"),)
    )
    problems = _problems(url)
    assert len(problems) == 1 and problems[0].startswith("history flows of aigerim [untagged]: stored [1007,")


# Reads unfiltered history windows, so the ledger keeps their `activity` snapshots while it is enabled.
DAILY_COUNT = 'rule "busy"\n  on transfer\n  when payer.out_count(24h) > 100\n  report fma "busy payer"\n'


@pytest.fixture
def tampered_windows(sqlite_url, tmp_path):
    """As `tampered`, with a policy set enabled whose windows read the activity snapshots."""
    from tenge_ledger.policy.sets import enable

    env = build_ledger(sqlite_url, tmp_path / "keys")
    env.open_basic()
    enable(env.store, {"busy.policy": DAILY_COUNT}, env.clock())
    env.wallet.issue("halyk", 100_000, op_id="issue-1")
    env.wallet.transfer("halyk", "aigerim", 2_500, op_id="pay-1")
    env.clock.advance(120)
    env.wallet.transfer("halyk", "cafe", 1_000, op_id="pay-2")
    env.check()
    env.store.close()
    conn = sqlite3.connect(sqlite_url, isolation_level=None)
    yield sqlite_url, conn
    conn.close()


def test_check__edited_or_deleted_activity_named(tampered_windows) -> None:
    url, conn = tampered_windows
    assert conn.execute("SELECT COUNT(*) FROM activity").fetchone()[0] >= 4
    halyk = _id(conn, "halyk")
    minute = conn.execute("SELECT MAX(minute) FROM activity WHERE account = ?", (halyk,)).fetchone()[0]
    conn.execute(
        "UPDATE activity SET in_count = in_count + 1 WHERE account = ? AND minute = ?", (halyk, minute)
    )
    assert any(p.startswith(f"activity of halyk [untagged] at minute {minute}") for p in _problems(url))
    conn.execute("DELETE FROM activity WHERE account = ?", (halyk,))
    assert any("activity of halyk [untagged]" in p and "stored None" in p for p in _problems(url))


def test_check__activity_row_where_none_is_kept_named(tampered) -> None:
    url, conn = tampered
    assert conn.execute("SELECT COUNT(*) FROM activity").fetchone()[0] == 0  # no set reads windows
    conn.execute("INSERT INTO activity SELECT account, tag, minute, 0, 0, 0, 0 FROM balances LIMIT 1")
    problems = _problems(url)
    assert len(problems) == 1 and "but the ledger does not keep activity" in problems[0], problems


def test_check__edited_decision_or_policy_version_named(sqlite_url, tmp_path) -> None:
    """The chain link (version 2) covers what the ledger decided: the stored decision and the policy version."""
    from tenge_ledger.app import ledger_over
    from tenge_ledger.client.wallet import Wallet
    from tenge_ledger.core.records import AccountKind
    from tenge_ledger.policies import shipped_policies
    from tenge_ledger.policy.sets import enable, read_sources

    env = build_ledger(sqlite_url, tmp_path / "keys")
    env.open_basic()
    w = env.wallet
    assert w.open_account(
        "shop", AccountKind.merchant, bank="halyk", attrs=(("vat", "registered"),)
    ).succeeded
    assert w.open_account("kgd-vat", AccountKind.agency).succeeded
    enable(env.store, read_sources([shipped_policies()]), env.clock())
    w = Wallet(ledger_over(env.store, env.clock), env.keystore)
    assert w.issue("aigerim", 100_000, op_id="fund").succeeded
    assert w.transfer("aigerim", "shop", 10_000, op_id="sale").succeeded  # split by the VAT rule
    assert w.transfer("aigerim", "shop", 25_000, op_id="sale-2").succeeded  # split the same way
    env.store.close()
    conn = sqlite3.connect(sqlite_url, isolation_level=None)
    sale, fund = _seq(conn, "sale"), _seq(conn, "fund")
    assert conn.execute("SELECT COUNT(*), MAX(length(text)) > 100 FROM decisions").fetchone() == (1, 1)
    assert (
        conn.execute("SELECT COUNT(DISTINCT decision_key) FROM journal WHERE op_id LIKE 'sale%'").fetchone()[
            0
        ]
        == 1
    )
    # the decision's text is kept once, in `decisions`; the row keeps its key
    assert conn.execute(
        "SELECT decision IS NULL, length(decision_key), policy FROM journal WHERE seq = ?", (sale,)
    ).fetchone() == (1, 16, 1)
    assert _problems(sqlite_url) == []
    conn.execute("UPDATE decisions SET text = replace(text, 'vat', 'tax')")
    found = _problems(sqlite_url)
    assert any(f"#{sale} (sale): its hash does not match its content" in p for p in found), found
    assert any("kept under a key that is not its text's" in p for p in found), found
    conn.execute("UPDATE decisions SET text = replace(text, 'tax', 'vat')")
    conn.execute("INSERT INTO decisions (key, text) VALUES (zeroblob(16), '{}')")
    assert any("decision 000000" in p and "no journal row names it" in p for p in _problems(sqlite_url))
    conn.execute("DELETE FROM decisions WHERE key = zeroblob(16)")
    assert _problems(sqlite_url) == []
    conn.execute("UPDATE journal SET policy = NULL WHERE seq = ?", (fund,))
    assert any(f"#{fund} (fund): its hash does not match its content" in p for p in _problems(sqlite_url))


def test_check__edited_hold_and_account_status_named_field_by_field(tampered) -> None:
    """A stored hold or account that differs from the journal's is shown by the fields that differ, as a reader
    wants them (`status=pending`), not as a record's or an enum's repr."""
    url, conn = tampered
    conn.execute("UPDATE holds SET status = 'pending' WHERE hold_id = 'hold-1'")
    conn.execute("UPDATE accounts SET status = 'frozen' WHERE handle = 'cafe'")
    text = "\n".join(_problems(url))
    assert "hold hold-1: stored status='pending', journal gives status='posted'" in text, text
    assert "accounts row of cafe: stored status=frozen, journal gives status=active" in text, text
    assert "HoldRecord(" not in text and "<AccountStatus" not in text
