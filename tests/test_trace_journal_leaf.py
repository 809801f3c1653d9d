"""Transparent mode: an applied operation's trace leaf is derived from its journal row (trace/journal_leaf.py).
The log keeps only the row's seq; the leaf commits to the row through its chain link; a rejection, which has
no journal row, keeps its stored record."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner
from conftest import build_ledger
from journal_rewrite import rechain

from tenge_cli.main import cli
from tenge_ledger.privacy.views import stored_docs
from tenge_ledger.store import open_store
from tenge_ledger.trace import merkle
from tenge_ledger.trace.journal_leaf import leaf_payload, parse_leaf_payload


@pytest.fixture
def env(store_url, tmp_path):
    env = build_ledger(store_url, tmp_path / "keys")
    env.open_basic()
    env.wallet.issue("halyk", 100_000, op_id="issue-1")
    env.wallet.transfer("halyk", "aigerim", 2_500, op_id="pay-1", memo="rent")
    env.wallet.transfer("aigerim", "cafe", 10**9, op_id="too-much")  # rejected: no journal row
    env.wallet.hold("halyk", "cafe", 500, timeout_s=600, op_id="hold-1")
    env.wallet.post("halyk", "hold-1", amount_tiyn=300, op_id="post-1")
    yield env
    env.store.close()


def _records(store) -> dict[str, tuple[int, object]]:
    return {t.op_id: (idx, t) for idx, t in store.traces()}


def test_applied_operation__leaf_is_its_journal_rows_seq_and_link(env) -> None:
    records = _records(env.store)
    ops = {op.op_id: op for op, _ in env.store.journal()}
    for op_id in ("issue-1", "pay-1", "hold-1", "post-1"):
        _, t = records[op_id]
        op = ops[op_id]
        assert parse_leaf_payload(t.payload) == (op.seq, op.entry_hash)
        assert t.payload == leaf_payload(op.seq, op.entry_hash)
        assert t.leaf_hash == merkle.leaf_hash(t.payload)
        assert (t.at, t.mode) == (op.at, "transparent")


def test_rejected_operation__keeps_its_stored_record(env) -> None:
    _, t = _records(env.store)["too-much"]
    assert parse_leaf_payload(t.payload) is None
    record = json.loads(t.payload)
    record = record.get("record", record)  # the privacy sink's envelope, or the plain sink's record
    assert record["code"] == "insufficient_funds" and record["amount_tiyn"] == 10**9


def test_derived_record__content_read_from_the_journal(env) -> None:
    records = _records(env.store)
    docs = dict(stored_docs(env.store, [records["pay-1"], records["post-1"]]))
    pay = docs[records["pay-1"][0]]["record"]
    assert (pay["payer"], pay["payee"], pay["amount_tiyn"], pay["memo"], pay["code"]) == (
        "halyk", "aigerim", 2_500, "rent", "ok"
    )  # fmt: skip
    assert sorted(p[2] for p in pay["postings"]) == [-2_500, 2_500]
    post = docs[records["post-1"][0]]["record"]
    assert (post["payee"], post["amount_tiyn"]) == ("cafe", 300)  # out of the holds account to the payee


def test_sqlite_trace_row__holds_only_the_seq(sqlite_url, tmp_path) -> None:
    env = build_ledger(sqlite_url, tmp_path / "keys")
    env.open_basic()
    env.wallet.issue("halyk", 100_000, op_id="issue-1")
    seq = env.store.operation("issue-1").seq
    env.store.close()
    conn = sqlite3.connect(sqlite_url)
    rows = conn.execute("SELECT op_id, at, mode, payload, leaf_hash, seq FROM traces WHERE seq = ?", (seq,))
    assert rows.fetchall() == [(None, None, None, None, None, seq)]
    with pytest.raises(sqlite3.IntegrityError):  # a row is stored or derived, never half of each
        conn.execute("INSERT INTO traces (op_id, seq) VALUES ('x', 1)")
    conn.close()


def test_consistent_journal_rewrite__changes_the_derived_leaf_and_the_root(sqlite_url, tmp_path) -> None:
    env = build_ledger(sqlite_url, tmp_path / "keys")
    env.open_basic()
    env.wallet.issue("halyk", 100_000, op_id="issue-1")
    env.wallet.transfer("halyk", "aigerim", 2_500, op_id="pay-1")
    seq = env.store.operation("pay-1").seq
    before = [t.leaf_hash for _, t in env.store.traces()]
    env.store.close()
    # The operator changes the row's time and recomputes every link: the journal's own chain still holds.
    at = sqlite3.connect(sqlite_url).execute("SELECT at FROM journal WHERE seq = ?", (seq,)).fetchone()[0]
    rechain(sqlite_url, seq, "at", at + 1)
    store = open_store(sqlite_url)
    after = [t.leaf_hash for _, t in store.traces()]
    store.close()
    assert len(after) == len(before) and after != before
    assert merkle.root(after) != merkle.root(before)  # a checkpoint or witness of the old tree catches it


@pytest.fixture
def pilot(tmp_path) -> str:
    db = str(tmp_path / "l.db")
    for args in (
        ("init", "--name", "pilot"),
        ("account", "open", "halyk", "--kind", "bank"),
        ("issue", "halyk", "1000"),
        ("account", "open", "aigerim", "--kind", "person", "--bank", "halyk"),
        ("transfer", "halyk", "aigerim", "4", "--id", "pay-1"),
        ("transfer", "halyk", "aigerim", "5", "--id", "pay-2"),
    ):
        assert CliRunner().invoke(cli, ["--db", db, *args]).exit_code == 0
    return db


def test_trace_view__derived_records_shown_in_clear_to_the_fma(pilot) -> None:
    db = pilot
    r = CliRunner().invoke(cli, ["--db", db, "--json", "trace", "view", "--as", "fma"])
    assert r.exit_code == 0, r.output
    pay = next(v for v in json.loads(r.output) if v["op_id"] == "pay-1")
    assert pay["code"] == "ok" and pay["kind"] == "transfer"
    assert {f: pay["fields"][f]["value"] for f in ("payer", "payee", "amount")} == {
        "payer": "halyk", "payee": "aigerim", "amount": 400
    }  # fmt: skip


def _verify(db: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["--db", db, "audit", "verify"])
    return r.exit_code, r.output


@pytest.mark.parametrize(
    ("change", "found"),
    [
        # the leaf names pay-1's row a second time instead of pay-2's
        ("UPDATE traces SET seq = seq - 1 WHERE seq = (SELECT seq FROM journal WHERE op_id = 'pay-2')",
         "reordered"),
        # the leaf names a row the journal does not have
        ("UPDATE traces SET seq = 999 WHERE seq = (SELECT seq FROM journal WHERE op_id = 'pay-2')",
         "not a trace record"),
        # pay-2's leaf removed, the later ones moved up
        ("DELETE FROM traces WHERE seq = (SELECT seq FROM journal WHERE op_id = 'pay-2')", "no trace record"),
    ],
)  # fmt: skip
def test_audit_verify__derived_row_tampering_named(pilot, change, found) -> None:
    assert _verify(pilot)[0] == 0
    conn = sqlite3.connect(pilot)
    conn.execute(change)
    conn.commit()
    conn.close()
    code, output = _verify(pilot)
    assert code == 1 and found in output, output
