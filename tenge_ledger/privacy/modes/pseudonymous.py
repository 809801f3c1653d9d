"""`pseudonymous`: payer and payee as keyed BLAKE2b pseudonyms under the epoch key of the bank serving each
account; epoch keys derive from the bank's root key and change every epoch, so pseudonyms link payments within
an epoch and not across. Re-identification goes through the bank (it holds the key and the KYC list)."""

from __future__ import annotations

from ...core.records import TraceRecord
from .base import BaseSink, Decoded, Mode, ObserverKeys, epoch_of, pseudonym

NAME = "pseudonymous"


class Sink(BaseSink):
    mode = NAME

    def token(self, handle: str | None, epoch: int) -> str | None:
        if handle is None:
            return None
        return pseudonym(self.ctx.epoch_key_for(handle, epoch), handle)

    def fields(self, record: TraceRecord, doc: dict) -> None:
        epoch = epoch_of(record.at, self.ctx.epoch_s)
        doc.update(
            epoch=epoch,
            payer=self.token(record.payer, epoch),
            payee=self.token(record.payee, epoch),
            amount_tiyn=record.amount_tiyn,
            tag=record.tag,
        )
        self.seal_rules(record, doc)


def decode_party(token: str | None, epoch: int, keys: ObserverKeys) -> dict[str, object]:
    if token is None:
        return {}
    out: dict[str, object] = {"pseudonym": token}
    who = keys.resolve_pseudonym(token, epoch)
    if who is not None:
        out["clear"] = who
    return out


def decode(doc: dict, keys: ObserverKeys) -> tuple[str, Decoded]:
    epoch = doc["epoch"]
    return NAME, {
        "payer": decode_party(doc.get("payer"), epoch, keys),
        "payee": decode_party(doc.get("payee"), epoch, keys),
        "amount": {"clear": doc.get("amount_tiyn")},
        "tag": {"clear": doc.get("tag")},
        "memo": {},
    }


MODE = Mode(
    name=NAME,
    make_sink=lambda ctx, store: Sink(ctx),
    decode=decode,
    variants=("pseudonymous",),
    needs_keys=True,
    readers=("central_bank", "fma"),
    bank_keys=True,
)
