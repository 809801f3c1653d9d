"""Client-chosen ids: the same id is applied once and answers as before; other fields with it are an error."""

from __future__ import annotations

from tenge_ledger.core.records import Transfer
from tenge_ledger.core.results import ResultCode


def test_same_id_twice__exists_with_same_seq(env) -> None:
    env.wallet.issue("halyk", 100_000)
    first = env.wallet.transfer("halyk", "aigerim", 2_500, op_id="7f3c")
    before = env.snapshot()
    again = env.wallet.transfer("halyk", "aigerim", 2_500, op_id="7f3c")
    assert first.code is ResultCode.ok
    assert again.code is ResultCode.exists
    assert again.seq == first.seq
    assert again.succeeded
    assert env.snapshot() == before
    assert env.balance("aigerim") == 2_500


def test_same_id_twice__exists_within_one_chunk(env) -> None:
    env.wallet.issue("halyk", 100_000)
    op = env.wallet.build("halyk", Transfer("halyk", "aigerim", 700), "dup")
    results = env.ledger.apply_many([op, op, op])
    assert [r.code for r in results] == [ResultCode.ok, ResultCode.exists, ResultCode.exists]
    assert len({r.seq for r in results}) == 1
    assert env.balance("aigerim") == 700


def test_same_id_other_fields__exists_with_different_fields(env) -> None:
    env.wallet.issue("halyk", 100_000)
    env.wallet.transfer("halyk", "aigerim", 2_500, op_id="7f3c")
    before = env.snapshot()
    other = env.wallet.transfer("halyk", "aigerim", 2_600, op_id="7f3c")
    assert other.code is ResultCode.exists_with_different_fields
    assert not other.succeeded
    assert env.snapshot() == before


def test_same_id_other_kind__exists_with_different_fields(env) -> None:
    env.wallet.issue("halyk", 100_000, op_id="x-1")
    assert env.wallet.redeem("halyk", 100_000, op_id="x-1").code is ResultCode.exists_with_different_fields


def test_rejected_id__can_be_retried(env) -> None:
    first = env.wallet.transfer("halyk", "aigerim", 2_500, op_id="retry-me")
    assert first.code is ResultCode.insufficient_funds
    assert env.store.operation("retry-me") is None
    env.wallet.issue("halyk", 100_000)
    again = env.wallet.transfer("halyk", "aigerim", 2_500, op_id="retry-me")
    assert again.code is ResultCode.ok
    assert env.balance("aigerim") == 2_500


def test_rejected_id__retry_with_other_fields_allowed(env) -> None:
    env.wallet.issue("halyk", 1_000)
    assert env.wallet.transfer("halyk", "aigerim", 5_000, op_id="r").code is ResultCode.insufficient_funds
    assert env.wallet.transfer("halyk", "aigerim", 500, op_id="r").code is ResultCode.ok


def test_exists__survives_reopening_the_store(make_ledger) -> None:
    from tenge_ledger.app import ledger_over
    from tenge_ledger.client.wallet import Wallet
    from tenge_ledger.store import open_store

    env = make_ledger()
    env.open_basic()
    env.wallet.issue("halyk", 100_000)
    first = env.wallet.transfer("halyk", "aigerim", 2_500, op_id="persist")
    env.store.close()
    store = open_store(env.url)
    try:
        wallet = Wallet(ledger_over(store, env.clock), env.keystore)
        again = wallet.transfer("halyk", "aigerim", 2_500, op_id="persist")
        assert (again.code, again.seq) == (ResultCode.exists, first.seq)
    finally:
        store.close()
    env.ledger.store = open_store(env.url)  # let the fixture close something
