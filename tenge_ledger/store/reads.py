"""The reads inside a write transaction, written once for every SQL store.

A store's transaction class gives `_one` and `_all` (run a query, fetch one row / all rows) and its driver's
placeholder; the SQL text here uses `?` and is translated once per query for drivers that use `%s`.
"""

from __future__ import annotations

import functools
from typing import Any

from ..core.records import Account, HoldRecord, TagRecord
from . import codec
from .base import LedgerMeta, StoredOperation


@functools.cache
def _dialect(sql: str, mark: str) -> str:
    return sql if mark == "?" else sql.replace("?", mark)


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

    def bucket(self, handle: str, tag: str) -> int:
        row = self._one(
            self._q("SELECT balance_tiyn FROM balances WHERE account = ? AND tag = ?"), (handle, tag)
        )
        return row[0] if row else 0

    def buckets(self, handle: str) -> dict[str, int]:
        rows = self._all(self._q("SELECT tag, balance_tiyn FROM balances WHERE account = ?"), (handle,))
        return {tag: bal for tag, bal in rows if bal}

    def operation(self, op_id: str) -> StoredOperation | None:
        row = self._one(
            self._q(f"SELECT {codec.OPERATION_COLUMNS} FROM operations WHERE op_id = ?"), (op_id,)
        )
        return codec.operation_from_row(row) if row else None

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

    def tag(self, tag: str) -> TagRecord | None:
        row = self._one(self._q("SELECT tag, expires_on, created_at FROM tags WHERE tag = ?"), (tag,))
        return codec.tag_from_row(row) if row else None

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
                "SELECT account, balance_tiyn FROM balances WHERE tag = ? AND balance_tiyn != 0 ORDER BY account"
            ),
            (tag,),
        )
        return dict(rows)

    def window(self, handle: str, direction: str, since: int, tag: str | None = None) -> tuple[int, int]:
        args = (handle, since) if tag is None else (handle, since, tag)
        total, count = self._one(codec.window_sql(self.mark, direction, tag is not None), args)
        return int(total), int(count)  # PostgreSQL sums bigints as numeric
