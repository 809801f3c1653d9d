"""Reference data in policies: named lists and tables, inline or from a CSV file beside the policy."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_support import view_of

from tenge_cli.main import cli
from tenge_ledger.core.hooks import Proposal
from tenge_ledger.core.records import Account, AccountKind, Operation, Posting, Transfer
from tenge_ledger.policy import PolicyError, compile_sources, parse_and_check, read_sources, set_id
from tenge_ledger.policy.data import Table
from tenge_ledger.policy.format import format_source
from tenge_ledger.policy.reads import manifest

CAPS = "bank,cap\nhalyk,5000\nkaspi,3000.50\n"
GRAY = "handle\n" + "".join(f"gray-{i}\n" for i in range(5000))


def account(
    handle: str, kind: AccountKind = AccountKind.person, bank: str | None = None, tier=None
) -> Account:
    return Account(handle, kind, "00" * 32, tier=tier, bank=bank)


def decide(engine, payer: Account, payee: Account, amount: int):
    op = Operation("op", payer.handle, Transfer(payer.handle, payee.handle, amount))
    proposal = Proposal(op, 1_770_000_000, payer.handle, payee.handle, amount, "",
                        (Posting(payer.handle, -amount), Posting(payee.handle, amount)))  # fmt: skip
    return engine.decide(proposal, view_of(payer, payee))


def errors(files: dict[str, str]) -> list[tuple[str, int, str]]:
    with pytest.raises(PolicyError) as info:
        parse_and_check(files)
    return [(d.file, d.line, d.message) for d in info.value.diagnostics]


def test_list__from_a_csv_file_decides_membership() -> None:
    engine = compile_sources({
        "p.policy": 'list gray = file "gray.csv"\nrule "gray-payee"\n  when payee in gray\n  deny "listed"\n',
        "gray.csv": GRAY,
    })  # fmt: skip
    payer = account("a")
    assert not decide(engine, payer, account("gray-4999", AccountKind.miner), 100).allowed
    assert decide(engine, payer, account("white-1", AccountKind.miner), 100).allowed


def test_list__of_100000_entries_is_one_hash_lookup() -> None:
    csv = "handle\n" + "".join(f"m-{i}\n" for i in range(100_000))
    engine = compile_sources({"p.policy": 'list big = file "big.csv"\nrule "r"\n  when payee in big\n  deny "x"\n',
                              "big.csv": csv})  # fmt: skip
    (values,) = engine.checked.tables().values()
    assert isinstance(values, frozenset) and len(values) == 100_000
    assert not decide(engine, account("a"), account("m-99999"), 1).allowed


def test_table__from_csv_gives_money_by_key() -> None:
    text = (
        'table caps of money = file "caps.csv"\nrule "cap"\n  when amount > caps[payer.bank]\n  deny "over"\n'
    )
    engine = compile_sources({"p.policy": text, "caps.csv": CAPS})
    payer, payee = account("a", bank="kaspi"), account("b")
    assert decide(engine, payer, payee, 3000_50).allowed
    assert not decide(engine, payer, payee, 3000_51).allowed


def test_table__missing_key_without_default_fails_closed_naming_the_key() -> None:
    text = (
        'table caps of money = file "caps.csv"\nrule "cap"\n  when amount > caps[payer.bank]\n  deny "over"\n'
    )
    engine = compile_sources({"p.policy": text, "caps.csv": CAPS})
    decision = decide(engine, account("a", bank="jusan"), account("b"), 1)
    assert not decision.allowed and decision.rules == ("cap",)
    assert "table caps has no entry 'jusan' and no default" in decision.reasons[0]


def test_table__missing_key_reads_as_the_declared_default() -> None:
    text = ('table caps of money default 10 KZT = {"halyk": 5 KZT}\n'
            'rule "cap"\n  when amount > caps[payer.bank]\n  deny "over"\n')  # fmt: skip
    engine = compile_sources({"p.policy": text})
    assert decide(engine, account("a", bank="jusan"), account("b"), 10_00).allowed
    assert not decide(engine, account("a", bank="halyk"), account("b"), 10_00).allowed


def test_table__inline_keyed_by_number() -> None:
    text = 'table tier_caps of money = {0: 100 KZT, 1: 200 KZT}\nrule "r"\n  when amount > tier_caps[payer.tier]\n  deny "x"\n'
    engine = compile_sources({"p.policy": text})
    assert not decide(engine, account("a", tier=0), account("b"), 150_00).allowed
    assert decide(engine, account("a", tier=1), account("b"), 150_00).allowed


def test_check__bad_csv_cell_is_located_in_the_data_file() -> None:
    found = errors(
        {
            "p.policy": 'table caps of money = file "caps.csv"\n',
            "caps.csv": "bank,cap\nhalyk,5000\nkaspi,lots\n",
        }
    )
    assert found == [("caps.csv", 3, found[0][2])] and "'lots' is not an amount" in found[0][2]


def test_check__duplicate_table_key_is_located() -> None:
    found = errors({"p.policy": 'table caps of money = file "caps.csv"\n', "caps.csv": CAPS + "halyk,1\n"})
    assert found == [("caps.csv", 4, "the key 'halyk' is given twice")]


def test_check__missing_data_file_is_located_at_its_declaration() -> None:
    found = errors({"p.policy": 'rule "r"\n  deny "x"\n\nlist gray = file "gray.csv"\n'})
    assert found == [("p.policy", 4, "no data file 'gray.csv' beside the policy")]


def test_check__data_file_named_with_a_path_is_refused() -> None:
    found = errors({"p.policy": 'list gray = file "../etc/gray.csv"\n'})
    assert found[0][1] == 1 and "named without a path" in found[0][2]


def test_check__list_of_strings_compared_with_a_number_is_a_type_error() -> None:
    found = errors(
        {"p.policy": 'list names = ["a", "b"]\nrule "r"\n  when payer.tier in names\n  deny "x"\n'}
    )
    assert found == [
        ("p.policy", 3, "type mismatch: the list names holds string values, compared with a number")
    ]


def test_check__unknown_list_is_named_with_a_suggestion() -> None:
    found = errors({"p.policy": 'list sanctioned = ["a"]\nrule "r"\n  when payee in sanctiond\n  deny "x"\n'})
    assert "unknown list 'sanctiond'; did you mean 'sanctioned'?" in found[0][2]


def test_check__a_list_and_a_let_cannot_share_a_name() -> None:
    found = errors({"p.policy": 'let gray = 5 KZT\nlist gray = ["a"]\n'})
    assert found == [("p.policy", 2, "'gray' is already a name; pick another for this list")]


def test_read_sources__data_files_beside_the_policy_are_part_of_the_set(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text(
        'list gray = file "gray.csv"\nrule "r"\n  when payee in gray\n  deny "x"\n'
    )
    (tmp_path / "gray.csv").write_text("handle\ngray-1\n")
    (tmp_path / "unrelated.csv").write_text("x\n")
    files = read_sources([tmp_path])
    assert sorted(files) == ["gray.csv", "p.policy"]
    before = set_id(files)
    (tmp_path / "gray.csv").write_text("handle\ngray-2\n")
    assert set_id(read_sources([tmp_path])) != before  # the list is versioned with the set


def test_manifest__names_each_rules_lists_with_file_and_hash() -> None:
    checked = parse_and_check({"p.policy": 'list gray = file "gray.csv"\nrule "r"\n  when payee in gray\n  deny "x"\n',
                               "gray.csv": GRAY})  # fmt: skip
    (row,) = manifest(checked)
    assert "list gray" in row["reads"]
    assert row["data"][0]["entries"] == 5000 and row["data"][0]["file"] == "gray.csv"
    assert len(row["data"][0]["sha256"]) == 64


def test_fmt__declarations_round_trip_and_long_lists_break_one_per_line() -> None:
    items = ", ".join(f'"account-{i}"' for i in range(12))
    text = f'list watched = [{items}]\ntable caps of money default 0 KZT = {{"halyk": 5 KZT}}\nlist g = file "g.csv"\n'
    once = format_source(text)
    assert format_source(once) == once
    assert '  "account-11",\n]' in once and 'table caps of money default 0 KZT = {"halyk": 5 KZT}' in once


def test_table__missing_key_raises_a_lookup_error_naming_it() -> None:
    table = Table("caps", {"a": 1}, None)
    assert table["a"] == 1
    with pytest.raises(LookupError, match="no entry 'b'"):
        table["b"]


def test_cli__reads_lists_the_data_files(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text(
        'list gray = file "gray.csv"\nrule "r"\n  when payee in gray\n  deny "x"\n'
    )
    (tmp_path / "gray.csv").write_text("handle\ngray-1\ngray-2\n")
    result = CliRunner().invoke(cli, ["policy", "reads", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "data list gray: 2 entries, gray.csv sha256:" in result.output


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["list", "money", "number", "string"]))
def test_fuzz__any_csv_text_gives_located_errors_or_a_checked_set(text: str, what: str) -> None:
    decl = 'list d = file "d.csv"' if what == "list" else f'table d of {what} = file "d.csv"'
    try:
        parse_and_check({"p.policy": decl + "\n", "d.csv": text})
    except PolicyError as exc:
        assert exc.diagnostics and all(d.file in ("p.policy", "d.csv") for d in exc.diagnostics)
        assert "\x00" not in exc.render()
