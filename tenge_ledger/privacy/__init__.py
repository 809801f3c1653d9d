"""Privacy modes: what the trace log keeps of each operation, and who can read it afterwards.

The engine sees every operation when it applies it; a mode controls what is *kept* and who may read it later
(role-view privacy with logged access), not anonymity against the operator. See docs/privacy.md.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..core import limits
from ..core.errors import InputError, LedgerStateError
from ..core.hooks import TraceSink
from ..store.base import LedgerMeta, Store
from .keys import KeyRing, ledger_key_dir, provision
from .modes import REGISTRY
from .modes.base import Mode
from .threshold import deal, write_share_file
from .visibility import MODES

if set(REGISTRY) != set(MODES):  # the registry and the visibility table name the same modes
    raise ImportError(f"privacy modes {sorted(REGISTRY)} and visibility table {sorted(MODES)} differ")


def normalize(mode: str) -> str:
    """The canonical name of a mode (`payee_transparent` is accepted for `payee-transparent`)."""
    name = (mode or "").strip().lower().replace("_", "-")
    if name not in REGISTRY:
        raise InputError(f"unknown privacy mode {mode!r}; known: {', '.join(MODES)}")
    return name


def check_mode(mode: str) -> str:
    return normalize(mode)


def mode_of(mode: str) -> Mode:
    """The `Mode` record of a mode name."""
    return REGISTRY[normalize(mode)]


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


_HOLDER_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True, slots=True)
class EscrowPlan:
    """Who holds the escrow shares of an `escrowed` ledger, where each holder's file is written, and how many
    holders must take part in an opening."""

    holders: tuple[tuple[str, Path], ...]
    threshold: int

    @classmethod
    def parse(cls, share_to: tuple[str, ...] | list[str], threshold: int | None) -> EscrowPlan:
        """From `--share-to HOLDER=PATH` (repeated) and `--threshold K` (default: a majority)."""
        holders: list[tuple[str, Path]] = []
        for item in share_to:
            name, sep, path = item.partition("=")
            if not sep or not path:
                raise InputError(f"{item!r} is not HOLDER=PATH", where="--share-to")
            if not _HOLDER_RE.fullmatch(name):
                raise InputError(
                    f"{name!r} is not a holder name (a-z, digits, '_'; at most 32)", where="--share-to"
                )
            holders.append((name, Path(path)))
        names = [n for n, _ in holders]
        if len(set(names)) != len(names):
            raise InputError("each holder may be named once", where="--share-to")
        if len({p.resolve() for _, p in holders}) != len(holders):
            raise InputError("each holder needs a file of its own", where="--share-to")
        if not 1 <= len(holders) <= limits.escrow_holders_max:
            raise InputError(f"name 1 to {limits.escrow_holders_max} escrow holders", where="--share-to")
        k = len(holders) // 2 + 1 if threshold is None else threshold
        if not 1 <= k <= len(holders):
            raise InputError(
                f"a threshold of {k} out of {len(holders)} holders is impossible", where="--threshold"
            )
        return cls(tuple(holders), k)


def _deal_to_files(ledger_id: str, plan: EscrowPlan, keystore_dir: Path) -> dict:
    """Deal the escrow and write each holder's share to its own file (never into the operator's keystore);
    returns the public material. If one file cannot be written, the ones already written are removed."""
    keystore = keystore_dir.resolve()
    for name, path in plan.holders:
        if path.resolve().is_relative_to(keystore):
            raise InputError(
                f"{name}'s share may not go into the operator's keystore {keystore_dir}", where=str(path)
            )
    public, shares = deal(ledger_id, [n for n, _ in plan.holders], plan.threshold)
    written: list[Path] = []
    try:
        for share, (_, path) in zip(shares, plan.holders, strict=True):
            write_share_file(path, share)
            written.append(path)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    finally:
        shares.clear()
    return public.to_json()


def ensure_keys(
    store: Store, keystore_dir: str | os.PathLike | None = None, escrow: EscrowPlan | None = None
) -> dict:
    """The ledger's public privacy material; creates every role's keys (kept client-side, files 0600, in the
    ledger's own directory) the first time, and records the public halves in the ledger settings. An `escrowed`
    ledger needs its escrow plan the first time: the shares go to the holders' files."""
    meta = store.meta()
    public = meta.settings.get("privacy_public")
    if public:
        if escrow is not None:
            raise LedgerStateError(
                "this ledger's privacy keys exist already: escrow holders are named at init only"
            )
        return public
    escrowed = normalize(meta.privacy_mode) == "escrowed"
    if escrowed and escrow is None:
        raise InputError(
            "an escrowed ledger needs its escrow holders: --share-to HOLDER=PATH for each (e.g. fma, court, "
            "central_bank) and --threshold K"
        )
    if escrow is not None and not escrowed:
        raise InputError("--share-to and --threshold are for --privacy escrowed")
    target = Path(keystore_dir) if keystore_dir is not None else keystore_dir_for(store)
    setter = getattr(store, "set_setting", None)
    if setter is None:  # pragma: no cover - every store has it
        raise LedgerStateError("this store cannot record the privacy keys' public halves")
    fresh = not ledger_key_dir(target, meta.ledger_id).exists()
    try:
        public = provision(target, meta.ledger_id)
        if escrow is not None:
            public["escrow"] = _deal_to_files(meta.ledger_id, escrow, target)
    except BaseException:
        if fresh:  # a failed init leaves no keys of a ledger that has none
            shutil.rmtree(ledger_key_dir(target, meta.ledger_id), ignore_errors=True)
        raise
    setter("privacy_public", public)
    return public


def setup_mode(ledger, keystore=None, escrow: EscrowPlan | None = None) -> dict:
    """Called by `tenge init` right after the ledger is created: make every role's key material."""
    directory = getattr(keystore, "path", keystore)
    public = ensure_keys(ledger.store, directory, escrow)
    ledger.meta = ledger.store.meta()
    sink = sink_for(ledger.meta, ledger.store, directory)
    if sink is not None:
        ledger.trace = sink
    return public


def ring_for(store: Store, keystore_dir: str | os.PathLike | None = None) -> KeyRing:
    """The operator's key ring of this ledger (`<keystore>/privacy/<ledger id>/`)."""
    directory = Path(keystore_dir) if keystore_dir is not None else keystore_dir_for(store)
    return KeyRing(directory, store.meta().ledger_id)


def account_bank_lookup(store: Store):
    def lookup(handle: str) -> str | None:
        from .modes.base import MISSING

        getter = getattr(store, "account", None)
        account = getter(handle) if getter else None
        return account.bank if account is not None else MISSING

    return lookup


def viewing_public_lookup(store: Store):
    """handle -> the viewing key the account registered ("" when none), or None when the store has no such
    account yet (opened in the chunk being applied)."""
    from .keys import VIEWING_ATTR

    def lookup(handle: str) -> str | None:
        getter = getattr(store, "account", None)
        account = getter(handle) if getter else None
        if account is None:
            return None
        return dict(account.attrs).get(VIEWING_ATTR, "")

    return lookup


def make_context(store: Store, meta: LedgerMeta, keystore_dir: str | os.PathLike | None = None):
    from .modes.base import SinkContext

    public = ensure_keys(store, keystore_dir)
    return SinkContext(
        ring=ring_for(store, keystore_dir),
        public=public,
        ledger_id=meta.ledger_id,
        central_bank=meta.central_bank,
        account_bank=account_bank_lookup(store),
        viewing_public=viewing_public_lookup(store),
        settings=meta.settings,
    )


def sink_for(
    meta: LedgerMeta, store: Store, keystore_dir: str | os.PathLike | None = None
) -> TraceSink | None:
    """The trace sink of the ledger's privacy mode."""
    mode = mode_of(meta.privacy_mode)
    if not mode.needs_keys:  # transparent keeps everything in clear (checkpoints make their key on demand)
        return mode.make_sink(None, store)
    return mode.make_sink(make_context(store, store.meta(), keystore_dir), store)


__all__ = [
    "MODES",
    "REGISTRY",
    "mode_of",
    "EscrowPlan",
    "check_mode",
    "normalize",
    "sink_for",
    "setup_mode",
    "ensure_keys",
    "ring_for",
]
