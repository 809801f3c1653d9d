"""Row <-> record conversions shared by the SQL stores."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

from ..core import shapes
from ..core.canonical import canonical_and_document
from ..core.describe import describe
from ..core.errors import StoreError, quoted
from ..core.records import HOLDS_ACCOUNT, Account, AccountKind, AccountStatus, HoldRecord, TagRecord
from .base import GENESIS_HASH, BucketRow, JournalPosting, LedgerMeta, ReportRow, StoredOperation
from .entries import (
    FLAG_LEGS,
    FLAG_LINK_V2,
    JOURNAL_COLUMNS,
    KIND_CODES,
    LEG_COLUMNS,
    body_columns,
    journal_row,
    legs_of,
    operation_from_row,
    standard_legs,
)

__all__ = ["FLAG_LEGS", "GENESIS_HASH", "JOURNAL_COLUMNS", "LEG_COLUMNS"]

ACCOUNT_COLUMNS = "handle, kind, public_key, tier, bank, attrs, status, opened_at"
BUCKET_FLOW_COLUMNS = "b.balance_tiyn, b.out_tiyn, b.out_count, b.in_tiyn, b.in_count, b.minute"
HOLD_COLUMNS = "hold_id, payer, payee, amount_tiyn, tag, releaser, deadline, status, on_timeout"
REPORT_COLUMNS = "seq, op_id, agency, reason, rule, at"


def account_row(a: Account) -> tuple:
    attrs = json.dumps(dict(a.attrs), sort_keys=True, separators=(",", ":"))
    return (a.handle, a.kind.value, a.public_key, a.tier, a.bank, attrs, a.status.value, a.opened_at)


_KIND_OF = {k.value: k for k in AccountKind}  # an Enum's own lookup by value costs several times a dict's
_STATUS_OF = {s.value: s for s in AccountStatus}


def account_from_row(row) -> Account:
    handle, kind, public_key, tier, bank, attrs, status, opened_at = row
    return Account(
        handle=handle,
        kind=_KIND_OF[kind] if kind in _KIND_OF else AccountKind(kind),
        public_key=public_key,
        tier=tier,
        bank=bank,
        attrs=() if attrs == "{}" else tuple(sorted(json.loads(attrs).items())),
        status=_STATUS_OF[status] if status in _STATUS_OF else AccountStatus(status),
        opened_at=opened_at,
    )


def hold_row(h: HoldRecord) -> tuple:
    return (h.hold_id, h.payer, h.payee, h.amount_tiyn, h.tag, h.releaser, h.deadline, h.status, h.on_timeout)


def hold_from_row(row) -> HoldRecord:
    return HoldRecord(*row)


def tag_from_row(row) -> TagRecord:
    return TagRecord(*row)


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


# The settings the ledger and its parts read, with the shape of the JSON each must have (None allowed where a
# setting can be cleared), down to the fields inside: a hand edit that gives one of them another type or drops a
# field is named here, as one StoreError, not a traceback (or a quiet misreading) wherever it is read.
_HOLDER = shapes.Obj({"name": str, "index": int, "verification_point": str, "verify_key": str})
_ESCROW = shapes.Obj(
    {
        "scheme": str,
        "ledger_id": str,
        "group_public": str,
        "threshold": int,
        "holders": shapes.ListOf(_HOLDER),
    },
    {"ceremony": shapes.Either((None, str)), "transcript": str},
)
_POLICY_FILES = shapes.MapOf(str)  # file name -> source
_SETTINGS = shapes.Obj(
    {},
    {
        "checkpoint_every_records": int,
        "policy_history": shapes.ListOf(
            shapes.Obj(
                {"action": str, "id": str, "version": int, "at": int},
                {"files": _POLICY_FILES, "rules": int, "note": str},  # an enabling's; a disabling has none
            )
        ),
        "policy_set": shapes.Either((None, shapes.Obj({"id": str, "version": int, "files": _POLICY_FILES}))),
        "privacy_epoch_s": int,
        "privacy_public": shapes.Obj(
            {"checkpoint_key": str, "ledger_id": str, "box_public": shapes.MapOf(str)},
            {"escrow": _ESCROW, "sealed_roots": shapes.MapOf(str)},
        ),
        "tier_holding_tiyn": shapes.MapOf(int),
        "tiered_budget_tiyn_month": int,
        "tiered_threshold_tiyn": int,
        "trace_checkpoint_notes": shapes.ListOf(shapes.Obj({"note": str, "at": int})),
        "window_activity": bool,
        "window_filters": shapes.ListOf(str),
    },
    more=True,  # a setting this version does not read is left alone
)


def _setting_type_problem(settings: dict) -> str | None:
    problem = shapes.problem(settings, _SETTINGS)
    if problem is not None:
        return problem
    for key in settings.get("tier_holding_tiyn") or {}:
        if not key.isdigit():
            return f"tier_holding_tiyn: the key {quoted(key)} is not a tier number"
    return None


def meta_from_rows(rows: dict[str, str]) -> LedgerMeta:
    # The settings are the one JSON value the meta table holds: a hand edit or damage there is a StoreError
    # naming it, not a decoding traceback in whatever command opened the ledger.
    try:
        settings = json.loads(rows.get("settings", "{}"))
    except (ValueError, RecursionError):
        settings = None
    if not isinstance(settings, dict):
        raise StoreError(
            "the ledger's settings (the meta table's 'settings' row) are damaged: not a JSON object"
        )
    problem = _setting_type_problem(settings)
    if problem is not None:
        raise StoreError(f"the ledger's settings (the meta table's 'settings' row) are damaged: {problem}")
    return LedgerMeta(
        ledger_id=rows["ledger_id"],
        name=rows["name"],
        central_bank=rows["central_bank"],
        created_at=int(rows["created_at"]),
        privacy_mode=rows.get("privacy_mode", "transparent"),
        settings=settings,
        settings_epoch=int(rows.get("settings_epoch", "0")),
    )


def bucket_row(row) -> BucketRow:
    balance, out_tiyn, out_count, in_tiyn, in_count, minute = row
    return BucketRow(int(balance), int(out_tiyn), int(out_count), int(in_tiyn), int(in_count), int(minute))


class Names:
    """Account handles and tags by their ids, and back, as one read of the store found them."""

    def __init__(self, handles: dict[int, str], tags: dict[int, str]) -> None:
        self.handles = handles
        self.tags = tags
        self._ids = {h: i for i, h in handles.items()}
        self._tag_ids = {t: i for i, t in tags.items()}

    def handle(self, account_id: int) -> str:
        return self.handles[account_id]

    def id_of(self, handle: str) -> int:
        return self._ids[handle]

    def tag(self, tag_id: int) -> str:
        return self.tags[tag_id]

    def tag_id(self, tag: str) -> int:
        return self._tag_ids[tag]


class EntryReader:
    """Turns compact journal rows back into the operations they keep: the signed document rebuilt, its fields
    hash recomputed, its postings derived (or read from `legs`), its message described."""

    def __init__(self, meta: LedgerMeta, names: Names) -> None:
        self.ledger_id = meta.ledger_id
        self.central_bank = meta.central_bank
        self.names = names

    def entry(
        self, row: tuple, legs: list[tuple] | None, prev_link: bytes
    ) -> tuple[StoredOperation, list[JournalPosting]]:
        names = self.names
        op = operation_from_row(row, names.handle, names.tag)
        postings = legs_of(row, legs, names.handle, names.tag, self.central_bank, HOLDS_ACCOUNT)
        self._canonical(row, op, legs, postings)
        canonical, document = canonical_and_document(self.ledger_id, op)
        seq, at = row[0], row[8]
        stored = StoredOperation(
            seq=seq,
            op_id=op.id,
            kind=KIND_CODES[row[2]].value,
            signer=op.signer,
            document=document,
            fields_hash=hashlib.sha256(canonical).digest(),
            at=at,
            message=describe(op, postings, self.central_bank),
            decision=row[13] or json.dumps({"policy_version": row[14]}),
            prev_hash=prev_link,
            entry_hash=bytes(row[10]),
            chained=(row[13], row[14]) if row[11] & FLAG_LINK_V2 else None,
            operation=op,
        )
        return stored, [JournalPosting(seq, i, a, t, amount, at) for i, (a, amount, t) in enumerate(postings)]

    def _canonical(self, row: tuple, op, legs: list[tuple] | None, postings: list) -> None:
        """A row is the one its operation gives, byte for byte (no stray column, no legs flag without a reason):
        otherwise ValueError, so a row edited where decoding would not notice is still found."""
        names = self.names
        again = journal_row(
            row[0], op, row[8], bytes(row[10]), row[11], row[13], row[14], names.id_of, names.tag_id
        )
        if again != (*row[:9], bytes(row[9]), bytes(row[10]), *row[11:]):
            raise ValueError(f"journal row #{row[0]} is not the row its own operation gives")
        if row[11] & ~(FLAG_LEGS | FLAG_LINK_V2):
            raise ValueError(f"journal row #{row[0]} has unknown flags {row[11]}")
        if row[11] & FLAG_LEGS:
            payer, payee, amount, tag = body_columns(op.body)
            implied = standard_legs(
                op.kind, payer, payee, amount, tag or "", self.central_bank, HOLDS_ACCOUNT
            )
            if not legs or list(implied) == list(postings):
                raise ValueError(
                    f"journal row #{row[0]} says its legs are stored, but they are its implied ones"
                )

    def journal(self, rows, legs_rows, prev: bytes) -> Iterator[tuple[StoredOperation, list[JournalPosting]]]:
        """Entries from two row streams ordered by seq: journal rows and the `legs` rows of those that have them;
        `prev` is the link of the entry before the first row."""
        legs = iter(legs_rows)
        pending = next(legs, None)
        for row in rows:
            mine: list[tuple] | None = None
            if row[11] & FLAG_LEGS:
                mine = []
                while pending is not None and pending[0] < row[0]:
                    pending = next(legs, None)
                while pending is not None and pending[0] == row[0]:
                    mine.append(pending)
                    pending = next(legs, None)
            entry = self.entry(row, mine, prev)
            prev = entry[0].entry_hash
            yield entry


def windows_query(
    direction: str, since: int, tag: str | None, handles: tuple[str, ...], counterparty: str | None = None
) -> tuple[str, tuple]:
    """(handle, sum, count) per account among `handles` of its outgoing ("out") or incoming postings from the
    start of the minute `since` falls in, over every bucket (or the one bucket `tag`): its running total now
    less the running total before the first posting of the first minute with any, from `activity`. Given
    `counterparty` (a filter key), the same over that filtered aggregate (`filter_flows`, `filter_activity`)."""
    flow, count = ("out_tiyn", "out_count") if direction == "out" else ("in_tiyn", "in_count")
    if counterparty is not None:
        sql = (
            f"SELECT a.handle, COALESCE(SUM(b.{flow} - COALESCE(s.{flow}, b.{flow})), 0),"
            f" COALESCE(SUM(b.{count} - COALESCE(s.{count}, b.{count})), 0)"
            " FROM accounts a JOIN filter_flows b ON b.account = a.id AND b.filter = ?"
            " LEFT JOIN filter_activity s ON s.account = b.account AND s.filter = b.filter AND s.minute ="
            " (SELECT MIN(x.minute) FROM filter_activity x WHERE x.account = b.account AND x.filter = b.filter"
            " AND x.minute >= ?)"
            f" WHERE a.handle IN ({','.join('?' * len(handles))}) GROUP BY a.handle"
        )
        return sql, (counterparty, since // 60, *handles)
    tag_join = " JOIN tag_names t ON t.id = b.tag AND t.tag = ?" if tag is not None else ""
    sql = (
        f"SELECT a.handle, COALESCE(SUM(b.{flow} - COALESCE(s.{flow}, b.{flow})), 0),"
        f" COALESCE(SUM(b.{count} - COALESCE(s.{count}, b.{count})), 0)"
        f" FROM accounts a JOIN balances b ON b.account = a.id{tag_join}"
        " LEFT JOIN activity s ON s.account = b.account AND s.tag = b.tag AND s.minute ="
        " (SELECT MIN(x.minute) FROM activity x WHERE x.account = b.account AND x.tag = b.tag AND x.minute >= ?)"
        f" WHERE a.handle IN ({','.join('?' * len(handles))}) GROUP BY a.handle"
    )
    minute = since // 60
    args = (tag, minute, *handles) if tag is not None else (minute, *handles)
    return sql, args


def windows_by_id_query(
    direction: str, sinces: tuple[int, ...], ids: tuple[int, ...], counterparty: str | None = None
) -> tuple[str, tuple]:
    """`windows_query` for accounts given by id, every start time in one pass over their rows: (account id, then
    a sum and a count per start time). Each window is its flow now less the flow before the first minute with
    any inside it, from the snapshot an index seek finds; no join with `accounts`, no grouping by text."""
    flow, count = ("out_tiyn", "out_count") if direction == "out" else ("in_tiyn", "in_count")
    if counterparty is None:
        rows, snapshots, same = "balances", "activity", "s.tag = b.tag"
    else:
        rows, snapshots, same = "filter_flows", "filter_activity", "s.filter = b.filter"

    def before(column: str) -> str:
        return (
            f"COALESCE((SELECT s.{column} FROM {snapshots} s WHERE s.account = b.account AND {same}"
            f" AND s.minute >= ? ORDER BY s.minute LIMIT 1), b.{column})"
        )

    columns = ", ".join(f"SUM(b.{flow} - {before(flow)}), SUM(b.{count} - {before(count)})" for _ in sinces)
    where = "b.filter = ? AND " if counterparty is not None else ""
    sql = (
        f"SELECT b.account, {columns} FROM {rows} b WHERE {where}b.account IN ({','.join('?' * len(ids))})"
        " GROUP BY b.account"
    )
    minutes = tuple(m for since in sinces for m in (since // 60, since // 60))
    return sql, (*minutes, *(() if counterparty is None else (counterparty,)), *ids)
