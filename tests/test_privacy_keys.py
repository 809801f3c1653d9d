"""Keys belong to one ledger: privacy keys are filed under the ledger id, nothing is overwritten, two ledgers that
share a keystore directory keep their own keys, and a server ledger's default keystore is its own."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from tenge_cli.main import cli
from tenge_ledger.client.keystore import Keystore, keystore_path_for
from tenge_ledger.core.errors import InputError, LedgerStateError
from tenge_ledger.lab import sandbox
from tenge_ledger.privacy.keys import KeyRing, provision
from tenge_ledger.store import open_store


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def meta_of(db: str):
    store = open_store(db)
    try:
        return store.meta()
    finally:
        store.close()


def make_ledger(tmp_path, name: str) -> str:
    db = str(tmp_path / f"{name}.db")
    holders = [a for h in ("fma", "court") for a in ("--share-to", f"{h}={tmp_path}/{name}-{h}.share")]
    r = run("--db", db, "init", "--name", name, "--privacy", "escrowed", "--threshold", "2", *holders)
    assert r.exit_code == 0, r.output
    for args in (("account", "open", "halyk", "--kind", "bank"),
                 ("account", "open", "aigerim", "--kind", "person", "--bank", "halyk"), ("issue", "aigerim", "100")):  # fmt: skip
        assert run("--db", db, *args).exit_code == 0
    return db


def test_two_ledgers_with_one_keystore_keep_their_own_keys(tmp_path, monkeypatch):
    keystore = tmp_path / "shared.keys"
    monkeypatch.setenv("TENGE_KEYSTORE", str(keystore))
    first = make_ledger(tmp_path, "first")
    before = {p.name: p.read_bytes() for p in (keystore / "privacy" / meta_of(first).ledger_id).iterdir()}
    second = make_ledger(tmp_path, "second")
    a, b = meta_of(first), meta_of(second)
    assert a.ledger_id != b.ledger_id
    dirs = sorted(p.name for p in (keystore / "privacy").iterdir())
    assert dirs == sorted([a.ledger_id, b.ledger_id])
    after = {p.name: p.read_bytes() for p in (keystore / "privacy" / a.ledger_id).iterdir()}
    assert before == after  # the second init touched none of the first ledger's files
    pa, pb = a.settings["privacy_public"], b.settings["privacy_public"]
    assert pa["checkpoint_key"] != pb["checkpoint_key"]
    assert pa["escrow"]["group_public"] != pb["escrow"]["group_public"]
    # each ledger's checkpoints verify with its own key, and each opens its records with its own holders
    for db, name, key, other in ((first, "first", pa, pb), (second, "second", pb, pa)):
        bundle = str(tmp_path / f"{name}.bundle")
        assert run("--db", db, "audit", "export", bundle).exit_code == 0
        assert run("audit", "verify", bundle, "--key", key["checkpoint_key"]).exit_code == 0
        assert run("audit", "verify", bundle, "--key", other["checkpoint_key"]).exit_code == 1
        shares = [a for h in ("fma", "court") for a in ("--share", f"{tmp_path}/{name}-{h}.share")]
        r = run("--db", db, "privacy", "unmask", "#3", "--case", "C", "--basis", "order", *shares)
        assert r.exit_code == 0 and "aigerim" in r.output, r.output
    crossed = [a for h in ("fma", "court") for a in ("--share", f"{tmp_path}/second-{h}.share")]
    r = run("--db", first, "privacy", "unmask", "#3", "--case", "C", "--basis", "order", *crossed)
    assert r.exit_code == 1 and "belongs to another ledger" in r.output


def test_provision_refuses_to_overwrite(tmp_path):
    ledger_id = "ab" * 16
    provision(tmp_path, ledger_id)
    before = {p.name: p.read_bytes() for p in (tmp_path / "privacy" / ledger_id).iterdir()}
    with pytest.raises(InputError, match="refusing to overwrite"):
        provision(tmp_path, ledger_id)
    assert before == {p.name: p.read_bytes() for p in (tmp_path / "privacy" / ledger_id).iterdir()}


def test_a_key_ring_never_overwrites_a_file(tmp_path):
    ring = KeyRing(tmp_path, "cd" * 16)
    ring.write("bank:b9", {"pseudonym_root": "00" * 32})
    with pytest.raises(InputError, match="refusing to overwrite"):
        KeyRing(tmp_path, "cd" * 16).write("bank:b9", {"pseudonym_root": "11" * 32})
    assert KeyRing(tmp_path, "cd" * 16).read("bank:b9")["pseudonym_root"] == "00" * 32


def test_an_account_key_is_never_overwritten(tmp_path):
    keystore = Keystore(tmp_path / "k")
    key = keystore.create("alice")
    with pytest.raises(InputError, match="refusing to overwrite"):
        keystore.create("alice")
    assert bytes(keystore.get("alice")) == bytes(key)


def test_a_key_file_of_another_ledger_is_refused(tmp_path):
    box = sandbox.make(tmp_path, "pseudonymous")
    other = tmp_path / "other.keys" / "privacy" / ("ef" * 16)
    other.mkdir(parents=True)
    shutil.copy(box.ring.root / "operator.json", other / "operator.json")
    with pytest.raises(LedgerStateError, match="keys of another ledger"):
        KeyRing(tmp_path / "other.keys", "ef" * 16).read("operator")


def test_init_over_an_existing_ledger_changes_no_key(tmp_path):
    db = str(tmp_path / "x.db")
    readers = ["--key-to", f"central_bank={tmp_path}/nbk.key", "--key-to", f"fma={tmp_path}/fma.key"]
    assert run("--db", db, "init", "--name", "x", "--privacy", "pseudonymous", *readers).exit_code == 0
    files = {p: p.read_bytes() for p in (tmp_path / "x.db.keys").rglob("*") if p.is_file()}
    again = ["--key-to", f"central_bank={tmp_path}/nbk2.key", "--key-to", f"fma={tmp_path}/fma2.key"]
    r = run("--db", db, "init", "--name", "y", "--privacy", "pseudonymous", *again)
    assert r.exit_code == 1
    assert files == {p: p.read_bytes() for p in (tmp_path / "x.db.keys").rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "postgresql://h/db?options=-csearch_path%3Dpilot_a",
            "postgresql://h/db?options=-csearch_path%3Dpilot_b",
        ),
        ("postgresql://h/db1", "postgresql://h/db2"),
        ("postgresql://h1/db", "postgresql://h2/db"),
        ("postgresql://h:5432/db", "postgresql://h:5433/db"),
    ],
)
def test_server_ledgers_get_keystores_of_their_own(monkeypatch, a, b):
    monkeypatch.delenv("TENGE_KEYSTORE", raising=False)
    assert keystore_path_for(a) != keystore_path_for(b)
    assert keystore_path_for(a).parent.name == "tenge.keys"
    assert keystore_path_for(a) == keystore_path_for(a.replace("postgresql://", "postgresql://user:pw@"))


def test_server_keystore_names_the_server_database_and_schema(monkeypatch):
    monkeypatch.delenv("TENGE_KEYSTORE", raising=False)
    path = keystore_path_for("postgresql://u@db.example:5433/ledger?options=-csearch_path%3Dpilot")
    assert path.name == "db.example-5433-ledger-pilot"
    monkeypatch.setenv("TENGE_KEYSTORE", "/srv/keys")
    assert str(keystore_path_for("postgresql://h/db")) == "/srv/keys"


def test_public_material_names_its_ledger(tmp_path):
    box = sandbox.make(tmp_path, "escrowed")
    public = box.store.meta().settings["privacy_public"]
    assert public["ledger_id"] == public["escrow"]["ledger_id"] == box.store.meta().ledger_id
    assert all(json.loads(p.read_text())["ledger_id"] == public["ledger_id"] for p in box.ring.files())


def test_keys_in_the_old_layout_are_named_not_silently_missing(tmp_path):
    (tmp_path / "privacy").mkdir()
    (tmp_path / "privacy" / "operator.json").write_text("{}")
    with pytest.raises(LedgerStateError, match="old key layout"):
        KeyRing(tmp_path, "ab" * 16).read("operator")
