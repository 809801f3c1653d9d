"""Fair allocation: fractions, largest-remainder rounding, fees with a floor and a cap, every tiyn conserved."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from policy_support import view_of

from tenge_ledger.core.hooks import Proposal
from tenge_ledger.core.records import Account, AccountKind, Operation, Posting, Transfer
from tenge_ledger.policy import PolicyError, compile_sources, parse_and_check
from tenge_ledger.policy.format import format_source
from tenge_ledger.policy.shares import Portion, allocate, parse_share, share_text


def credits(source: str, amount: int) -> dict[str, int]:
    engine = compile_sources({"t.policy": source})
    payer, payee = Account("a", AccountKind.person, "00" * 32), Account("m", AccountKind.merchant, "00" * 32)
    op = Operation("op", "a", Transfer("a", "m", amount))
    proposal = Proposal(
        op, 1_770_000_000, "a", "m", amount, "", (Posting("a", -amount), Posting("m", amount))
    )
    decision = engine.decide(proposal, view_of(payer, payee))
    assert decision.allowed, decision.reasons
    assert sum(p.amount_tiyn for p in decision.postings) == 0
    return {p.account: p.amount_tiyn for p in decision.postings if p.amount_tiyn > 0}


def test_split__thirds_of_100_01_kzt_are_33_34_33_34_33_33() -> None:
    source = (
        'rule "thirds"\n  on transfer\n  split {\n    1/3 to "a1",\n    1/3 to "a2",\n    1/3 to "a3",\n  }\n'
    )
    assert credits(source, 100_01) == {"a1": 33_34, "a2": 33_34, "a3": 33_33}


def test_withhold__fee_is_capped() -> None:
    source = 'rule "fee"\n  on transfer\n  withhold 12% max 500 KZT to "kgd"\n'
    assert credits(source, 10_000_00) == {"kgd": 500_00, "m": 9_500_00}
    assert credits(source, 1_000_00) == {"kgd": 120_00, "m": 880_00}


def test_withhold__minimum_fee_never_takes_more_than_the_payment() -> None:
    source = 'rule "fee"\n  on transfer\n  withhold 1% min 10 KZT to "bank"\n'
    assert credits(source, 100_00) == {"bank": 10_00, "m": 90_00}
    assert credits(source, 5_00) == {"bank": 5_00}


def test_parse_share__percent_and_fraction_are_exact() -> None:
    assert parse_share("55%") == (Fraction(11, 20), None)
    assert parse_share("12.25%") == (Fraction(49, 400), None)
    assert parse_share("1/3") == (Fraction(1, 3), None)
    assert parse_share("1/0")[0] is None and parse_share("1.125%")[0] is None
    assert [share_text(s) for s in (Fraction(11, 20), Fraction(1, 3))] == ["55%", "1/3"]


def test_check__fractions_that_do_not_add_up_are_located() -> None:
    with pytest.raises(PolicyError) as info:
        parse_and_check(
            {"t.policy": 'rule "r"\n  on transfer\n  split {\n    1/3 to "a",\n    1/3 to "b",\n  }\n'}
        )
    assert [(d.line, d.message) for d in info.value.diagnostics] == [
        (3, "portions add up to 2/3: make them 100% or end with `remaining to ...`")
    ]


def test_check__fee_bounds_are_constant_money_in_order() -> None:
    with pytest.raises(PolicyError) as info:
        parse_and_check({"t.policy": 'rule "r"\n  on transfer\n  withhold 1% min 10 KZT max 5 KZT to "x"\n'})
    assert [d.message for d in info.value.diagnostics] == ["the fee's min is above its max"]
    with pytest.raises(PolicyError, match="constant money"):
        parse_and_check({"t.policy": 'rule "r"\n  on transfer\n  withhold 1% max amount to "x"\n'})


def test_fmt__fractions_and_fee_bounds_round_trip() -> None:
    source = 'rule "r"\n  on transfer\n  withhold 12% min 1 KZT max 500 KZT to "kgd"\n'
    assert format_source(source) == source
    split = 'rule "s"\n  on transfer\n  split {\n    1/3 to "a",\n    remaining to payee,\n  }\n'
    assert format_source(split) == split


def test_warning__two_rules_that_withhold_from_the_same_payment() -> None:
    checked = parse_and_check({"t.policy": 'rule "a"\n  on transfer\n  withhold 10% to "x"\n\n'
                               'rule "b"\n  on transfer\n  withhold 5% to "y"\n'})  # fmt: skip
    assert [(w.line, w.code) for w in checked.warnings] == [(5, "W002")]


def test_warning__none_for_rules_on_disjoint_tags() -> None:
    checked = parse_and_check({"t.policy": 'rule "a"\n  on transfer\n  when tag == "p"\n  withhold 10% to "x"\n\n'
                               'rule "b"\n  on transfer\n  when tag == "q"\n  withhold 5% to "y"\n'})  # fmt: skip
    assert checked.warnings == []


def test_explain__the_order_two_withholdings_applied_in() -> None:
    engine = compile_sources({"t.policy": 'rule "b-tax"\n  on transfer\n  withhold 10% to "x"\n\n'
                              'rule "a-fee"\n  on transfer\n  withhold 5% to "y"\n'})  # fmt: skip
    payer, payee = Account("a", AccountKind.person, "00" * 32), Account("m", AccountKind.merchant, "00" * 32)
    op = Operation("op", "a", Transfer("a", "m", 100))
    decision = engine.decide(
        Proposal(op, 1, "a", "m", 100, "", (Posting("a", -100), Posting("m", 100))), view_of(payer, payee)
    )
    assert decision.detail["applied_in_order"] == ["a-fee", "b-tax"]


@given(
    st.integers(1, 10**16),
    st.lists(st.tuples(st.integers(1, 50), st.integers(1, 50)), min_size=1, max_size=6),
)
def test_property__largest_remainder_conserves_and_is_within_one_tiyn(amount, weights) -> None:
    total = sum(w for w, _ in weights)
    portions = tuple(Portion(Fraction(w, total), f"h{i}") for i, (w, _) in enumerate(weights))
    parts, rest = allocate(amount, portions, fair=True)
    assert rest == 0 and sum(parts) == amount
    for part, p in zip(parts, portions, strict=True):
        exact = amount * p.share
        assert exact - 1 < part < exact + 1


def test_warning__none_for_rules_that_need_different_values_of_one_field() -> None:
    checked = parse_and_check({"t.policy": 'rule "a"\n  on transfer\n  when payee.handle == "p"\n  withhold 10% to "x"\n\n'
                               'rule "b"\n  on transfer\n  when payee.handle in ["q", "r"]\n  withhold 5% to "y"\n\n'
                               'rule "c"\n  on transfer\n  when payee.kind == miner\n  unless payer.kind == bank\n'
                               '  withhold 5% to "z"\n\n'
                               'rule "d"\n  on transfer\n  when payer.kind == bank\n  withhold 1% to "w"\n'})  # fmt: skip
    pairs = sorted(w.message.split("'")[1] + "/" + w.message.split("'")[3] for w in checked.warnings)
    # a and b name different payees, c excludes the bank payers d needs: those pairs cannot meet
    assert pairs == ["a/c", "a/d", "b/c", "b/d"]
