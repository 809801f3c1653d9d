"""The `tenge` command through click's CliRunner: the issue's command sequence end to end, and user mistakes.

A mistake exits non-zero with one line on stderr, no traceback, and leaves the ledger unchanged."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tenge_cli.main import cli
from tenge_ledger.store import open_store


class Pilot:
    def __init__(self, tmp_path: Path) -> None:
        self.db = str(tmp_path / "pilot.db")
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True) -> Result:
        result = self.runner.invoke(cli, ["--db", self.db, *args])
        if ok:
            assert result.exit_code == 0, (args, result.output, result.exception)
        return result

    def json(self, *args: str) -> dict | list:
        return json.loads(self("--json", *args).stdout)

    def state(self) -> tuple:
        store = open_store(self.db)
        try:
            return store.balances(), store.supply(), store.head(), store.accounts(), store.holds()
        finally:
            store.close()

    def mistake(self, *args: str, says: str) -> Result:
        """Run a command that must fail cleanly and change nothing."""
        before = self.state()
        result = self(*args, ok=False)
        assert result.exit_code != 0, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert says in lines[0], lines[0]
        assert "Traceback" not in result.output + result.stderr
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
        assert self.state() == before
        return result


# `tenge` run as a subprocess, from this checkout's environment (for terminals, file modes and exit codes)
TENGE = [sys.executable, "-c", "import sys; from tenge_cli.main import main; sys.argv[0] = 'tenge'; main()"]


def new_pilot(tmp_path, monkeypatch, *init_args: str) -> Pilot:
    """A ledger made through the CLI, away from the caller's $TENGE_KEYSTORE and $TENGE_DB: `init` (with
    `init_args`), then the bank halyk and aigerim, a tier 1 person it serves."""
    monkeypatch.delenv("TENGE_KEYSTORE", raising=False)
    monkeypatch.delenv("TENGE_DB", raising=False)
    p = Pilot(tmp_path)
    p("init", "--name", "Digital tenge pilot", *init_args)
    p("account", "open", "halyk", "--kind", "bank")
    p("account", "open", "aigerim", "--kind", "person", "--tier", "1", "--bank", "halyk")
    return p


@pytest.fixture
def pilot(tmp_path, monkeypatch) -> Pilot:
    p = new_pilot(tmp_path, monkeypatch)
    p("account", "open", "cafe-alatau", "--kind", "merchant", "--bank", "halyk", "--attr", "zone=alatau")
    p("account", "open", "roads-ministry", "--kind", "government")
    p("issue", "halyk", "1000000.00")
    p("issue", "roads-ministry", "5000000.00", "--tag", "budget:roads-2026", "--expires", "2027-01-01")
    return p


def test_session__issue_command_sequence(pilot, tmp_path) -> None:
    first = pilot("transfer", "halyk", "aigerim", "2500.50", "--id", "7f3c0d")
    assert first.stdout.startswith("ok:")
    again = pilot("transfer", "halyk", "aigerim", "2500.50", "--id", "7f3c0d")
    assert again.stdout.startswith("exists:")
    pilot("transfer", "aigerim", "cafe-alatau", "1200")
    bal = pilot.json("balance", "aigerim")
    assert bal["balance_tiyn"] == 250_050 - 120_000
    assert bal["by_tag"] == {"untagged": 130_050}
    roads = pilot.json("balance", "roads-ministry")
    assert roads["by_tag"] == {"budget:roads-2026": 500_000_000}
    supply = pilot.json("supply")
    assert supply == {
        "issued_tiyn": 600_000_000,
        "redeemed_tiyn": 0,
        "circulating_tiyn": 600_000_000,
    }
    history = pilot("history", "aigerim").stdout
    assert "2500.50" in history and "-1200.00" in history
    hist_json = pilot.json("history", "aigerim")
    assert [r["amount_tiyn"] for r in hist_json] == [-120_000, 250_050]
    pilot("redeem", "halyk", "100.00")
    assert pilot.json("supply")["redeemed_tiyn"] == 10_000
    ops = tmp_path / "ops.jsonl"
    ops.write_text(
        json.dumps({"id": "s-1", "kind": "transfer", "payer": "halyk", "payee": "aigerim", "amount": "10"})
        + "\n\n"
        + json.dumps(
            {"id": "s-2", "kind": "transfer", "payer": "aigerim", "payee": "cafe-alatau", "amount": "5.25"}
        )
        + "\n"
    )
    submitted = pilot("submit", str(ops))
    assert "2 operations: 2 ok" in submitted.stdout
    summary = pilot.json("submit", str(ops))
    assert summary["total"] == 2 and summary["codes"] == {"exists": 2}
    assert pilot.json("balance", "aigerim")["balance_tiyn"] == 130_050 + 1_000 - 525
    checked = pilot.json("check")
    assert checked["ok"] is True and checked["problems"] == []
    assert "ok:" in pilot("check").stdout


def test_json_flag__before_and_after_command(pilot) -> None:
    before = json.loads(pilot("--json", "balance", "halyk").stdout)
    after = json.loads(pilot("balance", "halyk", "--json").stdout)
    assert before == after and before["balance_tiyn"] == 100_000_000
    assert json.loads(pilot("supply", "--json").stdout)["issued_tiyn"] == 600_000_000


def test_submit__failures_listed_and_exit_nonzero(pilot, tmp_path) -> None:
    ops = tmp_path / "ops.jsonl"
    ops.write_text(
        json.dumps({"id": "f-1", "kind": "transfer", "payer": "aigerim", "payee": "halyk", "amount": "99"})
        + "\n"
    )
    result = pilot("submit", str(ops), ok=False)
    assert result.exit_code == 1
    assert "insufficient_funds" in result.stdout


def test_submit__malformed_line_named(pilot, tmp_path) -> None:
    ops = tmp_path / "ops.jsonl"
    ops.write_text(
        json.dumps({"id": "g-1", "kind": "transfer", "payer": "halyk", "payee": "aigerim", "amount": "1"})
        + "\n{not json\n"
    )
    pilot.mistake("submit", str(ops), says=f"{ops}:2")


def test_mistake__unknown_account(pilot) -> None:
    pilot.mistake("transfer", "halyk", "ghost", "10", says="unknown_account")
    pilot.mistake("balance", "ghost", says="no account 'ghost'")
    pilot.mistake("history", "ghost", says="no account 'ghost'")


@pytest.mark.parametrize("amount", ["1e3", "0", "0.001", "NaN", "1,000", "", "100000000000000.01"])
def test_mistake__bad_amount(pilot, amount) -> None:
    pilot.mistake("transfer", "halyk", "aigerim", amount, says="AMOUNT")


def test_mistake__negative_amount(pilot) -> None:
    pilot.mistake("transfer", "halyk", "aigerim", "-5", says="-5")


@pytest.mark.parametrize("date", ["2027-13-01", "01/01/2027", "tomorrow", "2027-1-1"])
def test_mistake__bad_date(pilot, date) -> None:
    pilot.mistake("issue", "roads-ministry", "10", "--tag", "budget:x", "--expires", date, says="--expires")


def test_mistake__wrong_key(pilot, tmp_path) -> None:
    import nacl.signing

    key_file = Path(pilot.db + ".keys") / "halyk.key"
    key_file.write_text(bytes(nacl.signing.SigningKey.generate()).hex() + "\n")
    pilot.mistake("transfer", "halyk", "aigerim", "10", says="bad_signature")


def test_mistake__missing_key(pilot) -> None:
    (Path(pilot.db + ".keys") / "halyk.key").unlink()
    pilot.mistake("transfer", "halyk", "aigerim", "10", says="no secret key for halyk")


def test_mistake__frozen_account(pilot) -> None:
    pilot("transfer", "halyk", "aigerim", "100")
    pilot("account", "freeze", "aigerim", "--reason", "investigation")
    pilot.mistake("transfer", "aigerim", "cafe-alatau", "10", says="account_frozen")
    pilot.mistake("transfer", "halyk", "aigerim", "10", says="account_frozen")


def test_mistake__insufficient_funds(pilot) -> None:
    pilot.mistake("transfer", "aigerim", "halyk", "10", says="insufficient_funds")


def test_mistake__second_init(pilot) -> None:
    pilot.mistake("init", "--name", "again", says="already holds the ledger")


def test_mistake__second_init_without_keystore(pilot) -> None:
    import shutil

    shutil.rmtree(pilot.db + ".keys")
    pilot.mistake("init", "--name", "again", says="already holds the ledger")


def _not_a_ledger(tmp_path: Path, content: bytes) -> tuple[Path, CliRunner]:
    path = tmp_path / "not-a-ledger.db"
    path.write_bytes(content)
    return path, CliRunner()


@pytest.mark.parametrize("content", [b"hello, world\n" * 200, bytes(range(256)) * 32])
@pytest.mark.parametrize("command", [["balance", "halyk"], ["supply"], ["check"], ["init", "--name", "x"]])
def test_mistake__db_file_not_a_ledger(tmp_path, content, command) -> None:
    path, runner = _not_a_ledger(tmp_path, content)
    result = runner.invoke(cli, ["--db", str(path), *command])
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a tenge ledger" in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert path.read_bytes() == content


def test_mistake__sqlite_db_of_another_program(tmp_path) -> None:
    import sqlite3

    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    result = CliRunner().invoke(cli, ["--db", str(path), "supply"])
    assert result.exit_code != 0 and "not a tenge ledger" in result.stderr


def test_mistake__no_ledger_yet(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "none.db"), "supply"])
    assert result.exit_code != 0
    assert "init" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "none.db").exists()


def test_hold_post_void__through_cli(pilot) -> None:
    pilot("hold", "halyk", "cafe-alatau", "300", "--timeout", "3600", "--id", "h-1")
    pilot("post", "h-1", "--amount", "100")
    assert pilot.json("balance", "cafe-alatau")["balance_tiyn"] == 10_000
    pilot.mistake("void", "h-1", says="hold_not_pending")


def test_mistake__submit_missing_file(pilot, tmp_path) -> None:
    pilot.mistake("submit", str(tmp_path / "absent.jsonl"), says="cannot read it")


def test_mistake__submit_binary_file(pilot, tmp_path) -> None:
    blob = tmp_path / "blob.jsonl"
    blob.write_bytes(b"\xff\xfe\x00garbage\n" * 10)
    pilot.mistake("submit", str(blob), says="not UTF-8 text")


def test_mistake__update_unknown_account(pilot) -> None:
    result = pilot.mistake("account", "update", "ghost", "--tier", "1", says="unknown_account")
    assert "no account 'ghost'" in result.stderr


def test_mistake__init_with_unknown_privacy_mode_leaves_nothing(tmp_path) -> None:
    db = tmp_path / "new.db"
    result = CliRunner().invoke(cli, ["--db", str(db), "init", "--name", "X", "--privacy", "bogus"])
    assert result.exit_code == 1
    assert "unknown privacy mode 'bogus'" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("new.db") and p.is_file()) == []
    assert not (tmp_path / "new.db.keys" / "nbk.key").exists()
    again = CliRunner().invoke(cli, ["--db", str(db), "init", "--name", "X"])
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize("name", ["", "   "])
def test_mistake__init_with_an_empty_name_refused(tmp_path, name) -> None:
    # `--name` is required, yet '' made a ledger that `info` showed with no name.
    db = tmp_path / "new.db"
    result = CliRunner().invoke(cli, ["--db", str(db), "init", "--name", name])
    assert result.exit_code == 1 and "--name" in result.stderr, result.output
    assert not db.exists()


def test_mistake__failed_init_leaves_no_keystore_folder(tmp_path) -> None:
    # The key was removed but its new folder stayed behind (`new.db.keys/`, empty).
    db = tmp_path / "new.db"
    result = CliRunner().invoke(cli, ["--db", str(db), "init", "--name", "X", "--key-to", "fma=f.key"])
    assert result.exit_code == 1 and "seals nothing to fma" in result.stderr, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_mistake__init_in_memory_refused(tmp_path, monkeypatch) -> None:
    # Each command is its own process: `init` said "created ledger" in a database gone at exit, and left
    # ./:memory:.keys/nbk.key behind.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TENGE_KEYSTORE", raising=False)
    result = CliRunner().invoke(cli, ["--db", ":memory:", "init", "--name", "X"])
    assert result.exit_code == 1 and "--db :memory:" in result.stderr, result.output
    assert list(tmp_path.iterdir()) == []


def test_submit__every_bad_line_named_at_once(pilot, tmp_path) -> None:
    ops = tmp_path / "ops.jsonl"
    good = {"id": "g-2", "kind": "transfer", "payer": "halyk", "payee": "aigerim", "amount": "1"}
    bad_amount = dict(good, id="g-3", amount="1e3")
    ops.write_text(
        "\n".join([json.dumps(good), json.dumps(bad_amount), "{nope", '{"id": "x", "kind": "teleport"}'])
    )
    before = pilot.state()
    result = pilot("submit", str(ops), ok=False)
    assert result.exit_code == 1
    assert f"{ops}:2.amount" in result.stderr and f"{ops}:3: not JSON" in result.stderr
    assert f"{ops}:4.kind" in result.stderr and "nothing applied" in result.stderr
    assert pilot.state() == before


def test_submit__a_large_file_is_written_by_the_committer(pilot, tmp_path, monkeypatch) -> None:
    """`tenge submit` applies a file in one call, so that from 10,000 operations on the store's committer writes
    while the next chunk applies (docs/journal.md); every line is applied once and the ledger checks."""
    from committer_support import pipelined_calls

    used = pipelined_calls(monkeypatch)
    ops = tmp_path / "bulk.jsonl"
    ops.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"b-{i}",
                    "kind": "transfer",
                    "payer": "halyk",
                    "payee": "cafe-alatau",
                    "amount": "0.01",
                }
            )
            + "\n"
            for i in range(10_001)
        )
    )
    summary = pilot.json("submit", str(ops))
    assert summary["total"] == 10_001 and summary["codes"] == {"ok": 10_001}
    assert used == [True]
    assert pilot.json("balance", "cafe-alatau")["balance_tiyn"] == 10_001
    assert pilot.json("check")["ok"] is True


def test_submit__a_line_whose_signature_does_not_verify_is_refused(pilot, tmp_path) -> None:
    """Signatures are checked on every core before the file applies; one that does not verify is still the
    ledger's to refuse (bad_signature), and the lines around it apply."""
    line = {"kind": "transfer", "payer": "halyk", "payee": "cafe-alatau", "amount": "1"}
    ops = tmp_path / "signed.jsonl"
    ops.write_text(
        json.dumps({"id": "s-1", **line})
        + "\n"
        + json.dumps({"id": "s-2", "signer": "halyk", "signature": "ab" * 64, **line})
        + "\n"
        + json.dumps({"id": "s-3", **line})
        + "\n"
    )
    done = pilot("--json", "submit", str(ops), ok=False)
    assert done.exit_code == 1  # a line was refused
    summary = json.loads(done.stdout)
    assert summary["codes"] == {"ok": 2, "bad_signature": 1}
    assert [f["id"] for f in summary["failed"]] == ["s-2"]
    assert pilot.json("balance", "cafe-alatau")["balance_tiyn"] == 200
