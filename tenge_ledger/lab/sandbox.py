"""A small ledger in a given privacy mode, with two banks and three people: for tests and examples.

b1 serves alice and carol, b2 serves bob. `pay(...)` applies a signed transfer at the sandbox clock."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..client.keystore import Keystore
from ..client.wallet import Wallet
from ..core.records import AccountKind
from ..core.results import Result
from ..ledger.service import Ledger
from ..ledger.signing import public_key_hex
from ..privacy import EscrowPlan, KeyPlan, mode_of, register_bank_key, setup_mode, sink_for
from ..privacy.keys import (
    VIEWING_ATTR,
    KeyRing,
    PartyKey,
    ledger_key_dir,
    read_party_file,
    viewing_public_hex,
)
from ..privacy.modes.base import epoch_s_default
from ..privacy.observers import keys_for
from ..privacy.threshold import HolderShare, read_share_file
from ..privacy.views import RecordView, stored_docs, view_doc
from ..store import open_store

T0 = 1_780_272_000  # 2026-06-01T00:00:00Z
ESCROW_HOLDERS = ("central_bank", "fma", "court")  # the sandbox's escrow holders, 2 of 3
ESCROW_THRESHOLD = 2


@dataclass
class Sandbox:
    db: str
    ledger: Ledger
    wallet: Wallet
    keystore: Keystore
    now: list[int]

    @property
    def store(self):
        return self.ledger.store

    @property
    def ring(self) -> KeyRing:
        return KeyRing(self.db + ".keys", self.store.meta().ledger_id)

    @property
    def holders_dir(self) -> Path:
        """Where the escrow holders' share files are (beside the ledger, not in the operator's keystore)."""
        return Path(self.db + ".holders")

    @property
    def parties_dir(self) -> Path:
        """Where the reading parties' key files are (beside the ledger, not in the operator's keystore)."""
        return Path(self.db + ".parties")

    def party_path(self, holder: str) -> Path:
        return party_path(self.db, holder)

    def parties_for(self, role: str) -> list[PartyKey]:
        """The key files `role` holds (none for the public or an account holder, whose keys are its own)."""
        holder = role if role in ("central_bank", "fma") or role.startswith("bank:") else None
        path = None if holder is None else self.party_path(holder)
        if path is None or not path.exists():
            return []
        meta = self.store.meta()
        return [read_party_file(path, meta.ledger_id, meta.settings.get("privacy_public"))]

    def share(self, holder: str) -> HolderShare:
        return read_share_file(self.holders_dir / f"{holder}.share")

    def pay(self, payer: str, payee: str, amount: int, op_id: str, tag=None, memo=None) -> Result:
        result = self.wallet.transfer(payer, payee, amount, tag=tag, memo=memo, op_id=op_id)
        if not result.succeeded:
            raise AssertionError(f"{op_id}: {result.code.value}: {result.message}")
        return result

    def record(self, op_id: str) -> tuple[int, bytes]:
        found = [(idx, t.payload) for idx, t in self.store.traces() if t.op_id == op_id]
        return found[-1]

    def view(self, op_id: str, role: str) -> RecordView:
        found = [(idx, t) for idx, t in self.store.traces() if t.op_id == op_id]
        ((idx, doc),) = stored_docs(self.store, found[-1:])
        return view_doc(idx, doc, self.keys(role))

    def keys(self, role: str):
        return keys_for(role, self.ring, self.store, epoch_s_default, keystore=self.keystore,
                        parties=self.parties_for(role))  # fmt: skip


def party_path(db: str, holder: str) -> Path:
    return Path(db + ".parties") / (holder.replace(":", "-") + ".key")


def make(
    directory: str | Path, mode: str, settings: dict | None = None, keys_from: Sandbox | None = None
) -> Sandbox:
    """`keys_from`: hold the same privacy keys as another sandbox (two ledgers that differ only in data)."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    db = str(Path(directory) / f"{mode}.db")
    now = [T0]
    store = open_store(db, create=True)
    keystore = Keystore(db + ".keys")
    cb = keystore.create("nbk")
    ledger = Ledger.create(store, f"sandbox {mode}", public_key_hex(cb), "nbk", privacy_mode=mode,
                           settings=settings, clock=lambda: now[0])  # fmt: skip
    if keys_from is not None:
        _copy_keys(keys_from, db + ".keys", ledger)
    plan = None
    if mode == "escrowed" and keys_from is None:
        Path(db + ".holders").mkdir(mode=0o700, exist_ok=True)
        plan = EscrowPlan(
            tuple((h, Path(db + ".holders") / f"{h}.share") for h in ESCROW_HOLDERS), ESCROW_THRESHOLD
        )
    readers = None
    if keys_from is None:
        Path(db + ".parties").mkdir(mode=0o700, exist_ok=True)
        readers = KeyPlan(tuple((h, party_path(db, h)) for h in mode_of(mode).readers))
    setup_mode(ledger, keystore, plan, readers)
    ledger = Ledger(store, trace=sink_for(store.meta(), store, db + ".keys"), clock=lambda: now[0])
    wallet = Wallet(ledger, keystore)
    for handle, kind, bank in [
        ("b1", AccountKind.bank, None),
        ("b2", AccountKind.bank, None),
        ("alice", AccountKind.person, "b1"),
        ("carol", AccountKind.person, "b1"),
        ("bob", AccountKind.person, "b2"),
    ]:
        key = keystore.create(handle)
        attrs = (
            (VIEWING_ATTR, viewing_public_hex(key)),
        )  # each holder registers its viewing key (selective)
        assert wallet.open_account(handle, kind, tier=3 if bank else None, bank=bank, attrs=attrs).succeeded
        if kind is AccountKind.bank and mode_of(mode).bank_keys and keys_from is None:
            register_bank_key(store, handle, party_path(db, f"bank:{handle}"), db + ".keys")
    now[0] += 60
    for handle in ("alice", "carol"):
        assert wallet.issue(handle, 1_000_000_000).succeeded
        assert wallet.issue(handle, 1_000_000_000, tag="grant").succeeded
    now[0] += 60
    return Sandbox(db, ledger, wallet, keystore, now)


def _copy_keys(source: Sandbox, keystore_dir: str, ledger: Ledger) -> None:
    """Give `ledger` the privacy keys of `source` (the same secrets, filed under this ledger's id)."""
    ledger_id = ledger.store.meta().ledger_id
    target = ledger_key_dir(keystore_dir, ledger_id)
    target.mkdir(mode=0o700, parents=True)
    for path in source.ring.files():
        data = dict(json.loads(path.read_text()), ledger_id=ledger_id)
        fd = os.open(target / path.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
    parties = Path(keystore_dir.removesuffix(".keys") + ".parties")
    parties.mkdir(mode=0o700, exist_ok=True)
    for path in source.parties_dir.glob("*.key") if source.parties_dir.exists() else ():
        data = dict(json.loads(path.read_text()), ledger_id=ledger_id)
        fd = os.open(parties / path.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
    public = json.loads(json.dumps(source.store.meta().settings["privacy_public"]))
    public["ledger_id"] = ledger_id
    if "escrow" in public:
        public["escrow"]["ledger_id"] = ledger_id
    ledger.store.set_setting("privacy_public", public)
