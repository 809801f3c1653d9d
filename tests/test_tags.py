"""Tagged (earmarked) buckets: money sits by tag, a transfer draws from one bucket and the tag travels."""

from __future__ import annotations

from tenge_ledger.core.results import ResultCode


def test_issue_tagged__lands_in_its_bucket(env) -> None:
    env.wallet.issue("roads", 5_000, tag="budget:roads-2026", expires_on="2027-01-01")
    assert env.store.balances("roads") == {("roads", "budget:roads-2026"): 5_000}
    assert env.balance("roads") == 0


def test_transfer_tagged__tag_travels_with_money(env) -> None:
    env.wallet.issue("roads", 5_000, tag="budget:roads-2026")
    assert env.wallet.transfer("roads", "halyk", 2_000, tag="budget:roads-2026").code is ResultCode.ok
    assert env.balance("halyk", "budget:roads-2026") == 2_000
    assert env.balance("halyk") == 0
    env.check()


def test_transfer_untagged__does_not_draw_tagged_money(env) -> None:
    env.wallet.issue("roads", 5_000, tag="budget:roads-2026")
    result = env.wallet.transfer("roads", "halyk", 1)
    assert result.code is ResultCode.insufficient_funds
    assert "untagged" in result.message


def test_transfer_tagged__does_not_draw_other_tag(env) -> None:
    env.wallet.issue("roads", 5_000, tag="a")
    env.wallet.issue("roads", 5_000)
    assert env.wallet.transfer("roads", "halyk", 1, tag="b").code is ResultCode.insufficient_funds
    assert env.wallet.transfer("roads", "halyk", 5_000, tag="a").code is ResultCode.ok
    assert env.wallet.transfer("roads", "halyk", 5_001).code is ResultCode.insufficient_funds


def test_issue_tagged__expiry_fixed_by_first_issue(env) -> None:
    env.wallet.issue("roads", 100, tag="t", expires_on="2027-01-01")
    assert env.wallet.issue("roads", 100, tag="t").code is ResultCode.ok  # no date: inherits
    assert env.wallet.issue("roads", 100, tag="t", expires_on="2027-01-01").code is ResultCode.ok
    assert (
        env.wallet.issue("roads", 100, tag="t", expires_on="2027-02-01").code
        is ResultCode.tag_expiry_conflict
    )
    assert env.balance("roads", "t") == 300


def test_issue_untagged_with_expiry__invalid(env) -> None:
    assert env.wallet.issue("roads", 100, expires_on="2027-01-01").code is ResultCode.invalid_operation


def test_redeem_tagged__from_its_bucket(env) -> None:
    env.wallet.issue("halyk", 100, tag="t")
    assert env.wallet.redeem("halyk", 100).code is ResultCode.insufficient_funds
    assert env.wallet.redeem("halyk", 100, tag="t").code is ResultCode.ok
    assert env.store.supply() == (100, 100)
    env.check()
