"""Privacy modes. (Being built: issue 4.)"""

from __future__ import annotations

from ..core.hooks import TraceSink
from ..store.base import LedgerMeta, Store


def sink_for(meta: LedgerMeta, store: Store) -> TraceSink | None:
    """The trace sink of the ledger's privacy mode; None keeps records in clear (transparent)."""
    return None
