"""End to end through the CLI: enable policies/ on a ledger and run payments each rule allows, denies, splits,
holds and reports; then explain, versions, and a rejected set that changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tenge_cli.main import cli

POLICIES = str(Path(__file__).resolve().parent.parent / "policies")


@pytest.fixture()
def run(tmp_path):
    runner = CliRunner()
    db = str(tmp_path / "pilot.db")

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(cli, ["--db", db, *args], catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    invoke("init", "--name", "policy e2e")
    invoke("account", "open", "halyk", "--kind", "bank")
    for handle, kind, extra in [
        ("aifc-exchange", "exchange", []),
        ("state-budget", "government", []),
        ("kz-registry", "agency", []),
        ("kgd-vat", "agency", []),
        ("local-budget", "government", []),
        ("pool", "merchant", ["--bank", "halyk"]),
        ("mine", "miner", []),
        ("gray", "miner", ["--attr", "fma_list=gray-mining"]),
        ("anon", "person", ["--bank", "halyk", "--tier", "0"]),
        ("developer", "merchant", ["--bank", "halyk", "--attr", "sector=real-estate"]),
        ("magnum", "merchant", ["--bank", "halyk", "--attr", "vat=registered"]),
    ]:
        invoke("account", "open", handle, "--kind", kind, *extra)
    invoke("issue", "pool", "20000000")
    invoke("issue", "anon", "90000")
    invoke("policy", "enable", POLICIES)
    return invoke


def transfer(run, *args: str, ok: bool = True) -> dict:
    result = run("--json", "transfer", *args, ok=ok)
    return json.loads(result.output)


def test_cli__check_and_test_need_no_ledger() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["policy", "check", POLICIES]).exit_code == 0
    result = runner.invoke(cli, ["policy", "test", POLICIES])
    assert result.exit_code == 0, result.output
    assert " 0 failed" in result.output


def test_cli__check_reports_located_errors_and_exits_1(tmp_path) -> None:
    bad = tmp_path / "bad.policy"
    bad.write_text('rule "x" when amount > 5 deny "y"\n')
    result = CliRunner().invoke(cli, ["policy", "check", str(bad)])
    assert result.exit_code == 1
    assert "bad.policy:1:22: type mismatch" in result.output and "^" in result.output


def test_cli__each_rule_allows_denies_splits_holds_reports(run) -> None:
    allowed = transfer(run, "anon", "magnum", "1000", "--id", "allow-1")
    assert allowed["code"] == "ok"
    denied = transfer(run, "anon", "magnum", "60000", ok=False)
    assert denied["code"] == "policy_denied" and "tier-0-single-payment" in denied["message"]
    frozen = transfer(run, "pool", "gray", "10", ok=False)
    assert frozen["code"] == "policy_denied" and frozen["reports"][0]["agency"] == "fma"
    split = transfer(run, "pool", "mine", "1000", "--id", "split-1")
    assert split["code"] == "ok"
    shown = json.loads(run("--json", "policy", "explain", "split-1").output)
    assert set(shown["rules"]) == {"mining-revenue-via-aifc-exchange", "mining-tax-withholding"}
    assert {p[0]: p[1] for p in shown["postings"] if p[1] > 0} == {
        "aifc-exchange": 55000, "state-budget": 15000, "mine": 30000,
    }  # fmt: skip
    held = transfer(run, "pool", "developer", "2000000", "--id", "flat-1")
    assert held["code"] == "ok" and "held" in held["message"]
    big = transfer(run, "pool", "magnum", "6000000")
    assert big["reports"][0]["rule"] == "fma-threshold-report"
    text = run("policy", "explain", "split-1").output
    assert "matched mining-revenue-via-aifc-exchange" in text and "policy set:" in text
    assert "posting         550.00 KZT aifc-exchange" in text


def test_cli__split_postings_are_exact(run) -> None:
    transfer(run, "pool", "mine", "1000", "--id", "split-2")
    shown = json.loads(run("--json", "policy", "explain", "split-2").output)
    postings = shown["postings"]
    assert sum(p[1] for p in postings) == 0
    assert ["pool", -100000, ""] in postings and ["aifc-exchange", 55000, ""] in postings


def test_cli__rejected_set_leaves_enabled_set_unchanged(run, tmp_path) -> None:
    before = json.loads(run("--json", "policy", "list").output)["enabled"]
    bad = tmp_path / "bad.policy"
    bad.write_text('rule "x" split { 60% to "a" }\n')
    result = run("policy", "enable", str(bad), ok=False)
    assert result.exit_code == 1
    assert json.loads(run("--json", "policy", "list").output)["enabled"] == before


def test_cli__disable_and_restore_a_version(run) -> None:
    run("policy", "disable")
    assert transfer(run, "anon", "magnum", "60000")["code"] == "ok"  # no tier rule any more
    restored = run("policy", "enable", "--version", "1").output
    assert "enabled policy set version 2" in restored and "the set of version 1" in restored
    listed = json.loads(run("--json", "policy", "list").output)
    assert listed["enabled"]["version"] == 2
    assert [h["action"] for h in listed["history"]] == ["enable", "disable", "enable"]
    assert transfer(run, "anon", "magnum", "45000", ok=False)["code"] == "policy_denied"  # daily limit again


def test_check__errors_name_the_path_given(tmp_path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "bad.policy").write_text('rule "x"\n  on transfer\n  when payee.kindd == miner\n  deny "no"\n')
    result = CliRunner().invoke(cli, ["policy", "check", str(folder)])
    assert result.exit_code == 1
    assert f"{folder / 'bad.policy'}:3:8: unknown field payee.kindd" in result.output


@pytest.mark.parametrize("command", [("policy", "enable"), ("policy", "reads"), ("policy", "diff", "OTHER")])
def test_enable_reads_diff__errors_name_the_path_given(tmp_path, command) -> None:
    # Only `policy check` did: the others said `bad.policy:3:8`, a file the author's shell cannot open (and
    # `diff` did not say which of its two sets it was in).
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "bad.policy").write_text('rule "x"\n  on transfer\n  when payee.kindd == miner\n  deny "no"\n')
    args = [POLICIES if a == "OTHER" else a for a in command]
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "l.db"), "init", "--name", "l"])
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "l.db"), *args, str(folder)])
    assert result.exit_code == 1
    assert f"{folder / 'bad.policy'}:3:8: unknown field payee.kindd" in result.output, result.output


def test_check__warnings_name_the_path_given(tmp_path) -> None:
    # Errors did; a warning in the same output said only `w.policy:3:8`.
    folder = tmp_path / "rules"
    folder.mkdir()
    policy = folder / "w.policy"
    policy.write_text('rule "x"\n  on transfer\n  when payee.attr.zone == "a"\n  report fma "r"\n')
    text = CliRunner().invoke(cli, ["policy", "check", str(folder)])
    assert text.exit_code == 0 and f"{policy}:3:" in text.output, text.output
    data = json.loads(CliRunner().invoke(cli, ["--json", "policy", "check", str(folder)]).output)
    assert [w["file"] for w in data["warnings"]] == [str(policy)]


def test_test__a_policy_file_or_an_empty_folder_is_refused_clearly(tmp_path) -> None:
    (tmp_path / "a.policy").write_text('rule "x"\n  on transfer\n  deny "no"\n')
    for target, says in ((tmp_path / "a.policy", "is not a spec file"), (tmp_path, "no spec files")):
        result = CliRunner().invoke(cli, ["policy", "test", str(target)])
        assert result.exit_code == 1 and says in result.output, result.output


def test_cli__explain_of_a_rejected_operation_says_why_there_is_nothing_to_explain(run) -> None:
    denied = transfer(run, "anon", "magnum", "60000", "--id", "too-big", ok=False)
    assert "tier-0-single-payment" in denied["message"]  # the answer to the submission names the rule
    result = run("policy", "explain", "too-big", ok=False)
    assert result.exit_code == 1 and "a rejected operation is not journaled" in result.output


def test_cli__explain_when_no_rule_decided_names_the_set_that_was_enabled(run) -> None:
    run("issue", "halyk", "100", "--id", "plain-one")
    result = run("policy", "explain", "plain-one")
    enabled = json.loads(run("--json", "policy", "list").output)
    assert "no rule matched" in result.output and "(version 1)" in result.output
    assert str(enabled).count(result.output.split("policy set: ")[1].split(" ")[0]) >= 1


def test_cli__explain_shows_the_order_reshaping_rules_applied_in(run) -> None:
    transfer(run, "pool", "mine", "1000", "--id", "split-order")
    text = run("policy", "explain", "split-order").output
    assert "reshaped by, in order: mining-revenue-via-aifc-exchange, mining-tax-withholding" in text


def test_cli__enable_prints_the_sets_warnings(run, tmp_path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "meals.policy").write_text('rule "meals"\n  on transfer\n  when tag == "meals"\n  deny "x"\n')
    out = run("policy", "enable", str(folder)).output
    assert "warning: rule 'meals' guards tagged money on transfer" in out and "[W001]" in out
    assert out.rstrip().splitlines()[-1].startswith("enabled policy set version 2")
