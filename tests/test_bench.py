"""The apply benchmark's machinery (not its speed): the verifier pool's function, per-op verified flags, and the
report's shape."""

from __future__ import annotations

import dataclasses
import json

from tenge_ledger.bench import format_report, run_apply_benchmark, verify_chunk
from tenge_ledger.core.canonical import canonical_bytes
from tenge_ledger.core.records import Transfer
from tenge_ledger.core.results import ResultCode


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


def test_run_apply_benchmark__small_run_reports_every_figure() -> None:
    report = run_apply_benchmark(transfers=1_000, accounts=20, progress=False)
    for key in (
        "signed_per_s",
        "verified_per_s",
        "raw_sqlite_per_s",
        "cores",
        "ed25519_verify_per_s_per_core",
    ):
        assert report[key] > 0, key
    assert report["verified_vs_raw"] == round(report["verified_per_s"] / report["raw_sqlite_per_s"], 3)
    capacity = report["cores"] * report["ed25519_verify_per_s_per_core"]
    assert report["signed_vs_verify_capacity"] == round(report["signed_per_s"] / capacity, 3)
    json.dumps(report)
    assert "signed" in format_report(report)


def test_bench_cli__json(tmp_path) -> None:
    from click.testing import CliRunner

    from cli.main import cli

    result = CliRunner().invoke(cli, ["bench", "--transfers", "1000", "--accounts", "10", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {
        "signed_per_s",
        "verified_per_s",
        "raw_sqlite_per_s",
        "cores",
        "ed25519_verify_per_s_per_core",
    } <= set(data)
