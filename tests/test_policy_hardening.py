"""Inputs that crashed or stalled the policy language (issue 13): each is now a located diagnostic."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tenge_cli.main import cli
from tenge_ledger.core import limits
from tenge_ledger.core.canonical import check_text
from tenge_ledger.core.errors import InputError
from tenge_ledger.core.text import shown, shown_lines
from tenge_ledger.policy import PolicyError, compile_sources, parse_and_check
from tenge_ledger.policy import check as check_module
from tenge_ledger.policy.errors import Diagnostic
from tenge_ledger.policy.format import format_source
from tenge_ledger.policy.specs import run_spec


def diagnostics(text: str) -> list[Diagnostic]:
    with pytest.raises(PolicyError) as info:
        parse_and_check({"t.policy": text})
    return info.value.diagnostics


def doubling_lets(count: int) -> str:
    """Each let names the one before twice: folding that re-expands a definition does 2^count work."""
    lines = ["let a0 = 1 tiyn"] + [f"let a{i} = a{i - 1} + a{i - 1}" for i in range(1, count)]
    return "\n".join(lines) + f'\nrule "r"\n  when amount > a{count - 1}\n  deny "x"\n'


def worst_case_lets() -> str:
    """The most let folding a file within the size limit can ask for: a doubling chain, then as many wide lets
    naming its last constant as the let limit allows."""
    lines = ["let a0 = 1 tiyn"] + [f"let a{i} = a{i - 1} + a{i - 1}" for i in range(1, 41)]
    wide = " + ".join(["a40"] * 12)
    size = sum(len(line) + 1 for line in lines)
    while len(lines) < limits.policy_let_count_max:
        line = f"let b{len(lines)} = {wide}"
        if size + len(line) + 1 > limits.policy_file_bytes_max - 100:
            break
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + '\nrule "r"\n  when amount > a40\n  deny "x"\n'


# ---- effects and literals -------------------------------------------------------------------------------------


def test_check__bare_permit_is_a_rule_without_a_message() -> None:
    checked = parse_and_check({"t.policy": 'rule "r"\n  on issue\n  permit\n'})
    assert checked.rules[0].rule.effects[0].message is None


def test_fmt__bare_permit_round_trips() -> None:
    text = 'rule "r"\n  on issue\n  permit\n'
    assert format_source(text) == text


@pytest.mark.parametrize(
    "literal",
    ["{n} KZT", "{n} tiyn", "{n}", "{n}d", "{n}%"],
    ids=["kzt", "tiyn", "number", "duration", "percent"],
)
def test_parse__literal_over_the_digit_limit_is_located(literal: str) -> None:
    n = "9" * 4400
    text = {
        "{n}d": f'rule "r"\n  when payer.out_sum({n}d) > 1 KZT\n  deny "x"\n',
        "{n}%": f'rule "r" on transfer\n  withhold {n}% to "x"\n',
        "{n}": f'rule "r"\n  when payer.tier > {n}\n  deny "x"\n',
    }.get(literal, f'rule "r"\n  when amount > {literal.format(n=n)}\n  deny "x"\n')
    found = diagnostics(text)
    assert [(d.line, d.message) for d in found] == [(2, "a literal of 4400 digits, over the limit of 24")]
    assert found[0].col > 1


def test_submit__amount_tiyn_of_5000_digits_is_one_located_error(tmp_path) -> None:
    db, ops = str(tmp_path / "l.db"), tmp_path / "ops.jsonl"
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db, "init", "--name", "t"]).exit_code == 0
    ops.write_text('{"id": "i1", "kind": "issue", "account": "nbk", "amount_tiyn": ' + "9" * 5000 + "}\n")
    result = runner.invoke(cli, ["--db", db, "submit", str(ops)])
    assert result.exit_code == 1
    assert f"{ops}:1: an integer of 5000 digits, over the limit of 24; nothing applied" in result.output


# ---- let folding ----------------------------------------------------------------------------------------------


def test_compile__let_chain_longer_than_the_depth_limit_compiles_and_decides() -> None:
    lines = ["let a0 = 1 KZT"] + [
        f"let a{i} = a{i - 1} + 1 KZT" for i in range(1, 3 * limits.policy_depth_max)
    ]
    last = 3 * limits.policy_depth_max - 1
    engine = compile_sources(
        {"t.policy": "\n".join(lines) + f'\nrule "r"\n  when amount > a{last}\n  deny "x"\n'}
    )
    assert engine.checked.constants["t.policy"][f"a{last}"] == (last + 1) * 100


def test_check__doubling_constant_over_the_largest_amount_is_located_once() -> None:
    found = diagnostics(doubling_lets(60))
    assert len(found) == 1 and "beyond the ledger's largest amount" in found[0].message
    assert found[0].line == 55  # 2^54 tiyn is the first over 10^16


def test_check__let_folding_work_is_linear_in_the_file__worst_case_within_the_size_limit(monkeypatch) -> None:
    source = worst_case_lets()
    assert len(source) > limits.policy_file_bytes_max // 2  # a real worst case, not a toy
    calls = [0]
    fold = check_module._constant_value

    def counted(e, lets):
        calls[0] += 1
        return fold(e, lets)

    monkeypatch.setattr(check_module, "_constant_value", counted)
    compile_sources({"t.policy": source})
    # re-expanding definitions would be about 2^40 calls; folding each let once is a few per node
    assert calls[0] < len(source)


def test_check__more_lets_than_the_limit_is_located() -> None:
    lines = [f"let c{i} = {i} KZT" for i in range(limits.policy_let_count_max + 1)]
    found = diagnostics("\n".join(lines) + "\n")
    assert [(d.line, d.message) for d in found] == [
        (limits.policy_let_count_max + 1, f"more than {limits.policy_let_count_max} let constants")
    ]


# ---- files ----------------------------------------------------------------------------------------------------


def test_fmt__non_utf8_file_is_a_located_error(tmp_path) -> None:
    bad = tmp_path / "latin.policy"
    bad.write_bytes(b'rule "r"\n  deny "caf\xe9"\n')
    result = CliRunner().invoke(cli, ["policy", "fmt", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:2:12: not UTF-8 text: byte 0xe9" in result.output
    assert "Traceback" not in result.output


def test_spec__policy_named_by_an_absolute_path_outside_its_folder_is_refused(tmp_path) -> None:
    secret = tmp_path / "secret.policy"
    secret.write_text("TOP SECRET FIRST LINE\n")
    folder = tmp_path / "specs"
    folder.mkdir()
    spec = folder / "a.spec.toml"
    spec.write_text(f'policies = ["{secret}"]\n[[cases]]\nname = "x"\nop = {{ kind = "issue" }}\n')
    with pytest.raises(InputError) as info:
        run_spec(spec, lambda *a: None)
    assert "outside the spec's directory" in str(info.value) and "TOP SECRET" not in str(info.value)


def test_spec__policy_named_by_a_relative_path_out_of_its_folder_is_refused(tmp_path) -> None:
    (tmp_path / "other.policy").write_text('rule "r"\n  deny "x"\n')
    folder = tmp_path / "specs"
    folder.mkdir()
    spec = folder / "a.spec.toml"
    spec.write_text('policies = ["../other.policy"]\n[[cases]]\nname = "x"\nop = { kind = "issue" }\n')
    with pytest.raises(InputError, match="outside the spec's directory"):
        run_spec(spec, lambda *a: None)


@pytest.mark.parametrize(
    ("case", "says"),
    [('name = "c"', "bad spec: op is missing"),
     ('name = "c"\nop = { kind = "issue", amount = "1" }', "bad spec: op.payee")],
)  # fmt: skip
def test_spec__a_missing_field_is_named(tmp_path, case, says) -> None:
    # A case without `op` failed with "bad spec: 'op'": the repr of a KeyError.
    (tmp_path / "a.policy").write_text('rule "r"\n  on transfer\n  deny "x"\n')
    (tmp_path / "a.spec.toml").write_text(f"[[cases]]\n{case}\n")
    result = CliRunner().invoke(cli, ["policy", "test", str(tmp_path)])
    assert result.exit_code == 1 and says in result.output, result.output


@pytest.mark.parametrize(
    "spec, says",
    [('[[cases]]\nname = "c"\nop = { kind = "transfer", payer = "a", payee = "b", amount = "1" }\n'
      'expect = { code = "policy_denied", rule = ["r"] }\n', "case 1 (c): expect: unknown key 'rule'"),
     ('[[cases]]\nname = "c"\nop = { kind = "transfer", payer = "a", payee = "b", amount = "1" }\nexpected = {}\n',
      "case 1 (c): unknown key 'expected'"),
     ('acounts = []\n[[cases]]\nname = "c"\nop = { kind = "transfer", payer = "a", payee = "b", amount = "1" }\n',
      "the spec: unknown key 'acounts'")],
)  # fmt: skip
def test_spec__a_misspelt_key_is_named(tmp_path, spec, says) -> None:
    # A misspelt key was ignored: `rule` for `rules` skipped that check, and the case passed for nothing.
    (tmp_path / "a.policy").write_text('rule "r"\n  on transfer\n  deny "x"\n')
    (tmp_path / "a.spec.toml").write_text(spec)
    result = CliRunner().invoke(cli, ["policy", "test", str(tmp_path)])
    assert result.exit_code == 1 and says in result.output, result.output


# ---- output spoofing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reason",
    ["denied\\nok: transferred 100.00 KZT", "abc\u202edcba", "nul\x00here", "zero\u200bwidth"],
    ids=["newline-escape", "bidi-override", "nul", "zero-width"],
)
def test_check__reason_with_a_control_or_format_character_is_refused(reason: str) -> None:
    found = diagnostics(f'rule "r"\n  deny "{reason}"\n')
    assert len(found) == 1 and "one line of visible text" in found[0].message and found[0].line == 2


@pytest.mark.parametrize(
    "name", ["fma\u2010list\u2010payer", "", "Fma", "a b", "x" * (limits.policy_name_length_max + 1)]
)
def test_check__rule_name_outside_the_safe_alphabet_is_refused(name: str) -> None:
    found = diagnostics(f'rule "{name}"\n  deny "x"\n')
    assert any("a rule name is 1 to" in d.message for d in found)


def test_check__lookalike_rule_names_cannot_both_exist() -> None:
    found = diagnostics('rule "fma-list-payer"\n  deny "x"\n\nrule "fma\u2010list\u2010payer"\n  deny "x"\n')
    assert [d.line for d in found] == [4]


def test_check__agency_name_and_attribute_key_have_length_limits() -> None:
    agency = "f" * (limits.policy_agency_length_max + 1)
    key = "k" * (limits.attr_key_length_max + 1)
    found = diagnostics(f'rule "r"\n  when payer.attr.{key} == "x"\n  report {agency} "why"\n')
    assert sorted(d.message.split(" of ")[0] for d in found) == ["an agency name", "an attribute key"]


def test_diagnostic__comment_with_bidi_override_and_nul_is_shown_escaped() -> None:
    found = diagnostics('rule "r"\n  when amount > 5  # \u202eevil\x00\n  deny "x"\n')
    rendered = found[0].render()
    assert "\u202e" not in rendered and "\x00" not in rendered
    assert "# \\u202eevil\\x00" in rendered


def test_diagnostic__caret_stays_under_its_column_after_escapes() -> None:
    rendered = Diagnostic("t", 1, 13, "m", 'rule "r"  # \u202eevil').render()
    source, caret = rendered.splitlines()[1:]
    assert caret.index("^") == source.index("\\u202e")


def test_shown__escapes_what_could_forge_or_reorder_a_line() -> None:
    assert shown("a\nok: b") == "a\\nok: b"
    assert shown("x\u202ey\x00\\") == "x\\u202ey\\x00\\\\"
    assert shown("Қазақстан") == "Қазақстан"
    assert shown("x" * 10, 4) == "xxxx…"


def test_shown_lines__the_cli_output_keeps_newlines_and_escapes_by_the_same_categories() -> None:
    from tenge_cli.context import shown as cli_shown

    text = "ok\nline \x1b[31m \u202e \ue000 \x85 \ud800 Қазақ \\ \t"
    assert cli_shown(text) == shown_lines(text)
    assert shown_lines(text) == "ok\nline \\x1b[31m \\u202e \\ue000 \\x85 \\ud800 Қазақ \\ \\x09"
    assert shown_lines("plain\nascii") == "plain\nascii"


def test_memo__bidi_override_is_refused_like_a_control_character() -> None:
    with pytest.raises(InputError, match="control or format characters"):
        check_text("pay \u202e2.00", "memo", 256)


# ---- engines --------------------------------------------------------------------------------------------------


def test_compile__the_same_sources_under_two_versions_are_two_engines() -> None:
    files = {"t.policy": 'rule "r"\n  on issue\n  permit "noted"\n'}
    first, second = compile_sources(files, 1), compile_sources(files, 2)
    assert first is not second and (first.version, second.version) == (1, 2)
    with pytest.raises(AttributeError):
        first.version = 3  # type: ignore[misc]


def test_cli__explain_names_the_version_enabled_again(tmp_path) -> None:
    db, folder = str(tmp_path / "l.db"), tmp_path / "set"
    folder.mkdir()
    (folder / "note.policy").write_text('rule "note"\n  on issue\n  permit "noted"\n')
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, ["--db", db, *args])
        assert result.exit_code == 0, result.output
        return result.output

    run("init", "--name", "t")
    run("account", "open", "roads", "--kind", "government")
    run("policy", "enable", str(folder))
    run("issue", "roads", "1", "--id", "first")
    run("policy", "disable")
    run("policy", "enable", str(folder))
    run("issue", "roads", "1", "--id", "second")
    shown_first = json.loads(run("--json", "policy", "explain", "first"))["detail"]["version"]
    shown_second = json.loads(run("--json", "policy", "explain", "second"))["detail"]["version"]
    assert (shown_first, shown_second) == (1, 2)
    assert "(version 2)" in run("policy", "explain", "second")


def test_ledger__enabled_set_is_compiled_only_when_it_decides(tmp_path) -> None:
    from tenge_ledger.app import open_ledger
    from tenge_ledger.policy.sets import EnabledPolicy

    db = str(tmp_path / "l.db")
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db, "init", "--name", "t"]).exit_code == 0
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "note.policy").write_text('rule "note"\n  on issue\n  permit "noted"\n')
    assert runner.invoke(cli, ["--db", db, "policy", "enable", str(folder)]).exit_code == 0
    ledger = open_ledger(db)
    policy = ledger.policy
    assert isinstance(policy, EnabledPolicy) and policy._engine is None
    assert policy.engine() is policy.engine()  # compiled once, kept by the ledger that owns it
    ledger.store.close()


def test_ledger__a_stored_set_that_no_longer_checks_denies_in_one_line(tmp_path) -> None:
    from tenge_ledger.policy.sets import set_id
    from tenge_ledger.store import open_store

    db = str(tmp_path / "l.db")
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db, "init", "--name", "t"]).exit_code == 0
    assert runner.invoke(cli, ["--db", db, "account", "open", "roads", "--kind", "government"]).exit_code == 0
    files = {"old.policy": 'rule "Old Name"\n  on issue\n  permit\n'}  # enabled before names were restricted
    store = open_store(db)
    store.set_setting("policy_set", {"id": set_id(files), "version": 1, "files": files})
    store.close()
    assert runner.invoke(cli, ["--db", db, "supply"]).exit_code == 0  # reading needs no decision
    result = runner.invoke(cli, ["--db", db, "issue", "roads", "1"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "policy error, denied: the enabled policy set (version 1) does not check any more" in result.output
    assert "old.policy:1:6: a rule name is 1 to 64" in result.output


def test_cli__explain_of_an_operation_no_rule_sees_says_so(tmp_path) -> None:
    db = str(tmp_path / "l.db")
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db, "init", "--name", "t"]).exit_code == 0
    (tmp_path / "p.policy").write_text('rule "big"\n  on transfer\n  when amount > 5 KZT\n  report fma "x"\n')
    assert runner.invoke(cli, ["--db", db, "policy", "enable", str(tmp_path / "p.policy")]).exit_code == 0
    opened = runner.invoke(cli, ["--db", db, "--json", "account", "open", "roads", "--kind", "government"])
    assert opened.exit_code == 0, opened.output
    op_id = json.loads(opened.output)["id"]
    result = runner.invoke(cli, ["--db", db, "policy", "explain", op_id])
    assert result.exit_code == 0, result.output
    assert "no rule of the policy set (version 1) sees an operation of kind open_account" in result.output
    assert runner.invoke(cli, ["--db", db, "account", "freeze", "roads"]).exit_code == 0
    thawed = runner.invoke(cli, ["--db", db, "--json", "account", "unfreeze", "roads"])
    assert thawed.exit_code == 0, thawed.output
    result = runner.invoke(cli, ["--db", db, "policy", "explain", json.loads(thawed.output)["id"]])
    assert (
        "no rule sees an operation of kind unfreeze: the ledger asks the policy set about issue"
        in result.output
    )


def test_cli__explain_json_says_no_rule_sees_the_kind_as_text_does(tmp_path) -> None:
    # The text said why nothing matched; --json gave no reason, so a script could not tell it from "no rule
    # matched".
    db = str(tmp_path / "l.db")
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db, "init", "--name", "t"]).exit_code == 0
    (tmp_path / "p.policy").write_text('rule "big"\n  on issue\n  when amount > 5 KZT\n  report fma "x"\n')
    assert runner.invoke(cli, ["--db", db, "policy", "enable", str(tmp_path / "p.policy")]).exit_code == 0
    opened = runner.invoke(cli, ["--db", db, "--json", "account", "open", "roads", "--kind", "government"])
    op_id = json.loads(opened.output)["id"]
    data = json.loads(runner.invoke(cli, ["--db", db, "--json", "policy", "explain", op_id]).output)
    assert data["unseen"] == "no rule of the policy set (version 1) sees an operation of kind open_account"
    issued = runner.invoke(cli, ["--db", db, "--json", "issue", "roads", "1"])
    data = json.loads(
        runner.invoke(
            cli, ["--db", db, "--json", "policy", "explain", json.loads(issued.output)["id"]]
        ).output
    )
    assert data["unseen"] is None
