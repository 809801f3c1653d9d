"""Build, sign and submit operations on a user's behalf: the library face the CLI and the demo call."""

from __future__ import annotations

import uuid

from ..core.errors import InputError
from ..core.records import (
    AccountKind,
    Batch,
    Body,
    Close,
    Freeze,
    Hold,
    Issue,
    OpenAccount,
    Operation,
    Post,
    Redeem,
    Seize,
    Sweep,
    Transfer,
    Unfreeze,
    UpdateAccount,
    Void,
)
from ..core.results import Result
from ..ledger.service import Ledger
from ..ledger.signing import public_key_hex, sign
from .keystore import Keystore


def new_op_id() -> str:
    return uuid.uuid4().hex


class Wallet:
    """Signs with keys from a keystore. The central bank signs account, issue, redeem, freeze and seizure
    operations; payers sign their own payments."""

    def __init__(self, ledger: Ledger, keystore: Keystore) -> None:
        self.ledger = ledger
        self.keystore = keystore

    def build(self, signer: str, body: Body, op_id: str | None = None) -> Operation:
        op = Operation(id=op_id or new_op_id(), signer=signer, body=body)
        return sign(self.ledger.ledger_id, op, self._key(signer))

    def _key(self, signer: str):
        if not self.keystore.has(signer) and self.ledger.store.account(signer) is None:
            raise InputError(f"no account {signer!r} (so no key to sign with)")
        return self.keystore.get(signer)

    def public_key(self, signer: str) -> bytes:
        """The public half of the key this wallet signs for `signer` with."""
        return bytes(self._key(signer).verify_key)

    def sign_document(self, op: Operation) -> Operation:
        """Sign an operation read from a file that came without a signature (inner batch operations first)."""
        if isinstance(op.body, Batch):
            inner = tuple(self.sign_document(o) for o in op.body.operations)
            op = Operation(op.id, op.signer, Batch(inner), op.signature)
        if op.signature:
            return op
        signer = op.signer or self.default_signer(op)
        return sign(self.ledger.ledger_id, Operation(op.id, signer, op.body), self._key(signer))

    def default_signer(self, op: Operation) -> str:
        from ..core.records import CENTRAL_BANK_KINDS

        if op.kind in CENTRAL_BANK_KINDS:
            return self.ledger.central_bank
        body = op.body
        for attr in ("payer", "releaser"):
            value = getattr(body, attr, None)
            if value:
                return value
        hold_id = getattr(body, "hold_id", None)
        releaser = self.releaser_of(hold_id) if hold_id else None
        return releaser or self.ledger.central_bank

    def releaser_of(self, hold_id: str) -> str | None:
        """Who may post or void a hold (None when there is no such hold)."""
        hold = self.ledger.store.hold(hold_id)
        return hold.releaser if hold is not None else None

    def submit(self, signer: str, body: Body, op_id: str | None = None) -> Result:
        return self.ledger.apply(self.build(signer, body, op_id))

    @property
    def cb(self) -> str:
        return self.ledger.central_bank

    def open_account(
        self,
        handle: str,
        kind: AccountKind,
        tier: int | None = None,
        bank: str | None = None,
        attrs: tuple[tuple[str, str], ...] = (),
        op_id: str | None = None,
    ) -> Result:
        """Create the account's key pair in the keystore (unless it is there already) and open the account.
        A key made for an opening that did not happen (rejected, or the database refused the write) is removed:
        the keystore holds no key for an account the ledger does not have."""
        new_key = not self.keystore.has(handle)
        key = self.keystore.create(handle) if new_key else self.keystore.get(handle)
        opened = False
        try:
            result = self.submit(
                self.cb, OpenAccount(handle, kind, public_key_hex(key), tier, bank, attrs), op_id
            )
            opened = result.succeeded
            return result
        finally:
            if new_key and not opened:
                self.keystore.remove(handle)

    def update_account(self, handle: str, tier=None, attrs=(), op_id=None) -> Result:
        return self.submit(self.cb, UpdateAccount(handle, tier, attrs), op_id)

    def issue(self, payee, amount_tiyn, tag=None, expires_on=None, memo=None, op_id=None) -> Result:
        return self.submit(self.cb, Issue(payee, amount_tiyn, tag, expires_on, memo), op_id)

    def redeem(self, payer, amount_tiyn, tag=None, memo=None, op_id=None) -> Result:
        return self.submit(self.cb, Redeem(payer, amount_tiyn, tag, memo), op_id)

    def transfer(self, payer, payee, amount_tiyn, tag=None, memo=None, op_id=None) -> Result:
        return self.submit(payer, Transfer(payer, payee, amount_tiyn, tag, memo), op_id)

    def hold(
        self,
        payer,
        payee,
        amount_tiyn,
        timeout_s,
        tag=None,
        releaser=None,
        memo=None,
        op_id=None,
        on_timeout=None,
    ) -> Result:
        body = Hold(payer, payee, amount_tiyn, timeout_s, tag, releaser, memo, on_timeout)
        return self.submit(payer, body, op_id)

    def post(self, signer, hold_id, amount_tiyn=None, op_id=None) -> Result:
        return self.submit(signer, Post(hold_id, amount_tiyn), op_id)

    def void(self, signer, hold_id, op_id=None) -> Result:
        return self.submit(signer, Void(hold_id), op_id)

    def sweep(self, as_of: int, op_id=None) -> Result:
        return self.submit(self.cb, Sweep(as_of), op_id)

    def freeze(self, account, reason=None, op_id=None) -> Result:
        return self.submit(self.cb, Freeze(account, reason), op_id)

    def unfreeze(self, account, reason=None, op_id=None) -> Result:
        return self.submit(self.cb, Unfreeze(account, reason), op_id)

    def close(self, account, op_id=None) -> Result:
        return self.submit(self.cb, Close(account), op_id)

    def seize(self, payer, payee, amount_tiyn, tag=None, order=None, op_id=None) -> Result:
        return self.submit(self.cb, Seize(payer, payee, amount_tiyn, tag, order), op_id)

    def batch(self, signer: str, operations: list[Operation], op_id=None) -> Result:
        return self.submit(signer, Batch(tuple(operations)), op_id)
