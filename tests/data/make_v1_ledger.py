"""Writes tests/data/v1-ledger.db and v1-ledger.json with the code of schema version 1 (commit e90fb37), so the
migration test runs on a ledger that code wrote. Kept for the record; it runs only against that commit."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from conftest import Clock, build_ledger  # noqa: E402

from tenge_ledger.app import ledger_over  # noqa: E402
from tenge_ledger.core.records import AccountKind, Batch, Transfer  # noqa: E402
from tenge_ledger.ledger.journal import check_journal  # noqa: E402
from tenge_ledger.policy.sets import enable, read_sources  # noqa: E402
from tenge_ledger.trace import checkpoint  # noqa: E402


def main() -> None:
    work = Path(tempfile.mkdtemp())
    db = work / "v1-ledger.db"
    env = build_ledger(str(db), work / "keys", Clock())
    env.open_basic()
    w = env.wallet
    w.open_account("miner-1", AccountKind.miner, attrs=(("licence", "aifc-7"),))
    w.open_account("aifc-exchange", AccountKind.exchange)
    w.open_account("kgd-vat", AccountKind.government)
    w.open_account("shop", AccountKind.merchant, bank="halyk", attrs=(("vat", "registered"),))
    enable(env.store, read_sources([HERE.parent.parent / "policies"]), env.clock())
    env.ledger = ledger_over(env.store, env.clock)
    w = env.wallet = type(env.wallet)(env.ledger, env.keystore)
    w.issue("halyk", 50_000_000)
    w.issue("roads", 9_000_000, tag="budget:roads-2026", expires_on="2026-07-01")
    w.transfer("halyk", "aigerim", 1_250_050, op_id="salary-1", memo="Жалақы / salary")
    w.transfer("aigerim", "cafe", 120_000, memo="lunch")
    w.transfer("roads", "cafe", 300_000, tag="budget:roads-2026")
    w.transfer("halyk", "aigerim", 999_999_999_999, op_id="too-much")  # rejected: insufficient funds
    w.transfer("aigerim", "shop", 10_000, memo="vat sale")  # split by the VAT rule: three legs
    env.clock.advance(3600)
    hold = w.hold("halyk", "cafe", 40_000, timeout_s=86_400, op_id="hold-1")
    assert hold.succeeded, hold
    w.post("halyk", "hold-1", amount_tiyn=30_000)
    w.hold("halyk", "cafe", 10_000, timeout_s=600, op_id="hold-2")
    w.void("halyk", "hold-2")
    w.hold("halyk", "cafe", 5_000, timeout_s=60, op_id="hold-3")
    ops = [
        w.build("halyk", Transfer("halyk", "aigerim", 1_000), "batch-a"),
        w.build("halyk", Transfer("halyk", "cafe", 2_000), "batch-b"),
    ]
    env.ledger.apply(w.build("halyk", Batch(tuple(ops)), "batch-1"))
    w.freeze("cafe", reason="court order 12")
    w.seize("cafe", "roads", 500, order="ord-12")
    w.unfreeze("cafe")
    env.clock.advance(40 * 86_400)
    w.sweep(env.clock())
    checkpoint.save(env.store, checkpoint.make(env.store, env.keystore.get("nbk"), env.clock()))
    print(check_journal(env.store).problems)
    env.store.close()
    shutil.copy(db, HERE / "v1-ledger.db")


if __name__ == "__main__":
    main()
