"""Freeze, unfreeze, close and court-ordered seizure."""

from __future__ import annotations

import pytest

from tenge_ledger.app import ledger_over
from tenge_ledger.client.wallet import Wallet
from tenge_ledger.core.records import Transfer
from tenge_ledger.core.results import ResultCode


def test_freeze__blocks_paying_and_being_paid(env) -> None:
    w = env.wallet
    w.issue("halyk", 1_000)
    w.transfer("halyk", "aigerim", 500)
    assert w.freeze("aigerim", reason="investigation").code is ResultCode.ok
    assert env.store.account("aigerim").status.value == "frozen"
    before = env.snapshot()
    assert w.transfer("aigerim", "cafe", 10).code is ResultCode.account_frozen
    assert w.transfer("halyk", "aigerim", 10).code is ResultCode.account_frozen
    assert w.issue("aigerim", 10).code is ResultCode.account_frozen
    assert env.snapshot() == before


def test_unfreeze__restores_payments(env) -> None:
    w = env.wallet
    w.issue("halyk", 1_000)
    w.freeze("halyk")
    w.unfreeze("halyk")
    assert w.transfer("halyk", "aigerim", 10).code is ResultCode.ok


def test_freeze__only_central_bank(env) -> None:
    from tenge_ledger.core.records import Freeze

    assert env.wallet.submit("halyk", Freeze("aigerim")).code is ResultCode.signer_not_allowed


def test_freeze__central_bank_itself_refused(env) -> None:
    assert env.wallet.freeze("nbk").code is ResultCode.invalid_operation


def test_close__empty_account(env) -> None:
    assert env.wallet.close("cafe").code is ResultCode.ok
    assert env.wallet.unfreeze("cafe").code is ResultCode.account_closed
    assert env.wallet.issue("cafe", 1).code is ResultCode.account_closed
    assert env.wallet.close("cafe").code is ResultCode.account_closed


def test_close__not_empty_refused(env) -> None:
    env.wallet.issue("cafe", 1, tag="t")
    assert env.wallet.close("cafe").code is ResultCode.account_not_empty


def test_frozen_signer__cannot_sign_a_batch(env) -> None:
    w = env.wallet
    w.issue("halyk", 1_000)
    w.freeze("halyk")
    inner = [w.build("halyk", Transfer("halyk", "aigerim", 10), "b-0")]
    assert w.batch("halyk", inner).code is ResultCode.account_frozen
    assert env.balance("aigerim") == 0


def test_frozen_payer__fails_the_batch_it_is_in(env) -> None:
    w = env.wallet
    w.issue("halyk", 1_000)
    w.issue("cafe", 1_000)
    w.freeze("cafe")
    inner = [w.build("cafe", Transfer("cafe", "aigerim", 10), "b-0")]
    result = w.batch("halyk", inner)
    assert result.code is ResultCode.batch_failed and "account_frozen" in result.message
    assert env.balance("aigerim") == 0


def test_seize__works_on_frozen_account(env) -> None:
    w = env.wallet
    w.issue("cafe", 1_000)
    w.freeze("cafe")
    result = w.seize("cafe", "roads", 400, order="court 2-123/2026")
    assert result.code is ResultCode.ok and "court 2-123/2026" in result.message
    assert (env.balance("cafe"), env.balance("roads")) == (600, 400)
    env.check()


def test_seize__cannot_exceed_funds(env) -> None:
    env.wallet.issue("cafe", 100)
    assert env.wallet.seize("cafe", "roads", 101, order="court 1").code is ResultCode.insufficient_funds


def test_seize__needs_a_court_order(env) -> None:
    env.wallet.issue("cafe", 100)
    result = env.wallet.seize("cafe", "roads", 50)
    assert result.code is ResultCode.invalid_operation and "court order" in result.message
    assert env.balance("cafe") == 100


@pytest.mark.parametrize(
    ("payer", "payee"), [("nbk", "cafe"), ("cafe", "nbk"), ("@holds", "cafe"), ("cafe", "@holds")]
)
def test_seize__from_or_to_the_central_bank_or_the_holds_account_refused(env, payer, payee) -> None:
    # From nbk a seizure issued money past the issue's checks (the supply limit among them); to nbk it redeemed;
    # from or to @holds it moved held money that no hold accounted for, and `tenge check` then failed.
    env.wallet.issue("cafe", 100)
    env.wallet.hold("cafe", "roads", 50, 3_600)
    before = env.snapshot()
    result = env.wallet.seize(payer, payee, 10, order="court 1")
    assert result.code is ResultCode.invalid_operation and "seiz" in result.message
    assert env.snapshot() == before
    env.check()


def test_seize__only_central_bank(env) -> None:
    from tenge_ledger.core.records import Seize

    env.wallet.issue("cafe", 100)
    assert env.wallet.submit("roads", Seize("cafe", "roads", 100)).code is ResultCode.signer_not_allowed
    assert env.balance("cafe") == 100


def test_unfreeze__a_later_chunk_of_a_fresh_process_sees_the_balance(env) -> None:
    """A freeze reads the account alone; the next chunk's prefetch must still read its balance rows, not take
    the account for empty (it did: the transfer below failed with insufficient_funds)."""
    w = env.wallet
    w.issue("halyk", 1_000)
    ledger = ledger_over(env.store, env.clock)  # a new process: nothing cached yet
    fresh = Wallet(ledger, env.keystore)
    assert fresh.freeze("halyk").code is ResultCode.ok
    assert fresh.unfreeze("halyk").code is ResultCode.ok
    result = fresh.transfer("halyk", "aigerim", 400)
    assert result.code is ResultCode.ok, result.message
    assert env.balance("halyk") == 600
    env.check()
