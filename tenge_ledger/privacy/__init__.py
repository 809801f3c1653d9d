"""Privacy modes: what the trace log keeps of each operation, and who can read it afterwards.

The engine sees every operation when it applies it; a mode controls what is *kept* and who may read it later
(role-view privacy with logged access), not anonymity against the operator. See docs/privacy.md.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from importlib import import_module
from pathlib import Path

from ..core.errors import InputError, LedgerStateError
from ..core.hooks import TraceSink
from ..store.base import LedgerMeta, Store
from .keys import KeyRing, provision
from .visibility import MODES

_MODULES = {
    "transparent": "transparent",
    "pseudonymous": "pseudonymous",
    "tiered": "tiered",
    "payee-transparent": "payee_transparent",
    "escrowed": "escrowed",
    "selective": "selective",
}
assert set(_MODULES) == set(MODES)


def normalize(mode: str) -> str:
    """The canonical name of a mode (`payee_transparent` is accepted for `payee-transparent`)."""
    name = (mode or "").strip().lower().replace("_", "-")
    if name not in _MODULES:
        raise InputError(f"unknown privacy mode {mode!r}; known: {', '.join(MODES)}")
    return name


def check_mode(mode: str) -> str:
    return normalize(mode)


def mode_module(mode: str):
    return import_module(f".modes.{_MODULES[normalize(mode)]}", __name__)


def keystore_dir_for(store: Store) -> Path:
    """Where the privacy keys of this ledger live: the keystore beside the database (`$TENGE_KEYSTORE` too);
    an in-memory ledger gets a private temporary directory."""
    from ..client.keystore import keystore_path_for

    url = getattr(store, "url", ":memory:")
    if url == ":memory:" and not os.environ.get("TENGE_KEYSTORE"):
        cached = getattr(store, "_tenge_privacy_dir", None)
        if cached is None:
            cached = tempfile.mkdtemp(prefix="tenge-keys-")
            with contextlib.suppress(AttributeError):  # a store with slots keeps no cache
                store._tenge_privacy_dir = cached  # type: ignore[attr-defined]
        return Path(cached)
    return keystore_path_for(url)


def ensure_keys(store: Store, keystore_dir: str | os.PathLike | None = None) -> dict:
    """The ledger's public privacy halves; creates every role's keys (kept client-side, files 0600) the first
    time, and records the public halves in the ledger settings."""
    meta = store.meta()
    public = meta.settings.get("privacy_public")
    if public:
        return public
    target = Path(keystore_dir) if keystore_dir is not None else keystore_dir_for(store)
    public = provision(target)
    setter = getattr(store, "set_setting", None)
    if setter is None:  # pragma: no cover - every store has it
        raise LedgerStateError("this store cannot record the privacy keys' public halves")
    setter("privacy_public", public)
    return public


def setup_mode(ledger, keystore=None) -> dict:
    """Called by `tenge init` right after the ledger is created: make every role's key material."""
    directory = getattr(keystore, "path", keystore)
    public = ensure_keys(ledger.store, directory)
    ledger.meta = ledger.store.meta()
    sink = sink_for(ledger.meta, ledger.store, directory)
    if sink is not None:
        ledger.trace = sink
    return public


def account_bank_lookup(store: Store):
    def lookup(handle: str) -> str | None:
        from .modes.base import MISSING

        getter = getattr(store, "account", None)
        account = getter(handle) if getter else None
        return account.bank if account is not None else MISSING

    return lookup


def payments_since(store: Store):
    """handle, since -> its applied outgoing transfers and holds since then, oldest first (the tiered budget)."""

    def history(handle: str, since: int) -> list[tuple[int, int]]:
        rows = store.history(handle, 10_000)
        out = [
            (p.at, -p.amount_tiyn)
            for op, p in rows
            if p.at >= since and p.amount_tiyn < 0 and op.kind in ("transfer", "hold")
        ]
        return sorted(out)

    return history


def make_context(store: Store, meta: LedgerMeta, keystore_dir: str | os.PathLike | None = None):
    from .modes.base import SinkContext

    public = ensure_keys(store, keystore_dir)
    directory = Path(keystore_dir) if keystore_dir is not None else keystore_dir_for(store)
    return SinkContext(
        ring=KeyRing(directory),
        public=public,
        central_bank=meta.central_bank,
        account_bank=account_bank_lookup(store),
        settings=meta.settings,
    )


def sink_for(
    meta: LedgerMeta, store: Store, keystore_dir: str | os.PathLike | None = None
) -> TraceSink | None:
    """The trace sink of the ledger's privacy mode."""
    mode = normalize(meta.privacy_mode)
    module = mode_module(mode)
    if mode == "transparent":  # keeps everything in clear: needs no keys (checkpoints make theirs on demand)
        return module.Sink(None)
    ctx = make_context(store, store.meta(), keystore_dir)
    if mode == "tiered":
        return module.Sink(ctx, history=payments_since(store))
    return module.Sink(ctx)


__all__ = ["MODES", "check_mode", "normalize", "sink_for", "setup_mode", "ensure_keys", "mode_module"]
