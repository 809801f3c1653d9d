"""Trace records as JSON, and the plain sink that keeps them as they are."""

from __future__ import annotations

import json

from ..core.hooks import EncodedTrace
from ..core.records import TraceRecord
from .merkle import leaf_hash


def trace_to_dict(r: TraceRecord) -> dict:
    return {
        "op_id": r.op_id,
        "kind": r.kind,
        "at": r.at,
        "code": r.code,
        "message": r.message,
        "signer": r.signer,
        "payer": r.payer,
        "payee": r.payee,
        "amount_tiyn": r.amount_tiyn,
        "tag": r.tag,
        "memo": r.memo,
        "seq": r.seq,
        "postings": [[p.account, p.tag, p.amount_tiyn] for p in r.postings],
        "reports": [{"agency": x.agency, "reason": x.reason, "rule": x.rule} for x in r.reports],
        "policy_set_id": r.policy_set_id,
        "rules": list(r.rules),
    }


class PlainTraceSink:
    """Keeps every field in clear: the `transparent` end of the privacy modes."""

    mode = "transparent"
    journal_leaves = (
        True  # an applied operation's leaf is its journal row's: only rejections are encoded here
    )

    def encode(self, record: TraceRecord) -> EncodedTrace:
        payload = json.dumps(trace_to_dict(record), sort_keys=True, separators=(",", ":")).encode()
        return EncodedTrace(
            op_id=record.op_id, at=record.at, mode=self.mode, payload=payload, leaf_hash=leaf_hash(payload)
        )
