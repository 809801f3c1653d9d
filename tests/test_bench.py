"""The apply benchmark's machinery (not its speed): the verifier pool's function, per-op verified flags, and the
report's shape."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import sqlite3

import nacl.signing
import pytest
from committer_support import pipelined_calls

from tenge_ledger import bench
from tenge_ledger.bench import format_report, run_apply_benchmark, verify_chunk
from tenge_ledger.core import limits
from tenge_ledger.core.canonical import canonical_bytes
from tenge_ledger.core.records import Transfer
from tenge_ledger.core.results import ResultCode
from tenge_ledger.ledger.journal import check_journal
from tenge_ledger.store.sqlite import SqliteStore


def test_verify_chunk__flags_each_item(env) -> None:
    good = env.wallet.build("halyk", Transfer("halyk", "aigerim", 10), "g")
    bad = dataclasses.replace(good, body=Transfer("halyk", "aigerim", 11))
    key = bytes.fromhex(env.store.account("halyk").public_key)
    items = [
        (canonical_bytes(env.ledger.ledger_id, op), bytes.fromhex(op.signature), key)
        for op in (good, bad, good)
    ]
    assert verify_chunk(items) == [True, False, True]


def test_apply_many__false_flag_still_verified_and_rejected(env) -> None:
    env.wallet.issue("halyk", 1_000)
    good = env.wallet.build("halyk", Transfer("halyk", "aigerim", 10), "g")
    forged = dataclasses.replace(
        env.wallet.build("halyk", Transfer("halyk", "cafe", 10), "f"), signature="00" * 64
    )
    results = env.ledger.apply_many([good, forged], verified=[True, False])
    assert [r.code for r in results] == [ResultCode.ok, ResultCode.bad_signature]
    assert env.balance("cafe") == 0


def test_run_apply_benchmark__small_run_reports_every_figure(capsys) -> None:
    report = run_apply_benchmark(
        transfers=1_000, accounts=20, progress=True, grown=2_000, policy_transfers=1_000, rounds=2
    )
    assert report["rounds"] == 2
    # the two sides of each ratio take turns: every round of (b), (e), (f) and the floor before the next round
    said = [line for line in capsys.readouterr().err.splitlines() if "round" in line]
    turns = [line[:3] for line in said if line[:3] in ("(b)", "(e)", "(f)", "(c)")]
    assert turns == ["(b)", "(e)", "(f)", "(c)"] * 2, said
    assert [line[:3] for line in said[:2]] == ["(a)", "   "] and "verification" in said[1]
    for key in (
        "signed_per_s",
        "verified_per_s",
        "raw_sqlite_per_s",
        "store_write_per_s",
        "cores",
        "ed25519_verify_per_s_per_core",
        "grown_verified_per_s",
        "bytes_per_transfer",
        "verified_policies_per_s",
        "verified_policies_ok",
    ):
        assert report[key] > 0, key

    # ratios are of the unrounded rates, the rates are shown rounded: equal to within the last digit
    def ratio(a: str, b: float) -> object:
        return pytest.approx(report[a] / b, abs=2e-3)

    assert report["grown_vs_fresh"] == ratio("grown_verified_per_s", report["verified_per_s"])
    assert report["verified_vs_raw"] == ratio("verified_per_s", report["raw_sqlite_per_s"])
    assert report["store_write_vs_raw"] == ratio("store_write_per_s", report["raw_sqlite_per_s"])
    capacity = report["cores"] * report["ed25519_verify_per_s_per_core"]
    assert report["signed_vs_verify_capacity"] == ratio("signed_per_s", capacity)
    # (b)'s CPU covers both its processes (a run this small has no committer: one), and the ceiling follows it
    cpu = report["cpu_per_transfer_us"] / 1e6
    assert 0 < cpu < 1e-2
    assert report["signed_vs_verify_capacity_ceiling"] == pytest.approx(
        1 / (1 + cpu * report["ed25519_verify_per_s_per_core"]), abs=2e-3
    )
    assert report["verified_policies_ceiling_vs_raw"] > 0
    # each decision's text is kept once: with a text in every split or routed row (schema 6) it was ~390 bytes
    assert 0 < report["policy_bytes_per_transfer"] < 250
    json.dumps(report)
    text = format_report(report)
    assert "signed" in text and "at most 1 / (1 + (b)'s CPU x verify rate)" in text


def test_bench_cli__json(tmp_path) -> None:
    from click.testing import CliRunner

    from tenge_cli.main import cli

    result = CliRunner().invoke(
        cli,
        [
            "bench",
            "--transfers",
            "1000",
            "--accounts",
            "10",
            "--grown",
            "1000",
            "--policy-transfers",
            "1000",
            "--rounds",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["rounds"] == 1
    assert {
        "signed_per_s",
        "verified_per_s",
        "raw_sqlite_per_s",
        "store_write_per_s",
        "cores",
        "ed25519_verify_per_s_per_core",
    } <= set(data)


@pytest.mark.parametrize("committer", [False, True])
def test_store_write_floor__rewrites_exactly_what_the_ledger_wrote(tmp_path, monkeypatch, committer) -> None:
    """(d) replays the rows of (b) into the starting ledger: the result must be the ledger (b) produced, whether
    (b) wrote them itself or handed them to its committer (as it does from 10,000 operations on)."""
    rng = random.Random(3)
    keys = [nacl.signing.SigningKey(rng.randbytes(32)) for _ in range(6)]
    handles = [f"acct-{i}" for i in range(6)]
    start, applied = str(tmp_path / "start.db"), str(tmp_path / "applied.db")
    ledger_id = bench._make_ledger(start, handles, keys)
    shutil.copy(start, applied)
    ops = bench._transfers(ledger_id, handles, keys, 2_500)  # three chunks: the committer's least
    used = pipelined_calls(monkeypatch)
    if committer:
        monkeypatch.setattr(limits, "committer_operations_min", 0)
    changes: list = []
    bench._apply_verified(applied, ops, record=changes)
    assert bool(used) is committer
    assert sum(len(c.plain_entries) for c in changes) == 2_500
    assert bench._store_write(start, changes) > 0
    a, b = SqliteStore(start), SqliteStore(applied)
    assert a.balances() == b.balances() and a.head() == b.head()
    assert list(a.traces()) == list(b.traces())
    assert check_journal(a).ok


@pytest.mark.parametrize("kept", [False, True])
def test_grow__history_as_the_ledger_keeps_it(tmp_path, kept) -> None:
    """The grown history is what a ledger of that configuration would hold: activity rows only where activity
    is kept, and each bucket's row saying the last minute it moved either way."""
    rng = random.Random(5)
    keys = [nacl.signing.SigningKey(rng.randbytes(32)) for _ in range(4)]
    path = str(tmp_path / "grown.db")
    bench._make_ledger(path, [f"acct-{i:06d}" for i in range(4)], keys)
    if kept:
        store = SqliteStore(path)
        store.rebuild_window_filters(frozenset(), activity=True)
        store.close()
    bench._grow(path, 300)
    conn = sqlite3.connect(path)
    last = dict(
        conn.execute(
            "SELECT a.handle, MAX(j.at) / 60 FROM accounts a JOIN journal j ON a.id IN (j.payer, j.payee)"
            " WHERE a.handle LIKE 'acct-%' GROUP BY a.handle"
        ).fetchall()
    )
    conn.close()
    store = SqliteStore(path)
    try:
        activity = store.activity()
        assert bool(activity) is kept
        flows = store.bucket_flows()
        assert {h: flows[(h, "")].minute for h in last} == last
        if kept:
            assert {h: max(m for a, _, m in activity if a == h) for h in last} == last
    finally:
        store.close()
