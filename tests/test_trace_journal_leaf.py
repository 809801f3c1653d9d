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
from tenge_ledger.core.limits import trace_run_leaves_max
from tenge_ledger.core.records import Transfer
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


def _transfers(env, n: int, prefix: str = "run") -> list:
    return [
        env.wallet.build("halyk", Transfer("halyk", "aigerim", 1 + i % 7), op_id=f"{prefix}-{i}")
        for i in range(n)
    ]


def test_sqlite_trace_runs__a_chunk_of_transfers_is_one_row(sqlite_url, tmp_path) -> None:
    env = build_ledger(sqlite_url, tmp_path / "keys")
    env.open_basic()
    env.wallet.issue("halyk", 10**9, op_id="issue-1")
    results = env.ledger.apply_many(_transfers(env, 1_000), chunk=1_000)
    assert all(r.succeeded for r in results)
    first = env.store.operation("run-0").seq
    leaves = {t.op_id: idx for idx, t in env.store.traces()}
    env.store.close()
    conn = sqlite3.connect(sqlite_url)
    run = conn.execute("SELECT idx, seq, count FROM trace_runs WHERE seq = ?", (first,)).fetchall()
    assert run == [(leaves["run-0"], first, 1_000)] and leaves["run-999"] == leaves["run-0"] + 999
    assert conn.execute("SELECT COUNT(*) FROM traces").fetchone()[0] == 0  # nothing stored for them
    for bad in ("(1000, 1, 0)", "(1000, 0, 1)", f"(1000, 1, {trace_run_leaves_max + 1})"):
        with pytest.raises(sqlite3.IntegrityError):  # a run holds at least one leaf, at most the limit
            conn.execute(f"INSERT INTO trace_runs (idx, seq, count) VALUES {bad}")
    conn.close()


def test_trace_runs__stored_records_between_runs_keep_leaf_order(env) -> None:
    ops = _transfers(env, 6)
    ops[3] = env.wallet.build("aigerim", Transfer("aigerim", "cafe", 10**12), op_id="too-much-2")  # rejected
    before = [idx for idx, _ in env.store.traces()]
    results = env.ledger.apply_many(ops, chunk=1_000)
    assert [r.succeeded for r in results] == [True, True, True, False, True, True]
    after = list(env.store.traces())
    assert [idx for idx, _ in after] == list(range(1, len(before) + 7))
    assert [t.op_id for _, t in after[-6:]] == ["run-0", "run-1", "run-2", "too-much-2", "run-4", "run-5"]
    assert parse_leaf_payload(after[-3][1].payload) is None and parse_leaf_payload(after[-2][1].payload)
    assert list(env.store.traces(after=len(before) + 2)) == after[-4:]  # starting inside a run


def test_trace_size__counts_stored_records_and_runs_alike(env) -> None:
    """A stopped committer's chunks are found by the store's trace size (ledger/service.py), on either store."""
    assert env.store.trace_size() == len(list(env.store.traces()))
    ops = _transfers(env, 6)
    ops[3] = env.wallet.build("aigerim", Transfer("aigerim", "cafe", 10**12), op_id="too-much-3")  # rejected
    before = env.store.trace_size()
    env.ledger.apply_many(ops, chunk=1_000)
    assert env.store.trace_size() == before + 6 == len(list(env.store.traces()))


def test_trace_runs__read_after_any_index_is_the_tail_of_the_whole(env) -> None:
    env.ledger.apply_many(_transfers(env, 40), chunk=15)
    env.wallet.transfer("aigerim", "cafe", 10**12, op_id="too-much-2")
    env.ledger.apply_many(_transfers(env, 10, "more"), chunk=1_000)
    whole = list(env.store.traces())
    for after in range(len(whole) + 1):
        assert list(env.store.traces(after=after)) == whole[after:]


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
    """pay-1..pay-3 applied in one chunk (one run), a rejection (a stored record), then pay-4 (a run of one)."""
    db = str(tmp_path / "l.db")
    ops = tmp_path / "ops.jsonl"
    ops.write_text(
        "".join(
            json.dumps(
                {"id": f"pay-{i}", "kind": "transfer", "payer": "halyk", "payee": "aigerim", "amount": a}
            )
            + "\n"
            for i, a in ((1, "4"), (2, "5"), (3, "6"))
        )
    )
    for args in (
        ("init", "--name", "pilot"),
        ("account", "open", "halyk", "--kind", "bank"),
        ("issue", "halyk", "1000"),
        ("account", "open", "aigerim", "--kind", "person", "--bank", "halyk"),
        ("submit", str(ops)),
        ("transfer", "aigerim", "halyk", "100000", "--id", "too-much"),
        ("transfer", "halyk", "aigerim", "7", "--id", "pay-4"),
    ):
        CliRunner().invoke(cli, ["--db", db, *args])
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM trace_runs WHERE count = 3").fetchone()[0] == 1
    assert conn.execute("SELECT op_id FROM traces").fetchall() == [("too-much",)]
    conn.close()
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


def _run_of(op_id: str) -> str:
    return f"(SELECT r.idx FROM trace_runs r JOIN journal j ON j.op_id = '{op_id}' AND j.seq = r.seq)"


@pytest.mark.parametrize(
    ("change", "found"),
    [
        # an edited run: pay-1..pay-3's leaves name the rows before theirs, the first one another leaf names too
        (f"UPDATE trace_runs SET seq = seq - 1 WHERE idx = {_run_of('pay-1')}", "which trace #3 names too"),
        # a run naming rows the journal does not have
        (f"UPDATE trace_runs SET seq = 999 WHERE idx = {_run_of('pay-4')}",
         "derived from journal entry #999, which the ledger no longer has"),
        # a derived leaf whose journal row was removed
        ("DELETE FROM journal WHERE op_id = 'pay-4'", "which the ledger no longer has: removed"),
        # a run removed: a gap in the leaf indexes, three journal entries without a record
        (f"DELETE FROM trace_runs WHERE idx = {_run_of('pay-1')}", "trace #4..#6 missing"),
        # the last run removed
        (f"DELETE FROM trace_runs WHERE idx = {_run_of('pay-4')}", "(pay-4) has no trace record"),
        # a run's count made smaller: its last leaf is gone
        (f"UPDATE trace_runs SET count = 2 WHERE idx = {_run_of('pay-1')}", "trace #6 missing"),
        # a run's count made larger: its new leaf claims the stored record's index and names pay-4's row
        (f"UPDATE trace_runs SET count = 4 WHERE idx = {_run_of('pay-1')}", "trace #7 (pay-4) appears twice"),
        # a run that names rows other leaves name (overlap), at indexes of its own
        ("INSERT INTO trace_runs (idx, seq, count) SELECT 9, seq, 2 FROM journal WHERE op_id = 'pay-2'",
         "names journal entry #7, which trace #5 names too: inserted"),
        # a run and a stored record claiming the same index
        (f"UPDATE trace_runs SET idx = idx - 1 WHERE idx = {_run_of('pay-4')}", "trace #7 (pay-4) appears twice"),
        # two runs claiming the same indexes
        ("INSERT INTO trace_runs (idx, seq, count) VALUES (5, 3, 1)", "appears twice"),
    ],
)  # fmt: skip
def test_audit_verify__run_tampering_named(pilot, change, found) -> None:
    assert _verify(pilot)[0] == 0
    conn = sqlite3.connect(pilot)
    conn.execute(change)
    conn.commit()
    conn.close()
    code, output = _verify(pilot)
    assert code == 1 and found in output, output
