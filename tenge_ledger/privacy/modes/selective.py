"""`selective`: each record sealed under a random record key, sealed in turn (SealedBox) to each party. An account
that registered a viewing key (the `viewing_key` attribute, an X25519 public key the holder derives from its own
signing key) gets it sealed to that key; an account that registered none gets it sealed to the X25519 form of its
own Ed25519 public key (only the holder's signing key opens it), taken from the account as the ledger saw it when
the store does not hold it yet (opened in the chunk that carries its first payment). The operator holds
nothing that opens any of them. Only the account holder reads its records, or whoever it discloses to: its viewing
key (all its records) or a signed receipt (one record's key)."""

from __future__ import annotations

import json
import secrets

import nacl.exceptions
import nacl.public

from ...core.errors import InputError
from ...core.records import Account, TraceRecord
from ...trace.record import trace_to_dict
from ..keys import keyed_hash, sealing_public
from ..seal import pad, seal, unb64, unpad, unseal_text
from .base import (
    BaseSink,
    Decoded,
    Mode,
    ObserverKeys,
    clear_fields,
    load_body,
    place,
    place_digest,
    place_of,
)

NAME = "selective"


def wrap_key(viewing_key: bytes, salt: bytes) -> bytes:
    """One record's wrap key: the viewing key and the record's random salt (a receipt discloses it alone)."""
    return keyed_hash(viewing_key, salt, person=b"tenge-viewwrap", size=32)


def parties(record: TraceRecord) -> list[str]:
    found = [h for h in (record.payer, record.payee) if h is not None]
    return sorted(set(found)) or [record.signer]


class Sink(BaseSink):
    mode = NAME

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._boxes: dict[str, nacl.public.SealedBox] = {}

    def box(self, handle: str, seen: Account | None = None) -> nacl.public.SealedBox:
        """A sealed box to the key the account's records seal to (see the module); never one the operator holds.
        `seen`: the account as the ledger saw it, for one the store does not hold yet (opened in this chunk)."""
        box = self._boxes.get(handle)
        if box is None:
            public = self.ctx.viewing_public(handle)
            if public is None and seen is not None and seen.handle == handle:
                public = sealing_public(seen)
            try:
                box = nacl.public.SealedBox(nacl.public.PublicKey(bytes.fromhex(public))) if public else None
            except (ValueError, TypeError, nacl.exceptions.CryptoError):
                box = None
            if box is None:
                return (
                    self.ctx.central_box()
                )  # not cached: an account not in the store yet is looked up again
            self._boxes[handle] = box
        return box

    def fields(self, record: TraceRecord, doc: dict) -> None:
        rk = secrets.token_bytes(32)
        body = json.dumps(
            trace_to_dict(record), separators=(",", ":")
        ).encode()  # sealed and padded: see base
        digest = place_digest(place(self.ctx.ledger_id, record, "wrap"))
        # sealed to the holder: a digest of the place inside, checked on opening
        seen = {a.handle: a for a in (record.payer_account, record.payee_account) if a is not None}
        wraps = [self.box(h, seen.get(h)).encrypt(pad(digest + rk)) for h in parties(record)]
        secrets.SystemRandom().shuffle(wraps)
        sealed = seal(rk, body, place(self.ctx.ledger_id, record, "record"))
        doc.update(sealed=sealed, wraps=wraps)


def unwrap(doc: dict, wk: bytes, ledger_id: str) -> bytes | None:
    ad = place_of(ledger_id, doc, "wrap")
    for wrapped in doc["wraps"]:
        rk = unseal_text(wk, wrapped, ad)
        if rk is not None:
            return rk
    return None


def record_key_for(doc: dict, viewing_key: bytes, ledger_id: str) -> bytes | None:
    """Records of the old layout: wrapped under a viewing key the operator kept (`salt` in the record)."""
    if "salt" not in doc:
        return None
    return unwrap(doc, wrap_key(viewing_key, unb64(doc["salt"])), ledger_id)


def unseal_with_box(doc: dict, secret: nacl.public.PrivateKey, ledger_id: str) -> bytes | None:
    """The record key sealed to this viewing key, if one of the record's wraps is."""
    digest = place_digest(place_of(ledger_id, doc, "wrap"))
    opener = nacl.public.SealedBox(secret)
    for wrapped in doc["wraps"]:
        try:
            opened = unpad(opener.decrypt(unb64(wrapped)))
        except (nacl.exceptions.CryptoError, ValueError, InputError):
            continue
        if opened is not None and opened[:32] == digest and len(opened) == 64:
            return opened[32:]
    return None


def _record_key(doc: dict, keys: ObserverKeys) -> bytes | None:
    boxes = [*keys.viewing_boxes.values(), *keys.signing_boxes.values()]
    if "central_bank" in keys.boxes:  # parties the ledger did not know; and records of accounts opened in the
        # chunk of their first payment, written before the ledger handed the sink their accounts
        boxes.append(keys.boxes["central_bank"])
    for secret in boxes:
        rk = unseal_with_box(doc, secret, keys.ledger_id)
        if rk is not None:
            return rk
    for (op_id, _handle), rk in keys.record_keys.items():
        if op_id == doc["op_id"]:  # a receipt discloses one record's key
            return rk
    for vk in keys.viewing.values():
        rk = record_key_for(doc, vk, keys.ledger_id)
        if rk is not None:
            return rk
    for (op_id, _handle), wk in keys.receipts.items():
        if op_id == doc["op_id"]:  # a receipt discloses one record's wrap key
            rk = unwrap(doc, wk, keys.ledger_id)
            if rk is not None:
                return rk
    return None


def open_record(doc: dict, keys: ObserverKeys) -> dict | None:
    rk = _record_key(doc, keys)
    opened = None if rk is None else unseal_text(rk, doc["sealed"], place_of(keys.ledger_id, doc, "record"))
    return None if opened is None else load_body(opened)


def decode(doc: dict, keys: ObserverKeys) -> tuple[str, Decoded]:
    record = open_record(doc, keys)
    if record is not None:
        return NAME, clear_fields(record)
    return NAME, {"payer": {}, "payee": {}, "amount": {}, "tag": {}, "memo": {}}


MODE = Mode(
    name=NAME,
    make_sink=lambda ctx, store: Sink(ctx),
    decode=decode,
    variants=("selective",),
    needs_keys=True,
    readers=("central_bank",),
    bank_keys=False,
)
