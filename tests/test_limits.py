"""Holding limits by wallet tier."""

from __future__ import annotations

from tenge_ledger.core import limits
from tenge_ledger.core.records import AccountKind
from tenge_ledger.core.results import ResultCode

TIER1 = limits.tier_holding_tiyn_default[1]


def test_tier_limit__up_to_limit_allowed(env) -> None:
    env.wallet.issue("halyk", TIER1 * 2)
    assert env.wallet.transfer("halyk", "aigerim", TIER1).code is ResultCode.ok


def test_tier_limit__over_limit_refused(env) -> None:
    env.wallet.issue("halyk", TIER1 * 2)
    env.wallet.transfer("halyk", "aigerim", TIER1 - 10)
    result = env.wallet.transfer("halyk", "aigerim", 11)
    assert result.code is ResultCode.limit_exceeded and "tier 1" in result.message
    assert env.total("aigerim") == TIER1 - 10


def test_tier_limit__counts_every_tag(env) -> None:
    env.wallet.issue("aigerim", TIER1 - 5, tag="b")
    assert env.wallet.issue("aigerim", 6).code is ResultCode.limit_exceeded
    assert env.wallet.issue("aigerim", 5).code is ResultCode.ok


def test_tier_limit__no_tier_no_limit(env) -> None:
    assert env.wallet.issue("cafe", TIER1 * 10).code is ResultCode.ok


def test_tier_limit__ledger_setting_overrides_default(make_ledger) -> None:
    e = make_ledger(settings={"tier_holding_tiyn": {"0": 1_000}})
    e.wallet.open_account("halyk", AccountKind.bank)
    e.wallet.open_account("anon", AccountKind.person, tier=0, bank="halyk")
    assert e.wallet.issue("anon", 1_000).code is ResultCode.ok
    assert e.wallet.issue("anon", 1).code is ResultCode.limit_exceeded


def test_tier_limit__upgrade_raises_it(env) -> None:
    env.wallet.issue("aigerim", TIER1)
    assert env.wallet.issue("aigerim", 1).code is ResultCode.limit_exceeded
    env.wallet.update_account("aigerim", tier=2)
    assert env.wallet.issue("aigerim", 1).code is ResultCode.ok
