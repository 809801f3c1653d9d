"""`payee-transparent`: the payer is sealed so that only the payer's own bank can open it; payee, amount and tag
stay visible (income transparency for tax and anti-corruption, as in GNU Taler)."""

from __future__ import annotations

from ...core.records import TraceRecord
from .base import BaseSink, Decoded, Mode, ObserverKeys, place, place_of, seal_for_bank

NAME = "payee-transparent"


class Sink(BaseSink):
    mode = NAME

    def fields(self, record: TraceRecord, doc: dict) -> None:
        if record.payer is not None:
            box = self.ctx.bank_box(self.ctx.bank_of(record.payer))
            doc["payer_sealed"] = seal_for_bank(box, record.payer, place(self.ctx.ledger_id, record, "payer"))
        doc.update(
            payee=record.payee,
            amount_tiyn=record.amount_tiyn,
            tag=record.tag,
        )
        self.seal_rules(record, doc)


def decode(doc: dict, keys: ObserverKeys) -> tuple[str, Decoded]:
    payer: dict[str, object] = {}
    if "payer_sealed" in doc:
        who = keys.open_for_bank(doc["payer_sealed"], place_of(keys.ledger_id, doc, "payer"))
        if who is not None:
            payer["clear"] = who
    return NAME, {
        "payer": payer,
        "payee": {"clear": doc.get("payee")},
        "amount": {"clear": doc.get("amount_tiyn")},
        "tag": {"clear": doc.get("tag")},
        "memo": {},
    }


MODE = Mode(
    name=NAME,
    make_sink=lambda ctx, store: Sink(ctx),
    decode=decode,
    variants=("payee-transparent",),
    needs_keys=True,
    readers=("central_bank", "fma"),
    bank_keys=True,
)
