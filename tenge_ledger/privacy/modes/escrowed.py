"""`escrowed`: the whole record sealed so that only a quorum of escrow holders can open it, one record at a time.

Each record gets its own key encapsulation (`threshold.encapsulate`: R = r*B, key from r*Y) and is sealed with
that key (XChaCha20-Poly1305, random nonce, associated data naming the ledger, the record and the field). The
escrow secret behind Y is split k-of-n among holders named at `init` and exists nowhere whole; opening needs k
partial decryptions of this record's R, each proved and signed (`privacy.access.unmask`)."""

from __future__ import annotations

import json

from ...core.errors import LedgerStateError
from ...core.records import TraceRecord
from ..seal import seal, unb64, unseal_text
from ..threshold import Encapsulations, EscrowPublic
from .base import BaseSink, Decoded, Mode, ObserverKeys, SinkContext, load_body, place, place_of

NAME = "escrowed"
FIELD = "escrow"


class Sink(BaseSink):
    mode = NAME

    def __init__(self, ctx: SinkContext) -> None:
        super().__init__(ctx)
        escrow = ctx.public.get("escrow")
        if not escrow:
            raise LedgerStateError(
                "this escrowed ledger has no escrow holders: it must be created with `tenge init --privacy "
                "escrowed --share-to HOLDER=PATH ... --threshold K`"
            )
        self.escrow = EscrowPublic.from_json(escrow)
        self.encapsulations = Encapsulations(ctx.ledger_id, self.escrow.group_public)

    def fields(self, record: TraceRecord, doc: dict) -> None:
        kem, key = self.encapsulations.take()
        doc.update(kem=kem, sealed=seal(key, record_body(record), place(self.ctx.ledger_id, record, FIELD)))


def record_body(r: TraceRecord) -> bytes:
    """The whole record as a JSON array in `BODY_FIELDS` order (cheaper to write than an object). Sealed, so padded
    to a size class: the compact form would store nothing smaller and costs ~6 us more per record in Python."""
    return json.dumps(
        [r.op_id, r.kind, r.at, r.code, r.message, r.signer, r.payer, r.payee, r.amount_tiyn, r.tag, r.memo, r.seq,
         [[p.account, p.tag, p.amount_tiyn] for p in r.postings],
         [[x.agency, x.reason, x.rule] for x in r.reports], r.policy_set_id, list(r.rules)],
        separators=(",", ":"),
    ).encode()  # fmt: skip


BODY_FIELDS = ("op_id", "kind", "at", "code", "message", "signer", "payer", "payee", "amount_tiyn", "tag", "memo",
               "seq", "postings", "reports", "policy_set_id", "rules")  # fmt: skip


def body_to_dict(body: bytes) -> dict:
    out = dict(zip(BODY_FIELDS, load_body(body), strict=True))
    out["reports"] = [{"agency": a, "reason": r, "rule": u} for a, r, u in out["reports"]]
    return out


def kem_of(doc: dict) -> bytes:
    return unb64(doc["kem"])


def open_record(doc: dict, ledger_id: str, key: bytes) -> dict | None:
    """The record in clear with this record's key (from `threshold.combine`), or None."""
    opened = unseal_text(key, doc["sealed"], place_of(ledger_id, doc, FIELD))
    return None if opened is None else body_to_dict(opened)


def decode(doc: dict, keys: ObserverKeys) -> tuple[str, Decoded]:
    return NAME, {"payer": {}, "payee": {}, "amount": {}, "tag": {}, "memo": {}}


MODE = Mode(
    name=NAME, make_sink=lambda ctx, store: Sink(ctx), decode=decode, variants=("escrowed",), needs_keys=True
)
