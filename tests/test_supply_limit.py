"""Money never overflows: circulation is capped below what a signed 64-bit integer holds, an issuance past the
cap is rejected with a result code, and the SQLite schema refuses any sum that turned into a float."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import build_ledger

from tenge_ledger.core import limits
from tenge_ledger.core.errors import InvariantViolation
from tenge_ledger.core.results import ResultCode
from tenge_ledger.ledger.journal import check_journal


def test_issue_past_supply_limit__rejected_nothing_written(env) -> None:
    step = limits.amount_tiyn_max
    issued = 0
    for i in range(limits.supply_tiyn_max // step):
        assert env.wallet.issue("halyk", step, op_id=f"i-{i}").code is ResultCode.ok
        issued += step
    before = env.snapshot()
    result = env.wallet.issue("halyk", 1, op_id="one-too-many")
    assert result.code is ResultCode.limit_exceeded and "circulation" in result.message
    assert env.snapshot() == before
    issued_now, redeemed = env.store.supply()
    assert (issued_now, redeemed) == (issued, 0) and type(issued_now) is int
    assert all(type(b) is int for b in env.store.balances().values())
    env.check()


def test_sum_that_would_overflow__refused_by_the_schema(sqlite_url, tmp_path) -> None:
    env = build_ledger(sqlite_url, tmp_path / "keys")
    env.open_basic()
    env.wallet.issue("halyk", 1_000)
    conn = sqlite3.connect(sqlite_url, isolation_level=None)
    halyk = conn.execute("SELECT id FROM accounts WHERE handle = 'halyk'").fetchone()[0]
    conn.execute("UPDATE balances SET out_tiyn = 9223372036854775000 WHERE account = ?", (halyk,))
    conn.close()
    with pytest.raises(InvariantViolation, match="CHECK constraint"):
        env.wallet.transfer("halyk", "aigerim", 900)
    conn = sqlite3.connect(sqlite_url)
    kinds = {r[0] for r in conn.execute("SELECT typeof(out_tiyn) FROM balances")}
    conn.close()
    assert kinds == {"integer"}
    assert check_journal(env.store).problems[0].startswith("history flows of halyk")
