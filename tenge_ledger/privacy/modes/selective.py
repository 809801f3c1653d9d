"""`selective`: each record sealed under a random record key, wrapped once per party under a key derived from
that account's viewing key. Only the account holder reads it, or whoever it discloses to: its viewing key (all
its records) or a signed receipt (one record's wrap key, signed with the account's Ed25519 key)."""

from __future__ import annotations

import json
import secrets

from ...core.records import TraceRecord
from ...trace.record import trace_to_dict
from ..keys import keyed_hash
from ..seal import b64, seal_text, unb64, unseal_text
from .base import BaseSink, Decoded, Mode, ObserverKeys, clear_fields, place, place_of

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
        self._viewing: dict[str, bytes] = {}

    def viewing_key(self, handle: str) -> bytes:
        key = self._viewing.get(handle)
        if key is None:
            key = bytes.fromhex(self.ctx.ring.ensure_account(handle)["viewing_key"])
            self._viewing[handle] = key
        return key

    def fields(self, record: TraceRecord, doc: dict) -> None:
        rk = secrets.token_bytes(32)
        salt = secrets.token_bytes(16)
        body = json.dumps(trace_to_dict(record), separators=(",", ":")).encode()
        wrap_ad = place(self.ctx.ledger_id, record, "wrap")
        wraps = [seal_text(wrap_key(self.viewing_key(h), salt), rk, wrap_ad) for h in parties(record)]
        secrets.SystemRandom().shuffle(wraps)
        sealed = seal_text(rk, body, place(self.ctx.ledger_id, record, "record"))
        doc.update(salt=b64(salt), sealed=sealed, wraps=wraps)


def unwrap(doc: dict, wk: bytes, ledger_id: str) -> bytes | None:
    ad = place_of(ledger_id, doc, "wrap")
    for wrapped in doc["wraps"]:
        rk = unseal_text(wk, wrapped, ad)
        if rk is not None:
            return rk
    return None


def record_key_for(doc: dict, viewing_key: bytes, ledger_id: str) -> bytes | None:
    return unwrap(doc, wrap_key(viewing_key, unb64(doc["salt"])), ledger_id)


def _record_key(doc: dict, keys: ObserverKeys) -> bytes | None:
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
    return None if opened is None else json.loads(opened)


def decode(doc: dict, keys: ObserverKeys) -> tuple[str, Decoded]:
    record = open_record(doc, keys)
    if record is not None:
        return NAME, clear_fields(record)
    return NAME, {"payer": {}, "payee": {}, "amount": {}, "tag": {}, "memo": {}}


MODE = Mode(
    name=NAME, make_sink=lambda ctx, store: Sink(ctx), decode=decode, variants=("selective",), needs_keys=True
)
