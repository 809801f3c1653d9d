"""A small ledger in a given privacy mode, with two banks and three people: for tests and examples.

b1 serves alice and carol, b2 serves bob. `pay(...)` applies a signed transfer at the sandbox clock."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ..client.keystore import Keystore
from ..client.wallet import Wallet
from ..core.records import AccountKind
from ..core.results import Result
from ..ledger.service import Ledger
from ..ledger.signing import public_key_hex
from ..store import open_store
from . import setup_mode, sink_for
from .keys import KeyRing
from .modes.base import epoch_s_default
from .observers import keys_for
from .views import RecordView, view_payload

T0 = 1_780_272_000  # 2026-06-01T00:00:00Z


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
        return KeyRing(self.db + ".keys")

    def pay(self, payer: str, payee: str, amount: int, op_id: str, tag=None, memo=None) -> Result:
        result = self.wallet.transfer(payer, payee, amount, tag=tag, memo=memo, op_id=op_id)
        if not result.succeeded:
            raise AssertionError(f"{op_id}: {result.code.value}: {result.message}")
        return result

    def record(self, op_id: str) -> tuple[int, bytes]:
        found = [(idx, t.payload) for idx, t in self.store.traces() if t.op_id == op_id]
        return found[-1]

    def view(self, op_id: str, role: str) -> RecordView:
        idx, payload = self.record(op_id)
        return view_payload(idx, payload, keys_for(role, self.ring, self.store, epoch_s_default))


def make(
    directory: str | Path, mode: str, settings: dict | None = None, keys_from: Sandbox | None = None
) -> Sandbox:
    """`keys_from`: hold the same privacy keys as another sandbox (two ledgers that differ only in data)."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    db = str(Path(directory) / f"{mode}.db")
    if keys_from is not None:
        shutil.copytree(Path(keys_from.db + ".keys") / "privacy", Path(db + ".keys") / "privacy")
        settings = dict(settings or {}, privacy_public=keys_from.store.meta().settings["privacy_public"])
    now = [T0]
    store = open_store(db, create=True)
    keystore = Keystore(db + ".keys")
    cb = keystore.create("nbk")
    ledger = Ledger.create(store, f"sandbox {mode}", public_key_hex(cb), "nbk", privacy_mode=mode,
                           settings=settings, clock=lambda: now[0])  # fmt: skip
    setup_mode(ledger, keystore)
    ledger = Ledger(store, trace=sink_for(store.meta(), store, db + ".keys"), clock=lambda: now[0])
    wallet = Wallet(ledger, keystore)
    for handle, kind, bank in [
        ("b1", AccountKind.bank, None),
        ("b2", AccountKind.bank, None),
        ("alice", AccountKind.person, "b1"),
        ("carol", AccountKind.person, "b1"),
        ("bob", AccountKind.person, "b2"),
    ]:
        keystore.create(handle)
        assert wallet.open_account(handle, kind, tier=3 if bank else None, bank=bank).succeeded
    now[0] += 60
    for handle in ("alice", "carol"):
        assert wallet.issue(handle, 1_000_000_000).succeeded
        assert wallet.issue(handle, 1_000_000_000, tag="grant").succeeded
    now[0] += 60
    return Sandbox(db, ledger, wallet, keystore, now)
