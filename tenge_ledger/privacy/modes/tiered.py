"""`tiered`: a payment below the threshold, while its payer's anonymity budget for the month lasts, gets
one-time pseudonyms (a random token per record; the identity sealed so that only the bank serving the account
can open it), so such payments cannot be linked. Other records are as `pseudonymous`, with payer and payee also
sealed to the FMA (a data key sealed once per batch of records, a per-record key derived from it)."""

from __future__ import annotations

import calendar
import json
import secrets
import time

from ...core.records import TraceRecord
from ..seal import identity_padded_bytes, unseal_text
from .base import DataKey, Decoded, Mode, ObserverKeys, SinkContext, load_body, place, place_of, seal_for_bank
from .pseudonymous import Sink as PseudonymousSink
from .pseudonymous import decode_party

NAME = "tiered"
threshold_tiyn_default = 2_000_000  # 20,000 KZT: payments below it may be unlinkable
budget_tiyn_month_default = 20_000_000  # 200,000 KZT of unlinkable payments per payer per calendar month


def month_of(at: int) -> tuple[int, int]:
    t = time.gmtime(at)
    return t.tm_year, t.tm_mon


def month_start(at: int) -> int:
    year, month = month_of(at)
    return calendar.timegm((year, month, 1, 0, 0, 0))


class Sink(PseudonymousSink):
    mode = NAME

    def __init__(self, ctx: SinkContext, history=None) -> None:
        super().__init__(ctx)
        self.fma = DataKey(ctx.public["box_public"]["fma"])
        self.threshold = int(ctx.settings.get("tiered_threshold_tiyn", threshold_tiyn_default))
        self.budget = int(ctx.settings.get("tiered_budget_tiyn_month", budget_tiyn_month_default))
        self.history = history  # handle, since -> [(at, amount_tiyn)] of its applied outgoing payments
        self.spent: dict[tuple[str, tuple[int, int]], int] = {}

    def _spent(self, payer: str, at: int) -> int:
        key = (payer, month_of(at))
        if key not in self.spent:
            # Seed from the journal: replay the rule over the payer's payments this month.
            spent = 0
            for _, amount in self.history(payer, month_start(at)) if self.history else ():
                if amount < self.threshold and spent + amount <= self.budget:
                    spent += amount
            self.spent[key] = spent
        return self.spent[key]

    def small(self, record: TraceRecord) -> bool:
        if record.kind not in ("transfer", "hold") or record.payer is None or record.payee is None:
            return False
        amount = record.amount_tiyn or 0
        if amount >= self.threshold:
            return False
        spent = self._spent(record.payer, record.at)
        if spent + amount > self.budget:
            return False
        if record.code == "ok":
            self.spent[(record.payer, month_of(record.at))] = spent + amount
        return True

    def fields(self, record: TraceRecord, doc: dict) -> None:
        if not self.small(record):
            super().fields(record, doc)
            ident = json.dumps([record.payer, record.payee]).encode()
            ad = place(self.ctx.ledger_id, record, "fma_ident")
            sealed_key, sealed = self.fma.seal(ident, ad, identity_padded_bytes)
            doc.update(tier="large", fma_key=sealed_key, fma_ident=sealed)
            return
        doc.update(tier="small", amount_tiyn=record.amount_tiyn, tag=record.tag)
        self.seal_rules(record, doc)
        for field in ("payer", "payee"):
            handle = getattr(record, field)
            box = self.ctx.bank_box(self.ctx.bank_of(handle))
            # one-time token: unrelated to the account and to other records
            doc[field] = secrets.token_hex(16)
            doc[field + "_sealed"] = seal_for_bank(box, handle, place(self.ctx.ledger_id, record, field))


def decode(doc: dict, keys: ObserverKeys) -> tuple[str, Decoded]:
    if doc.get("tier") == "small":
        out: Decoded = {
            "amount": {"clear": doc.get("amount_tiyn")},
            "tag": {"clear": doc.get("tag")},
            "memo": {},
        }
        for field in ("payer", "payee"):
            rep: dict[str, object] = {"one_time": doc[field]}
            who = keys.open_for_bank(doc[field + "_sealed"], place_of(keys.ledger_id, doc, field))
            if who is not None:
                rep["clear"] = who
            out[field] = rep
        return "tiered.small", out
    epoch = doc["epoch"]
    payer = decode_party(doc.get("payer"), epoch, keys)
    payee = decode_party(doc.get("payee"), epoch, keys)
    data_key = keys.data_key("fma", doc["fma_key"])
    if data_key is not None:
        opened = unseal_text(data_key, doc["fma_ident"], place_of(keys.ledger_id, doc, "fma_ident"))
        if opened is not None:
            who_payer, who_payee = load_body(opened)
            if who_payer is not None:
                payer["clear"] = who_payer
            if who_payee is not None:
                payee["clear"] = who_payee
    return "tiered.large", {
        "payer": payer,
        "payee": payee,
        "amount": {"clear": doc.get("amount_tiyn")},
        "tag": {"clear": doc.get("tag")},
        "memo": {},
    }


def payments_since(store):
    """handle, since -> its applied outgoing transfers and holds since then, oldest first (the budget's seed)."""

    def history(handle: str, since: int) -> list[tuple[int, int]]:
        rows = store.history(handle, 10_000)
        out = [
            (p.at, -p.amount_tiyn)
            for op, p in rows
            if p.at >= since and p.amount_tiyn < 0 and op.kind in ("transfer", "hold")
        ]
        return sorted(out)

    return history


MODE = Mode(
    name=NAME,
    make_sink=lambda ctx, store: Sink(ctx, history=payments_since(store)),
    decode=decode,
    variants=("tiered.small", "tiered.large"),
    needs_keys=True,
    readers=("central_bank", "fma"),
    bank_keys=True,
)
