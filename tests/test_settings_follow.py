"""A ledger follows its store's settings: a policy set enabled or disabled, or a tier limit changed, by another
process takes effect at this ledger's next chunk, on both stores; and on PostgreSQL an optimistic writer whose
snapshot predates the change conflicts and retries instead of committing a decision made under the old set."""

from __future__ import annotations

import pytest
from bank_support import fresh_schema, pg_base_url

from tenge_ledger.core.results import ResultCode
from tenge_ledger.policy import sets
from tenge_ledger.store import open_store

CAP = """
rule "cap"
  on transfer
  when amount > 100 tiyn
  deny "over the cap"
"""


def test_policy_enabled_by_another_process__taken_at_the_next_chunk(env) -> None:
    w = env.wallet
    assert w.issue("halyk", 100_000).succeeded
    assert w.transfer("halyk", "aigerim", 500).code is ResultCode.ok  # this ledger has loaded no set
    other = open_store(env.url)  # another process: `tenge policy enable`
    try:
        assert sets.enable(other, {"cap.policy": CAP}, at=env.clock.now)["changed"]
        refused = w.transfer("halyk", "aigerim", 500)
        assert refused.code is ResultCode.policy_denied and "over the cap" in refused.message
        assert env.ledger.policy.version == 1
        assert w.transfer("halyk", "aigerim", 50).code is ResultCode.ok
        assert sets.disable(other, at=env.clock.now)["changed"]
        assert w.transfer("halyk", "aigerim", 500).code is ResultCode.ok
    finally:
        other.close()
    env.check()


def test_tier_limit_set_by_another_process__taken_at_the_next_chunk(env) -> None:
    w = env.wallet
    assert w.issue("halyk", 10_000_000).succeeded
    assert w.transfer("halyk", "aigerim", 1_000).code is ResultCode.ok  # aigerim is tier 1
    other = open_store(env.url)
    try:
        other.set_setting("tier_holding_tiyn", {"1": 1_500})
        over = w.transfer("halyk", "aigerim", 1_000)
        assert over.code is ResultCode.limit_exceeded, over.message
        assert w.transfer("halyk", "aigerim", 500).code is ResultCode.ok  # 1,500 exactly
    finally:
        other.close()


@pytest.mark.parametrize("plain", [True, False], ids=["plain-path", "general-path"])
def test_tier_limit_set_by_another_process__taken_by_a_ledger_given_its_engine(env, plain) -> None:
    """Tier limits are the store's settings, not the policy engine's: a ledger built with the caller's engine and
    no settings loader (an embedding application, a benchmark) still follows them, and keeps its engine."""
    from tenge_ledger.app import open_ledger, trace_sink_for
    from tenge_ledger.client.wallet import Wallet
    from tenge_ledger.ledger.service import Ledger
    from tenge_ledger.policy import compile_sources

    engine = compile_sources({"cap.policy": CAP.replace("100 tiyn", "1000000 tiyn")}, version=9)
    a = Ledger(env.store, policy=engine, trace=trace_sink_for(env.store.meta(), env.store), clock=env.clock)
    a.plain_transfers = plain
    w = Wallet(a, env.keystore)
    assert w.issue("halyk", 10_000_000).succeeded
    assert w.transfer("halyk", "aigerim", 1_000).code is ResultCode.ok  # aigerim is tier 1
    other = open_ledger(env.url, clock=env.clock)
    try:
        other.store.set_setting("tier_holding_tiyn", {"1": 1_500})
    finally:
        other.store.close()
    over = w.transfer("halyk", "aigerim", 1_000)
    assert over.code is ResultCode.limit_exceeded, over.message
    assert w.transfer("halyk", "aigerim", 500).code is ResultCode.ok  # 1,500 exactly
    assert a.policy is engine
    env.check()


def test_settings_epoch__moves_on_with_every_change(env) -> None:
    before = env.store.meta().settings_epoch
    env.store.set_setting("note", "a")
    env.store.set_setting("note", "b")
    assert env.store.meta().settings_epoch == before + 2
    with env.store.transaction() as tx:
        assert tx.settings_epoch() == before + 2


def test_unchanged_settings__an_engine_given_to_the_ledger_is_kept(env) -> None:
    """Following the store replaces the policy only when the store's settings change: an engine a caller gave the
    ledger (tests, benchmarks, an embedding application) stays."""
    from tenge_ledger.policy import compile_sources

    env.ledger.policy = compile_sources({"cap.policy": CAP}, version=9)
    assert env.wallet.issue("halyk", 100_000).succeeded
    assert env.wallet.transfer("halyk", "aigerim", 500).code is ResultCode.policy_denied
    assert env.ledger.policy.version == 9


@pytest.mark.skipif(not pg_base_url(), reason="needs $TENGE_TEST_PG_URL (.ci/run starts a server)")
def test_optimistic_writer__settings_changed_since_its_snapshot_conflict(tmp_path) -> None:
    """Deterministic: the settings change commits between an optimistic writer's snapshot and its write; the
    write must fail (and be retried under the new settings), not commit what it decided under the old ones."""
    from conftest import build_ledger

    from tenge_ledger.core.errors import WriteConflict
    from tenge_ledger.store.base import ChangeSet

    with fresh_schema(pg_base_url(), prefix="follow") as url:
        env = build_ledger(url, tmp_path / "keys")
        store = env.store
        other = open_store(url)
        try:
            with pytest.raises(WriteConflict), store.transaction(optimistic=True) as tx:
                epoch = tx.settings_epoch()
                other.set_setting("note", "meanwhile")
                tx.write(ChangeSet(settings=None))
            with store.transaction(optimistic=True) as tx:  # the retry sees the new epoch
                assert tx.settings_epoch() == epoch + 1
        finally:
            other.close()
            store.close()


MERCHANT_DAY = """
rule "merchant-heavy"
  on transfer
  when payer.out_sum(day, kind: merchant) + amount > 300 tiyn
  report fma "paid merchants more than 3 KZT today"
"""


def test_counterparty_filters_enabled_by_another_process__kept_from_the_next_chunk(env) -> None:
    """The set and the filtered flows it reads go live in one transaction, and a running writer keeps those flows
    from its next chunk: the check finds every filtered row the journal gives, and the window counts the
    payments the running writer made."""
    w = env.wallet
    assert w.issue("halyk", 100_000).succeeded
    assert w.transfer("halyk", "cafe", 100).succeeded  # before the set: counted by the rebuild
    other = open_store(env.url)
    try:
        assert sets.enable(other, {"day.policy": MERCHANT_DAY}, at=env.clock.now)["changed"]
    finally:
        other.close()
    assert w.transfer("halyk", "cafe", 150).succeeded  # kept by this writer's next chunk
    env.check()
    reported = w.transfer("halyk", "cafe", 60)  # 100 + 150 + 60 > 300: the window saw both earlier payments
    assert [r["agency"] for r in reported.reports] == ["fma"], reported
    env.check()
