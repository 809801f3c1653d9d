"""A writer SIGKILLed in the middle of a unit leaves the ledger with the whole unit or none of it."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import build_ledger
from crash_writer import ACCOUNTS, UNIT_OPERATIONS

from tenge_ledger.core.records import AccountKind
from tenge_ledger.ledger.journal import check_journal
from tenge_ledger.store import open_store

HERE = Path(__file__).parent


def _units(url: str) -> Counter:
    conn = sqlite3.connect(url)
    try:
        rows = conn.execute("SELECT op_id FROM journal WHERE op_id LIKE 'u%'").fetchall()
    finally:
        conn.close()
    return Counter(int(op_id[1:].split("-")[0]) for (op_id,) in rows)


@pytest.mark.parametrize("delay_s", [0.0, 0.013, 0.037])
def test_sigkill_mid_unit__whole_unit_or_none(sqlite_url, tmp_path, delay_s) -> None:
    env = build_ledger(sqlite_url, tmp_path / "keys")
    for i in range(ACCOUNTS):
        assert env.wallet.open_account(f"a{i}", AccountKind.exchange).succeeded
        assert env.wallet.issue(f"a{i}", 10**9).succeeded
    env.store.close()
    child = subprocess.Popen(
        [sys.executable, str(HERE / "crash_writer.py"), sqlite_url],
        stdout=subprocess.PIPE,
        cwd=HERE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])},
    )
    try:
        committed = [
            int(child.stdout.readline()) for _ in range(3)
        ]  # three units are in: writing is under way
        time.sleep(delay_s + random.random() * 0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    units = _units(sqlite_url)
    for unit in committed:
        assert units[unit] in (UNIT_OPERATIONS, UNIT_OPERATIONS + 1)
    for unit, count in units.items():
        whole = UNIT_OPERATIONS if unit % 2 == 0 else UNIT_OPERATIONS + 1  # a batch unit adds its own entry
        assert count == whole, f"unit {unit} has {count} of {whole} operations"
    assert sorted(units) == list(range(len(units)))  # units commit in order, none skipped
    store = open_store(sqlite_url)
    try:
        # the writer applies unsigned operations as pre-checked (verified=True): this test is about atomicity,
        # so everything but the signatures is re-derived (tests/test_tamper.py finds such signatures)
        found = check_journal(store, signatures=False)
        assert found.ok, found.problems
        issued, redeemed = store.supply()
        assert sum(store.balances().values()) == 0
        assert (issued, redeemed) == (ACCOUNTS * 10**9, 0)
    finally:
        store.close()
