"""`transparent`: everything in clear for the central bank and the FMA (the surveillance end)."""

from __future__ import annotations

from ...core.records import TraceRecord
from ...trace.record import trace_to_dict
from .base import BaseSink, Decoded, Mode, ObserverKeys, clear_fields

NAME = "transparent"


class Sink(BaseSink):
    mode = NAME
    journal_leaves = (
        True  # an applied operation's leaf is its journal row's: only rejections are encoded here
    )

    def fields(self, record: TraceRecord, doc: dict) -> None:
        doc["record"] = trace_to_dict(record)


def decode(doc: dict, keys: ObserverKeys) -> tuple[str, Decoded]:
    return NAME, clear_fields(doc.get("record", doc))


MODE = Mode(
    name=NAME,
    make_sink=lambda ctx, store: Sink(None),
    decode=decode,
    variants=("transparent",),
    needs_keys=False,
)
