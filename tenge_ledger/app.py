"""The composition root: builds a Ledger from a `--db` value, with the policy engine and the trace sink that
the ledger's own settings name. The only module that knows every package; nothing imports it but the CLI,
the demo, the benchmarks and tests."""

from __future__ import annotations

from collections.abc import Callable

from .core.hooks import PolicyEngine, TraceSink
from .ledger.service import Ledger, system_clock
from .store import open_store
from .store.base import LedgerMeta, Store


def policy_engine_for(meta: LedgerMeta) -> PolicyEngine | None:
    """The engine of the policy set enabled on this ledger, or None for built-in checks only."""
    return policy_engine_of(meta.settings)


def policy_engine_of(settings: dict) -> PolicyEngine | None:
    """The engine of the policy set a ledger's settings enable (compiled on first use), or None."""
    from .policy import load_engine

    return load_engine(settings)


def trace_sink_for(meta: LedgerMeta, store: Store) -> TraceSink | None:
    """The sink of the ledger's privacy mode, or None for the plain (transparent) sink."""
    from .privacy import sink_for

    return sink_for(meta, store)


def open_ledger(url: str, clock: Callable[[], int] = system_clock) -> Ledger:
    store = open_store(url)
    return ledger_over(store, clock)


def ledger_over(store: Store, clock: Callable[[], int] = system_clock) -> Ledger:
    meta = store.meta()
    return Ledger(
        store,
        policy=policy_engine_for(meta),
        trace=trace_sink_for(meta, store),
        clock=clock,
        settings_loader=policy_engine_of,  # follows a set another process enables, at its next chunk
    )
