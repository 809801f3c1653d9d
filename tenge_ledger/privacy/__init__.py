"""Privacy modes. (Being built: issue 4.)"""

from __future__ import annotations

from ..core.hooks import TraceSink
from ..store.base import LedgerMeta, Store


def sink_for(meta: LedgerMeta, store: Store) -> TraceSink | None:
    """The trace sink of the ledger's privacy mode; None keeps records in clear (transparent)."""
    return None


MODES = ("transparent",)


def check_mode(mode: str) -> str:
    """Raise InputError naming the known modes unless `mode` is one of them."""
    from ..core.errors import InputError

    if mode not in MODES:
        raise InputError(f"unknown privacy mode {mode!r}; one of: {', '.join(MODES)}", "--privacy")
    return mode


def setup_mode(ledger, keystore) -> None:
    """Create the key material the ledger's privacy mode needs, right after `tenge init`."""
    return None
