"""Declared account attributes: typed, with an explicit default or a fail-closed rule when missing."""

from __future__ import annotations

import pytest
from policy_support import view_of

from tenge_ledger.core.hooks import Proposal
from tenge_ledger.core.records import Account, AccountKind, Operation, Posting, Transfer
from tenge_ledger.policy import PolicyError, compile_sources, parse_and_check
from tenge_ledger.policy.analysis import boundary_cases, diff
from tenge_ledger.policy.format import format_source, upgrade_source

NET_CAP = 'attr net_cap: money\nrule "cap"\n  on transfer\n  when amount > payer.attr.net_cap\n  deny "over the cap"\n'


def decide(source: str, payer_attrs: tuple = (), amount: int = 100_00):
    engine = compile_sources({"t.policy": source})
    payer = Account("a", AccountKind.bank, "00" * 32, attrs=payer_attrs)
    payee = Account("b", AccountKind.bank, "00" * 32)
    op = Operation("op", "a", Transfer("a", "b", amount))
    proposal = Proposal(op, 1, "a", "b", amount, "", (Posting("a", -amount), Posting("b", amount)))
    return engine.decide(proposal, view_of(payer, payee))


def test_attr__declared_money_is_compared_as_money() -> None:
    assert decide(NET_CAP, (("net_cap", "100.00"),)).allowed
    assert not decide(NET_CAP, (("net_cap", "99.99"),)).allowed


def test_attr__missing_without_a_default_fails_the_rule_closed() -> None:
    decision = decide(NET_CAP)
    assert not decision.allowed and decision.rules == ("cap",)
    assert "has no attribute net_cap" in decision.reasons[0]


def test_attr__missing_reads_as_its_declared_default() -> None:
    source = NET_CAP.replace("attr net_cap: money", "attr net_cap: money default 1_000 KZT")
    assert decide(source).allowed
    assert not decide(source, amount=1_000_01).allowed


def test_attr__a_value_that_is_not_money_fails_the_rule_closed() -> None:
    decision = decide(NET_CAP, (("net_cap", "lots"),))
    assert not decision.allowed and "is not a money" in decision.reasons[0]


def test_check__declared_money_attribute_compared_with_a_string_is_a_type_error() -> None:
    with pytest.raises(PolicyError, match="cannot compare a money with a string"):
        parse_and_check(
            {"t.policy": 'attr net_cap: money\nrule "r"\n  when payer.attr.net_cap == "x"\n  deny "x"\n'}
        )


def test_check__undeclared_attribute_is_a_warning_at_its_first_read() -> None:
    checked = parse_and_check(
        {"t.policy": 'rule "r"\n  when payee.attr.zone == "alatau"\n  report fma "x"\n'}
    )
    assert [(w.line, w.code) for w in checked.warnings] == [(2, "W003")]


def test_fmt_upgrade__declares_what_was_read_and_changes_no_decision() -> None:
    source = 'policy "p"\n\nrule "r"\n  when payee.attr.zone != "alatau"\n       and payer.attr.zone == ""\n  deny "x"\n'
    upgraded = upgrade_source(source)
    assert upgraded.startswith('policy "p"\n\nattr zone: string default ""\n\nrule "r"')
    assert upgrade_source(upgraded) == upgraded == format_source(upgraded)
    before, after = compile_sources({"p.policy": source}), compile_sources({"p.policy": upgraded})
    assert after.checked.warnings == []
    assert diff(before, after, boundary_cases([before.checked, after.checked]), "generated") == {}
