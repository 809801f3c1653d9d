"""A ledger keeps `activity` (the per-minute snapshots of the unfiltered running flows that history windows read)
only while the enabled policy set reads such a window: built from the journal when such a set is enabled, dropped
when the set goes, followed by every writer through the settings, and checked by `tenge check` either way."""

from __future__ import annotations

import pytest
from conftest import T0, Clock

from tenge_ledger.core.records import Transfer
from tenge_ledger.core.results import ResultCode
from tenge_ledger.core.windows import ACTIVITY_SETTING, ActivityReplay, keeps_activity
from tenge_ledger.ledger.journal import check_journal
from tenge_ledger.ledger.service import Ledger
from tenge_ledger.policy import compile_sources, sets
from tenge_ledger.store import open_store
from tenge_ledger.store.base import ChangeSet
from tenge_ledger.store.filters import kept_filters

# Reads the payer's unfiltered history: the third payment in 24 hours is refused, the count of a tagged bucket
# and an inflow reported.
WINDOWS = """
rule "third-payment"
  on transfer
  when payer.out_count(24h) >= 2
  deny "two payments a day"

rule "edu-inflow"
  on transfer
  when payee.in_sum(24h, "edu") > 100 tiyn
  report fma "education money keeps coming"
"""
TAGGED_ONLY = """
rule "edu"
  on transfer
  when payer.out_sum(30d, "edu") > 100 tiyn
  deny "edu spent"
"""
FILTERED_ONLY = """
rule "merchants"
  on transfer
  when payer.out_sum(day, kind: merchant) > 100000 tiyn
  deny "merchants paid enough"
"""
NO_WINDOWS = """
rule "cap"
  on transfer
  when amount > 10000000 tiyn
  deny "over the cap"
"""


def _history(env) -> None:
    """Payments over several minutes, with tagged money and a hold (the holds account moves too)."""
    w = env.wallet
    assert w.issue("halyk", 1_000_000).succeeded
    assert w.issue("roads", 50_000, tag="edu", expires_on="2099-01-01").succeeded
    for minutes, (payer, payee, amount) in enumerate(
        [
            ("halyk", "aigerim", 5_000),
            ("aigerim", "cafe", 700),
            ("halyk", "cafe", 900),
            ("cafe", "aigerim", 50),
        ]
    ):
        env.clock.advance(61 + minutes)
        assert w.transfer(payer, payee, amount).succeeded
    assert w.transfer("roads", "cafe", 300, tag="edu").succeeded
    assert w.hold("halyk", "cafe", 200, timeout_s=600, op_id="h1").succeeded
    env.clock.advance(120)
    assert w.post("halyk", "h1").succeeded


def _rows(store) -> tuple:
    return store.activity(), store.bucket_flows()


def _same_world(make_ledger) -> tuple:
    """Two ledgers given the same history at the same times: one kept activity all along (as a ledger made before
    the setting did), one (made now) kept none."""
    kept = make_ledger(clock=Clock(), settings={ACTIVITY_SETTING: True})
    fresh = make_ledger(clock=Clock())
    for env in (kept, fresh):
        env.open_basic()
        _history(env)
    return kept, fresh


def test_new_ledger__keeps_no_activity_until_a_set_reads_windows(env) -> None:
    assert env.store.meta().settings[ACTIVITY_SETTING] is False
    _history(env)
    assert env.store.activity() == {}
    assert env.store.bucket_flows()[("aigerim", "")].out_count == 1  # the running totals are always kept
    env.check()


def test_enable__builds_the_same_activity_as_kept_all_along_and_decides_alike(make_ledger) -> None:
    kept, fresh = _same_world(make_ledger)
    assert len(kept.store.activity()) > 8 and fresh.store.activity() == {}
    for env in (kept, fresh):
        assert sets.enable(env.store, {"w.policy": WINDOWS}, at=env.clock.now)["changed"]
        assert env.store.meta().settings[ACTIVITY_SETTING] is True
    assert _rows(fresh.store) == _rows(kept.store)
    results = []
    for env in (kept, fresh):
        w = env.wallet
        env.clock.advance(30)
        results.append(
            [
                (r.code, r.message)
                for r in (
                    w.transfer("aigerim", "roads", 10),  # aigerim paid once before: allowed
                    w.transfer("aigerim", "roads", 10),  # ... then twice: the third is refused
                    w.transfer("halyk", "roads", 10),  # halyk paid twice (and held once) before the set
                    w.transfer("roads", "cafe", 10, tag="edu"),  # cafe's edu inflow: reported
                )
            ]
        )
        env.check()
    assert results[0] == results[1]
    ok, denied = ResultCode.ok, ResultCode.policy_denied
    assert [code for code, _ in results[0]] == [ok, denied, denied, ok]
    assert _rows(fresh.store) == _rows(kept.store)


def test_disable__drops_activity_and_new_payments_write_none(env) -> None:
    _history(env)
    sets.enable(env.store, {"w.policy": WINDOWS}, at=env.clock.now)
    assert env.store.activity()
    sets.disable(env.store, at=env.clock.now)
    assert env.store.meta().settings[ACTIVITY_SETTING] is False and env.store.activity() == {}
    env.clock.advance(600)
    assert env.wallet.transfer("halyk", "aigerim", 5).succeeded
    assert env.store.activity() == {}
    env.check()


def test_enable_set_without_unfiltered_windows__keeps_none(make_ledger) -> None:
    """A legacy ledger (the setting absent: kept) that enables a set reading only filtered windows drops them."""
    env = make_ledger(settings={ACTIVITY_SETTING: True})
    env.open_basic()
    _history(env)
    assert env.store.activity()
    assert not compile_sources({"f.policy": FILTERED_ONLY}).activity
    sets.enable(env.store, {"f.policy": FILTERED_ONLY}, at=env.clock.now)
    assert env.store.activity() == {} and not keeps_activity(env.store.meta().settings)
    sets.enable(env.store, {"c.policy": NO_WINDOWS}, at=env.clock.now)
    assert env.store.activity() == {}
    env.check()


def test_tagged_window__needs_activity_though_never_prefetched() -> None:
    engine = compile_sources({"t.policy": TAGGED_ONLY})
    assert engine.windows == frozenset() and engine.activity
    assert compile_sources({"w.policy": WINDOWS}).activity
    assert not compile_sources({"c.policy": NO_WINDOWS}).activity


def test_settings_without_the_key__keep_activity_as_before(env) -> None:
    """A ledger made before the setting existed keeps activity: writers write it and check expects it."""
    settings = {k: v for k, v in env.store.meta().settings.items() if k != ACTIVITY_SETTING}
    with env.store.transaction() as tx:
        tx.write(ChangeSet(settings=settings))
    assert keeps_activity(env.store.meta().settings)
    env.clock.advance(60)
    assert env.wallet.issue("halyk", 500).succeeded  # the ledger follows the settings at its next chunk
    assert env.store.activity()
    env.check()


def test_another_process_enables__every_writer_keeps_activity_from_its_next_chunk(env) -> None:
    """The writer that opened the ledger (following its settings) and one given no policy at all both write the
    activity rows once another process enabled a set that reads windows; check then finds every row."""
    _history(env)
    bare = Ledger(open_store(env.url), clock=env.clock)  # an embedding application's writer: no policy
    other = open_store(env.url)
    try:
        assert sets.enable(other, {"w.policy": WINDOWS}, at=env.clock.now)["changed"]
        env.clock.advance(300)
        assert env.wallet.transfer("aigerim", "roads", 10).succeeded
        env.clock.advance(300)
        op = env.wallet.build("cafe", Transfer("cafe", "roads", 5))
        assert bare.apply(op).succeeded
        assert any(key[0] == "cafe" and key[2] == env.clock.now // 60 for key in env.store.activity())
        env.check()
        assert sets.disable(other, at=env.clock.now)["changed"]
        env.clock.advance(300)
        assert bare.apply(env.wallet.build("cafe", op.body, "again-1")).succeeded
        assert env.wallet.transfer("aigerim", "roads", 10).succeeded
        assert env.store.activity() == {}
        env.check()
    finally:
        other.close()
        bare.store.close()


def test_engine_given_to_the_ledger__builds_activity_before_its_first_chunk(env) -> None:
    """A caller's engine that reads windows over a store that keeps none: the ledger builds the history first,
    so the window counts the payments before it (a third payment is refused), never reads them as 0."""
    _history(env)
    env.ledger.policy = compile_sources({"w.policy": WINDOWS}, version=5)
    env.clock.advance(60)
    assert env.wallet.transfer("halyk", "roads", 10).code is ResultCode.policy_denied
    assert keeps_activity(env.store.meta().settings) and env.store.activity()
    env.check()


MERCHANT_CAP = """
rule "merchant-cap"
  on transfer
  when payer.out_sum(24h, kind: merchant) > 800 tiyn
  deny "paid merchants enough today"
"""


def test_engine_given_with_a_filter__builds_its_flows_before_its_first_chunk(env) -> None:
    """A caller's engine whose window is filtered by the counterparty, over a store that keeps no flows of that
    filter: the ledger builds them from the journal first, so the bank's 9 KZT paid to a merchant before count
    (read short, the window would let the payment through)."""
    _history(env)
    env.ledger.policy = compile_sources({"f.policy": MERCHANT_CAP}, version=5)
    env.clock.advance(60)
    refused = env.wallet.transfer("halyk", "cafe", 10)
    assert refused.code is ResultCode.policy_denied, refused.message
    assert kept_filters(env.store.meta().settings) == env.ledger.policy.filters != frozenset()
    env.check()


def test_engine_given__activity_turned_off_meanwhile__built_again_not_read_as_zero(env) -> None:
    _history(env)
    ledger = Ledger(env.store, policy=compile_sources({"w.policy": WINDOWS}), clock=env.clock)
    assert ledger.apply(env.wallet.build("aigerim", Transfer("aigerim", "roads", 1))).succeeded
    other = open_store(env.url)
    try:  # another process drops it (as disabling a set would) between this ledger's chunks
        other.rebuild_window_filters(frozenset(), activity=False)
    finally:
        other.close()
    assert env.store.activity() == {}
    refused = ledger.apply(env.wallet.build("aigerim", Transfer("aigerim", "roads", 1)))
    assert refused.code is ResultCode.policy_denied, refused.message  # aigerim's third payment today
    assert keeps_activity(env.store.meta().settings)
    env.check()


def test_check__names_history_the_enabled_set_reads_and_the_ledger_does_not_keep(env) -> None:
    """Settings changed behind the enabled set's back (as a hand edit would): `tenge check` says its windows
    read short, for unfiltered snapshots and for a filter's flows; the next write builds them again."""
    _history(env)
    sets.enable(env.store, {"w.policy": WINDOWS, "f.policy": MERCHANT_CAP}, at=env.clock.now)
    engine = compile_sources({"w.policy": WINDOWS, "f.policy": MERCHANT_CAP})
    assert check_journal(env.store, policy=engine).ok
    env.store.rebuild_window_filters(frozenset(), activity=False)
    problems = check_journal(env.store, policy=engine).problems
    assert len(problems) == 2 and "window_activity" in problems[0] and "window_filters" in problems[1], (
        problems
    )
    assert "kind" in problems[1]  # the filter is named
    assert check_journal(env.store).ok  # without the set, the tables agree with the journal
    ledger = Ledger(env.store, policy=engine, clock=env.clock)
    assert ledger.apply(env.wallet.build("aigerim", Transfer("aigerim", "roads", 1))).succeeded
    assert check_journal(env.store, policy=engine).ok


@pytest.mark.parametrize("keep", [True, False])
def test_rebuild__is_idempotent_and_says_whether_it_changed(env, keep) -> None:
    _history(env)
    assert env.store.rebuild_window_filters(frozenset(), activity=keep) is keep
    assert env.store.rebuild_window_filters(frozenset(), activity=keep) is False
    assert bool(env.store.activity()) is keep
    env.check()


def _journal_windows(store) -> ActivityReplay:
    replay = ActivityReplay()
    for op, postings in store.journal():
        replay.apply(op.at, [(p.account, p.amount_tiyn, p.tag) for p in postings])
    return replay


WINDOW_READS = [
    (handle, direction, since, tag)
    for handle in ("halyk", "aigerim", "cafe", "roads", "nbk", "nobody")
    for direction in ("out", "in")
    for since in (0, T0 + 100, T0 + 200, T0 + 10**6)
    for tag in (None, "", "edu")
]


def test_activity_replay__windows_equal_the_stores(make_ledger) -> None:
    env = make_ledger(settings={ACTIVITY_SETTING: True})
    env.open_basic()
    _history(env)
    replay = _journal_windows(env.store)
    assert replay.activity == env.store.activity()
    with env.store.transaction() as tx:
        found = {read: tx.window(*read) for read in WINDOW_READS}
    assert {read: replay.window(*read) for read in WINDOW_READS} == found
    assert found[("cafe", "in", 0, None)] == (2_100, 4) and found[("roads", "out", 0, "edu")] == (300, 1)


def test_policy_diff_recent__windows_replayed_where_no_activity_is_kept(env) -> None:
    """`policy diff --recent` decides again against today's windows: on a ledger that keeps no activity they are
    replayed from the journal, and equal what the store gives once it keeps them."""
    from tenge_ledger.policy.analysis import ledger_cases

    _history(env)

    def windows() -> list:
        cases = ledger_cases(env.store, 20)
        _, view = next(cases)  # read while its transaction is open
        found = [view.window(*read) for read in WINDOW_READS]
        cases.close()
        return found

    replayed = windows()
    assert any(total for total, _ in replayed)
    env.store.rebuild_window_filters(frozenset(), activity=True)
    assert windows() == replayed
