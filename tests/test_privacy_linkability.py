"""Linkability: pseudonyms are stable within an epoch and differ across epochs; below-threshold tiered payments
get one-time tokens that never repeat; the monthly anonymity budget ends anonymity."""

from __future__ import annotations

from tenge_ledger.lab import sandbox
from tenge_ledger.privacy.modes.base import epoch_s_default
from tenge_ledger.privacy.modes.tiered import budget_tiyn_month_default, threshold_tiyn_default


def test_pseudonyms__stable_within_an_epoch_different_across(tmp_path):
    box = sandbox.make(tmp_path, "pseudonymous")
    box.pay("alice", "bob", 100, "e1a")
    box.pay("alice", "bob", 200, "e1b")
    box.now[0] += epoch_s_default
    box.pay("alice", "bob", 300, "e2a")
    fma = {op: box.view(op, "fma").fields for op in ("e1a", "e1b", "e2a")}
    assert fma["e1a"]["payer"].level == "pseudonym"
    assert fma["e1a"]["payer"].value == fma["e1b"]["payer"].value
    assert fma["e1a"]["payee"].value == fma["e1b"]["payee"].value
    assert fma["e1a"]["payer"].value != fma["e2a"]["payer"].value
    assert fma["e1a"]["payee"].value != fma["e2a"]["payee"].value
    assert fma["e1a"]["payer"].value != fma["e1a"]["payee"].value


def test_pseudonyms__the_bank_reidentifies_its_customers_only(tmp_path):
    box = sandbox.make(tmp_path, "pseudonymous")
    box.pay("alice", "bob", 100, "p1")
    b1 = box.view("p1", "bank:b1").fields
    assert (b1["payer"].level, b1["payer"].value) == ("clear", "alice")
    assert b1["payee"].level == "pseudonym"
    b2 = box.view("p1", "bank:b2").fields
    assert (b2["payee"].level, b2["payee"].value) == ("clear", "bob")
    assert b2["payer"].level == "pseudonym"


def test_tiered_small_payments__tokens_all_distinct(tmp_path):
    box = sandbox.make(tmp_path, "tiered")
    for i in range(8):
        box.pay("alice", "bob", 1_000 + i, f"s{i}")
    for role in ("central_bank", "fma"):
        payers = [box.view(f"s{i}", role).fields["payer"] for i in range(8)]
        payees = [box.view(f"s{i}", role).fields["payee"] for i in range(8)]
        assert {p.level for p in payers + payees} == {"one_time"}
        assert len({p.value for p in payers}) == 8 and len({p.value for p in payees}) == 8
    assert box.view("s0", "bank:b1").fields["payer"].value == "alice"


def test_tiered_budget__exhausted_payments_are_identified(tmp_path):
    box = sandbox.make(tmp_path, "tiered")
    amount = threshold_tiyn_default - 1
    n = budget_tiyn_month_default // amount
    for i in range(n + 2):
        box.pay("alice", "bob", amount, f"b{i}")
    variants = [box.view(f"b{i}", "fma").variant for i in range(n + 2)]
    assert variants[:n] == ["tiered.small"] * n
    assert variants[n:] == ["tiered.large"] * 2
    assert box.view(f"b{n}", "fma").fields["payer"].value == "alice"
    assert box.view(f"b{n}", "central_bank").fields["payer"].level == "pseudonym"


def test_tiered_budget__survives_a_restart(tmp_path):
    """The budget is seeded from the journal when a new sink meets the payer, so a restart does not reset it."""
    from tenge_ledger.app import ledger_over
    from tenge_ledger.client.wallet import Wallet

    box = sandbox.make(tmp_path, "tiered")
    amount = threshold_tiyn_default - 1
    n = budget_tiyn_month_default // amount
    for i in range(n):
        box.pay("alice", "bob", amount, f"r{i}")
    reopened = ledger_over(box.store, clock=lambda: box.now[0])
    box.ledger, box.wallet = reopened, Wallet(reopened, box.keystore)
    box.pay("alice", "bob", amount, "after")
    assert box.view("after", "fma").variant == "tiered.large"


def test_pseudonyms__account_opened_in_the_same_chunk_uses_its_own_bank(tmp_path):
    """An account opened and paid in one chunk is pseudonymised under its bank's key, not the central bank's."""
    from tenge_ledger.core.records import AccountKind, Issue, OpenAccount, Operation, Transfer
    from tenge_ledger.ledger.signing import public_key_hex, sign

    box = sandbox.make(tmp_path, "pseudonymous")
    ledger, keys = box.ledger, box.keystore
    dana_key = keys.create("dana")
    cb = keys.get("nbk")
    ops = [
        sign(ledger.ledger_id, Operation("open-dana", "nbk", OpenAccount(
            "dana", AccountKind.person, public_key_hex(dana_key), 3, "b2")), cb),
        sign(ledger.ledger_id, Operation("fund-dana", "nbk", Issue("dana", 500)), cb),
        sign(ledger.ledger_id, Operation("dana-pays", "dana", Transfer("dana", "alice", 100)), dana_key),
    ]  # fmt: skip
    assert [r.code.value for r in ledger.apply_many(ops)] == ["ok", "ok", "ok"]
    seen_by_b2 = box.view("dana-pays", "bank:b2").fields
    assert (seen_by_b2["payer"].level, seen_by_b2["payer"].value) == ("clear", "dana")
    assert box.view("dana-pays", "central_bank").fields["payer"].level == "pseudonym"
