"""`transparent`: everything in clear for the central bank and the FMA (the surveillance end)."""

from __future__ import annotations

from ...core.records import TraceRecord
from ...trace.record import trace_to_dict
from .base import BaseSink, Decoded, ObserverKeys, clear_fields

MODE = "transparent"


class Sink(BaseSink):
    mode = MODE

    def fields(self, record: TraceRecord, doc: dict) -> None:
        doc["record"] = trace_to_dict(record)


def decode(doc: dict, keys: ObserverKeys) -> tuple[str, Decoded]:
    return MODE, clear_fields(doc.get("record", doc))
