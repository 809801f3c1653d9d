"""Diagnostics of the policy language: codes with examples, hints, spans, secondary labels and recovery."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tenge_cli.main import cli
from tenge_ledger.policy import PolicyError, parse_and_check
from tenge_ledger.policy.codes import CODES
from tenge_ledger.policy.errors import Diagnostic
from tenge_ledger.policy.parser import SYNTAX_EXAMPLES


def diagnostics(text: str) -> list[Diagnostic]:
    with pytest.raises(PolicyError) as info:
        parse_and_check({"t.policy": text})
    return info.value.diagnostics


@pytest.mark.parametrize("entry", [c for c in CODES if c.example], ids=lambda c: c.code)
def test_codes__each_documented_example_gives_its_code(entry) -> None:
    try:
        found = [w.code for w in parse_and_check({"example.policy": entry.example}).warnings]
    except PolicyError as exc:
        found = [d.code for d in exc.diagnostics]
    assert entry.code in found


def test_codes__every_catalogued_syntax_snippet_has_a_code() -> None:
    for snippets in SYNTAX_EXAMPLES.values():
        for snippet in snippets:
            codes = [d.code for d in diagnostics(snippet + "\n")]
            assert "E000" not in codes, (snippet, codes)


def test_hint__single_equals_in_a_condition() -> None:
    (found,) = diagnostics('rule "r"\n  when amount = 5 KZT\n  deny "x"\n')
    assert (found.line, found.col, found.code) == (2, 15, "E001") and "compare with ==" in found.message


@pytest.mark.parametrize(
    "effect",
    ['route to "@holds"', 'withhold 10% to "@holds"', 'split { 50% to "Shop", remaining to payee }',
     'hold for 1d released by "@holds"'],
)  # fmt: skip
def test_target__an_account_a_rule_cannot_name_is_located(effect) -> None:
    # `route to "@holds"` was accepted: the money went to the holds account with no hold, and `tenge check`
    # then failed; a name that no account can have ("Shop") could only fail at run time.
    (found,) = diagnostics(f'rule "r"\n  on transfer\n  {effect}\n')
    assert (found.line, found.code) == (3, "E028") and "is not an account handle" in found.message


def test_rule_without_effect__is_reported_at_that_rule() -> None:
    found = diagnostics('rule "a"\n  when amount > 5 KZT\n\nrule "b"\n  deny "x"\n')
    assert [(d.line, d.col, d.code) for d in found] == [(1, 1, "E002")]


def test_recovery__a_syntax_error_does_not_hide_other_rules_checks() -> None:
    found = diagnostics(
        'rule "a"\n  when amount = 5 KZT\n  deny "x"\n\nrule "b"\n  when amount > 5\n  deny "x"\n'
        '\nrule "c"\n  when payee.kindd == miner\n  deny "x"\n'
    )
    assert [(d.line, d.code) for d in found] == [(2, "E001"), (6, "E012"), (10, "E011")]


def test_expected_tokens__the_complete_list_keywords_first() -> None:
    (found,) = diagnostics('rule "r"\n  when amount > 5 KZT KZT\n  deny "x"\n')
    listed = found.message.split("expected one of ", 1)[1]
    for word in ("'deny'", "'permit'", "'report'", "'hold'", "'split'", "'withhold'", "'route'", "'set'",
                 "'clear'", "'when'", "'unless'", "'and'", "'or'"):  # fmt: skip
        assert word in listed
    assert listed.index("'and'") < listed.index("+ or -")


def test_render__underlines_the_whole_token() -> None:
    (found,) = diagnostics('rule "r"\n  when payee.kindd == miner\n  deny "x"\n')
    source, caret = found.render().splitlines()[1:3]
    assert caret.strip() == "^" + "~" * (len("payee.kindd") - 1)
    assert source.index("payee.kindd") == caret.index("^")


def test_render__duplicate_rule_points_at_the_first_one() -> None:
    (found,) = diagnostics('rule "r"\n  deny "x"\n\nrule "r"\n  deny "y"\n')
    assert found.line == 4 and found.notes == ((1, 1, "the first rule of that name is here"),)
    assert "note: t.policy:1:1: the first rule of that name is here" in found.render()


def test_cli__explain_error_shows_the_example_and_its_diagnostic() -> None:
    result = CliRunner().invoke(cli, ["policy", "explain-error", "E012"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("E012: a type mismatch")
    assert "example.policy:2:15: type mismatch" in result.output and "[E012]" in result.output


def test_cli__explain_error_without_a_code_lists_them_all() -> None:
    result = CliRunner().invoke(cli, ["policy", "explain-error"])
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()] == [c.code for c in CODES]


def test_cli__explain_error_of_an_unknown_code_is_one_error_line() -> None:
    result = CliRunner().invoke(cli, ["policy", "explain-error", "E999"])
    assert result.exit_code == 1 and "no error code 'E999'" in result.output


def test_cli__check_json_gives_each_diagnostics_code(tmp_path) -> None:
    bad = tmp_path / "bad.policy"
    bad.write_text('rule "r"\n  when amount > 5\n  deny "x"\n')
    result = CliRunner().invoke(cli, ["policy", "check", "--json", str(bad)])
    assert result.exit_code == 1
    assert json.loads(result.output)["errors"][0]["code"] == "E012"


def test_render__a_window_constant_points_at_its_declaration() -> None:
    (found,) = diagnostics(
        'let window = 400d\n\nrule "r"\n  when payer.out_sum(window) > 1 KZT\n  deny "x"\n'
    )
    assert (found.line, found.code) == (4, "E021")
    assert found.notes == ((1, 1, "window is declared here"),)


def test_render__underlines_a_node_of_several_tokens_whole() -> None:
    (found,) = diagnostics('rule "r"\n  when payer.out_sum(5 KZT) > 1 KZT\n  deny "x"\n')
    source, caret = found.render().splitlines()[1:3]
    assert caret.strip() == "^~~~~" and source.index("5 KZT") == caret.index("^")
