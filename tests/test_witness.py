"""Witnesses outside the operator, attacked through the CLI only: a fork, a rollback, a removed tail and a
consistent rewrite re-signed with the operator's own key are each refused by `witness cosign` / `witness check`,
naming both tree heads; conflicting signed checkpoints yield a proof of equivocation that `audit equivocation`
re-checks. The formats are the C2SP ones, checked here by hand against the specifications' definitions."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

import nacl.signing
import pytest
import trace_tables
from click.testing import CliRunner
from journal_rewrite import rechain

from tenge_cli.main import cli
from tenge_ledger.trace import checkpoint as cps
from tenge_ledger.trace.merkle import leaf_hash


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


class Pilot:
    def __init__(self, folder: Path, name: str = "l.db") -> None:
        self.folder = folder
        self.db = str(folder / name)
        self.n = 0

    def __call__(self, *args: str, ok: bool = True):
        return run("--db", self.db, *args, ok=ok)

    def json(self, *args: str):
        return json.loads(self("--json", *args).output)

    def pay(self, amount: str = "1") -> None:
        self.n += 1
        self("transfer", "halyk", "aigerim", amount, "--id", f"p-{Path(self.db).stem}-{self.n}")

    def copy(self, name: str) -> Pilot:
        """The operator's copy of the database (and its keystore): what a fork or a rollback starts from."""
        other = Pilot(self.folder, name)
        shutil.copy(self.db, other.db)
        shutil.copytree(self.db + ".keys", other.db + ".keys")
        return other

    def sql(self, statement: str, *params) -> None:
        conn = sqlite3.connect(self.db)
        conn.execute(statement, params)
        conn.commit()
        conn.close()


@pytest.fixture
def pilot(tmp_path):
    p = Pilot(tmp_path)
    p("init", "--name", "pilot")
    p("account", "open", "halyk", "--kind", "bank")
    p("issue", "halyk", "1000")
    p("account", "open", "aigerim", "--kind", "person", "--bank", "halyk")
    p.pay()
    return p


def new_witness(pilot: Pilot, name: str) -> tuple[str, str]:
    state = str(pilot.folder / name)
    public = json.loads(run("--json", "witness", "init", "--state", state, "--name", name).output)[
        "public_key"
    ]
    pilot("witness", "add", name, public)
    return state, public


@pytest.fixture
def fma(pilot):
    state, public = new_witness(pilot, "fma-witness")
    pilot("witness", "cosign", "--state", state)
    return state, public


def operator_key(pilot: Pilot) -> str:
    return pilot.json("checkpoint")["key"]


# ---- the formats ----------------------------------------------------------------------------------------------


def test_witness_init__private_key_file_and_public_key_printed(tmp_path):
    state = tmp_path / "w"
    out = json.loads(run("--json", "witness", "init", "--state", str(state), "--name", "fma.kz/w1").output)
    assert len(bytes.fromhex(out["public_key"])) == 32
    assert os.stat(state / "witness.key").st_mode & 0o777 == 0o600
    again = run("witness", "init", "--state", str(state), "--name", "fma.kz/w1", ok=False)
    assert again.exit_code == 1 and "already there" in again.output


def test_witness_init__name_with_a_space_refused(tmp_path):
    r = run("witness", "init", "--state", str(tmp_path / "w"), "--name", "fma witness", ok=False)
    assert r.exit_code == 1 and "Error:" in r.output and "Traceback" not in r.output


def test_checkpoint__is_a_c2sp_signed_note_with_the_specified_key_id(pilot):
    out = pilot.json("checkpoint")
    text, _, sigs = out["note"].partition("\n\n")
    origin, size, root = text.split("\n")
    assert origin.startswith("tenge-ledger/") and int(size) == out["tree_size"]
    assert base64.b64decode(root) == bytes.fromhex(out["root"])
    line = sigs.strip().split("\n")
    assert len(line) == 1 and line[0].startswith(f"\u2014 {origin} ")
    raw = base64.b64decode(line[0].rsplit(" ", 1)[1])
    public = bytes.fromhex(out["key"])
    assert raw[:4] == hashlib.sha256(origin.encode() + b"\n\x01" + public).digest()[:4]  # signed-note, 0x01
    nacl.signing.VerifyKey(public).verify((text + "\n").encode(), raw[4:])


def test_cosignature__is_a_timestamped_cosignature_v1(pilot, fma):
    state, public = fma
    note = json.loads(Path(state, "witness.json").read_text())["checkpoint"]["note"]
    text, _, sigs = note.partition("\n\n")
    line = next(s for s in sigs.strip().split("\n") if s.startswith("\u2014 fma-witness "))
    raw = base64.b64decode(line.rsplit(" ", 1)[1])
    key = bytes.fromhex(public)
    assert raw[:4] == hashlib.sha256(b"fma-witness\n\x04" + key).digest()[:4]  # tlog-cosignature, 0x04
    timestamp = int.from_bytes(raw[4:12], "big")
    message = f"cosignature/v1\ntime {timestamp}\n{text}\n".encode()
    nacl.signing.VerifyKey(key).verify(message, raw[12:])


def test_cosign__unregistered_witness_refused(pilot, tmp_path):
    state = str(tmp_path / "w")
    run("witness", "init", "--state", state, "--name", "stranger")
    r = pilot("witness", "cosign", "--state", state, ok=False)
    assert r.exit_code == 1 and "not registered" in r.output


# ---- cosigning an honest log ----------------------------------------------------------------------------------


def test_cosign__an_extended_log_is_cosigned_again(pilot, fma):
    state, _ = fma
    pilot.pay()
    pilot.pay()
    info = pilot.json("witness", "cosign", "--state", state)
    assert info["tree_size"] > info["previous_size"]


def test_audit_export__carries_the_cosignatures_and_verify_needs_the_quorum(pilot, fma, tmp_path):
    state, fma_key = fma
    bank_state, bank_key = new_witness(pilot, "bank-witness")
    pilot.pay()
    pilot("witness", "cosign", "--state", state)
    bundle = str(tmp_path / "b.json")
    pilot("audit", "export", bundle)
    key = operator_key(pilot)
    one = run("audit", "verify", bundle, "--key", key, "--witness", fma_key)
    assert "witnessed up to" in one.output
    both = run("audit", "verify", bundle, "--key", key, "--witness", fma_key, "--witness", bank_key, ok=False)
    assert both.exit_code == 1 and "not witnessed" in both.output
    either = run("audit", "verify", bundle, "--key", key, "--witness", fma_key, "--witness", bank_key,
                 "--quorum", "1")  # fmt: skip
    assert either.exit_code == 0
    pilot("witness", "cosign", "--state", bank_state)
    pilot("audit", "export", bundle + "2")
    run("audit", "verify", bundle + "2", "--key", key, "--witness", fma_key, "--witness", bank_key)


def test_audit_verify__a_forged_cosignature_does_not_count(pilot, fma, tmp_path):
    _, fma_key = fma
    bundle = tmp_path / "b.json"
    pilot("audit", "export", str(bundle))
    doc = json.loads(bundle.read_text())
    for c in doc["checkpoints"]:
        lines = c["note"].split("\n")
        for i, line in enumerate(lines):
            if line.startswith("\u2014 fma-witness "):
                raw = bytearray(base64.b64decode(line.rsplit(" ", 1)[1]))
                raw[-1] ^= 1
                lines[i] = "\u2014 fma-witness " + base64.b64encode(bytes(raw)).decode()
        c["note"] = "\n".join(lines)
    bundle.write_text(json.dumps(doc))
    r = run("audit", "verify", str(bundle), "--key", operator_key(pilot), "--witness", fma_key, ok=False)
    assert r.exit_code == 1 and "not witnessed" in r.output


# ---- the operator's attacks -----------------------------------------------------------------------------------


def test_fork__refused_naming_both_heads_and_the_proof_of_equivocation_verifies(pilot, fma, tmp_path):
    state, _ = fma
    fork = pilot.copy("fork.db")
    pilot.pay("2")
    fork.pay("3")
    pilot("witness", "cosign", "--state", state)
    proof = str(tmp_path / "proof.json")
    r = fork("witness", "cosign", "--state", state, "--proof", proof, ok=False)
    assert r.exit_code == 1 and "forked" in r.output
    cosigned = json.loads(Path(state, "witness.json").read_text())["checkpoint"]
    head = cps.parse(cosigned["note"]).checkpoint
    assert f"cosigned {head.tree_size} records with root {head.root.hex()}" in r.output
    assert "now shown" in r.output
    checked = json.loads(run("--json", "audit", "equivocation", proof, "--key", operator_key(pilot)).output)
    assert checked["proven"] and checked["key"] == operator_key(pilot)


def test_fork__witness_check_of_the_other_copys_bundle_refused(pilot, fma, tmp_path):
    state, _ = fma
    fork = pilot.copy("fork.db")
    pilot.pay("2")
    pilot("witness", "cosign", "--state", state)
    fork.pay("3")
    fork.pay("4")
    bundle = str(tmp_path / "fork.json")
    fork("audit", "export", bundle)
    proof = str(tmp_path / "proof.json")
    r = run("witness", "check", "--state", state, bundle, "--proof", proof, ok=False)
    assert r.exit_code == 1 and "not an extension" in r.output
    assert run("audit", "equivocation", proof).exit_code == 0
    good = str(tmp_path / "good.json")
    pilot("audit", "export", good)
    assert "extends the" in run("witness", "check", "--state", state, good).output


def test_rollback__an_older_copy_restored_is_refused(pilot, fma):
    state, _ = fma
    old = pilot.copy("old.db")
    pilot.pay()
    pilot.pay()
    pilot("witness", "cosign", "--state", state)
    shutil.copy(old.db, pilot.db)  # the operator restores yesterday's copy
    r = pilot("witness", "cosign", "--state", state, ok=False)
    assert r.exit_code == 1 and "shrank" in r.output and "rollback" in r.output


def test_rollback_then_new_operations__refused_as_a_fork(pilot, fma, tmp_path):
    state, _ = fma
    old = pilot.copy("old.db")
    pilot.pay()
    pilot("witness", "cosign", "--state", state)
    shutil.copy(old.db, pilot.db)
    for _ in range(4):
        pilot.pay("9")
    proof = str(tmp_path / "proof.json")
    r = pilot("witness", "cosign", "--state", state, "--proof", proof, ok=False)
    assert r.exit_code == 1 and "forked" in r.output
    assert json.loads(run("--json", "audit", "equivocation", proof).output)["proven"]


def test_tail_removed__an_access_record_deleted_after_it_was_cosigned(pilot, fma, tmp_path):
    state, _ = fma
    pilot("trace", "view", "--as", "fma")  # an access: its record is checkpointed before the data is shown
    pilot("witness", "cosign", "--state", state)
    pilot.sql("DELETE FROM traces WHERE idx = (SELECT MAX(idx) FROM traces)")
    r = pilot("witness", "cosign", "--state", state, ok=False)
    assert r.exit_code == 1 and "not an extension" in r.output
    bundle = str(tmp_path / "b.json")
    pilot("audit", "export", bundle)
    assert run("witness", "check", "--state", state, bundle, ok=False).exit_code == 1


def test_tail_removed__several_records_refused_as_shrunk(pilot, fma):
    state, _ = fma
    pilot.pay()
    pilot.pay()
    pilot("witness", "cosign", "--state", state)
    conn = sqlite3.connect(pilot.db)
    trace_tables.cut(conn, trace_tables.last(conn) - 2)  # the last three leaves
    conn.commit()
    conn.close()
    r = pilot("witness", "cosign", "--state", state, ok=False)
    assert r.exit_code == 1 and "not an extension" in r.output


def test_access__checkpointed_before_the_data_is_returned(pilot):
    before = len(pilot.json("trace", "view", "--as", "public", "--limit", "1000"))
    pilot("trace", "view", "--as", "fma")
    kept = cps.parse(pilot.json("checkpoint")["note"])
    assert kept.checkpoint.tree_size > before  # the access record is under a signed checkpoint


def _rewrite_access_record(pilot: Pilot) -> None:
    """Change the last access record's bytes (a space after its JSON: still a well-formed record) and recompute
    its leaf hash. An applied operation's leaf is derived from its journal row, so rewriting one means rewriting
    the journal: tests/journal_rewrite.py and the journal-head tests below."""
    conn = sqlite3.connect(pilot.db)
    idx, payload = conn.execute(
        "SELECT idx, payload FROM traces WHERE op_id LIKE 'access:%' ORDER BY idx DESC"
    ).fetchone()
    changed = bytes(payload) + b" "
    conn.execute(
        "UPDATE traces SET payload = ?, leaf_hash = ? WHERE idx = ?", (changed, leaf_hash(changed), idx)
    )
    conn.commit()
    conn.close()


def test_consistent_rewrite_resigned_with_the_operators_key__refused(pilot, fma, tmp_path):
    state, _ = fma
    pilot("trace", "view", "--as", "fma")  # an access record, checkpointed before the data is shown
    pilot.pay("5")
    pilot("witness", "cosign", "--state", state)
    # The operator changes a record, recomputes its leaf hash, drops every checkpoint and signs a fresh one
    # with its own key: the log verifies on its own, and no longer extends what the witness cosigned.
    _rewrite_access_record(pilot)
    pilot.sql("UPDATE meta SET value = json_remove(value, '$.trace_checkpoint_notes') WHERE key = 'settings'")
    pilot("checkpoint")
    assert pilot("audit", "verify").exit_code == 0  # the operator's own checks cannot see it
    proof = str(tmp_path / "proof.json")
    r = pilot("witness", "cosign", "--state", state, "--proof", proof, ok=False)
    assert r.exit_code == 1 and "rewritten" in r.output
    assert json.loads(run("--json", "audit", "equivocation", proof).output)["proven"]
    bundle = str(tmp_path / "b.json")
    pilot("audit", "export", bundle)
    assert run("witness", "check", "--state", state, bundle, ok=False).exit_code == 1


def test_journal_rewrite__named_by_the_head_record_then_refused_by_the_witness(pilot, fma, tmp_path):
    state, _ = fma
    pilot.pay("5")
    pilot("witness", "cosign", "--state", state)
    seq = pilot.json("operation", "p-l-2")["seq"]
    rechain(pilot.db, seq, "amount", 90_000)
    r = pilot("audit", "verify", ok=False)
    assert r.exit_code == 1 and "rewritten" in r.output
    # ... so the operator rewrites the journal-head records too, and re-signs: the witness refuses.
    conn = sqlite3.connect(pilot.db)
    heads = conn.execute("SELECT idx, payload FROM traces WHERE op_id LIKE 'journal-head:%'").fetchall()
    new_link = conn.execute("SELECT link FROM journal WHERE seq = (SELECT MAX(seq) FROM journal)").fetchone()[
        0
    ]
    conn.close()
    idx, payload = heads[-1]
    doc = json.loads(bytes(payload))
    doc["link"] = bytes(new_link).hex()
    changed = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    pilot.sql("UPDATE traces SET payload = ?, leaf_hash = ? WHERE idx = ?", changed, leaf_hash(changed), idx)
    pilot.sql("UPDATE meta SET value = json_remove(value, '$.trace_checkpoint_notes') WHERE key = 'settings'")
    r = pilot("witness", "cosign", "--state", state, ok=False)
    assert r.exit_code == 1 and "not an extension" in r.output


# ---- automatic checkpoints ------------------------------------------------------------------------------------


def test_checkpoints__signed_automatically_every_n_records(pilot):
    pilot("checkpoint", "--every", "3")
    size = cps.parse(pilot.json("checkpoint")["note"]).checkpoint.tree_size
    for _ in range(4):
        pilot.pay()  # one trace record each
    last = cps.parse(pilot.json("trace", "checkpoint")["note"]).checkpoint.tree_size
    from tenge_ledger.store import open_store

    store = open_store(pilot.db)
    sizes = sorted({c.checkpoint.tree_size for c in cps.saved(store)})
    store.close()
    automatic = [s for s in sizes if size < s < last]
    assert automatic, sizes  # signed by the commands themselves, before `trace checkpoint` was asked


def test_checkpoints__every_zero_signs_none_automatically(pilot):
    pilot("checkpoint", "--every", "0")
    size = cps.parse(pilot.json("checkpoint")["note"]).checkpoint.tree_size
    for _ in range(3):
        pilot.pay()
    from tenge_ledger.store import open_store

    store = open_store(pilot.db)
    sizes = {c.checkpoint.tree_size for c in cps.saved(store)}
    store.close()
    assert max(sizes) == size


def test_equivocation__a_proof_of_two_agreeing_checkpoints_is_not_proven(pilot, fma, tmp_path):
    state, _ = fma
    fork = pilot.copy("fork.db")
    pilot.pay()
    fork.pay("7")
    pilot("witness", "cosign", "--state", state)
    proof = tmp_path / "proof.json"
    fork("witness", "cosign", "--state", state, "--proof", str(proof), ok=False)
    doc = json.loads(proof.read_text())
    doc["second"] = doc["first"]
    proof.write_text(json.dumps(doc))
    r = run("audit", "equivocation", str(proof), ok=False)
    assert r.exit_code == 1 and "not proven" in r.output
    other = bytes(nacl.signing.SigningKey.generate().verify_key).hex()
    doc = json.loads(Path(state, "witness.json").read_text())
    assert doc["log_key"] != other


# ---- on every store (PostgreSQL too when the suite has a server) ---------------------------------------------


def test_cosign_and_verify__on_every_store_then_a_rewound_tree_refused(env, tmp_path, monkeypatch):
    from tenge_ledger.privacy import operator
    from tenge_ledger.trace import witness as witnessing

    monkeypatch.setenv("TENGE_KEYSTORE", str(tmp_path / "operator-keys"))
    assert env.wallet.issue("halyk", 100_000).succeeded
    state = str(tmp_path / "w")
    w = witnessing.init(state, "w1")
    assert env.wallet.submit("nbk", operator.witness_registration("w1", w.public_key.hex())).succeeded
    first = operator.witness_cosign(env.store, state)
    assert env.wallet.transfer("halyk", "aigerim", 5_000).succeeded
    second = operator.witness_cosign(env.store, state)
    assert second["previous_size"] == first["tree_size"] < second["tree_size"]
    bundle = str(tmp_path / "b.json")
    operator.export(env.store, bundle)
    result = operator.verify_bundle(bundle, operator.public_key(env.store), witnesses=(w.public_key.hex(),))
    assert result.ok and result.witnessed == second["tree_size"], result.problems
    # the witness's kept checkpoint rewound to the first: the log extends it, so it cosigns again ...
    kept = witnessing.load(state)
    older = cps.parse(first["checkpoint"])
    kept.last = older
    kept.save()
    assert operator.witness_cosign(env.store, state)["previous_size"] == first["tree_size"]
    # ... but a checkpoint the log does not extend, signed by the operator, is refused with a proof
    forged = cps.Checkpoint(older.checkpoint.origin, older.checkpoint.tree_size, bytes(32))
    key = operator.ring_for(env.store).signing_key("operator")
    from tenge_ledger.trace import note as notes

    kept.last = cps.SignedCheckpoint(
        forged, notes.Note(forged.text(), (notes.sign_ed25519(forged.text(), forged.origin, key),))
    )
    kept.save()
    with pytest.raises(witnessing.NotAnExtension, match="consistency proof fails") as refused:
        operator.witness_cosign(env.store, state)
    from tenge_ledger.trace import equivocation

    assert equivocation.check(refused.value.proof).proven


def test_witness_add__journaled_signed_by_the_central_bank_once(tmp_path, env) -> None:
    from tenge_ledger.core.results import ResultCode
    from tenge_ledger.privacy import operator
    from tenge_ledger.trace import witness as witnessing

    key = witnessing.init(str(tmp_path / "w"), "w1").public_key.hex()
    body = operator.witness_registration("w1", key)
    assert env.wallet.submit("halyk", body).code is ResultCode.signer_not_allowed  # only the central bank
    assert operator.witnesses(env.store) == {}
    applied = env.wallet.submit("nbk", body)
    assert applied.succeeded and operator.witnesses(env.store) == {"w1": key}
    again = env.wallet.submit("nbk", operator.witness_registration("w1", "00" * 32))
    assert again.code is ResultCode.invalid_operation and "another key" in again.message
    stored = env.store.operation(applied.op_id)
    assert stored.kind == "add_witness" and stored.message == "registered witness w1"
    env.check()  # the registry is derived from the journal, and the journal verifies
