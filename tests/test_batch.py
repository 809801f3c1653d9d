"""Atomic batches: all or nothing, in order, each operation seeing those before it."""

from __future__ import annotations

from tenge_ledger.core.records import Batch, Issue, Transfer
from tenge_ledger.core.results import ResultCode


def test_batch__all_applied(env) -> None:
    w = env.wallet
    w.issue("halyk", 1_000)
    inner = [
        w.build("halyk", Transfer("halyk", "aigerim", 600), "b-0"),
        w.build("aigerim", Transfer("aigerim", "cafe", 500), "b-1"),  # spends what b-0 brought
    ]
    result = w.batch("halyk", inner, op_id="batch-1")
    assert result.code is ResultCode.ok
    assert (env.balance("halyk"), env.balance("aigerim"), env.balance("cafe")) == (400, 100, 500)
    assert env.store.operation("b-0") is not None and env.store.operation("b-1") is not None
    env.check()


def test_batch__inner_failure_names_index_and_applies_nothing(env) -> None:
    w = env.wallet
    w.issue("halyk", 1_000)
    inner = [
        w.build("halyk", Transfer("halyk", "aigerim", 600), "b-0"),
        w.build("nbk", Issue("cafe", 50), "b-1"),
        w.build("aigerim", Transfer("aigerim", "cafe", 700), "b-2"),  # only 600 arrived
    ]
    before = env.snapshot()
    result = w.batch("halyk", inner, op_id="batch-1")
    assert result.code is ResultCode.batch_failed
    assert "operation 2 (b-2)" in result.message and "insufficient_funds" in result.message
    assert env.snapshot() == before
    for op_id in ("batch-1", "b-0", "b-1", "b-2"):
        assert env.store.operation(op_id) is None


def test_batch__inner_bad_signature_fails_it(env) -> None:
    import dataclasses

    w = env.wallet
    w.issue("halyk", 1_000)
    good = w.build("halyk", Transfer("halyk", "aigerim", 10), "b-0")
    forged = dataclasses.replace(
        w.build("halyk", Transfer("halyk", "aigerim", 10), "b-1"), signature="00" * 64
    )
    result = w.batch("halyk", [good, forged])
    assert result.code is ResultCode.batch_failed and "operation 1" in result.message
    assert env.balance("aigerim") == 0


def test_batch__inner_id_already_used_fails_it(env) -> None:
    w = env.wallet
    w.issue("halyk", 1_000)
    first = w.build("halyk", Transfer("halyk", "aigerim", 10), "used")
    env.ledger.apply(first)
    result = w.batch("halyk", [w.build("halyk", Transfer("halyk", "cafe", 10), "b-0"), first])
    assert result.code is ResultCode.batch_failed and "exists" in result.message
    assert env.balance("cafe") == 0


def test_batch__same_id_twice_is_exists(env) -> None:
    w = env.wallet
    w.issue("halyk", 1_000)
    inner = (w.build("halyk", Transfer("halyk", "aigerim", 10), "b-0"),)
    batch = w.build("halyk", Batch(inner), "batch-x")
    assert env.ledger.apply(batch).code is ResultCode.ok
    assert env.ledger.apply(batch).code is ResultCode.exists
    assert env.balance("aigerim") == 10


def test_batch__inner_id_equal_to_its_own_id_is_rejected(env) -> None:
    # The batch and its inner operation would both be journaled under one id: the database's UNIQUE index used
    # to refuse the write and fail every other operation of the chunk with it.
    w = env.wallet
    w.issue("halyk", 1_000)
    other = w.build("halyk", Transfer("halyk", "cafe", 10), "other")
    batch = w.build("halyk", Batch((w.build("halyk", Transfer("halyk", "aigerim", 10), "same"),)), "same")
    results = env.ledger.apply_many([other, batch])
    assert results[0].code is ResultCode.ok
    assert results[1].code is ResultCode.invalid_operation and "same" in results[1].message
    assert (env.balance("cafe"), env.balance("aigerim")) == (10, 0)
    env.check()
