"""Who holds which key: the operator keeps only its own keys and public material. Its keystore and database
together open no sealed field of any mode where it is not meant to read; the readers' secrets are the files named
for them; a selective account without a viewing key is sealed to its own key, never to one the operator keeps;
a keystore in the old layout is refused until `tenge privacy migrate-keys` moves the secrets out."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import nacl.bindings as sodium
import nacl.exceptions
import nacl.public
import pytest
from click.testing import CliRunner

from tenge_cli.main import cli
from tenge_ledger.core.errors import InputError, LedgerStateError
from tenge_ledger.core.records import AccountKind, Issue, OpenAccount, Operation, Transfer
from tenge_ledger.lab import sandbox
from tenge_ledger.ledger.signing import public_key_hex
from tenge_ledger.privacy import operator, sink_for
from tenge_ledger.privacy import threshold as th
from tenge_ledger.privacy.keys import PartyKey, read_party_file, signing_box_secret, viewing_secret
from tenge_ledger.privacy.modes import escrowed
from tenge_ledger.privacy.modes.base import place_of, unregistered_recheck_records
from tenge_ledger.privacy.seal import unb64, unpad, unseal
from tenge_ledger.privacy.views import parse_payload

KEYED_MODES = ("pseudonymous", "tiered", "payee-transparent", "escrowed", "selective")
# fields sealed to a party's X25519 key (SealedBox) and fields sealed under a symmetric key (AEAD), with the name
# of the place (associated data) each AEAD field is bound to
BOX_FIELDS = ("payer_sealed", "payee_sealed", "rules_key", "fma_key")
AEAD_FIELDS = {"rules": "rules", "fma_ident": "fma_ident", "sealed": None}


def raw(value) -> bytes:
    return value if isinstance(value, bytes) else unb64(value)


def busy(box) -> None:
    """Small and large payments, tagged and with memos, between customers of two banks and of one."""
    for i, (payer, payee, amount) in enumerate(
        [("alice", "bob", 900), ("alice", "carol", 5_000_000), ("carol", "bob", 1_500), ("bob", "alice", 40)]
        * 3
    ):
        box.pay(payer, payee, amount, f"p{i}", memo="rent" if i % 2 else None)


def operator_material(box) -> list[Path]:
    """The operator's keystore for this ledger and the database files. (The demo wallet's account keys sit in the
    same directory, `<db>.keys/*.key`: they are each account holder's own keys, not the operator's.)"""
    ring = [p for p in box.ring.root.rglob("*") if p.is_file()]
    database = [Path(box.db)] + [p for p in Path(box.db).parent.glob(Path(box.db).name + "-*") if p.is_file()]
    return ring + database


def secrets_in(paths: list[Path]) -> set[bytes]:
    """Every 32-byte value written as 64 hex digits in these files, and each one's X25519 form as an Ed25519 seed:
    any key the operator could hold."""
    found: set[bytes] = set()
    for path in paths:
        text = path.read_bytes().decode("latin-1")
        found |= {bytes.fromhex(h) for h in re.findall(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])", text)}
    for value in list(found):
        seed_pk, seed_sk = sodium.crypto_sign_seed_keypair(value)
        found.add(sodium.crypto_sign_ed25519_sk_to_curve25519(seed_sk))
    return found


def opens(doc: dict, ledger_id: str, candidates: set[bytes]) -> list[str]:
    """The sealed fields of a stored record that any candidate opens: as an X25519 secret on every sealed box, as
    an AEAD key (with the right place) on every AEAD field, as an escrow scalar on the record's encapsulation."""
    found = []
    boxes = [(f, raw(doc[f])) for f in BOX_FIELDS if doc.get(f)]
    boxes += [("wraps", raw(w)) for w in doc.get("wraps", ())]
    aead = []
    for f, place in AEAD_FIELDS.items():
        if doc.get(f):
            name = place or ("escrow" if doc["mode"] == "escrowed" else "record")
            aead.append((f, raw(doc[f]), place_of(ledger_id, doc, name)))
    kem = escrowed.kem_of(doc) if doc["mode"] == "escrowed" else None
    for value in candidates:
        box = nacl.public.SealedBox(nacl.public.PrivateKey(value))
        for name, sealed in boxes:
            try:
                box.decrypt(sealed)
                found.append(name)
            except nacl.exceptions.CryptoError:
                pass
        for name, sealed, ad in aead:
            if unseal(value, sealed, ad) is not None:
                found.append(name)
        if kem is not None and th.scalar_int(value):
            key = th.record_key(ledger_id, kem, th.mul(th.scalar_int(value), kem))
            if escrowed.open_record(doc, ledger_id, key) is not None:
                found.append("escrow")
    return found


@pytest.mark.parametrize("mode", KEYED_MODES)
def test_operator_keystore_and_database_open_no_sealed_field(tmp_path, mode):
    """Everything the operator has, tried as every kind of key on every sealed field of every stored record: none
    opens. (What the operator does read in these modes is kept in clear or pseudonymised, and listed in
    docs/privacy.md; the pseudonyms are its own computation.)"""
    box = sandbox.make(tmp_path, mode)
    busy(box)
    candidates = secrets_in(operator_material(box))
    assert len(candidates) > 5  # the test does look at keys
    ledger_id = box.store.meta().ledger_id
    docs = [parse_payload(t.payload) for _, t in box.store.traces()]
    docs = [d for d in docs if d.get("type") == "op"]
    sealed = [d for d in docs if any(d.get(f) for f in (*BOX_FIELDS, *AEAD_FIELDS, "wraps"))]
    assert len(sealed) >= 10
    leaks = [(d["op_id"], f) for d in sealed for f in opens(d, ledger_id, candidates)]
    assert leaks == []
    # and the same attack with a reader's own key does open them: the attack would see a leak
    if mode == "escrowed":
        reader = {th.scalar_bytes(box.share("fma").secret)}  # one share alone still opens nothing
        assert not any(opens(d, ledger_id, reader) for d in sealed)
        return
    if mode == "selective":
        reader = {bytes(viewing_secret(bytes(box.keystore.get("alice"))))}
    else:
        reader = {bytes(read_party_file(box.party_path("fma"), ledger_id).box_key)}
    assert any(opens(d, ledger_id, reader) for d in sealed)


@pytest.mark.parametrize("mode", ("pseudonymous", "tiered", "payee-transparent", "selective"))
def test_readers_secrets_are_their_own_files_and_nowhere_in_the_operators(tmp_path, mode):
    box = sandbox.make(tmp_path, mode)
    busy(box)
    files = sorted(box.parties_dir.glob("*.key"))
    assert files, "the readers got key files"
    material = b"".join(p.read_bytes() for p in operator_material(box))
    public = box.store.meta().settings["privacy_public"]["box_public"]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        party = PartyKey.from_json(json.loads(path.read_text()), str(path))
        assert bytes(party.box_key).hex().encode() not in material
        assert public[party.holder] == party.box_public_hex  # the operator keeps the public half
    assert box.ring.foreign_secrets() == {}
    assert sorted(p.name for p in box.ring.files())[0] == "operator.json"


def test_pseudonyms__the_operator_computes_them_so_it_alone_can_link_and_reidentify(tmp_path):
    """The documented limit: a pseudonymising sink must hold the epoch keys, so the operator's keystore resolves
    pseudonyms (as the bank's key file does), and the central bank's and the FMA's files do not."""
    from tenge_ledger.privacy.modes.base import epoch_key, epoch_of, pseudonym

    box = sandbox.make(tmp_path, "pseudonymous")
    box.pay("alice", "bob", 900, "p1")
    doc = parse_payload(box.record("p1")[1])
    root = box.ring.bank_root("b1")
    assert pseudonym(epoch_key(root, epoch_of(doc["at"], 604800)), "alice") == doc["payer"]
    assert box.parties_for("bank:b1")[0].pseudonym_root == root
    for role in ("fma", "central_bank"):
        assert box.view("p1", role).fields["payer"].level == "pseudonym"


def test_reading_as_a_role_takes_its_key_file__the_keystore_gives_nothing(tmp_path):
    box = sandbox.make(tmp_path, "tiered")
    box.pay("alice", "bob", 5_000_000, "big")
    idx, _ = box.record("big")
    assert operator.view(box.store, "fma")[-1].fields["payer"].level != "clear"
    seen = [v for v in operator.view(box.store, "fma", (str(box.party_path("fma")),)) if v.op_id == "big"]
    assert seen[0].fields["payer"].value == "alice"
    with pytest.raises(InputError, match="not bank:b2's"):
        operator.view(box.store, "bank:b2", (str(box.party_path("bank:b1")),))


def test_cli_init__readers_keys_go_to_the_named_files_and_are_required(tmp_path, monkeypatch):
    monkeypatch.delenv("TENGE_KEYSTORE", raising=False)
    db = str(tmp_path / "t.db")
    r = CliRunner().invoke(cli, ["--db", db, "init", "--name", "T", "--privacy", "tiered"])
    assert r.exit_code == 1 and "--key-to central_bank=PATH --key-to fma=PATH" in r.output
    assert not Path(db).exists()
    inside = ["--key-to", f"central_bank={db}.keys/nbk.key", "--key-to", f"fma={tmp_path}/fma.key"]
    r = CliRunner().invoke(cli, ["--db", db, "init", "--name", "T", "--privacy", "tiered", *inside])
    assert r.exit_code == 1 and "operator's keystore" in r.output
    readers = ["--key-to", f"central_bank={tmp_path}/nbk.key", "--key-to", f"fma={tmp_path}/fma.key"]
    r = CliRunner().invoke(cli, ["--db", db, "init", "--name", "T", "--privacy", "tiered", *readers])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["--db", db, "account", "open", "halyk", "--kind", "bank"])
    assert r.exit_code == 1 and "--key-to PATH" in r.output
    r = CliRunner().invoke(
        cli, ["--db", db, "account", "open", "halyk", "--kind", "bank", "--key-to", f"{tmp_path}/halyk.key"]
    )
    assert r.exit_code == 0, r.output
    for name in ("nbk", "fma", "halyk"):
        assert stat.S_IMODE((tmp_path / f"{name}.key").stat().st_mode) == 0o600
    keys_dir = Path(db + ".keys") / "privacy"
    kept = {json.loads(p.read_text())["holder"] for p in keys_dir.rglob("*.json")}
    assert kept == {"operator", "pseudonyms:nbk", "pseudonyms:halyk"}


# ---- selective accounts with no registered viewing key ------------------------------------------------------------


def test_selective_account_without_viewing_key__sealed_to_its_own_key_not_the_operators(tmp_path):
    box = sandbox.make(tmp_path, "selective")
    key = box.keystore.create("dana")
    assert box.wallet.open_account("dana", AccountKind.person, tier=3, bank="b1").succeeded  # no viewing key
    box.pay("alice", "dana", 700, "to-dana")
    assert box.view("to-dana", "account:dana").fields["payee"].value == "dana"
    candidates = secrets_in(operator_material(box))
    doc = parse_payload(box.record("to-dana")[1])
    assert "salt" not in doc  # no wrap under an operator-kept viewing key any more
    assert opens(doc, box.store.meta().ledger_id, candidates) == []
    assert not any(p.name.startswith("account") for p in box.ring.files())
    # a receipt for one record works; the whole viewing key would be the signing key's: refused
    receipt = operator.disclose(box.store, "dana", "to-dana", key)
    assert len(bytes.fromhex(receipt["record_key"])) == 32
    with pytest.raises(InputError, match="registered no viewing key"):
        operator.disclose_viewing_key(box.store, "dana", key)


def test_selective_account_opened_in_its_first_payments_chunk__sealed_to_its_own_key(tmp_path):
    """An account the chunk being applied opened is not in the store yet: the ledger hands the sink the account as
    it saw it, so the record is sealed to the holder's own key, like any other. Neither the operator nor the central
    bank opens it (it used to be sealed to the central bank)."""
    box = sandbox.make(tmp_path, "selective")
    key = box.keystore.create("erik")
    ops = [
        Operation("open:erik", "nbk", OpenAccount("erik", AccountKind.person, public_key_hex(key), 3, "b1")),
        Operation("fund:erik", "nbk", Issue("erik", 5_000)),
        Operation("erik-pays", "erik", Transfer("erik", "alice", 100)),
    ]
    assert all(r.succeeded for r in box.ledger.apply_many(ops, verified=True))
    ledger_id = box.store.meta().ledger_id
    for op_id in ("fund:erik", "erik-pays"):
        doc = parse_payload(box.record(op_id)[1])
        assert opens(doc, ledger_id, secrets_in(operator_material(box))) == []
        cb = box.parties_for("central_bank")
        assert cb and opens(doc, ledger_id, {bytes(cb[0].box_key)}) == []
        assert opens(doc, ledger_id, {bytes(signing_box_secret(key))}) == ["wraps"]
    assert box.view("erik-pays", "account:erik").fields["payer"].value == "erik"


# ---- the old layout ------------------------------------------------------------------------------------------------


def old_layout(box, ring) -> dict[str, str]:
    """Turn a fresh ledger's keystore into the layout before this change: the readers' and banks' secrets in the
    operator's keystore, no party files. Returns holder -> the box key it had."""
    had = {}
    for path in sorted(box.parties_dir.glob("*.key")):
        party = read_party_file(path, ring.ledger_id)
        data = {"box_key": bytes(party.box_key).hex(), "box_public": party.box_public_hex}
        if party.pseudonym_root is not None and party.holder.startswith("bank:"):
            data["pseudonym_root"] = party.pseudonym_root.hex()
        ring.write(party.holder, data)
        had[party.holder] = data["box_key"]
        path.unlink()
    ring.write("court", {"box_key": "33" * 32, "box_public": "44" * 32})
    for path in ring.files():
        if json.loads(path.read_text())["holder"] in ("pseudonyms:b1", "pseudonyms:b2"):
            path.unlink()
    return had


def test_old_layout__refused_with_the_command_then_migrated_to_named_files(tmp_path, monkeypatch):
    monkeypatch.delenv("TENGE_KEYSTORE", raising=False)
    box = sandbox.make(tmp_path, "tiered")
    box.pay("alice", "bob", 900, "small")
    box.pay("alice", "bob", 5_000_000, "big")
    before = {op: box.view(op, "bank:b1").fields["payer"] for op in ("small", "big")}
    ring = box.ring
    box.store.close()
    had = old_layout(box, ring)
    store = box.ledger.store.__class__(box.db)
    with pytest.raises(LedgerStateError, match="tenge privacy migrate-keys") as refused:
        sink_for(store.meta(), store, box.db + ".keys")
    assert "--key-to bank:b1=PATH" in str(refused.value) and "--key-to court=PATH" in str(refused.value)
    store.close()
    run = lambda *a: CliRunner().invoke(cli, ["--db", box.db, *a])  # noqa: E731
    r = run("trace", "view", "--as", "public")
    assert r.exit_code == 1 and "tenge privacy migrate-keys" in r.output and "Traceback" not in r.output
    out = tmp_path / "moved"
    out.mkdir()
    named = [a for h in sorted(had) + ["court"] for a in ("--key-to", f"{h}={out}/{h.replace(':', '-')}.key")]
    r = run("privacy", "migrate-keys", *named[:-2])  # court left out: refused, nothing moved
    assert r.exit_code == 1 and "--key-to court=PATH" in r.output
    assert not list(out.iterdir())
    r = run("privacy", "migrate-keys", *named)
    assert r.exit_code == 0, r.output
    ring = sandbox.KeyRing(box.db + ".keys", ring.ledger_id)
    assert ring.foreign_secrets() == {}
    for holder, box_key in had.items():
        moved = read_party_file(out / f"{holder.replace(':', '-')}.key", ring.ledger_id)
        assert bytes(moved.box_key).hex() == box_key
        assert stat.S_IMODE((out / f"{holder.replace(':', '-')}.key").stat().st_mode) == 0o600
    # the records sealed before the migration open with the moved files, as they did
    r = run("--json", "trace", "view", "--as", "bank:b1", "--key", f"{out}/bank-b1.key")
    assert r.exit_code == 0, r.output
    views = {v["op_id"]: v for v in json.loads(r.output) if v["type"] == "op"}
    for op, field in before.items():
        assert views[op]["fields"]["payer"] == {"level": field.level, "value": field.value}
    assert run("privacy", "migrate-keys", *named).exit_code == 1  # nothing left to migrate


def test_party_key_of_another_ledger_is_refused(tmp_path):
    one = sandbox.make(tmp_path / "one", "tiered")
    two = sandbox.make(tmp_path / "two", "tiered")
    with pytest.raises(InputError, match="another ledger"):
        operator.view(two.store, "fma", (str(one.party_path("fma")),))


def test_sealed_box_padding_hides_handle_lengths(tmp_path):
    """A bank-sealed identity has one length whatever the handle (padded before sealing)."""
    box = sandbox.make(tmp_path, "payee-transparent")
    box.pay("alice", "bob", 900, "a")
    box.pay("carol", "bob", 900, "c")
    lengths = {len(raw(parse_payload(box.record(op)[1])["payer_sealed"])) for op in ("a", "c")}
    assert len(lengths) == 1
    assert unpad(b"x\x80\0\0") == b"x"


def test_bank_without_a_key__sealed_to_the_central_bank_until_it_registers_one(tmp_path):
    from tenge_ledger.privacy import register_bank_key

    box = sandbox.make(tmp_path, "tiered")
    for handle, kind, bank in (("b3", AccountKind.bank, None), ("dana", AccountKind.person, "b3")):
        box.keystore.create(handle)
        assert box.wallet.open_account(handle, kind, tier=3 if bank else None, bank=bank).succeeded
    assert box.wallet.issue("dana", 1_000_000).succeeded
    box.pay("dana", "bob", 500, "before")
    ledger_id = box.store.meta().ledger_id
    cb = bytes(box.parties_for("central_bank")[0].box_key)
    doc = parse_payload(box.record("before")[1])
    assert "payer_sealed" in opens(doc, ledger_id, {cb})
    register_bank_key(box.store, "b3", box.party_path("bank:b3"), box.db + ".keys")
    with pytest.raises(InputError, match="has a key already"):
        register_bank_key(box.store, "b3", tmp_path / "again.key", box.db + ".keys")
    # a running sink looks for the registration again within `unregistered_recheck_records` records (a new
    # process, such as the next CLI command, at once)
    for i in range(unregistered_recheck_records + 1):
        box.pay("dana", "bob", 500, f"meanwhile-{i}")
    box.pay("dana", "bob", 500, "after")
    doc = parse_payload(box.record("after")[1])
    assert "payer_sealed" not in opens(doc, ledger_id, {cb})
    assert "payer_sealed" in opens(doc, ledger_id, {bytes(box.parties_for("bank:b3")[0].box_key)})
    assert box.view("after", "bank:b3").fields["payer"].value == "dana"


def test_cli_reading_as_a_role__with_its_key_file_only(tmp_path, monkeypatch):
    monkeypatch.delenv("TENGE_KEYSTORE", raising=False)
    db = str(tmp_path / "t.db")

    def run(*args):
        return CliRunner().invoke(cli, ["--db", db, "--json", *args])

    keys = {h: str(tmp_path / f"{h}.key") for h in ("nbk", "fma", "halyk")}
    steps = (
        ("init", "--name", "T", "--privacy", "tiered", "--key-to", f"central_bank={keys['nbk']}",
         "--key-to", f"fma={keys['fma']}"),
        ("account", "open", "halyk", "--kind", "bank", "--key-to", keys["halyk"]),
        ("account", "open", "aigerim", "--kind", "person", "--tier", "1", "--bank", "halyk"),
        ("account", "open", "nurlan", "--kind", "person", "--tier", "1", "--bank", "halyk"),
        ("issue", "aigerim", "1000"),
        ("transfer", "aigerim", "nurlan", "5", "--id", "small"),
    )  # fmt: skip
    for step in steps:
        r = run(*step)
        assert r.exit_code == 0, (step, r.output)

    def payer(*extra):
        r = run("trace", "view", "--as", "bank:halyk", *extra)
        assert r.exit_code == 0, r.output
        return next(v for v in json.loads(r.output) if v["op_id"] == "small")["fields"]["payer"]

    assert payer()["level"] == "none"  # the operator's keystore gives the bank nothing
    assert payer("--key", keys["halyk"]) == {"level": "clear", "value": "aigerim"}
    r = run("trace", "view", "--as", "bank:halyk", "--key", keys["fma"])
    assert r.exit_code == 1 and "not bank:halyk's" in r.output and "Traceback" not in r.output
    r = run("privacy", "unmask", "small", "--case", "C", "--basis", "b", "--as", "bank:halyk")
    assert r.exit_code == 1 and "--key" in r.output
    r = run(
        "privacy",
        "unmask",
        "small",
        "--case",
        "C",
        "--basis",
        "b",
        "--as",
        "bank:halyk",
        "--key",
        keys["halyk"],
    )
    assert r.exit_code == 0 and json.loads(r.output)["payer"] == "aigerim"
