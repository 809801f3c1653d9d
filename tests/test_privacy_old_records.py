"""Ledgers written before the compact payload form and the key custody change (tests/data/old_privacy, made by
commit dfe653d's sandbox: JSON payloads with base64 sealed fields, every reader's secret in the operator's keystore)
are refused until migrated; after `migrate_keys` each role reads every old record exactly as it did, with only its
own key file; new records are written in the compact form beside them, and both verify."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tenge_ledger.app import open_ledger
from tenge_ledger.client.keystore import Keystore
from tenge_ledger.client.wallet import Wallet
from tenge_ledger.core import compact
from tenge_ledger.core.errors import LedgerStateError
from tenge_ledger.privacy import KeyPlan, migrate_keys, operator
from tenge_ledger.privacy.access import Access
from tenge_ledger.privacy.keys import KeyRing, read_party_file
from tenge_ledger.privacy.observers import keys_for
from tenge_ledger.privacy.threshold import read_share_file
from tenge_ledger.privacy.views import view_doc
from tenge_ledger.store import open_store

DATA = Path(__file__).resolve().parent / "data" / "old_privacy"
MODES = ("pseudonymous", "tiered", "payee-transparent", "escrowed", "selective")
OWN = {"central_bank": ("central_bank", "bank:nbk"), "fma": ("fma",), "bank:b1": ("bank:b1",),
       "bank:b2": ("bank:b2",)}  # fmt: skip


def copy_old(tmp_path: Path, mode: str) -> Path:
    """The fixture ledger in a private copy (git keeps no file modes: the key files are made 0600 again)."""
    target = tmp_path / mode
    shutil.copytree(DATA / mode, target)
    for path in target.rglob("*"):
        os.chmod(path, 0o700 if path.is_dir() else 0o600)
    return target / f"{mode}.db"


def migrate(db: Path, tmp_path: Path) -> tuple[Path, str]:
    store = open_store(str(db))
    try:
        ledger_id = store.meta().ledger_id
        ring = KeyRing(str(db) + ".keys", ledger_id)
        holders = sorted(ring.foreign_secrets())
        assert {"central_bank", "fma", "court"} <= set(holders)
        parties = tmp_path / "parties"
        parties.mkdir()
        plan = KeyPlan(tuple((h, parties / (h.replace(":", "-") + ".key")) for h in holders))
        migrate_keys(store, plan, str(db) + ".keys")
    finally:
        store.close()
    return parties, ledger_id


def role_keys(role: str, store, parties: Path, ledger_id: str, keystore: Keystore):
    files = [parties / (h.replace(":", "-") + ".key") for h in OWN.get(role, ())]
    own = [read_party_file(p, ledger_id) for p in files if p.exists()]
    return keys_for(role, None, store, 604800, keystore=keystore, parties=own)


@pytest.mark.parametrize("mode", MODES)
def test_old_ledger__refused_then_migrated__every_role_reads_its_old_records_as_before(tmp_path, mode):
    db = copy_old(tmp_path, mode)
    with pytest.raises(LedgerStateError, match="tenge privacy migrate-keys"):
        open_ledger(str(db))
    parties, ledger_id = migrate(db, tmp_path)
    expected = json.loads((db.parent / "expected.json").read_text())
    ledger = open_ledger(str(db))
    store = ledger.store
    keystore = Keystore(str(db) + ".keys")
    rows = {t.op_id: (idx, t.payload) for idx, t in store.traces()}
    for op, by_role in expected.items():
        idx, payload = rows[op]
        assert payload.startswith(b"{")  # an old JSON record
        for role, fields in by_role.items():
            view = view_doc(
                idx, compact.load_doc(payload), role_keys(role, store, parties, ledger_id, keystore)
            )
            assert {f: [v.level, v.value] for f, v in view.fields.items()} == fields, (op, role)
    # new records go in the compact form beside the old ones; the log verifies as a whole
    wallet = Wallet(ledger, keystore)
    assert wallet.transfer("alice", "bob", 700, op_id="after").succeeded
    idx, payload = next((i, t.payload) for i, t in store.traces() if t.op_id == "after")
    assert payload.startswith(compact.MAGIC)
    if mode != "escrowed":
        reader = "account:alice" if mode == "selective" else "bank:b1"
        keys = role_keys(reader, store, parties, ledger_id, keystore)
        view = view_doc(idx, compact.load_doc(payload), keys)
        assert view.fields["payer"].value == "alice"
    assert operator.verify_live(store).ok
    ledger.store.close()


def test_old_escrowed_record_opens_with_the_holders_shares(tmp_path):
    db = copy_old(tmp_path, "escrowed")
    migrate(db, tmp_path)
    store = open_store(str(db))
    try:
        access = Access(store, KeyRing(str(db) + ".keys", store.meta().ledger_id),
                        store.meta().settings["privacy_public"], "escrowed")  # fmt: skip
        holders = Path(str(db) + ".holders")
        shares = [read_share_file(holders / f"{h}.share") for h in ("fma", "court")]
        opened = access.unmask("small", "C-1", "court order", shares=shares)
        assert (opened["payer"], opened["payee"], opened["amount_tiyn"], opened["memo"]) == (
            "alice",
            "bob",
            900,
            "rent",
        )
    finally:
        store.close()
