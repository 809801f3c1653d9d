"""What people read: no Python values in human output, ISO times, text in its own script, numbers that add up,
and commands that accept what other commands print (`#SEQ`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_cli import Pilot, new_pilot

from tenge_cli.main import cli
from tenge_ledger.core.money import parse_amount

PYTHON_VALUES = re.compile(r"\bNone\b|\{\}|\[\]|\[\[|\bTrue\b|\bFalse\b|\\u04")


@pytest.fixture
def pilot(tmp_path, monkeypatch) -> Pilot:
    shares = [f"--share-to={h}={tmp_path / (h + '.share')}" for h in ("fma", "court", "central_bank")]
    p = new_pilot(tmp_path, monkeypatch, "--privacy", "escrowed", *shares, "--threshold", "2")
    p("issue", "halyk", "1000.00")
    return p


def test_account_show__no_python_values(pilot) -> None:
    out = pilot("account", "show", "halyk").stdout
    assert not PYTHON_VALUES.search(out), out
    assert "tier: -" in out and "attrs: none" in out


def test_account_list__no_python_values(pilot) -> None:
    out = pilot("account", "list").stdout
    assert not PYTHON_VALUES.search(out), out
    assert "tier=- bank=-" in out and "tier=1 bank=halyk" in out


def test_operation__by_journal_number(pilot) -> None:
    printed = pilot("transfer", "halyk", "aigerim", "10", "--id", "t-1").stdout
    seq = re.search(r"\(#(\d+)\)", printed).group(1)
    shown = pilot("operation", f"#{seq}").stdout
    assert shown.startswith(f"#{seq} transfer t-1 ")
    assert pilot.json("policy", "explain", f"#{seq}")["id"] == "t-1"
    pilot.mistake("operation", "#999", says='no applied operation "#999"')


def test_operation__kazakh_memo_shown_as_itself(pilot) -> None:
    pilot("transfer", "halyk", "aigerim", "10", "--id", "t-1", "--memo", "Жанна сәлем")
    out = pilot("operation", "t-1").stdout
    assert '"memo": "Жанна сәлем"' in out and "\\u04" not in out


def test_unmask__iso_times_and_postings_in_kzt(pilot) -> None:
    pilot("transfer", "halyk", "aigerim", "10", "--id", "t-1")
    shares = Path(pilot.db).parent  # where init --share-to wrote the escrow holders' shares
    out = pilot(
        "privacy", "unmask", "t-1", "--case", "C-1", "--basis", "order",
        "--share", str(shares / "fma.share"), "--share", str(shares / "court.share"),
    ).stdout  # fmt: skip
    assert not PYTHON_VALUES.search(out), out
    assert re.search(r"^at: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", out, re.M), out
    assert "postings: halyk -10.00 KZT; aigerim 10.00 KZT" in out
    assert "amount_tiyn: 1000 (10.00 KZT)" in out


def test_issue__empty_expires_refused(pilot) -> None:
    pilot.mistake("issue", "halyk", "1", "--tag", "budget:x", "--expires", "", says='"" is not a date')


def test_issue__expires_without_tag_refused(pilot) -> None:
    pilot.mistake("issue", "halyk", "1", "--expires", "2027-01-01", says="only tagged money expires")


def test_freeze__frozen_account_refused(pilot) -> None:
    pilot("account", "freeze", "aigerim", "--id", "f-1")
    pilot.mistake("account", "freeze", "aigerim", says="aigerim is frozen already")
    assert pilot("account", "freeze", "aigerim", "--id", "f-1").stdout.startswith("exists:")
    pilot("account", "unfreeze", "aigerim")
    pilot.mistake("account", "unfreeze", "aigerim", says="aigerim is active already")


def test_submit__error_wording_names_json_values(pilot, tmp_path) -> None:
    ops = tmp_path / "ops.jsonl"
    ops.write_text(
        json.dumps({"id": None, "kind": "transfer", "payer": "halyk", "payee": "aigerim", "amount": "1"})
        + "\n"
        + json.dumps(
            {"id": "x", "kind": "transfer", "payer": "halyk", "payee": "aigerim", "amount_tiyn": True}
        )
        + "\n"
    )
    err = pilot("submit", str(ops), ok=False).stderr
    assert "ops.jsonl:1.id: is missing: give an operation id" in err
    assert "ops.jsonl:2.amount_tiyn: must be a whole number of tiyn, got true" in err
    assert "None" not in err and "True" not in err


def test_submit__open_account_without_public_key_gets_a_key(pilot, tmp_path) -> None:
    ops = tmp_path / "open.jsonl"
    ops.write_text(
        json.dumps({"id": "o-1", "kind": "open_account", "handle": "bob", "account_kind": "person",
                    "tier": 1, "bank": "halyk"}) + "\n"
        + json.dumps({"id": "o-2", "kind": "open_account", "handle": "carol", "account_kind": "person",
                      "tier": 1, "bank": "no-such-bank"}) + "\n"
    )  # fmt: skip
    result = pilot("submit", str(ops), ok=False)
    assert "1 ok" in result.stdout
    keys = Path(pilot.db + ".keys")
    assert (keys / "bob.key").exists() and not (keys / "carol.key").exists()
    assert pilot.json("account", "show", "bob")["public_key"]
    pilot("transfer", "halyk", "bob", "5")
    assert pilot("transfer", "bob", "aigerim", "1").stdout.startswith("ok:")  # signed with bob's new key


def test_submit__ends_with_a_throughput_line(pilot, tmp_path) -> None:
    ops = tmp_path / "ops.jsonl"
    ops.write_text(
        json.dumps({"id": "s-1", "kind": "transfer", "payer": "halyk", "payee": "aigerim", "amount": "1"})
        + "\n"
    )
    out = pilot("submit", str(ops)).stdout
    assert re.search(r"^read and signed in [\d.]+ s, applied in [\d.]+ s \([\d,]+ operations/s\)$", out, re.M)
    assert pilot.json("submit", str(ops))["applied_per_s"] >= 0


def test_help__issue_tag_is_not_a_bucket_to_draw_from() -> None:
    out = CliRunner().invoke(cli, ["issue", "--help"]).output
    assert "bucket to draw from" not in out and "Earmark the issued money" in out


def test_help__transfer_says_why_the_central_bank_is_not_paid() -> None:
    out = CliRunner().invoke(cli, ["transfer", "--help"]).output
    assert "counts as issued" in out and "tenge redeem" in out


def test_demo__totals_add_up_and_no_dead_hint(tmp_path) -> None:
    runner = CliRunner()
    summary = json.loads(runner.invoke(cli, ["demo", "--json"]).stdout)
    assert summary["journal"]["ok"] and len(summary["steps"]) > 30
    text = runner.invoke(cli, ["demo"]).stdout
    assert "issue 3,000,000.00 KZT to halyk" in text
    on_screen = sum(parse_amount(a) for a in re.findall(r" ok  issued (\d+\.\d\d) KZT", text))
    total = re.search(r"issued (\d+\.\d\d) KZT, redeemed", text).group(1)
    assert on_screen == parse_amount(total) == summary["supply"]["issued_tiyn"]
    assert "policy explain" not in text and "tenge demo --keep DIR" in text
    assert "30 days" in text and "{'" not in text
    kept = runner.invoke(cli, ["demo", "--keep", str(tmp_path / "kept")]).stdout
    assert f"tenge --db {tmp_path / 'kept' / 'pilot.db'} policy explain mining-001" in kept
