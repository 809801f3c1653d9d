"""What a ledger knows of its store between chunks: the accounts, bucket rows and ids it read or wrote, valid
while this process is the only writer (and, while a committer writes for it, ahead of the store by the chunks
not yet committed).

Every change to accounts and balances is a journal entry, so the journal head is the version of this state: a
chunk that finds the head where this process left it reads nothing again; one that finds it moved (another
process wrote) starts from empty. A chunk that fails drops everything, since it may have allocated ids or read
rows that its rollback undid."""

from __future__ import annotations

from ..core import limits
from ..core.records import Account


class StoredState:
    def __init__(self) -> None:
        self.head: tuple[int, bytes] | None = None  # the journal head these values are as of
        self.accounts: dict[str, Account | None] = {}  # None: no such account
        self.ids: dict[str, int] = {}
        self.tag_ids: dict[str, int] | None = None
        self.next_ids: list[int] | None = None  # next free account id, tag id
        # a BucketRow's fields (balance, out, out count, in, in count, minute): as read, or as a chunk left them
        self.bucket_rows: dict[tuple[str, str], tuple[int, int, int, int, int, int]] = {}
        self.balances: dict[tuple[str, str], int] = {}  # stored balance of a bucket (0 when it has no row)
        # every non-zero tagged bucket of an account whose buckets were read (its untagged money is in `balances`:
        # most accounts hold none other, and a chunk then moves one entry per account, not two)
        self.account_buckets: dict[str, dict[str, int]] = {}
        self.rows_read: set[str] = set()  # accounts whose every stored bucket row is in bucket_rows
        # The counterparty filters (of `matched_for`) each account meets, with the account record they were
        # worked out from: kind and bank never change, so only a set with zone filters compares the record.
        self.matched_for: tuple = ()
        self.matched: dict[str, tuple[Account, list[tuple[str, str | None]]]] = {}
        # Operations of chunks a committer holds and has not confirmed (ledger/service.py, pipelined): op id ->
        # (seq, fields hash), which the store cannot answer yet. `head` is then the last such chunk's.
        self.pending_ops: dict[str, tuple[int, bytes]] = {}
        # `bucket_rows` lag the store's: a chunk upserted buckets without keeping their rows
        # (WorkingSet.changeset, no activity kept). Balances are current; a chunk that keeps activity starts afresh.
        self.rows_stale = False

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def since(self, head: tuple[int, bytes]) -> StoredState:
        """This state if it is as of `head` (and not too big to keep), else a fresh one."""
        if (
            self.head != head
            or len(self.balances) > limits.state_buckets_max
            or len(self.matched) > limits.state_buckets_max
        ):
            self.clear()
            self.head = head
        return self

    def committed(self, head: tuple[int, bytes], accounts: dict[str, Account]) -> None:
        """A chunk committed: its accounts are stored now (its buckets' rows were taken by its change set)."""
        self.head = head
        self.accounts.update(accounts)
