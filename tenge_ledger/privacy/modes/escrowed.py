"""`escrowed`: the whole record sealed. A data key is sealed once per batch of records to the escrow public key
(whose secret is split k-of-n among the central bank, the FMA and a court); each record's key is derived from
the data key and the record's nonce. Opening one record needs k shares and is logged before it is read
(`privacy.access.unmask`)."""

from __future__ import annotations

import json

from ...core.records import TraceRecord
from ...trace.record import trace_to_dict
from .base import (
    BaseSink,
    DataKey,
    Decoded,
    ObserverKeys,
    SinkContext,
    open_with,
    record_key,
    seal_with,
    unb64,
)

MODE = "escrowed"


class Sink(BaseSink):
    mode = MODE

    def __init__(self, ctx: SinkContext) -> None:
        super().__init__(ctx)
        self.escrow = DataKey(ctx.public["escrow_public"])

    def fields(self, record: TraceRecord, doc: dict) -> None:
        sealed, nonce, key = self.escrow.record_key()
        body = json.dumps(trace_to_dict(record), separators=(",", ":")).encode()
        doc.update(escrow_key=sealed, nonce=nonce, sealed=seal_with(key, body))


def open_record(doc: dict, data_key: bytes) -> dict | None:
    opened = open_with(record_key(data_key, unb64(doc["nonce"])), doc["sealed"])
    return None if opened is None else json.loads(opened)


def decode(doc: dict, keys: ObserverKeys) -> tuple[str, Decoded]:
    return MODE, {"payer": {}, "payee": {}, "amount": {}, "tag": {}, "memo": {}}
