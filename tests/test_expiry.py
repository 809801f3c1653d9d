"""Expiring tagged money: a sweep on or after the expiry date returns it to the central bank."""

from __future__ import annotations

from tenge_ledger.core.canonical import date_start
from tenge_ledger.core.results import ResultCode


def test_sweep__before_expiry_keeps_money(env) -> None:
    env.wallet.issue("roads", 5_000, tag="b", expires_on="2027-01-01")
    assert env.wallet.sweep(date_start("2027-01-01") - 1).code is ResultCode.ok
    assert env.balance("roads", "b") == 5_000


def test_sweep__on_expiry_returns_to_central_bank(env) -> None:
    env.wallet.issue("roads", 5_000, tag="b", expires_on="2027-01-01")
    env.wallet.transfer("roads", "halyk", 1_000, tag="b")
    env.wallet.issue("roads", 700)  # untagged money is untouched
    result = env.wallet.sweep(date_start("2027-01-01"))
    assert result.code is ResultCode.ok and "1 expired tags" in result.message
    assert env.balance("roads", "b") == 0 and env.balance("halyk", "b") == 0
    assert env.balance("roads") == 700
    issued, redeemed = env.store.supply()
    assert (issued, redeemed) == (5_700, 5_000)
    assert -sum(env.store.balances("nbk").values()) == issued - redeemed
    env.check()


def test_sweep__expired_tag_cannot_be_issued_or_spent_again(env) -> None:
    env.wallet.issue("roads", 5_000, tag="b", expires_on="2027-01-01")
    env.clock.now = date_start("2027-01-02")
    assert env.wallet.issue("roads", 1, tag="b").code is ResultCode.tag_expired


def test_sweep__frozen_holder_still_swept(env) -> None:
    env.wallet.issue("roads", 5_000, tag="b", expires_on="2027-01-01")
    env.wallet.freeze("roads")
    assert env.wallet.sweep(date_start("2027-06-01")).code is ResultCode.ok
    assert env.balance("roads", "b") == 0


def test_sweep__twice_is_harmless(env) -> None:
    env.wallet.issue("roads", 5_000, tag="b", expires_on="2027-01-01")
    env.wallet.sweep(date_start("2027-01-01"))
    before = env.snapshot()[:2]
    assert env.wallet.sweep(date_start("2027-01-02")).code is ResultCode.ok
    assert env.snapshot()[:2] == before


def test_issue__expiry_in_the_past_refused(env) -> None:
    assert env.wallet.issue("roads", 1, tag="old", expires_on="2026-05-01").code is ResultCode.tag_expired
