"""History windows read for a whole chunk at once give the same decisions as windows read one by one."""

from __future__ import annotations

import pytest

from tenge_ledger.core.records import Operation, Transfer
from tenge_ledger.ledger.service import Ledger
from tenge_ledger.ledger.signing import sign
from tenge_ledger.ledger.working import WorkingSet
from tenge_ledger.policy import compile_sources

DAILY = """
policy "daily"
rule "daily-limit"
  on transfer
  when payer.out_sum(24h) + amount > 1_000 KZT
  deny "at most 1,000 KZT a day"
"""


def _run(env, chunk: int) -> list[str]:
    engine = compile_sources({"daily.policy": DAILY})
    assert {w[:4] for w in engine.windows} == {("payer", "out", 86400, None)}
    ledger = Ledger(env.store, policy=engine, clock=env.clock)
    ops = []
    for i in range(12):
        payer = "aigerim" if i % 3 else "cafe"
        body = Transfer(payer, "halyk", 300_00)
        ops.append(sign(ledger.ledger_id, Operation(f"d-{i}", payer, body), env.keystore.get(payer)))
    out = []
    for start in range(0, len(ops), chunk):
        results = ledger.apply_many(ops[start : start + chunk], chunk=chunk)
        out += [r.code.value for r in results]
        env.clock.advance(3600)
    return out


@pytest.mark.parametrize("chunk", [1, 4, 12])
def test_prefetched_windows_decide_as_single_reads__per_chunk_size(make_ledger, monkeypatch, chunk) -> None:
    fast = make_ledger()
    fast.open_basic()
    for handle in ("aigerim", "cafe"):
        fast.wallet.issue(handle, 10_000_00)
    with fast.store.transaction() as tx:
        tx_type = type(tx)
    calls = []
    grouped = tx_type.windows
    monkeypatch.setattr(tx_type, "windows", lambda self, *a: calls.append(a) or grouped(self, *a))
    with_prefetch = _run(fast, chunk)
    assert calls, "the chunk's windows were read in grouped queries"
    monkeypatch.undo()

    slow = make_ledger()
    slow.open_basic()
    for handle in ("aigerim", "cafe"):
        slow.wallet.issue(handle, 10_000_00)
    # no prefetch: every window is read on its own, when a rule asks for it
    monkeypatch.setattr(WorkingSet, "prefetch_windows", lambda self, requests: None)
    without = _run(slow, chunk)

    assert with_prefetch == without
    # three 300 KZT payments fit in 1,000 KZT a day; every later one of the same payer is denied
    assert with_prefetch.count("ok") == 6 and with_prefetch.count("policy_denied") == 6


def test_store_window__tagged_and_untagged(env) -> None:
    from tenge_ledger.policy import sets

    sets.enable(env.store, {"daily.policy": DAILY}, at=env.clock.now)  # reads windows: activity is kept
    w = env.wallet
    w.issue("halyk", 1_000)
    w.issue("halyk", 500, tag="grant")
    w.transfer("halyk", "roads", 100)
    w.transfer("halyk", "roads", 50, tag="grant")
    with env.store.transaction() as tx:
        assert tx.window("halyk", "out", 0) == (150, 2)
        assert tx.window("halyk", "out", 0, "grant") == (50, 1)
        assert tx.window("roads", "in", 0, "") == (100, 1)
        assert tx.window("roads", "out", 0) == (0, 0)
        both = {i: h for h, i in tx.account_ids({"halyk", "roads"}).items()}  # accounts by id
        assert tx.windows(both, "out", (0,)) == {("halyk", 0): (150, 2)}
        later = 2**40  # after every posting: no window
        assert tx.windows(both, "out", (0, later)) == {("halyk", 0): (150, 2)}
        assert tx.windows(both, "in", (later, 0)) == {
            ("halyk", 0): (1_500, 2),
            ("roads", 0): (150, 2),
        }


TAGGED = """
rule "meals-daily"
  on transfer
  when tag == "meals" and payer.out_sum(24h, "meals") + amount > 1_000 KZT
  deny "at most 1,000 KZT of meals money a day"
"""


def _run_tagged(env, chunk: int) -> list[str]:
    ledger = Ledger(env.store, policy=compile_sources({"meals.policy": TAGGED}), clock=env.clock)
    ops = []
    for i in range(12):
        body = Transfer("aigerim", "cafe", 300_00, "meals" if i % 2 else None)
        ops.append(sign(ledger.ledger_id, Operation(f"m-{i}", "aigerim", body), env.keystore.get("aigerim")))
    out = []
    for start in range(0, len(ops), chunk):
        out += [r.code.value for r in ledger.apply_many(ops[start : start + chunk], chunk=chunk)]
    return out


def test_tagged_windows_count_the_chunks_own_postings_of_that_tag_only(make_ledger) -> None:
    """Tagged windows are not prefetched: they read the store and then the chunk's own postings of the tag."""
    runs = []
    for chunk in (1, 12):
        env = make_ledger()
        env.open_basic()
        env.wallet.issue("aigerim", 10_000_00)
        env.wallet.issue("aigerim", 10_000_00, tag="meals")
        runs.append(_run_tagged(env, chunk))
    assert runs[0] == runs[1]
    # untagged payments never count; three 300 KZT meals payments fit in 1,000 KZT, later ones are denied
    assert runs[0] == ["ok", "ok", "ok", "ok", "ok", "ok"] + ["ok", "policy_denied"] * 3


# ---- calendar windows -----------------------------------------------------------------------------------------


def test_calendar_start__day_and_month_begin_at_midnight_utc_plus_5() -> None:
    from tenge_ledger.core.canonical import parse_time
    from tenge_ledger.policy.compile import calendar_start

    at = parse_time("2026-03-02T10:00:00")  # 15:00 in Almaty
    assert calendar_start(at, "day") == parse_time("2026-03-01T19:00:00")
    assert calendar_start(at, "month") == parse_time("2026-02-28T19:00:00")
    late = parse_time("2026-03-31T20:00:00")  # already 1 April in Almaty
    assert calendar_start(late, "month") == parse_time("2026-03-31T19:00:00")


def test_calendar_window__reads_from_the_start_of_the_day() -> None:
    from policy_support import view_of

    from tenge_ledger.core.canonical import parse_time
    from tenge_ledger.core.hooks import Proposal
    from tenge_ledger.core.records import Account, AccountKind, Posting

    seen: list[int] = []

    class Recording:
        def __init__(self, view) -> None:
            self.view = view

        def __getattr__(self, name):
            return getattr(self.view, name)

        def window(self, handle, direction, since, tag=None):
            seen.append(since)
            return 900_00, 1

    engine = compile_sources(
        {"d.policy": 'rule "d"\n  on transfer\n  when payer.out_sum(day) + amount > 1_000 KZT\n  deny "x"\n'}
    )
    a, b = Account("a", AccountKind.person, "00" * 32), Account("b", AccountKind.person, "00" * 32)
    at = parse_time("2026-03-02T10:00:00")
    op = Operation("op", "a", Transfer("a", "b", 200_00))
    proposal = Proposal(op, at, "a", "b", 200_00, "", (Posting("a", -200_00), Posting("b", 200_00)))
    assert not engine.decide(proposal, Recording(view_of(a, b))).allowed
    assert seen == [parse_time("2026-03-01T19:00:00")]


def test_check__day_and_month_windows_are_different_values() -> None:
    from tenge_ledger.policy import parse_and_check

    checked = parse_and_check(
        {
            "w.policy": 'rule "w"\n  when payer.out_sum(day) > 10 KZT and payer.out_sum(month) < 5 KZT\n  deny "x"\n'
        }
    )
    assert "payer.history.out(day)" in checked.rules[0].reads
    assert "payer.history.out(month)" in checked.rules[0].reads
