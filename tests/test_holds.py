"""Pending transfers (holds / escrow): posted fully or partly, voided, or timed out by a sweep."""

from __future__ import annotations

import pytest

from tenge_ledger.core.results import ResultCode


@pytest.fixture
def held(env):
    env.wallet.issue("halyk", 10_000)
    result = env.wallet.hold("halyk", "cafe", 4_000, 3_600, releaser="roads", op_id="h1")
    assert result.code is ResultCode.ok
    return env


def test_hold__money_leaves_payer_into_escrow(held) -> None:
    assert held.balance("halyk") == 6_000
    assert held.balance("@holds") == 4_000
    assert held.balance("cafe") == 0
    (hold,) = held.store.holds("pending")
    assert (hold.hold_id, hold.releaser, hold.deadline) == ("h1", "roads", held.clock.now + 3_600)
    assert held.store.hold("h1") == hold and held.store.hold("nope") is None
    assert held.wallet.releaser_of("h1") == "roads" and held.wallet.releaser_of("nope") is None
    held.check()


def test_hold__insufficient_funds(env) -> None:
    env.wallet.issue("halyk", 100)
    assert env.wallet.hold("halyk", "cafe", 101, 60).code is ResultCode.insufficient_funds
    assert env.store.holds() == []


def test_post__full(held) -> None:
    assert held.wallet.post("roads", "h1").code is ResultCode.ok
    assert (held.balance("cafe"), held.balance("@holds"), held.balance("halyk")) == (4_000, 0, 6_000)
    assert held.store.holds()[0].status == "posted"
    held.check()


def test_post__partial_returns_rest(held) -> None:
    result = held.wallet.post("roads", "h1", 2_500)
    assert result.code is ResultCode.ok
    assert (held.balance("cafe"), held.balance("@holds"), held.balance("halyk")) == (2_500, 0, 7_500)
    held.check()


def test_post__more_than_held(held) -> None:
    assert held.wallet.post("roads", "h1", 4_001).code is ResultCode.hold_amount_exceeded
    assert held.balance("@holds") == 4_000


def test_post__twice(held) -> None:
    held.wallet.post("roads", "h1")
    assert held.wallet.post("roads", "h1").code is ResultCode.hold_not_pending


def test_post__wrong_signer(held) -> None:
    before = held.snapshot()
    assert held.wallet.post("halyk", "h1").code is ResultCode.signer_not_allowed  # payer is not the releaser
    assert held.wallet.post("cafe", "h1").code is ResultCode.signer_not_allowed  # payee cannot post to itself
    assert held.snapshot() == before


def test_void__by_releaser_or_payee(held) -> None:
    assert held.wallet.void("halyk", "h1").code is ResultCode.signer_not_allowed
    assert held.wallet.void("cafe", "h1").code is ResultCode.ok
    assert (held.balance("halyk"), held.balance("@holds")) == (10_000, 0)
    assert held.store.holds()[0].status == "voided"
    assert held.wallet.post("roads", "h1").code is ResultCode.hold_not_pending
    held.check()


def test_post__unknown_hold(env) -> None:
    assert env.wallet.post("halyk", "nope").code is ResultCode.hold_not_found


def test_post__after_deadline_refused(held) -> None:
    held.clock.advance(3_600)
    assert held.wallet.post("roads", "h1").code is ResultCode.hold_not_pending
    assert held.balance("@holds") == 4_000


def test_sweep__times_out_hold_back_to_payer(held) -> None:
    assert held.wallet.sweep(held.clock.now + 3_599).code is ResultCode.ok
    assert held.balance("@holds") == 4_000  # not due yet
    held.clock.advance(3_600)
    assert held.wallet.sweep(held.clock.now).code is ResultCode.ok
    assert (held.balance("halyk"), held.balance("@holds")) == (10_000, 0)
    assert held.store.holds()[0].status == "expired"
    assert held.wallet.void("roads", "h1").code is ResultCode.hold_not_pending
    held.check()


def test_sweep__returns_to_frozen_payer(held) -> None:
    held.wallet.freeze("halyk")
    held.clock.advance(4_000)
    assert held.wallet.sweep(held.clock.now).code is ResultCode.ok
    assert held.balance("halyk") == 10_000


def test_hold__tagged_money_stays_tagged(env) -> None:
    env.wallet.issue("roads", 1_000, tag="b")
    env.wallet.hold("roads", "cafe", 600, 60, tag="b", op_id="h")
    env.wallet.post("roads", "h", 500)
    assert env.store.balances("cafe") == {("cafe", "b"): 500}
    assert env.store.balances("roads") == {("roads", "b"): 500}
    env.check()


@pytest.mark.parametrize("on_timeout", ["void", "post"])
def test_hold__journal_message_is_the_one_it_answered(env, on_timeout) -> None:
    # `history` and `operation` derive the message from the journal: it left out what the hold does at its
    # timeout, which the answer to the hold said.
    env.wallet.issue("halyk", 10_000)
    result = env.wallet.hold("halyk", "cafe", 4_000, 3_600, on_timeout=on_timeout, op_id="h1")
    assert result.code is ResultCode.ok and "then" in result.message
    assert env.store.operation("h1").message == result.message
