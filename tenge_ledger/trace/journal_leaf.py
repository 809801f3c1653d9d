"""Trace leaves derived from the journal: in transparent mode an applied operation's Merkle leaf is a hash over
its journal row's place and chain link, so the trace log keeps nothing but a pointer to the row.

The leaf's bytes are `J1 || seq (8 bytes, big-endian) || link` (the row's 32-byte chain link; store/entries.py
builds them, as the store hands derived leaves out). The link already
commits to the row's predecessor, seq, ledger time, the signed fields, the signature, the postings, the stored
decision and the policy set's version, so this leaf commits to all of them: a changed journal row no longer
matches the leaf a checkpoint signed. The record's content (parties, amount, rules) is read from the journal
when a role views it, never stored twice."""

from __future__ import annotations

import json

from ..store.base import JournalPosting, StoredOperation
from ..store.entries import leaf_payload, parse_leaf_payload

__all__ = ["leaf_payload", "parse_leaf_payload", "record"]

_HOLD_RELEASES = ("post", "void")


def record(op: StoredOperation, postings: list[JournalPosting]) -> dict:
    """The transparent record of an applied operation, rebuilt from its journal row: the fields the plain trace
    record has (`trace.record.trace_to_dict`), with the message derived as `tenge operation` shows it."""
    doc = json.loads(op.document)
    decision = json.loads(op.decision) if op.decision else {}
    payer, payee, amount, tag = doc.get("payer"), doc.get("payee"), doc.get("amount_tiyn"), doc.get("tag")
    if op.kind in _HOLD_RELEASES:  # the hold's money moves out of the holds account to whoever it goes to
        payer = next((p.account for p in postings if p.amount_tiyn < 0), None)
        to = next((p for p in postings if p.amount_tiyn > 0), None)
        payee, amount, tag = (to.account, to.amount_tiyn, to.tag or None) if to else (None, None, None)
    return {
        "op_id": op.op_id,
        "kind": op.kind,
        "at": op.at,
        "code": "ok",
        "message": op.message,
        "signer": op.signer,
        "payer": payer,
        "payee": payee,
        "amount_tiyn": amount,
        "tag": tag or None,
        "memo": doc.get("memo", doc.get("order")),
        "seq": op.seq,
        "postings": [[p.account, p.tag, p.amount_tiyn] for p in postings],
        "reports": [
            {"agency": r.get("agency"), "reason": r.get("reason"), "rule": r.get("rule")}
            for r in decision.get("reports", ())
        ],
        "policy_set_id": decision.get("policy_set_id"),
        "rules": list(decision.get("rules", ())),
    }
