"""Appending to the trace log outside an operation (unmasking, access, case releases, policy reports): a change
set holding only trace rows, written in its own transaction."""

from __future__ import annotations

from ..core.hooks import EncodedTrace
from ..store.base import ChangeSet, Store


def append(store: Store, records: list[EncodedTrace]) -> None:
    """Write `records` as new leaves, atomically. Raises whatever the store raises: the caller must not go on
    (e.g. return plaintext) unless this returned."""
    with store.transaction() as tx:
        tx.write(ChangeSet(traces=list(records)))


def leaves(store: Store) -> list[tuple[int, EncodedTrace]]:
    return list(store.traces())
