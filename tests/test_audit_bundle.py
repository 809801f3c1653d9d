"""Bundles an auditor verifies alone: the bundle carries every operation's signed document and signature and
the public keys the journaled account openings set; `audit verify BUNDLE` re-checks every client signature
offline and refuses to trust a key written in the bundle itself."""

from __future__ import annotations

import json
from pathlib import Path

import nacl.signing
import pytest
from click.testing import CliRunner

from tenge_cli.main import cli
from tenge_ledger.trace import checkpoint as cps
from tenge_ledger.trace import note as notes


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def ledger(tmp_path):
    db = str(tmp_path / "l.db")
    for args in (
        ("init", "--name", "pilot"),
        ("account", "open", "halyk", "--kind", "bank"),
        ("issue", "halyk", "1000"),
        ("account", "open", "aigerim", "--kind", "person", "--bank", "halyk"),
        ("transfer", "halyk", "aigerim", "4", "--id", "pay-1"),
    ):
        assert run("--db", db, *args).exit_code == 0
    return db


def export(db: str, path: Path) -> str:
    """Export a bundle; returns the operator's key."""
    out = run("--db", db, "--json", "audit", "export", str(path))
    assert out.exit_code == 0, out.output
    return json.loads(out.output)["checkpoint"]["key"]


def test_bundle__carries_documents_signatures_and_journaled_keys(ledger, tmp_path):
    bundle = tmp_path / "b.json"
    key = export(ledger, bundle)
    doc = json.loads(bundle.read_text())
    pay = next(j for j in doc["journal"] if j["op_id"] == "pay-1")
    assert json.loads(pay["document"])["amount_tiyn"] == 400 and len(pay["signature"]) == 128
    assert {k["handle"] for k in doc["public_keys"]} >= {"halyk", "aigerim"}
    r = run("--json", "audit", "verify", str(bundle), "--key", key)
    assert (
        r.exit_code == 0 and json.loads(r.output)["signatures"] == 4
    )  # every op but the two unsigned genesis entries


def test_verify_bundle__without_key_refused(ledger, tmp_path):
    bundle = tmp_path / "b.json"
    export(ledger, bundle)
    r = run("audit", "verify", str(bundle))
    assert r.exit_code == 1 and "--key" in r.output and r.output.startswith("Error:")


def test_verify_bundle__trust_bundle_key_says_nothing_was_authenticated(ledger, tmp_path):
    bundle = tmp_path / "b.json"
    export(ledger, bundle)
    r = run("audit", "verify", str(bundle), "--trust-bundle-key")
    assert r.exit_code == 0 and "NOTHING WAS AUTHENTICATED" in r.output


def test_bundle_resigned_with_a_fresh_key__refused_without_key_and_caught_with_it(ledger, tmp_path):
    bundle = tmp_path / "b.json"
    key = export(ledger, bundle)
    doc = json.loads(bundle.read_text())
    doc["traces"][-2]["payload"] = doc["traces"][-2][
        "payload"
    ]  # (any edit would do; re-signing is the point)
    fresh = nacl.signing.SigningKey.generate()
    resigned = []
    for c in doc["checkpoints"]:
        head = cps.parse(c["note"]).checkpoint
        line = notes.sign_ed25519(head.text(), head.origin, fresh)
        resigned.append({"note": notes.Note(head.text(), (line,)).render(), "at": c["at"]})
    doc["checkpoints"] = resigned
    doc["checkpoint_key"] = bytes(fresh.verify_key).hex()
    bundle.write_text(json.dumps(doc))
    assert run("audit", "verify", str(bundle)).exit_code == 1  # refused: no key given
    r = run("audit", "verify", str(bundle), "--key", key)
    assert r.exit_code == 1 and "not signed by the key" in r.output


def _edit_journal(bundle: Path, op_id: str, edit) -> None:
    doc = json.loads(bundle.read_text())
    entry = next(j for j in doc["journal"] if j["op_id"] == op_id)
    edit(entry)
    bundle.write_text(json.dumps(doc))


def test_forged_signature_in_the_bundle__found(ledger, tmp_path):
    bundle = tmp_path / "b.json"
    key = export(ledger, bundle)

    def forge(entry: dict) -> None:
        document = json.loads(entry["document"])
        document["signature"] = "00" * 64
        entry["document"] = json.dumps(document, sort_keys=True, separators=(",", ":"))
        entry["signature"] = "00" * 64

    _edit_journal(bundle, "pay-1", forge)
    r = run("audit", "verify", str(bundle), "--key", key)
    assert (
        r.exit_code == 1 and "pay-1" in r.output and "does not verify with halyk's journaled key" in r.output
    )


def test_changed_document_in_the_bundle__found(ledger, tmp_path):
    bundle = tmp_path / "b.json"
    key = export(ledger, bundle)
    _edit_journal(
        bundle,
        "pay-1",
        lambda e: e.update(document=e["document"].replace('"amount_tiyn":400', '"amount_tiyn":900')),
    )
    r = run("audit", "verify", str(bundle), "--key", key)
    assert r.exit_code == 1 and "not the one its fields hash was made from" in r.output


def test_public_key_list_edited_in_the_bundle__found(ledger, tmp_path):
    bundle = tmp_path / "b.json"
    key = export(ledger, bundle)
    doc = json.loads(bundle.read_text())
    doc["public_keys"][-1]["public_key"] = bytes(nacl.signing.SigningKey.generate().verify_key).hex()
    bundle.write_text(json.dumps(doc))
    r = run("audit", "verify", str(bundle), "--key", key)
    assert r.exit_code == 1 and "list of public keys" in r.output


def test_submit_verified_with_a_zero_signature__found_by_audit_verify(ledger, tmp_path):
    forged = {"v": 1, "id": "forged-1", "kind": "transfer", "signer": "halyk", "payer": "halyk",
              "payee": "aigerim", "amount_tiyn": 40_000, "signature": "00" * 64}  # fmt: skip
    ops = tmp_path / "ops.json"
    ops.write_text(json.dumps(forged) + "\n")  # JSON lines
    assert run("--db", ledger, "submit", str(ops), "--verified").exit_code == 0
    bundle = tmp_path / "b.json"
    key = export(ledger, bundle)
    r = run("audit", "verify", str(bundle), "--key", key)
    assert r.exit_code == 1 and "forged-1" in r.output and "does not verify" in r.output
    live = run("--db", ledger, "audit", "verify")
    assert live.exit_code == 1 and "forged-1" in live.output


def test_verify_against_an_earlier_bundle__a_conflicting_signed_checkpoint_found(ledger, tmp_path):
    import sqlite3

    from tenge_ledger.trace.merkle import leaf_hash

    earlier = tmp_path / "earlier.json"
    key = export(ledger, earlier)
    conn = sqlite3.connect(ledger)
    # a stored record (pay-1's leaf is derived from its signed journal row, which the bundle re-checks)
    idx, payload = conn.execute(
        "SELECT idx, payload FROM traces WHERE op_id LIKE 'journal-head:%'"
    ).fetchone()
    changed = bytes(payload) + b" "
    conn.execute(
        "UPDATE traces SET payload = ?, leaf_hash = ? WHERE idx = ?", (changed, leaf_hash(changed), idx)
    )
    conn.execute(
        "UPDATE meta SET value = json_remove(value, '$.trace_checkpoint_notes') WHERE key = 'settings'"
    )
    conn.commit()
    conn.close()
    later = tmp_path / "later.json"
    export(ledger, later)
    assert run("audit", "verify", str(later), "--key", key).exit_code == 0  # re-signed: consistent on its own
    r = run("audit", "verify", str(later), "--key", key, "--against", str(earlier))
    assert r.exit_code == 1 and "earlier bundle's signed checkpoint" in r.output and "conflicts" in r.output


def test_verify__quorum_larger_than_the_witnesses_given_refused(ledger, tmp_path):
    bundle = tmp_path / "b.json"
    key = export(ledger, bundle)
    witness = bytes(nacl.signing.SigningKey.generate().verify_key).hex()
    r = run("audit", "verify", str(bundle), "--key", key, "--witness", witness, "--quorum", "2")
    assert r.exit_code == 1 and "--quorum" in r.output


def test_export__streamed_file_is_the_bundle_byte_for_byte(tmp_path) -> None:
    """`audit export` writes record by record (memory flat however long the log); the file is exactly the bundle
    built whole, with and without the journal."""
    import hashlib

    from tenge_ledger.store import open_store
    from tenge_ledger.trace import bundle as bundles

    db = str(tmp_path / "p.db")
    run = CliRunner().invoke
    for args in (["init", "--name", "stream"], ["account", "open", "halyk", "--kind", "bank"],
                 ["account", "open", "roads", "--kind", "government"], ["issue", "halyk", "5000"],
                 ["transfer", "halyk", "roads", "12.50", "--memo", "Жол / road"]):  # fmt: skip
        assert run(cli, ["--db", db, *args]).exit_code == 0
    store = open_store(db)
    try:
        for with_journal in (True, False):
            streamed, whole = tmp_path / f"s-{with_journal}.json", tmp_path / f"w-{with_journal}.json"
            digest, traces, entries = bundles.export(store, str(streamed), with_journal)
            assert bundles.write(bundles.from_store(store, with_journal), str(whole)) == digest
            assert streamed.read_bytes() == whole.read_bytes()
            assert hashlib.sha256(streamed.read_bytes()).hexdigest() == digest
            assert traces > 0 and (entries > 0) == with_journal
    finally:
        store.close()


def _journal_index(doc: dict, op_id: str) -> int:
    return next(i for i, j in enumerate(doc["journal"]) if j["op_id"] == op_id)


def _pay_amount_as(value):
    def edit(doc: dict) -> str:
        i = _journal_index(doc, "pay-1")
        payer = next(p for p in doc["journal"][i]["postings"] if p[2] < 0)
        k = doc["journal"][i]["postings"].index(payer)
        doc["journal"][i]["postings"][k][2] = value
        return f"journal[{i}].postings[{k}][2]"

    return edit


def _set(section: str, index: int, key: str, value):
    def edit(doc: dict) -> str:
        doc[section][index][key] = value
        return f"{section}[{index}].{key}"

    return edit


def _seq_as_string(doc: dict) -> str:
    i = _journal_index(doc, "pay-1")
    doc["journal"][i]["seq"] = str(doc["journal"][i]["seq"])
    return f"journal[{i}].seq"


def _extra_key(doc: dict) -> str:
    doc["traces"][2]["note"] = "added"
    return 'traces[2]: unknown key "note"'


def _missing_key(doc: dict) -> str:
    i = _journal_index(doc, "pay-1")
    del doc["journal"][i]["chained"]
    return f'journal[{i}]: the key "chained" is missing'


def _missing_top_key(doc: dict) -> str:
    del doc["public_keys"]
    return 'the key "public_keys" is missing'


@pytest.mark.parametrize(
    "edit",
    [
        _seq_as_string,  # "seq": "5" was read as 5
        _pay_amount_as(True),  # a JSON true was read as an amount of 1
        _pay_amount_as(-400.0),  # a float was read as -400
        _pay_amount_as("-400"),
        _set("traces", 1, "at", 1.5),
        _set("traces", 0, "idx", False),
        _set("public_keys", 0, "seq", "1"),
        _set("checkpoints", 0, "at", "0"),
        _set("traces", 1, "op_id", 7),
        _extra_key,
        _missing_key,
        _missing_top_key,
    ],
    ids=["seq-string", "amount-bool", "amount-float", "amount-string", "at-float", "idx-bool", "key-seq-string",
         "checkpoint-at-string", "op-id-number", "extra-key", "missing-key", "missing-top-key"],
)  # fmt: skip
def test_bundle_of_another_shape__refused_naming_the_field_and_record(ledger, tmp_path, edit) -> None:
    # The reader took int("5"), int(True), int(-400.0): a bundle with numbers as strings, booleans or floats, an
    # unknown or a missing key verified as the file the export wrote, so one bundle had many spellings.
    bundle = tmp_path / "b.json"
    key = export(ledger, bundle)
    doc = json.loads(bundle.read_text())
    place = edit(doc)
    bundle.write_text(json.dumps(doc))
    r = CliRunner().invoke(cli, ["audit", "verify", str(bundle), "--key", key])
    assert r.exit_code == 1, r.output
    assert not isinstance(r.exception, Exception) or isinstance(r.exception, SystemExit), r.exception
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and place in lines[0], r.stderr
    assert "Traceback" not in r.output


def test_bundle_with_a_key_given_twice__refused(ledger, tmp_path) -> None:
    # json.loads keeps the last of two equal keys: the file would have two readings.
    bundle = tmp_path / "b.json"
    key = export(ledger, bundle)
    text = bundle.read_text()
    bundle.write_text(text.replace('"format":', '"name":"other","format":', 1))
    r = CliRunner().invoke(cli, ["audit", "verify", str(bundle), "--key", key])
    assert r.exit_code == 1 and '"name" appears twice' in r.stderr, r.output


def test_bundle_with_a_hash_in_capitals__refused(ledger, tmp_path) -> None:
    # bytes.fromhex reads "AB" and " ab" as "ab": the same hash had several spellings.
    bundle = tmp_path / "b.json"
    key = export(ledger, bundle)
    doc = json.loads(bundle.read_text())
    doc["traces"][0]["leaf_hash"] = doc["traces"][0]["leaf_hash"].upper()
    bundle.write_text(json.dumps(doc))
    r = CliRunner().invoke(cli, ["audit", "verify", str(bundle), "--key", key])
    assert r.exit_code == 1 and "traces[0].leaf_hash" in r.stderr and "not a hash" in r.stderr, r.output


def test_bundle_as_exported__reads_back_to_its_own_json(ledger, tmp_path) -> None:
    # The strict reader still reads every bundle the export writes, and reading loses nothing.
    from tenge_ledger.trace import bundle as bundles

    path = tmp_path / "b.json"
    export(ledger, path)
    again = tmp_path / "again.json"
    bundles.write(bundles.read(str(path)), str(again))
    assert again.read_bytes() == path.read_bytes()


def test_bundle_name_edited__a_label_verify_neither_checks_nor_shows(ledger, tmp_path):
    """Nothing signs the ledger's name (an unsigned row of the operator's database, copied into the bundle), so
    verify must not print it as if it were verified: what tells ledgers apart is the key and the ledger id."""
    bundle = tmp_path / "b.json"
    key = export(ledger, bundle)
    doc = json.loads(bundle.read_text())
    assert doc["name"] == "pilot"
    doc["name"] = "Production ledger"
    bundle.write_text(json.dumps(doc))
    for as_json in ((), ("--json",)):
        r = run(*as_json, "audit", "verify", str(bundle), "--key", key)
        assert r.exit_code == 0, r.output
        assert "Production" not in r.output and "pilot" not in r.output


def test_bundle_ledger_id_edited__found(ledger, tmp_path):
    """The ledger id is what identifies the ledger in a bundle: every checkpoint's origin (signed) and every
    client signature's bytes carry it, so another id is found."""
    bundle = tmp_path / "b.json"
    key = export(ledger, bundle)
    doc = json.loads(bundle.read_text())
    doc["ledger_id"] = "0" * 32
    bundle.write_text(json.dumps(doc))
    r = run("audit", "verify", str(bundle), "--key", key)
    assert r.exit_code == 1 and f"not tenge-ledger/{'0' * 32}" in r.output, r.output
