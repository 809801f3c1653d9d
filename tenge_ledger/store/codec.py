"""Row <-> record conversions shared by the SQL stores."""

from __future__ import annotations

import json

from ..core.hooks import EncodedTrace
from ..core.records import Account, AccountKind, AccountStatus, HoldRecord, TagRecord
from .base import JournalPosting, LedgerMeta, ReportRow, StoredOperation

ACCOUNT_COLUMNS = "handle, kind, public_key, tier, bank, attrs, status, opened_at"
OPERATION_COLUMNS = (
    "seq, op_id, kind, signer, document, fields_hash, at, message, decision, prev_hash, entry_hash"
)
HOLD_COLUMNS = "hold_id, payer, payee, amount_tiyn, tag, releaser, deadline, status"
POSTING_COLUMNS = "seq, idx, account, tag, amount_tiyn, at"
TRACE_COLUMNS = "op_id, at, mode, payload, leaf_hash"
REPORT_COLUMNS = "seq, op_id, agency, reason, rule, at"


def account_row(a: Account) -> tuple:
    attrs = json.dumps(dict(a.attrs), sort_keys=True, separators=(",", ":"))
    return (a.handle, a.kind.value, a.public_key, a.tier, a.bank, attrs, a.status.value, a.opened_at)


def account_from_row(row) -> Account:
    handle, kind, public_key, tier, bank, attrs, status, opened_at = row
    return Account(
        handle=handle,
        kind=AccountKind(kind),
        public_key=public_key,
        tier=tier,
        bank=bank,
        attrs=() if attrs == "{}" else tuple(sorted(json.loads(attrs).items())),
        status=AccountStatus(status),
        opened_at=opened_at,
    )


def operation_row(o: StoredOperation) -> tuple:
    return (
        o.seq,
        o.op_id,
        o.kind,
        o.signer,
        o.document,
        o.fields_hash,
        o.at,
        o.message,
        o.decision,
        o.prev_hash,
        o.entry_hash,
    )


def operation_from_row(row) -> StoredOperation:
    seq, op_id, kind, signer, document, fields_hash, at, message, decision, prev_hash, entry_hash = row
    return StoredOperation(
        seq=seq,
        op_id=op_id,
        kind=kind,
        signer=signer,
        document=document,
        fields_hash=bytes(fields_hash),
        at=at,
        message=message,
        decision=decision,
        prev_hash=bytes(prev_hash),
        entry_hash=bytes(entry_hash),
    )


def hold_row(h: HoldRecord) -> tuple:
    return (h.hold_id, h.payer, h.payee, h.amount_tiyn, h.tag, h.releaser, h.deadline, h.status)


def hold_from_row(row) -> HoldRecord:
    return HoldRecord(*row)


def tag_from_row(row) -> TagRecord:
    return TagRecord(*row)


def posting_row(p: JournalPosting) -> tuple:
    return (p.seq, p.idx, p.account, p.tag, p.amount_tiyn, p.at)


def posting_from_row(row) -> JournalPosting:
    return JournalPosting(*row)


def trace_row(t: EncodedTrace) -> tuple:
    return (t.op_id, t.at, t.mode, t.payload, t.leaf_hash)


def trace_from_row(row) -> EncodedTrace:
    op_id, at, mode, payload, leaf_hash = row
    return EncodedTrace(op_id=op_id, at=at, mode=mode, payload=bytes(payload), leaf_hash=bytes(leaf_hash))


def report_row(r: ReportRow) -> tuple:
    return (r.seq, r.op_id, r.agency, r.reason, r.rule, r.at)


def report_from_row(row) -> ReportRow:
    return ReportRow(*row)


def meta_to_rows(meta: LedgerMeta) -> list[tuple[str, str]]:
    return [
        ("ledger_id", meta.ledger_id),
        ("name", meta.name),
        ("central_bank", meta.central_bank),
        ("created_at", str(meta.created_at)),
        ("privacy_mode", meta.privacy_mode),
        ("settings", json.dumps(meta.settings, sort_keys=True)),
    ]


def meta_from_rows(rows: dict[str, str]) -> LedgerMeta:
    return LedgerMeta(
        ledger_id=rows["ledger_id"],
        name=rows["name"],
        central_bank=rows["central_bank"],
        created_at=int(rows["created_at"]),
        privacy_mode=rows.get("privacy_mode", "transparent"),
        settings=json.loads(rows.get("settings", "{}")),
    )
