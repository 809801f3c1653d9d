"""`escrowed`: the whole record sealed. A data key is sealed once per batch of records to the escrow public key
(whose secret is split k-of-n among the central bank, the FMA and a court); each record's key is derived from
the data key and the record's nonce. Opening one record needs k shares and is logged before it is read
(`privacy.access.unmask`)."""

from __future__ import annotations

import json

from ...core.records import TraceRecord
from .base import (
    BaseSink,
    DataKey,
    Decoded,
    ObserverKeys,
    SinkContext,
    open_with,
    record_key,
    seal_with,
)

MODE = "escrowed"


class Sink(BaseSink):
    mode = MODE

    def __init__(self, ctx: SinkContext) -> None:
        super().__init__(ctx)
        self.escrow = DataKey(ctx.public["escrow_public"])

    def fields(self, record: TraceRecord, doc: dict) -> None:
        sealed, counter, key = self.escrow.record_key()
        doc.update(escrow_key=sealed, n=counter, sealed=seal_with(key, record_body(record)))


def record_body(r: TraceRecord) -> bytes:
    """The whole record as a JSON array in `BODY_FIELDS` order (cheaper to write than an object)."""
    return json.dumps(
        [r.op_id, r.kind, r.at, r.code, r.message, r.signer, r.payer, r.payee, r.amount_tiyn, r.tag, r.memo, r.seq,
         [[p.account, p.tag, p.amount_tiyn] for p in r.postings],
         [[x.agency, x.reason, x.rule] for x in r.reports], r.policy_set_id, list(r.rules)],
        separators=(",", ":"),
    ).encode()  # fmt: skip


BODY_FIELDS = ("op_id", "kind", "at", "code", "message", "signer", "payer", "payee", "amount_tiyn", "tag", "memo",
               "seq", "postings", "reports", "policy_set_id", "rules")  # fmt: skip


def body_to_dict(body: bytes) -> dict:
    out = dict(zip(BODY_FIELDS, json.loads(body), strict=True))
    out["reports"] = [{"agency": a, "reason": r, "rule": u} for a, r, u in out["reports"]]
    return out


def open_record(doc: dict, data_key: bytes) -> dict | None:
    opened = open_with(record_key(data_key, int(doc["n"])), doc["sealed"])
    return None if opened is None else body_to_dict(opened)


def decode(doc: dict, keys: ObserverKeys) -> tuple[str, Decoded]:
    return MODE, {"payer": {}, "payee": {}, "amount": {}, "tag": {}, "memo": {}}
