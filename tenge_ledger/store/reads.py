"""The reads inside a write transaction, written once for every SQL store.

A store's transaction class gives `_one` and `_all` (run a query, fetch one row / all rows) and its driver's
placeholder; the SQL text here uses `?` and is translated once per query for drivers that use `%s`.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from ..core.records import HOLDS_ACCOUNT, Account, HoldRecord, OpKind, TagRecord
from . import codec
from .base import BucketRow, JournalPosting, LedgerMeta, StoredOperation
from .entries import JOURNAL_JOINED, JOURNAL_READ, KIND_CODE

_GROUP = 500  # values bound in one IN (...) query, well under SQLite's variable limit
HISTORY_SLICE = 4096  # journal rows read per step when history walks the journal backwards


@functools.cache
def _dialect(sql: str, mark: str) -> str:
    return sql if mark == "?" else sql.replace("?", mark)


def groups(values) -> list[tuple]:
    ordered = sorted(values)
    return [tuple(ordered[i : i + _GROUP]) for i in range(0, len(ordered), _GROUP)]


def marks(group: tuple) -> str:
    return ",".join("?" * len(group))


class SqlTxReads:
    mark = "?"

    def _one(self, sql: str, args: tuple = ()) -> Any:  # pragma: no cover - given by each store
        raise NotImplementedError

    def _all(self, sql: str, args: tuple = ()) -> list[Any]:  # pragma: no cover - given by each store
        raise NotImplementedError

    def _q(self, sql: str) -> str:
        return _dialect(sql, self.mark)

    def meta(self) -> LedgerMeta:
        return codec.meta_from_rows(dict(self._all("SELECT key, value FROM meta")))

    def account(self, handle: str) -> Account | None:
        row = self._one(self._q(f"SELECT {codec.ACCOUNT_COLUMNS} FROM accounts WHERE handle = ?"), (handle,))
        return codec.account_from_row(row) if row else None

    def accounts_with_ids(self, handles) -> dict[str, tuple[int, Account]]:
        """The accounts among `handles` that exist, each with its id."""
        out: dict[str, tuple[int, Account]] = {}
        for group in groups(handles):
            rows = self._all(
                self._q(f"SELECT id, {codec.ACCOUNT_COLUMNS} FROM accounts WHERE handle IN ({marks(group)})"),
                group,
            )
            for row in rows:
                out[row[1]] = (row[0], codec.account_from_row(row[1:]))
        return out

    def account_ids(self, handles) -> dict[str, int]:
        out: dict[str, int] = {}
        for group in groups(handles):
            out.update(
                self._all(self._q(f"SELECT handle, id FROM accounts WHERE handle IN ({marks(group)})"), group)
            )
        return out

    def tag_ids(self) -> dict[str, int]:
        return dict(self._all("SELECT tag, id FROM tag_names"))

    def next_ids(self) -> tuple[int, int]:
        """The next free account id and tag id."""
        accounts = self._one("SELECT COALESCE(MAX(id), 0) + 1 FROM accounts")[0]
        tags = self._one("SELECT COALESCE(MAX(id), 0) + 1 FROM tag_names")[0]
        return int(accounts), int(tags)

    def bucket(self, handle: str, tag: str) -> int:
        row = self._one(
            self._q(
                "SELECT b.balance_tiyn FROM balances b JOIN accounts a ON a.id = b.account"
                " JOIN tag_names t ON t.id = b.tag WHERE a.handle = ? AND t.tag = ?"
            ),
            (handle, tag),
        )
        return int(row[0]) if row else 0

    def buckets(self, handle: str) -> dict[str, int]:
        rows = self._all(
            self._q(
                "SELECT t.tag, b.balance_tiyn FROM balances b JOIN accounts a ON a.id = b.account"
                " JOIN tag_names t ON t.id = b.tag WHERE a.handle = ?"
            ),
            (handle,),
        )
        return {tag: int(bal) for tag, bal in rows if bal}

    def bucket_rows(self, handles) -> dict[tuple[str, str], BucketRow]:
        """Every stored bucket of these accounts with its running flows: (handle, tag) -> BucketRow."""
        out: dict[tuple[str, str], BucketRow] = {}
        for group in groups(handles):
            rows = self._all(
                self._q(
                    f"SELECT a.handle, t.tag, {codec.BUCKET_FLOW_COLUMNS} FROM balances b"
                    " JOIN accounts a ON a.id = b.account JOIN tag_names t ON t.id = b.tag"
                    f" WHERE a.handle IN ({marks(group)})"
                ),
                group,
            )
            for row in rows:
                out[(row[0], row[1])] = codec.bucket_row(row[2:])
        return out

    def all_bucket_rows(self) -> dict[tuple[str, str], BucketRow]:
        """Every stored bucket, zero balances included, with its running flows."""
        rows = self._all(
            f"SELECT a.handle, t.tag, {codec.BUCKET_FLOW_COLUMNS} FROM balances b"
            " JOIN accounts a ON a.id = b.account JOIN tag_names t ON t.id = b.tag"
        )
        return {(row[0], row[1]): codec.bucket_row(row[2:]) for row in rows}

    def filter_rows(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], BucketRow]:
        """The stored filtered flows of these (handle, filter key) pairs, where there are any."""
        out: dict[tuple[str, str], BucketRow] = {}
        for group in groups({h for h, _ in keys}):
            rows = self._all(
                self._q(
                    "SELECT a.handle, b.filter, 0, b.out_tiyn, b.out_count, b.in_tiyn, b.in_count, b.minute"
                    f" FROM filter_flows b JOIN accounts a ON a.id = b.account WHERE a.handle IN ({marks(group)})"
                ),
                group,
            )
            for row in rows:
                if (row[0], row[1]) in keys:
                    out[(row[0], row[1])] = codec.bucket_row(row[2:])
        return out

    def all_filter_rows(self) -> dict[tuple[str, str], BucketRow]:
        rows = self._all(
            "SELECT a.handle, b.filter, 0, b.out_tiyn, b.out_count, b.in_tiyn, b.in_count, b.minute"
            " FROM filter_flows b JOIN accounts a ON a.id = b.account"
        )
        return {(row[0], row[1]): codec.bucket_row(row[2:]) for row in rows}

    def filter_activity_rows(self) -> dict[tuple[str, str, int], tuple[int, int, int, int]]:
        rows = self._all(
            "SELECT a.handle, s.filter, s.minute, s.out_tiyn, s.out_count, s.in_tiyn, s.in_count"
            " FROM filter_activity s JOIN accounts a ON a.id = s.account"
        )
        return {(h, f, int(m)): (int(o), int(on), int(i), int(n)) for h, f, m, o, on, i, n in rows}

    def activity_rows(self) -> dict[tuple[str, str, int], tuple[int, int, int, int]]:
        """Every stored activity snapshot: (handle, tag, minute) -> flows before the bucket's first posting then."""
        rows = self._all(
            "SELECT a.handle, t.tag, s.minute, s.out_tiyn, s.out_count, s.in_tiyn, s.in_count FROM activity s"
            " JOIN accounts a ON a.id = s.account JOIN tag_names t ON t.id = s.tag"
        )
        return {(h, t, int(m)): (int(o), int(on), int(i), int(n)) for h, t, m, o, on, i, n in rows}

    def entry_rows(self, op_ids) -> list[tuple]:
        out: list[tuple] = []
        for group in groups(op_ids):
            out.extend(
                self._all(
                    self._q(f"SELECT {JOURNAL_READ} FROM {JOURNAL_JOINED} WHERE j.op_id IN ({marks(group)})"),
                    group,
                )
            )
        return out

    def operation(self, op_id: str) -> StoredOperation | None:
        rows = self.entry_rows([op_id])
        return self.stored_operations(rows).get(op_id) if rows else None

    def stored_operations(self, rows: list[tuple]) -> dict[str, StoredOperation]:
        """Journal rows read inside this transaction, each as the operation it keeps (document re-derived)."""
        if not rows:
            return {}
        reader = codec.EntryReader(self.meta(), self._names())
        out = {}
        for row in rows:
            legs = self._legs(row[0]) if row[11] & codec.FLAG_LEGS else None
            prev = self._one(self._q("SELECT link FROM journal WHERE seq = ?"), (row[0] - 1,))
            op, _ = reader.entry(row, legs, bytes(prev[0]) if prev else codec.GENESIS_HASH)
            out[op.op_id] = op
        return out

    def history(
        self, account_id: int, handle: str, limit: int
    ) -> list[tuple[StoredOperation, JournalPosting]]:
        """An account's postings with their operations, newest first: slices of journal rows backwards from the
        head, filtered in SQL to the rows that can move the account (it is their payer or payee, or their legs
        are stored). The journal has no per-account index: it would grow with every posting and slow every
        write."""
        meta = self.meta()
        reader = codec.EntryReader(meta, self._names())
        everything = handle in (meta.central_bank, HOLDS_ACCOUNT)  # implied legs: every issue, redeem or hold
        where = "" if everything else " AND (j.payer = ? OR j.payee = ? OR j.flags & 1 = 1)"
        rows_sql = self._q(
            f"SELECT {JOURNAL_READ} FROM {JOURNAL_JOINED} WHERE j.seq > ? AND j.seq <= ?{where} ORDER BY j.seq DESC"
        )
        legs_sql = self._q(
            f"SELECT {codec.LEG_COLUMNS} FROM legs WHERE seq > ? AND seq <= ? ORDER BY seq, idx"
        )
        link_sql = self._q("SELECT link FROM journal WHERE seq = ?")
        out: list[tuple[StoredOperation, JournalPosting]] = []
        hi = self.head()[0]
        while hi > 0 and len(out) < limit:
            lo = max(0, hi - HISTORY_SLICE)
            rows = self._all(rows_sql, (lo, hi) if everything else (lo, hi, account_id, account_id))
            legs: dict[int, list[tuple]] = {}
            if any(row[11] & codec.FLAG_LEGS for row in rows):
                for leg in self._all(legs_sql, (lo, hi)):
                    legs.setdefault(leg[0], []).append(leg)
            for row in rows:
                prev = self._one(link_sql, (row[0] - 1,))
                op, postings = reader.entry(
                    row, legs.get(row[0]), bytes(prev[0]) if prev else codec.GENESIS_HASH
                )
                out.extend((op, p) for p in reversed([p for p in postings if p.account == handle]))
                if len(out) >= limit:
                    break
            hi = lo
        return out[:limit]

    def _legs(self, seq: int) -> list[tuple]:
        return self._all(self._q(f"SELECT {codec.LEG_COLUMNS} FROM legs WHERE seq = ? ORDER BY idx"), (seq,))

    def _names(self) -> codec.Names:
        return codec.Names(
            dict(self._all("SELECT id, handle FROM accounts")),
            dict(self._all("SELECT id, tag FROM tag_names")),
        )

    def journaled_public_key(self, handle: str) -> str | None:
        """The public key the journal's open_account of `handle` set (not the accounts table's), or None."""
        rows = self._all(
            self._q("SELECT body FROM journal WHERE kind = ? AND body LIKE ? ORDER BY seq"),
            (KIND_CODE[OpKind.open_account], f'%"handle":{json.dumps(handle)}%'),
        )
        for (body,) in rows:
            doc = json.loads(body)
            if doc.get("handle") == handle:
                return doc.get("public_key")
        return None

    def witness_registrations(self) -> dict[str, str]:
        """Witness name -> public key (hex), from the journal's add_witness operations: the registry is derived,
        never stored beside the journal."""
        rows = self._all(
            self._q("SELECT body FROM journal WHERE kind = ? ORDER BY seq"), (KIND_CODE[OpKind.add_witness],)
        )
        return {d["name"]: d["public_key"] for d in (json.loads(r[0]) for r in rows)}

    def hold(self, hold_id: str) -> HoldRecord | None:
        row = self._one(self._q(f"SELECT {codec.HOLD_COLUMNS} FROM holds WHERE hold_id = ?"), (hold_id,))
        return codec.hold_from_row(row) if row else None

    def holds_due(self, as_of: int) -> list[HoldRecord]:
        rows = self._all(
            self._q(
                f"SELECT {codec.HOLD_COLUMNS} FROM holds WHERE status = 'pending' AND deadline <= ?"
                " ORDER BY deadline, hold_id"
            ),
            (as_of,),
        )
        return [codec.hold_from_row(r) for r in rows]

    def pending_holds(self, payer: str) -> list[HoldRecord]:
        """The pending holds of money `payer` paid in (it returns there if voided or timed out)."""
        rows = self._all(
            self._q(
                f"SELECT {codec.HOLD_COLUMNS} FROM holds WHERE status = 'pending' AND payer = ?"
                " ORDER BY deadline, hold_id"
            ),
            (payer,),
        )
        return [codec.hold_from_row(r) for r in rows]

    def tag(self, tag: str) -> TagRecord | None:
        row = self._one(self._q("SELECT tag, expires_on, created_at FROM tags WHERE tag = ?"), (tag,))
        return codec.tag_from_row(row) if row else None

    def all_tags(self) -> list[TagRecord]:
        rows = self._all("SELECT tag, expires_on, created_at FROM tags ORDER BY tag")
        return [codec.tag_from_row(r) for r in rows]

    def tags_expiring(self, as_of_date: str) -> list[TagRecord]:
        rows = self._all(
            self._q(
                "SELECT tag, expires_on, created_at FROM tags WHERE expires_on IS NOT NULL AND expires_on <= ?"
                " ORDER BY tag"
            ),
            (as_of_date,),
        )
        return [codec.tag_from_row(r) for r in rows]

    def tag_holders(self, tag: str) -> dict[str, int]:
        rows = self._all(
            self._q(
                "SELECT a.handle, b.balance_tiyn FROM balances b JOIN accounts a ON a.id = b.account"
                " JOIN tag_names t ON t.id = b.tag WHERE t.tag = ? AND b.balance_tiyn != 0 ORDER BY a.handle"
            ),
            (tag,),
        )
        return {a: int(b) for a, b in rows}

    def window(
        self, handle: str, direction: str, since: int, tag: str | None = None, counterparty: str | None = None
    ) -> tuple[int, int]:
        sql, args = codec.windows_query(direction, since, tag, (handle,), counterparty)
        row = self._one(self._q(sql), args)
        return (int(row[1]), int(row[2])) if row else (0, 0)

    def windows(
        self,
        accounts: dict[int, str],
        direction: str,
        sinces: tuple[int, ...],
        counterparty: str | None = None,
    ) -> dict[tuple[str, int], tuple[int, int]]:
        """Untagged (or one filtered aggregate's) `window`s of many accounts (id -> handle) and start times:
        (handle, since) -> (sum, count), absent where there are no such postings. One query per group of
        accounts, every start time in it."""
        out: dict[tuple[str, int], tuple[int, int]] = {}
        for group in groups(accounts):
            sql, args = codec.windows_by_id_query(direction, sinces, group, counterparty)
            for row in self._all(self._q(sql), args):
                handle = accounts[row[0]]
                for k, since in enumerate(sinces):
                    count = row[2 + 2 * k]
                    if count:
                        out[(handle, since)] = (int(row[1 + 2 * k]), int(count))
        return out
