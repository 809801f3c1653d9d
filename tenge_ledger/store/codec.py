"""Row <-> record conversions shared by the SQL stores."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

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


def pair_journal(
    op_rows: Iterable, posting_rows: Iterable
) -> Iterator[tuple[StoredOperation, list[JournalPosting]]]:
    """Journal entries from two row streams, both ordered by seq: each operation with its postings."""
    postings = iter(posting_rows)
    pending = next(postings, None)
    for row in op_rows:
        op = operation_from_row(row)
        mine: list[JournalPosting] = []
        while pending is not None and pending[0] == op.seq:
            mine.append(posting_from_row(pending))
            pending = next(postings, None)
        yield op, mine


def history_sql(mark: str) -> str:
    """An account's postings with their operations, newest first; `mark` is the driver's placeholder."""
    op_cols = ", ".join("o." + c.strip() for c in OPERATION_COLUMNS.split(","))
    posting_cols = ", ".join("p." + c.strip() for c in POSTING_COLUMNS.split(","))
    return (
        f"SELECT {op_cols}, {posting_cols} FROM postings p JOIN operations o ON o.seq = p.seq"
        f" WHERE p.account = {mark} ORDER BY p.seq DESC, p.idx DESC LIMIT {mark}"
    )


def history_from_rows(rows: Iterable) -> list[tuple[StoredOperation, JournalPosting]]:
    width = len(OPERATION_COLUMNS.split(","))
    return [(operation_from_row(r[:width]), posting_from_row(r[width:])) for r in rows]


def windows_query(
    mark: str, direction: str, sinces: tuple[int, ...], accounts: str, account_args: tuple
) -> tuple[str, tuple]:
    """`window_sql` for many accounts and start times at once, in one pass over their postings since the
    earliest: SQL and arguments for one row (account, sum1, count1, sum2, count2, ...) per account with any.
    `accounts` is the driver's clause choosing the accounts, bound by `account_args`."""
    sign = "<" if direction == "out" else ">"
    columns = ", ".join(
        f"SUM(CASE WHEN at >= {mark} THEN ABS(amount_tiyn) ELSE 0 END), SUM(CASE WHEN at >= {mark} THEN 1 ELSE 0 END)"
        for _ in sinces
    )
    sql = (
        f"SELECT account, {columns} FROM postings"
        f" WHERE {accounts} AND at >= {mark} AND amount_tiyn {sign} 0 GROUP BY account"
    )
    twice = tuple(s for since in sinces for s in (since, since))
    return sql, (*twice, *account_args, min(sinces))


def windows_from_rows(rows, sinces: tuple[int, ...]) -> dict[tuple[str, int], tuple[int, int]]:
    return {
        (row[0], since): (int(row[1 + 2 * i]), int(row[2 + 2 * i]))
        for row in rows
        for i, since in enumerate(sinces)
        if row[2 + 2 * i]
    }


def window_sql(mark: str, direction: str, tagged: bool) -> str:
    """Sum and count of an account's outgoing ("out") or incoming postings since a ledger time; arguments
    (account, since[, tag]); `mark` is the driver's placeholder."""
    sign = "<" if direction == "out" else ">"
    sql = (
        "SELECT COALESCE(SUM(ABS(amount_tiyn)), 0), COUNT(*) FROM postings"
        f" WHERE account = {mark} AND at >= {mark} AND amount_tiyn {sign} 0"
    )
    return sql + f" AND tag = {mark}" if tagged else sql
