"""A stored trace record as one role sees it: decode with the keys the role holds, then show each field at the
level the visibility table allows for the relations the role has to the record (never more)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable
from dataclasses import dataclass

from ..core import compact
from ..core.errors import InputError
from ..core.hooks import EncodedTrace
from ..store.base import Store
from ..store.entries import parse_leaf_payload
from ..trace.journal_leaf import record
from . import mode_of
from .modes.base import ObserverKeys
from .visibility import FIELDS, RANK, VISIBILITY, strongest


@dataclass(frozen=True, slots=True)
class FieldView:
    level: str  # none | one_time | pseudonym | clear
    value: object = None


@dataclass(frozen=True, slots=True)
class RecordView:
    idx: int
    op_id: str
    at: int
    type: str  # op | access | case_release | checkpoint
    kind: str | None
    code: str | None
    variant: str | None  # the visibility row it was judged by
    relations: tuple[str, ...]
    fields: dict[str, FieldView]

    def to_json(self) -> dict:
        out = {
            "idx": self.idx,
            "op_id": self.op_id,
            "at": self.at,
            "type": self.type,
            "kind": self.kind,
            "code": self.code,
        }
        if self.variant:
            out["variant"] = self.variant
            out["as"] = list(self.relations)
            out["fields"] = {f: {"level": v.level, "value": v.value} for f, v in self.fields.items()}
        return out


def parse_payload(payload: bytes) -> dict:
    """The stored record's document. A leaf derived from a journal row (transparent mode) names the row only:
    `stored_docs` reads its content from the journal."""
    derived = parse_leaf_payload(payload)
    if derived is not None:
        return {"type": "op", "mode": "transparent", "seq": derived[0], "journal_link": derived[1].hex()}
    try:
        doc = compact.load_doc(payload)  # the non-transparent modes' compact form, or JSON
    except (ValueError, UnicodeDecodeError):
        raise InputError("a trace record that is neither JSON nor the compact form") from None
    if "type" not in doc:  # the plain sink's records: the transparent shape without an envelope
        doc = {"type": "op", "mode": "transparent", "op_id": doc.get("op_id"), "at": doc.get("at"),
               "seq": doc.get("seq"), "kind": doc.get("kind"), "code": doc.get("code"), "record": doc}  # fmt: skip
    return doc


def stored_docs(store: Store, rows: Iterable[tuple[int, EncodedTrace]]) -> list[tuple[int, dict]]:
    """(idx, document) of each stored record; one derived from a journal row gets that row's content (one pass
    over the journal from the first such row)."""
    docs = [(idx, parse_payload(t.payload)) for idx, t in rows]
    derived = {d["seq"]: d for _, d in docs if "journal_link" in d}
    if derived:
        last = max(derived)
        with contextlib.closing(iter(store.journal(after_seq=min(derived) - 1))) as journal:  # type: ignore[type-var]
            for op, postings in journal:
                doc = derived.get(op.seq)
                if doc is not None and op.entry_hash.hex() == doc["journal_link"]:
                    doc.update(op_id=op.op_id, at=op.at, kind=op.kind, code="ok", record=record(op, postings))
                if op.seq >= last:
                    break
    return docs


def relations(decoded: dict, keys: ObserverKeys) -> tuple[str, ...]:
    """The roles this observer has for this record, found from what it could decode (a bank knows a record is
    its customer's only if it can open or match the identity)."""
    out = [keys.base_role]
    payer = decoded.get("payer", {}).get("clear")
    payee = decoded.get("payee", {}).get("clear")
    if keys.customers:
        if keys.is_customer(payer):  # type: ignore[arg-type]
            out.append("payer_bank")
        if keys.is_customer(payee):  # type: ignore[arg-type]
            out.append("payee_bank")
    # An account holder, or whoever it disclosed its viewing key or a receipt to, reads as that account does.
    holders = {keys.me} | set(keys.viewing) | set(keys.viewing_boxes)
    holders |= {handle for _, handle in keys.receipts} | {handle for _, handle in keys.record_keys}
    holders.discard(None)
    if payer in holders:
        out.append("payer")
    if payee in holders:
        out.append("payee")
    return tuple(out)


@functools.cache
def _decoder(mode: str):
    return mode_of(mode).decode


@functools.cache
def allowed_levels(variant: str, rel: tuple[str, ...]) -> dict[str, int]:
    """Per field, the rank of the strongest level any of the relations may see (from the table)."""
    rows = VISIBILITY[variant]
    return {f: RANK[strongest(rows[r][f] for r in rel)] for f in FIELDS}


_NONE = FieldView("none")


def view_doc(idx: int, doc: dict, keys: ObserverKeys) -> RecordView:
    kind = doc.get("type", "op")
    if kind != "op":
        return RecordView(idx, doc.get("op_id", ""), doc.get("at", 0), kind, None, None, None, (), {})
    variant, decoded = _decoder(doc.get("mode", "transparent"))(doc, keys)
    rel = relations(decoded, keys)
    allowed = allowed_levels(variant, rel)
    fields: dict[str, FieldView] = {}
    for f in FIELDS:
        shown = _NONE
        best = 0
        for level, value in decoded.get(f, {}).items():
            rank = RANK[level]
            if best < rank <= allowed[f]:
                shown, best = FieldView(level, value), rank
        fields[f] = shown
    return RecordView(
        idx, doc["op_id"], doc["at"], "op", doc.get("kind"), doc.get("code"), variant, rel, fields
    )


def decoded_levels(doc: dict, keys: ObserverKeys) -> tuple[str, dict[str, str]]:
    """(variant, per field the strongest level these keys decode), before the table caps anything: what the
    observer's keys and the stored bytes give, so a test can catch a role that decodes more than it may."""
    variant, decoded = _decoder(doc.get("mode", "transparent"))(doc, keys)
    levels = {}
    for f in FIELDS:
        found = [level for level in decoded.get(f, {}) if level in RANK]
        levels[f] = max(found, key=RANK.__getitem__) if found else "none"
    return variant, levels


def view_payload(idx: int, payload: bytes, keys: ObserverKeys) -> RecordView:
    return view_doc(idx, parse_payload(payload), keys)
