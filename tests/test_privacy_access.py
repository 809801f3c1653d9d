"""Audited access: bank re-identification, refusals logged, the tracker (with sealed cases), selective
disclosure, and the CLI's one-line errors for bad input."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tenge_cli.main import cli
from tenge_ledger.core.errors import InputError
from tenge_ledger.lab import sandbox
from tenge_ledger.privacy import operator
from tenge_ledger.privacy.access import Access
from tenge_ledger.privacy.keys import keyed_hash, keyed_hash_nacl


def access(box) -> Access:
    mode = box.store.meta().privacy_mode
    return Access(box.store, box.ring, box.store.meta().settings["privacy_public"], mode, lambda: box.now[0])


def test_keyed_blake2b__identical_to_pynacl():
    for size in (16, 32, 64):
        key, data = b"k" * 32, b"some data"
        assert keyed_hash(key, data, b"tenge-test", size) == keyed_hash_nacl(key, data, b"tenge-test", size)


def test_pseudonymous_unmask_through_the_bank__logged_then_tracked(tmp_path):
    box = sandbox.make(tmp_path, "pseudonymous")
    box.pay("alice", "bob", 500, "p1")
    plain = access(box).unmask(
        "p1", "AML-9", "suspicious pattern", "bank:b1", parties=box.parties_for("bank:b1")
    )
    assert plain["payer"] == "alice" and "payee" in plain["still_hidden"]
    (entry,) = access(box).tracker("alice")
    assert (entry["by"], entry["case"], entry["outcome"]) == ("bank:b1", "AML-9", "opened")
    assert access(box).tracker("bob") == []  # bob was not identified by this opening


def test_unmask_by_a_role_without_keys__refused_and_logged(tmp_path):
    box = sandbox.make(tmp_path, "pseudonymous")
    box.pay("alice", "bob", 500, "p1")
    with pytest.raises(InputError, match="refused and logged"):
        access(box).unmask("p1", "C", "basis", "public")
    with pytest.raises(InputError, match="unknown role"):
        access(box).unmask("p1", "C", "basis", "spy")
    outcomes = [
        json.loads(t.payload)["outcome"] for _, t in box.store.traces() if t.op_id.startswith("access:")
    ]
    assert len(outcomes) == 2 and all(o.startswith("refused") for o in outcomes)


def test_unmask_needs_case_and_basis(tmp_path):
    box = sandbox.make(tmp_path, "pseudonymous")
    box.pay("alice", "bob", 500, "p1")
    with pytest.raises(InputError, match="--basis is required"):
        access(box).unmask("p1", "C-1", "  ", "bank:b1", parties=box.parties_for("bank:b1"))


def test_tracker__sealed_case_appears_once_released(tmp_path):
    box = sandbox.make(tmp_path, "pseudonymous")
    box.pay("alice", "bob", 500, "p1")
    access(box).unmask(
        "p1",
        "SECRET-1",
        "covert investigation",
        "bank:b1",
        sealed_case=True,
        parties=box.parties_for("bank:b1"),
    )
    assert access(box).tracker("alice") == []
    access(box).release("SECRET-1", "investigation closed", "court")
    (entry,) = access(box).tracker("alice")
    assert entry["case"] == "SECRET-1"


def test_selective__viewing_key_and_signed_receipt_disclose(tmp_path):
    box = sandbox.make(tmp_path, "selective")
    box.pay("alice", "bob", 900, "s1", memo="rent")
    box.pay("alice", "bob", 901, "s2")
    assert box.view("s1", "account:alice").fields["memo"].value == "rent"
    assert box.view("s1", "fma").fields["payer"].level == "none"
    receipt = operator.disclose(box.store, "alice", "s1", box.keystore.get("alice"))
    assert (
        "record_key" in receipt
    )  # sealed to alice's registered viewing key: the receipt gives the record's key
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    views = {v.op_id: v for v in operator.view(box.store, "fma", (str(path),))}
    assert views["s1"].fields["amount"].value == 900
    assert views["s2"].fields["amount"].level == "none"  # the receipt opens one record only
    assert not box.ring.exists("account:alice")  # the operator's key ring holds nothing of alice's
    receipt["record_key"] = "00" * 32
    path.write_text(json.dumps(receipt))
    with pytest.raises(InputError, match="not signed"):
        operator.view(box.store, "fma", (str(path),))


def test_selective__disclosed_viewing_key_opens_all_the_accounts_records_and_only_them(tmp_path):
    box = sandbox.make(tmp_path, "selective")
    box.pay("alice", "bob", 900, "s1")
    box.pay("carol", "bob", 901, "s2")
    disclosed = operator.disclose_viewing_key(box.store, "alice", box.keystore.get("alice"))
    assert "viewing_secret" in disclosed and "signing" not in json.dumps(disclosed)
    path = tmp_path / "view.json"
    path.write_text(json.dumps(disclosed))
    views = {v.op_id: v for v in operator.view(box.store, "fma", (str(path),))}
    assert views["s1"].fields["payer"].value == "alice" and views["s2"].fields["payer"].level == "none"
    disclosed["account"] = "carol"  # alice's key passed off as carol's
    path.write_text(json.dumps(disclosed))
    with pytest.raises(InputError, match="not the viewing key 'carol' registered"):
        operator.view(box.store, "fma", (str(path),))


def test_view_by_a_role_with_keys_is_logged(tmp_path):
    box = sandbox.make(tmp_path, "tiered")
    box.pay("alice", "bob", 5_000_000, "big")
    operator.view(box.store, "fma", (str(box.party_path("fma")),))
    assert [t for _, t in box.store.traces() if t.op_id.startswith("access:")]
    assert {e["action"] for e in access(box).tracker("alice")} == {"view"}


# ---- CLI: bad input is one clear line, non-zero exit, nothing changed ------------------------------------------


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def share_to(directory) -> list[str]:
    """The three holders' --share-to options: their files outside the operator's keystore."""
    return [a for h in ("fma", "court", "central_bank") for a in ("--share-to", f"{h}={directory}/{h}.share")]


@pytest.fixture
def escrowed_db(tmp_path):
    db = str(tmp_path / "p.db")
    r = run(
        "--db", db, "init", "--name", "t", "--privacy", "escrowed", "--threshold", "2", *share_to(tmp_path)
    )
    assert r.exit_code == 0, r.output
    assert run("--db", db, "account", "open", "halyk", "--kind", "bank").exit_code == 0
    assert run("--db", db, "account", "open", "aigerim", "--kind", "person", "--bank", "halyk").exit_code == 0
    assert run("--db", db, "issue", "aigerim", "100").exit_code == 0
    return db


def test_cli_init__unknown_mode_is_one_line(tmp_path):
    r = run("--db", str(tmp_path / "x.db"), "init", "--name", "t", "--privacy", "opaque")
    assert r.exit_code != 0 and "unknown privacy mode" in r.output and len(r.output.strip().splitlines()) == 1


def test_cli_unmask__quorum_opens_one_share_refused_and_logged(escrowed_db, tmp_path):
    args = ["--db", escrowed_db, "privacy", "unmask", "#3", "--case", "C1", "--basis", "order 7"]
    refused = run(*args, "--share", str(tmp_path / "fma.share"))
    assert (
        refused.exit_code == 1 and "refused and logged" in refused.output and "needs 2 of 3" in refused.output
    )
    opened = run(*args, "--share", str(tmp_path / "fma.share"), "--share", str(tmp_path / "court.share"))
    assert opened.exit_code == 0 and "aigerim" in opened.output
    tracked = run("--db", escrowed_db, "privacy", "tracker", "aigerim")
    assert "C1" in tracked.output and "opened" in tracked.output and "fma+court" in tracked.output


def test_cli_unmask__bad_share_file_refused_and_logged(escrowed_db, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = run(
        "--db", escrowed_db, "privacy", "unmask", "#3", "--case", "C", "--basis", "b", "--share", str(bad)
    )
    assert r.exit_code == 1 and "refused and logged" in r.output
    views = run("--db", escrowed_db, "--json", "trace", "view", "--as", "public")
    assert any(v["type"] == "access" for v in json.loads(views.output))


def test_cli_trace_view__unknown_role_is_one_line(escrowed_db):
    r = run("--db", escrowed_db, "trace", "view", "--as", "mayor")
    assert r.exit_code == 1 and "unknown role" in r.output


def test_cli_privacy_modes__prints_the_table():
    r = run("--json", "privacy", "modes")
    assert r.exit_code == 0 and json.loads(r.output)["visibility"]["escrowed"]["fma"]["payer"] == "none"


def test_transparent_unmask_by_the_public__refused_and_logged(tmp_path):
    box = sandbox.make(tmp_path, "transparent")
    box.pay("alice", "bob", 500, "p1")
    with pytest.raises(InputError, match="refused and logged"):
        access(box).unmask("p1", "C", "basis", "public")
    assert access(box).unmask("p1", "C", "basis", "fma", parties=box.parties_for("fma"))["payer"] == "alice"


def test_trace_view__unknown_account_or_non_bank_role_refused(tmp_path):
    from tenge_ledger.core.errors import InputError
    from tenge_ledger.lab import sandbox
    from tenge_ledger.privacy.observers import keys_for

    box = sandbox.make(tmp_path, "pseudonymous")
    for role, says in (("account:ghost", "no account 'ghost'"), ("bank:alice", "not a bank")):
        with pytest.raises(InputError, match=says):
            keys_for(role, box.ring, box.store, 3600, parties=box.parties_for(role))


@pytest.mark.parametrize(("mode", "works"), [("selective", True), ("escrowed", False)])
def test_cli_disclose__only_on_selective_ledgers(tmp_path, monkeypatch, mode, works):
    from click.testing import CliRunner

    from tenge_cli.main import cli

    monkeypatch.setenv("TENGE_DB", str(tmp_path / "l.db"))
    monkeypatch.delenv("TENGE_KEYSTORE", raising=False)
    runner = CliRunner()
    holders = share_to(tmp_path) if mode == "escrowed" else ["--key-to", f"central_bank={tmp_path}/nbk.key"]
    for args in (
        ["init", "--name", "L", "--privacy", mode, *holders],
        ["account", "open", "halyk", "--kind", "bank"],
        ["account", "open", "aigerim", "--kind", "person", "--bank", "halyk"],
    ):
        assert runner.invoke(cli, args).exit_code == 0
    out = tmp_path / "view.json"
    result = runner.invoke(cli, ["privacy", "disclose", "aigerim", "--out", str(out)])
    assert (result.exit_code == 0) is works, result.output
    assert out.exists() is works
    if not works:
        assert "disclosure is for selective ledgers" in result.output


def test_cli_disclose__never_writes_over_an_existing_file(tmp_path, monkeypatch):
    # A private file (an escrow identity, a key) given as --out was overwritten with the viewing key.
    from click.testing import CliRunner

    from tenge_cli.main import cli

    monkeypatch.setenv("TENGE_DB", str(tmp_path / "l.db"))
    monkeypatch.delenv("TENGE_KEYSTORE", raising=False)
    runner = CliRunner()
    for args in (
        ["init", "--name", "L", "--privacy", "selective", "--key-to", f"central_bank={tmp_path}/nbk.key"],
        ["account", "open", "halyk", "--kind", "bank"],
        ["account", "open", "aigerim", "--kind", "person", "--bank", "halyk"],
    ):
        assert runner.invoke(cli, args).exit_code == 0
    secret = tmp_path / "fma.identity"
    secret.write_text("a holder's secret")
    secret.chmod(0o600)
    result = runner.invoke(cli, ["privacy", "disclose", "aigerim", "--out", str(secret)])
    assert result.exit_code == 1 and "already exists" in result.stderr, result.output
    assert secret.read_text() == "a holder's secret"


def test_disclosure__logged_and_checkpointed_before_the_key_is_returned(tmp_path):
    from tenge_ledger.trace import checkpoint as cps

    box = sandbox.make(tmp_path, "selective")
    box.pay("alice", "bob", 900, "s1")
    operator.disclose(box.store, "alice", "s1", box.keystore.get("alice"))
    operator.disclose_viewing_key(box.store, "alice", box.keystore.get("alice"))
    entries = operator.access_for(box.store).tracker("alice")
    assert [(e["action"], e["record"], e["by"]) for e in entries] == [
        ("disclose", "s1", "alice"),
        ("disclose", "viewing key", "alice"),
    ]
    size = len(list(box.store.traces()))
    assert max(c.checkpoint.tree_size for c in cps.saved(box.store)) == size  # the last access is covered
