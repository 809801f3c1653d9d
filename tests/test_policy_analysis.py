"""Set analysis: `policy diff` between two sets, and `policy test --coverage`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from tenge_cli.main import cli
from tenge_ledger.core import limits
from tenge_ledger.policy import compile_sources
from tenge_ledger.policy.analysis import boundary_cases, diff

CAP_50 = 'rule "single"\n  on transfer\n  when payer.tier == 0\n       and amount > 50_000 KZT\n  deny "too much"\n'
CAP_40 = CAP_50.replace("50_000", "40_000")


def write_set(folder: Path, text: str) -> str:
    folder.mkdir()
    (folder / "p.policy").write_text(text)
    return str(folder)


def test_diff__a_lower_cap_denies_exactly_the_amounts_between_the_caps() -> None:
    old, new = compile_sources({"p.policy": CAP_50}), compile_sources({"p.policy": CAP_40})
    found = diff(old, new, boundary_cases([old.checked, new.checked]), "generated")
    (difference,) = found.values()
    assert difference.change == "allow -> deny" and difference.new["rules"] == ["single"]
    example = difference.example
    assert example["kind"] == "transfer" and example["payer"]["tier"] == 0
    assert 40_000_00 < example["amount_tiyn"] <= 50_000_00


def test_diff__identical_sets_differ_nowhere() -> None:
    engine = compile_sources({"p.policy": CAP_50})
    assert (
        diff(engine, compile_sources({"p.policy": CAP_50}), boundary_cases([engine.checked]), "generated")
        == {}
    )


def test_diff__a_rule_on_freeze_differs_on_generated_freezes_only() -> None:
    """Generated cases cover every kind a rule can see, the lifecycle kinds too."""
    guard = 'rule "no-freezing-budgets"\n  on freeze\n  when payer.kind == government\n  deny "budgets stay open"\n'
    old, new = compile_sources({"p.policy": CAP_50}), compile_sources({"p.policy": CAP_50 + "\n" + guard})
    found = diff(old, new, boundary_cases([old.checked, new.checked]), "generated")
    (difference,) = found.values()
    assert difference.change == "allow -> deny" and difference.example["kind"] == "freeze"
    assert difference.example["payer"]["kind"] == "government"
    kinds = {p.op.kind.value for p, _ in boundary_cases([new.checked])}
    assert kinds == {"issue", "redeem", "transfer", "hold", "seize", "post", "void", "sweep", "freeze",
                     "open_account"}  # fmt: skip


def test_boundary_cases__amounts_at_and_around_each_constant_within_the_case_limit() -> None:
    engine = compile_sources({"p.policy": CAP_50})
    cases = list(boundary_cases([engine.checked]))
    assert 0 < len(cases) <= limits.policy_diff_cases_max
    amounts = {p.amount_tiyn for p, _ in cases}
    assert {50_000_00 - 1, 50_000_00, 50_000_00 + 1} <= amounts


def test_cli__diff_prints_each_difference_with_an_example(tmp_path: Path) -> None:
    old, new = write_set(tmp_path / "old", CAP_50), write_set(tmp_path / "new", CAP_40)
    result = CliRunner().invoke(cli, ["policy", "diff", old, new])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "differ, in 1 ways" in lines[0]
    assert lines[1].startswith("allow -> deny") and "(rules - -> single)" in lines[1]
    example = lines[2].strip()
    assert example.startswith("e.g. transfer ")
    assert 40_000 < float(example.split()[2]) <= 50_000  # an amount only the lower cap denies


def _shop_ledger(db: str, tmp_path: Path, tier: str, paid: str) -> Callable[..., str]:
    """A ledger at `db` on which anon, a person of `tier`, paid the merchant shop `paid` KZT; returns a runner of
    tenge commands on it that requires each to succeed."""
    runner = CliRunner(env={"TENGE_KEYSTORE": str(tmp_path / "keys")})

    def run(*args: str) -> str:
        result = runner.invoke(cli, ["--db", db, *args])
        assert result.exit_code == 0, result.output
        return result.output

    run("init", "--name", "t")
    run("account", "open", "halyk", "--kind", "bank")
    run("account", "open", "anon", "--kind", "person", "--bank", "halyk", "--tier", tier)
    run("account", "open", "shop", "--kind", "merchant", "--bank", "halyk")
    run("issue", "anon", "90000")
    run("transfer", "anon", "shop", paid)
    return run


def test_cli__diff_replays_the_ledgers_recent_operations(tmp_path: Path) -> None:
    run = _shop_ledger(str(tmp_path / "l.db"), tmp_path, tier="0", paid="45000")
    old, new = write_set(tmp_path / "old", CAP_50), write_set(tmp_path / "new", CAP_40)
    data = json.loads(run("--json", "policy", "diff", old, new, "--recent", "10"))
    assert data["cases"]["ledger"] == 5  # the three accounts opened, the issue and the transfer
    (difference,) = data["differences"]
    assert difference["sources"] == ["generated", "ledger"]


MERCHANTS_400 = (
    'rule "merchants"\n  on transfer\n  when payer.out_sum(24h, kind: merchant) > 400 KZT\n  deny "enough"\n'
)
MERCHANTS_NONE = 'rule "never"\n  on transfer\n  when amount > 1_000_000_000 KZT\n  deny "never"\n'


def test_cli__diff_replays_filtered_windows_the_ledger_keeps_no_flows_of(
    store_url: str, tmp_path: Path
) -> None:
    """A set whose window is filtered by the counterparty, compared on a ledger that keeps no flows of that
    filter (no set reading it was ever enabled): the window is replayed from the journal, so the 450 KZT paid
    to a merchant counts and the replayed payment is denied by the old set, not read as 0 and allowed. On both
    stores (PostgreSQL closes a transaction's cursor: the cases are decided while it is open)."""
    run = _shop_ledger(store_url, tmp_path, tier="1", paid="450")
    old, new = write_set(tmp_path / "old", MERCHANTS_400), write_set(tmp_path / "new", MERCHANTS_NONE)
    data = json.loads(run("--json", "policy", "diff", old, new, "--recent", "10"))
    ledger = [d for d in data["differences"] if "ledger" in d["sources"]]
    assert [(d["old"]["allowed"], d["new"]["allowed"]) for d in ledger] == [(False, True)], data


def test_cli__coverage_lists_rules_that_never_fired_and_one_sided_conditions(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "p.policy").write_text(
        'rule "big"\n  on transfer\n  when amount > 1_000 KZT\n  deny "big"\n\n'
        'rule "never"\n  on transfer\n  when payer.tier == 3\n  deny "x"\n'
    )
    (folder / "p.spec.toml").write_text(
        '[[accounts]]\nhandle = "a"\nkind = "person"\ntier = 1\nbalance = "5000"\n\n'
        '[[accounts]]\nhandle = "b"\nkind = "person"\ntier = 1\n\n'
        '[[cases]]\nname = "big"\nop = { kind = "transfer", payer = "a", payee = "b", amount = "2000" }\n'
        'expect = { code = "policy_denied", rules = ["big"] }\n'
    )
    result = CliRunner().invoke(cli, ["policy", "test", str(folder), "--coverage", "--json"])
    assert result.exit_code == 0, result.output
    coverage = json.loads(result.output)["coverage"]
    assert (coverage["rules"], coverage["fired"]) == (2, 1)
    assert [x["rule"] for x in coverage["never_fired"]] == ["never"]
    assert [x["rule"] for x in coverage["never_true"]] == ["never"]
    assert [x["rule"] for x in coverage["never_false"]] == ["big"]
