"""A ledger view served from memory, for tests of the policy engine and compiler."""

from __future__ import annotations

from dataclasses import dataclass

from tenge_ledger.core.records import Account


@dataclass
class View:
    accounts: dict
    windows: dict | None = None  # (handle, direction) -> (sum, count)

    def account(self, handle: str) -> Account | None:
        return self.accounts.get(handle)

    def bucket(self, handle: str, tag: str) -> int:
        return 0

    def account_total(self, handle: str) -> int:
        return 0

    def window(self, handle, direction, since, tag=None):
        return (self.windows or {}).get((handle, direction), (0, 0))


def view_of(*accounts: Account, windows: dict | None = None) -> View:
    return View({a.handle: a for a in accounts}, windows)
