"""Privacy modes: what the trace log keeps of each operation, and who can read it afterwards.

The engine sees every operation when it applies it; a mode controls what is *kept* and who may read it later
(role-view privacy with logged access), not anonymity against the operator. See docs/privacy.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nacl.public

from ..core import limits
from ..core.errors import InputError, LedgerStateError
from ..core.hooks import TraceSink
from ..store.base import LedgerMeta, Store
from .keys import KeyPlan, KeyRing, PartyKey, ledger_key_dir, new_party, provision, write_party_file
from .modes import REGISTRY
from .modes.base import Mode
from .threshold import HOLDER_NAME_RE, deal, write_share_file
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
            if not HOLDER_NAME_RE.fullmatch(name):
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
    store: Store,
    keystore_dir: str | os.PathLike | None = None,
    escrow: EscrowPlan | None = None,
    readers: KeyPlan | None = None,
) -> dict:
    """The ledger's public privacy material. The first time: the operator's own keys (its keystore), the escrow
    shares to the holders' files (`escrow`, escrowed mode) and each reading party's key file to the path named for
    it (`readers`: `--key-to central_bank=PATH --key-to fma=PATH`, the modes that seal to them); only the public
    halves are recorded in the ledger settings. A keystore in the old layout (other parties' secrets in it) is
    refused with the command that migrates it."""
    meta = store.meta()
    public = meta.settings.get("privacy_public")
    target = Path(keystore_dir) if keystore_dir is not None else keystore_dir_for(store)
    if public:
        if escrow is not None or readers is not None and readers.paths:
            raise LedgerStateError(
                "this ledger's privacy keys exist already: escrow holders and readers' keys are named at init only"
            )
        KeyRing(target, meta.ledger_id).refuse_old_layout()
        return public
    name = normalize(meta.privacy_mode)
    mode = REGISTRY[name]
    if name == "escrowed" and escrow is None:
        raise InputError(
            "an escrowed ledger needs its escrow holders: --share-to HOLDER=PATH for each (e.g. fma, court, "
            "central_bank) and --threshold K"
        )
    if escrow is not None and name != "escrowed":
        raise InputError("--share-to and --threshold are for --privacy escrowed")
    plan = readers or KeyPlan(())
    for holder, _ in plan.paths:
        if holder not in mode.readers:
            raise InputError(
                f"this {name} ledger seals nothing to {holder}"
                + (f"; its readers are {', '.join(mode.readers)}" if mode.readers else ""),
                where="--key-to",
            )
    plan.require(
        mode.readers, f"this {name} ledger seals to its readers' public keys; name where each one's key goes"
    )
    setter = getattr(store, "set_setting", None)
    if setter is None:  # pragma: no cover - every store has it
        raise LedgerStateError("this store cannot record the privacy keys' public halves")
    fresh = not ledger_key_dir(target, meta.ledger_id).exists()
    written: list[Path] = []
    try:
        public = provision(target, meta.ledger_id)
        ring = KeyRing(target, meta.ledger_id)
        for holder in mode.readers:
            # the central bank is the bank of accounts no commercial bank serves: it keeps that bank's root too
            root = ring.bank_root(meta.central_bank) if holder == "central_bank" and mode.bank_keys else None
            party = new_party(meta.ledger_id, holder, root)
            path = plan.path(holder)
            assert path is not None
            write_party_file(path, party, target)
            written.append(path)
            public["box_public"][holder] = party.box_public_hex
        if escrow is not None:
            public["escrow"] = _deal_to_files(meta.ledger_id, escrow, target)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        if fresh:  # a failed init leaves no keys of a ledger that has none
            shutil.rmtree(ledger_key_dir(target, meta.ledger_id), ignore_errors=True)
        raise
    setter("privacy_public", public)
    return public


def register_bank_key(
    store: Store, bank: str, path: str | os.PathLike, keystore_dir: str | os.PathLike | None = None
) -> dict:
    """Give a commercial bank its key file (box key and pseudonym root) at `path`, and record the public half: from
    then on what is sealed to the bank is sealed to it. Refused for a bank that has one, or that is no bank."""
    meta = store.meta()
    public = ensure_keys(store, keystore_dir)
    mode = REGISTRY[normalize(meta.privacy_mode)]
    if not mode.bank_keys:
        raise InputError(
            f"this {normalize(meta.privacy_mode)} ledger seals nothing to banks: no bank key to make"
        )
    found = store.account(bank)  # type: ignore[attr-defined]
    if found is None or found.kind.value != "bank":
        raise InputError(f"{bank!r} is not a bank of this ledger")
    if f"bank:{bank}" in public.get("box_public", {}):
        raise InputError(f"{bank} has a key already: refusing to make another")
    target = Path(keystore_dir) if keystore_dir is not None else keystore_dir_for(store)
    ring = KeyRing(target, meta.ledger_id)
    party = new_party(meta.ledger_id, f"bank:{bank}", ring.bank_root(bank))
    write_party_file(path, party, target)
    public = json.loads(json.dumps(public))
    public["box_public"][f"bank:{bank}"] = party.box_public_hex
    store.set_setting("privacy_public", public)  # type: ignore[attr-defined]
    return {"bank": bank, "box_public": party.box_public_hex, "written": str(path)}


def migrate_keys(store: Store, plan: KeyPlan, keystore_dir: str | os.PathLike | None = None) -> dict:
    """Move every other party's secret out of the operator's keystore (the old layout) into the file named for it:
    each keeps the same key, so every record sealed before opens with the new file. A bank's pseudonym root stays
    with the operator too (it computes pseudonyms). Refused, changing nothing, unless every holder is named."""
    meta = store.meta()
    target = Path(keystore_dir) if keystore_dir is not None else keystore_dir_for(store)
    ring = KeyRing(target, meta.ledger_id)
    found = ring.foreign_secrets()
    if not found:
        raise InputError(f"{ring.root} holds no other party's secret: nothing to migrate")
    named = {h for h, _ in plan.paths}
    missing = sorted(set(found) - named)
    if missing:
        raise InputError(
            "name a file for each: " + " ".join(f"--key-to {h}=PATH" for h in missing), where="--key-to"
        )
    extra = sorted(named - set(found))
    if extra:
        raise InputError(f"the keystore holds no secret of {', '.join(extra)}", where="--key-to")
    public = json.loads(json.dumps(meta.settings.get("privacy_public") or {}))
    written: list[Path] = []
    try:
        for holder, data in sorted(found.items()):
            box = data.get("box_key")
            root = data.get("pseudonym_root")
            party = PartyKey(
                meta.ledger_id, holder, nacl.public.PrivateKey(bytes.fromhex(box)) if box else None,
                bytes.fromhex(root) if root else None,
                bytes.fromhex(data["viewing_key"]) if data.get("viewing_key") else None,
            )  # fmt: skip
            path = plan.path(holder)
            assert path is not None
            write_party_file(path, party, target)
            written.append(path)
            if party.box_key is not None:
                public.setdefault("box_public", {})[holder] = party.box_public_hex
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    for holder, data in found.items():
        if (
            holder.startswith("bank:")
            and data.get("pseudonym_root")
            and not ring.exists(f"pseudonyms:{holder[5:]}")
        ):
            ring.write(f"pseudonyms:{holder[5:]}", {"pseudonym_root": data["pseudonym_root"]})
    store.set_setting("privacy_public", public)  # type: ignore[attr-defined]
    for path in ring.files():
        try:
            holder = json.loads(path.read_text()).get("holder", path.stem)
        except ValueError:
            continue
        if holder in found:
            path.unlink()
    return {"moved": {h: str(plan.path(h)) for h in sorted(found)}}


def setup_mode(
    ledger, keystore=None, escrow: EscrowPlan | None = None, readers: KeyPlan | None = None
) -> dict:
    """Called by `tenge init` right after the ledger is created: make every role's key material."""
    directory = getattr(keystore, "path", keystore)
    public = ensure_keys(ledger.store, directory, escrow, readers)
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
    """handle -> the X25519 public key its selective records seal to: the viewing key the account registered, else
    the X25519 form of its own Ed25519 key ("" when that is no valid key); None when the store has no such account
    yet (opened in the chunk being applied)."""
    from .keys import VIEWING_ATTR, signing_box_public_hex

    def lookup(handle: str) -> str | None:
        getter = getattr(store, "account", None)
        account = getter(handle) if getter else None
        if account is None:
            return None
        return dict(account.attrs).get(VIEWING_ATTR) or signing_box_public_hex(account.public_key) or ""

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
        public_now=lambda: store.meta().settings.get("privacy_public") or public,
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
    "register_bank_key",
    "migrate_keys",
    "KeyPlan",
    "ring_for",
]
