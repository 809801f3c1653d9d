"""The engine's decisions: effects, how rules combine, fail closed, and properties over random inputs."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_support import View

from tenge_ledger.core.hooks import Proposal
from tenge_ledger.core.records import Account, AccountKind, Operation, Posting, Transfer
from tenge_ledger.policy import compile_sources
from tenge_ledger.policy.specs import run_path

KEY = "00" * 32


def view(**kinds) -> View:
    accounts = {"a": Account("a", AccountKind.person, KEY, tier=1), "m": Account("m", AccountKind.miner, KEY)}
    for handle, kind in kinds.items():
        accounts[handle] = Account(handle, AccountKind(kind), KEY)
    return View(accounts)


def proposal(amount: int, payee: str = "m", tag: str = "", payer: str = "a") -> Proposal:
    op = Operation("op-1", payer, Transfer(payer, payee, amount, tag or None))
    return Proposal(
        op,
        1_770_000_000,
        payer,
        payee,
        amount,
        tag,
        (Posting(payer, -amount, tag), Posting(payee, amount, tag)),
    )


def engine(*sources: str):
    return compile_sources({f"p{i}.policy": s for i, s in enumerate(sources)})


SPLIT = 'rule "route" on transfer when payee.kind == miner split { 55% to "x", remaining to payee }'
TAX = 'rule "tax" on transfer when payee.kind == miner withhold 15% to "y"'
DENY = 'rule "no" when amount > 100 KZT deny "too much"'
REPORT = 'rule "rep" when amount >= 50 KZT report fma "big"'


def test_decide__no_match_allows_and_names_the_set() -> None:
    e = engine(DENY)
    d = e.decide(proposal(100), view())
    assert d.allowed and d.postings is None and d.policy_set_id == e.policy_set_id


def test_decide__deny_with_reason_and_rule() -> None:
    d = engine(DENY).decide(proposal(100_01), view())
    assert not d.allowed and d.rules == ("no",) and "too much" in d.reasons[0]


def test_decide__report_lets_the_payment_through() -> None:
    d = engine(REPORT).decide(proposal(50_00), view())
    assert d.allowed and [(r.agency, r.rule) for r in d.reports] == [("fma", "rep")]


def test_decide__split_and_withhold_combine_exactly() -> None:
    d = engine(SPLIT, TAX).decide(proposal(1000), view())
    credits = {p.account: p.amount_tiyn for p in d.postings if p.amount_tiyn > 0}
    assert credits == {"x": 550, "y": 150, "m": 300}
    assert set(d.rules) == {"route", "tax"}


def test_decide__rounding_residue_goes_to_remaining() -> None:
    d = engine(SPLIT).decide(proposal(3), view())
    assert {p.account: p.amount_tiyn for p in d.postings if p.amount_tiyn > 0} == {"x": 1, "m": 2}


def test_decide__split_without_remaining_gives_the_residue_by_largest_remainder() -> None:
    d = engine('rule "s" on transfer split { 50% to "x", 50% to "y" }').decide(proposal(3), view())
    assert {p.account: p.amount_tiyn for p in d.postings if p.amount_tiyn > 0} == {
        "x": 2,
        "y": 1,
    }  # tie: first


def test_decide__portions_over_100_across_rules_deny() -> None:
    e = engine(SPLIT, 'rule "big" on transfer when payee.kind == miner withhold 50% to "z"')
    d = e.decide(proposal(1000), view())
    assert not d.allowed and "over 100%" in d.reasons[0]


def test_decide__hold_sets_timeout_and_releaser() -> None:
    d = engine('rule "h" on transfer when amount > 1 KZT hold for 2d released by "reg"').decide(
        proposal(500), view()
    )
    assert d.allowed and d.hold_timeout_s == 2 * 86400 and d.hold_releaser == "reg"


def test_decide__set_and_clear_tag() -> None:
    d = engine('rule "t" on transfer when tag == "a" clear tag').decide(proposal(5, tag="a"), view())
    assert [p.tag for p in d.postings] == ["a", ""]


def test_decide__tag_guard_skips_rules_without_evaluating() -> None:
    e = engine('rule "t" when tag == "meals" and payee.attr.x == "boom" deny "x"')
    assert e.rules[0].tag_equals == frozenset({"meals"})
    assert e.decide(proposal(5, tag="other"), View({})).allowed  # no account lookups happened


def test_decide__run_time_error_denies_naming_the_rule() -> None:
    e = engine('rule "needs-payee" when payee.kind == miner report fma "x"')
    d = e.decide(proposal(5, payee="ghost"), view())
    assert not d.allowed and d.rules == ("needs-payee",) and "fail closed" in d.reasons[0]


def test_decide__detail_records_matched_rules_for_explain() -> None:
    d = engine(REPORT, DENY).decide(proposal(200_00), view())
    assert {m["rule"] for m in d.detail["matched"]} == {"rep", "no"}
    assert d.detail["deciding"] == ["no"] and d.detail["outcome"] == "deny"


def test_decide__windows_are_read_from_the_view() -> None:
    e = engine(
        'rule "w" when payer.out_count(24h) >= 2 and payer.out_sum(24h) + amount > 10 KZT report fma "s"'
    )
    v = view()
    v.windows = {("a", "out"): (900, 2)}
    assert e.decide(proposal(200), v).reports


def test_shipped_specs__all_pass() -> None:
    from pathlib import Path

    from tenge_cli.policy import spec_ledger

    results = run_path(Path(__file__).resolve().parent.parent / "policies", spec_ledger)
    assert len(results) >= 24
    assert [f"{r.spec}: {r.name}: {r.problems}" for r in results if not r.ok] == []


# ---- properties ---------------------------------------------------------------------------------------------

EFFECT_RULES = [
    'rule "d1" when amount > {t} tiyn deny "d1"',
    'rule "d2" when payee.kind == miner and amount < {t} tiyn deny "d2"',
    'rule "r1" when amount >= {t} tiyn report fma "r1"',
    'rule "s1" on transfer when amount > {t} tiyn split {{ 20% to "x", remaining to payee }}',
    'rule "w1" on transfer when payee.kind == miner withhold 15% to "y"',
    'rule "p1" when amount > {t} tiyn permit "ok"',
]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(EFFECT_RULES) - 1), st.integers(2, 10_000)),
        min_size=1,
        max_size=6,
        unique_by=lambda x: x[0],
    ),  # fmt: skip
    st.integers(1, 20_000),
    st.randoms(use_true_random=False),
)
def test_property__rule_order_does_not_change_the_decision(picked, amount, rnd: random.Random) -> None:
    texts = [EFFECT_RULES[i].format(t=t) for i, t in picked]
    shuffled = texts[:]
    rnd.shuffle(shuffled)
    a = engine("\n".join(texts)).decide(proposal(amount), view())
    b = engine("\n".join(shuffled)).decide(proposal(amount), view())
    c = engine(*shuffled).decide(proposal(amount), view())  # and across files
    for other in (b, c):
        assert (a.allowed, a.reasons, a.rules, a.postings, a.reports, a.hold_timeout_s) == (
            other.allowed, other.reasons, other.rules, other.postings, other.reports, other.hold_timeout_s,
        )  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, len(EFFECT_RULES) - 1), min_size=0, max_size=5), st.integers(1, 20_000))
def test_property__deny_overrides_every_other_effect(others, amount) -> None:
    texts = [EFFECT_RULES[i].format(t=2) for i in set(others) if not EFFECT_RULES[i].startswith('rule "d')]
    texts.append('rule "always-no" deny "no"')
    d = engine("\n".join(texts)).decide(proposal(amount), view())
    assert not d.allowed and d.rules == ("always-no",)
    assert d.postings is None and d.hold_timeout_s is None and d.reports == ()


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 10**16),
    st.lists(st.integers(1, 3000), min_size=1, max_size=4).filter(lambda xs: sum(xs) < 10_000),
    st.booleans(),
)
def test_property__splits_are_exact_and_conserve_money(amount, shares, with_remaining) -> None:
    portions = ", ".join(f'{bps // 100}.{bps % 100:02d}% to "t{i}"' for i, bps in enumerate(shares))
    if with_remaining:
        src = f'rule "s" on transfer split {{ {portions}, remaining to payee }}'
    else:
        rest = 10_000 - sum(shares)
        src = f'rule "s" on transfer split {{ {portions}, {rest // 100}.{rest % 100:02d}% to "last" }}'
    d = engine(src).decide(proposal(amount), view())
    credits = {p.account: p.amount_tiyn for p in d.postings if p.amount_tiyn > 0}
    assert sum(p.amount_tiyn for p in d.postings) == 0
    assert sum(credits.values()) == amount
    for i, bps in enumerate(shares):
        floor = amount * bps // 10_000
        if with_remaining:
            assert credits.get(f"t{i}", 0) == floor  # each share rounds down; the residue is the remaining's
        else:
            assert credits.get(f"t{i}", 0) in (floor, floor + 1)  # largest remainder: at most one tiyn more
    assert all(type(p.amount_tiyn) is int for p in d.postings)


def test_decide__failing_rule_does_not_hide_a_deny() -> None:
    e = engine('rule "boom" when payee.kind == miner report fma "x"', DENY)
    d = e.decide(proposal(200_00, payee="ghost"), view())
    assert not d.allowed and set(d.rules) == {"boom", "no"}


@pytest.mark.parametrize("amount", [1, 99, 100, 101, 12_345_678])
def test_decide__vat_shares_are_integer_tiyn(amount) -> None:
    d = engine('rule "vat" on transfer withhold 12% to "kgd"').decide(proposal(amount, payee="m"), view())
    assert {p.account: p.amount_tiyn for p in d.postings if p.amount_tiyn > 0}.get(
        "kgd", 0
    ) == amount * 12 // 100


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, len(EFFECT_RULES) - 1), min_size=1, max_size=5, unique=True),
    st.lists(st.tuples(st.integers(1, 20_000), st.sampled_from(["m", "x", "b"])), min_size=2, max_size=12),
)
def test_property__a_reused_combination_decides_as_a_fresh_engine(picked, payments) -> None:
    """The engine works out each combination of matching rules once and reuses it; what it reuses must be what
    it would have decided afresh, for every amount and payee (including a payee that is also a split target)."""
    source = "\n".join(EFFECT_RULES[i].format(t=5_000) for i in picked)
    warm = engine(source)
    v = view(x="merchant", b="bank")
    for amount, payee in payments:
        a = warm.decide(proposal(amount, payee=payee), v)
        b = engine(source).decide(proposal(amount, payee=payee), v)
        assert (a.allowed, a.reasons, a.rules, a.postings, a.reports, a.hold_timeout_s, a.detail) == (
            b.allowed, b.reasons, b.rules, b.postings, b.reports, b.hold_timeout_s, b.detail,
        )  # fmt: skip
