"""Looking at a ledger: `tenge info`, paged and filtered `trace view` and `history`, progress on a terminal
only, shell completion, and docs/cli.md generated from the commands' own help."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_cli import TENGE, Pilot, new_pilot

from tenge_cli.main import cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def pilot(tmp_path, monkeypatch) -> Pilot:
    p = new_pilot(tmp_path, monkeypatch)
    p("account", "open", "nurlan", "--kind", "person", "--tier", "1", "--bank", "halyk")
    p("issue", "halyk", "1000.00")
    for i in range(5):
        p("transfer", "halyk", "aigerim", "1", "--id", f"a-{i}")
    p("transfer", "halyk", "nurlan", "2", "--id", "n-1")
    return p


def test_info__names_the_ledger_and_counts(pilot) -> None:
    data = pilot.json("info")
    assert data["name"] == "Digital tenge pilot" and data["privacy_mode"] == "transparent"
    assert data["accounts"] == 5 and data["journal_entries"] == 12 and data["trace_records"] >= 10
    assert data["policy_set"] is None and data["store"] == "sqlite" and data["size_bytes"] > 0
    assert data["keystore"] == pilot.db + ".keys"
    text = pilot("info").stdout
    assert "policy set:      none enabled" in text and "journal entries: 12" in text and "None" not in text


def test_info__hides_a_server_password() -> None:
    from tenge_cli.reads import _without_password

    assert _without_password("postgresql://me:secret@db:5432/x") == "postgresql://me:***@db:5432/x"


def test_trace_view__limit_pages_the_log(pilot) -> None:
    views = pilot.json("trace", "view", "--as", "central_bank", "--limit", "3")
    assert len(views) == 3
    assert (
        "(the last 3 matching records"
        in pilot("trace", "view", "--as", "central_bank", "--limit", "3").stdout
    )


def test_trace_view__filters_by_account_and_kind(pilot) -> None:
    views = pilot.json("trace", "view", "--as", "central_bank", "--account", "nurlan", "--kind", "transfer")
    assert [v["op_id"] for v in views] == ["n-1"]
    assert pilot.json("trace", "view", "--as", "central_bank", "--since", "2999-01-01") == []
    until = pilot.json("trace", "view", "--as", "central_bank", "--until", "2000-01-01")
    assert until == []


def test_history__filters_and_pages(pilot) -> None:
    assert len(pilot.json("history", "aigerim", "--limit", "2")) == 2
    assert {r["kind"] for r in pilot.json("history", "halyk", "--kind", "issue")} == {"issue"}
    assert pilot.json("history", "halyk", "--until", "2000-01-01") == []
    pilot.mistake("history", "halyk", "--since", "soon", says="--since")


def test_progress__on_a_terminal_only(pilot, tmp_path) -> None:
    ops = tmp_path / "ops.jsonl"
    ops.write_text(
        "".join(
            json.dumps(
                {"id": f"p-{i}", "kind": "transfer", "payer": "halyk", "payee": "nurlan", "amount": "1"}
            )
            + "\n"
            for i in range(20)
        )
    )
    piped = subprocess.run([*TENGE, "--db", pilot.db, "submit", str(ops)], capture_output=True, text=True)
    assert piped.returncode == 0 and piped.stderr == ""
    seen = _stderr_on_a_terminal([*TENGE, "--db", pilot.db, "submit", str(ops)])
    assert b"applying" in seen and b"reading and signing" in seen
    assert b"verifying signatures" in _stderr_on_a_terminal([*TENGE, "--db", pilot.db, "check"])
    bundle = str(tmp_path / "bundle.json")
    assert b"writing the bundle" in _stderr_on_a_terminal(
        [*TENGE, "--db", pilot.db, "audit", "export", bundle]
    )


def _stderr_on_a_terminal(command: list[str]) -> bytes:
    """What `command` writes to stderr when stderr is a terminal (a pseudo-terminal); it must succeed."""
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(command, stderr=follower, stdout=subprocess.PIPE, timeout=60)
        os.close(follower)
        follower = -1
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert done.returncode == 0, seen
    return seen


def test_completion__bash_script_printed() -> None:
    env = {**os.environ, "_TENGE_COMPLETE": "bash_source"}
    script = subprocess.run(TENGE, env=env, capture_output=True, text=True).stdout
    assert "_tenge_completion" in script and "complete " in script


def test_docs__cli_reference_is_up_to_date() -> None:
    generated = CliRunner().invoke(cli, ["docs"]).stdout
    assert "## tenge account open" in generated and "## tenge info" in generated
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == generated, "docs/cli.md is out of date: run `tenge docs > docs/cli.md`"
