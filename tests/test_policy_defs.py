"""Named conditions (`def`) and the warning about tagged money guarded on one way out only."""

from __future__ import annotations

import pytest
from policy_support import view_of

from tenge_ledger.core import limits
from tenge_ledger.core.hooks import Proposal
from tenge_ledger.core.records import Account, AccountKind, Operation, Posting, Transfer
from tenge_ledger.policy import PolicyError, compile_sources, parse_and_check
from tenge_ledger.policy.format import format_source
from tenge_ledger.policy.reads import manifest

HOUSING = 'def housing_or_education = payee.attr.sector == "housing" or payee.attr.sector == "education"\n'


def decide(engine, payee_sector: str, tag: str = "pension:x"):
    payer = Account("a", AccountKind.person, "00" * 32)
    payee = Account("b", AccountKind.merchant, "00" * 32, attrs=(("sector", payee_sector),))
    op = Operation("op", "a", Transfer("a", "b", 100, tag))
    proposal = Proposal(
        op, 1_770_000_000, "a", "b", 100, tag, (Posting("a", -100, tag), Posting("b", 100, tag))
    )
    return engine.decide(proposal, view_of(payer, payee))


def messages(text: str) -> list[tuple[int, str]]:
    with pytest.raises(PolicyError) as info:
        parse_and_check({"t.policy": text})
    return [(d.line, d.message) for d in info.value.diagnostics]


def test_def__one_condition_used_by_two_rules() -> None:
    engine = compile_sources({"t.policy": HOUSING + (
        'rule "pension"\n  on transfer, hold, redeem\n  when tag starts_with "pension:"\n  unless housing_or_education\n  deny "no"\n'
        'rule "subsidy"\n  on transfer, hold, redeem\n  when tag == "subsidy"\n  unless housing_or_education\n  deny "no"\n'
    )})  # fmt: skip
    assert decide(engine, "housing").allowed and decide(engine, "education", "subsidy").allowed
    assert decide(engine, "retail").rules == ("pension",)
    assert decide(engine, "retail", "subsidy").rules == ("subsidy",)


def test_def__its_reads_are_the_reads_of_each_rule_using_it() -> None:
    checked = parse_and_check(
        {"t.policy": HOUSING + 'rule "r"\n  when housing_or_education\n  report fma "x"\n'}
    )
    assert "payee.attr.sector" in manifest(checked)[0]["reads"]


def test_def__nested_defs_count_their_expansion_in_the_rules_cost() -> None:
    lines = ["def d0 = amount > 1 KZT"] + [f"def d{i} = d{i - 1} and d{i - 1}" for i in range(1, 12)]
    found = messages("\n".join(lines) + '\nrule "r"\n  when d11\n  deny "x"\n')
    assert found and all("over the limit of" in m for _, m in found)
    assert min(line for line, _ in found) <= 12  # reported at the first def whose expansion is too costly


def test_def__a_value_is_not_a_condition() -> None:
    assert messages("def big = 5 KZT\n") == [
        (1, "a def names a condition (true or false), not a money; for a constant use let")
    ]


def test_def__cannot_reuse_a_name() -> None:
    assert messages("let x = 5 KZT\ndef x = amount > 1 KZT\n") == [
        (2, "'x' is already a name; pick another for this condition")
    ]


def test_def__a_failing_def_is_reported_once_not_at_each_use() -> None:
    found = messages(
        'def bad = payee.kindd == miner\nrule "a"\n  when bad\n  deny "x"\nrule "b"\n  when bad\n  deny "y"\n'
    )
    assert [line for line, _ in found] == [1]


def test_def__windows_read_in_a_def_are_prefetched() -> None:
    engine = compile_sources(
        {"t.policy": 'def busy = payer.out_count(24h) > 10\nrule "r"\n  when busy\n  deny "x"\n'}
    )
    assert ("payer", "out", 86400, None) in {w[:4] for w in engine.windows}


def test_fmt__def_round_trips() -> None:
    once = format_source(HOUSING)
    assert format_source(once) == once and once.startswith("def housing_or_education = payee.attr.sector")


def test_warning__tagged_money_guarded_on_transfer_only() -> None:
    checked = parse_and_check(
        {"t.policy": 'rule "meals"\n  on transfer\n  when tag == "meals"\n  deny "x"\n'}
    )
    (warning,) = checked.warnings
    assert warning.line == 2 and "can leave by redeem and hold" in warning.message


def test_warning__none_when_another_rule_covers_the_other_ways_out() -> None:
    checked = parse_and_check({"t.policy": (
        'rule "meals"\n  on transfer, hold\n  when tag == "meals"\n  deny "x"\n'
        'rule "meals-cash"\n  on redeem\n  when tag == "meals"\n  deny "y"\n'
    )})  # fmt: skip
    assert checked.warnings == []


def test_def__many_uses_compile_within_the_cost_limit() -> None:
    uses = " or ".join(["cond"] * 20)
    engine = compile_sources(
        {"t.policy": f'def cond = amount > 1 KZT\nrule "r"\n  when {uses}\n  deny "x"\n'}
    )
    assert engine.checked.rules[0].cost <= limits.policy_rule_cost_max
