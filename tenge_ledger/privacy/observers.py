"""Observers: a role with only the keys that role holds in a mode, reading the stored trace.

`keys_for(role, ring, store)` builds what the role holds; the metrics run over the views it gets, so every
figure of the matrix comes from decoding stored records, never from the ground truth (which is used only to
score them).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..core.errors import InputError
from ..store.base import Store
from .keys import KeyRing, viewing_secret
from .modes.base import ObserverKeys

BASE_ROLES = ("central_bank", "fma", "public")


def parse_role(role: str) -> tuple[str, str | None]:
    """`central_bank`, `fma`, `public`, `bank:HANDLE`, `account:HANDLE`."""
    if role in BASE_ROLES:
        return role, None
    kind, _, handle = role.partition(":")
    if kind in ("bank", "account") and handle:
        return kind, handle
    raise InputError(f"unknown role {role!r}; roles: central_bank, fma, public, bank:HANDLE, account:HANDLE")


def keys_for(
    role: str,
    ring: KeyRing | None,
    store: Store,
    epoch_s: int,
    viewing: Iterable[str] = (),
    keystore=None,
) -> ObserverKeys:
    """The keys `role` holds. The central bank is also the bank of accounts no commercial bank serves. `keystore`:
    the client keystore an account holder's own keys are in (its viewing key derives from its signing key)."""
    kind, handle = parse_role(role)
    central_bank = store.meta().central_bank
    keys = ObserverKeys(
        role=role if kind in BASE_ROLES else f"{kind}:{handle}",
        epoch_s=epoch_s,
        ledger_id=store.meta().ledger_id,
    )
    if kind == "public":
        return keys
    if kind in ("central_bank", "bank"):
        bank = central_bank if kind == "central_bank" else handle
        served = frozenset(
            a.handle for a in store.accounts() if (a.bank or central_bank) == bank and a.handle != bank
        ) | ({bank} if kind == "central_bank" else frozenset())
        if kind == "bank":
            found = store.account(bank)  # type: ignore[attr-defined]
            if found is None:
                raise InputError(f"no bank {bank!r} in this ledger")
            if found.kind.value != "bank":
                raise InputError(f"{bank} is a {found.kind.value}, not a bank: use account:{bank}")
        keys.customers[bank] = served  # its KYC list
        if ring.exists(f"bank:{bank}"):
            keys.banks[bank] = bytes.fromhex(ring.read(f"bank:{bank}")["pseudonym_root"])
            keys.bank_boxes[bank] = ring.box_key(f"bank:{bank}")
    if ring is None:
        return keys
    if kind in ("central_bank", "fma") and ring.exists(kind):
        keys.boxes[kind] = ring.box_key(kind)
    if kind == "account":
        if store.account(handle) is None:  # type: ignore[attr-defined]
            raise InputError(f"no account {handle!r} in this ledger")
        keys.me = handle
        if keystore is not None and keystore.has(
            handle
        ):  # the holder's own viewing key, from its signing key
            keys.viewing_boxes[handle] = viewing_secret(bytes(keystore.get(handle)))
        if ring.exists(f"account:{handle}"):
            keys.viewing[handle] = bytes.fromhex(ring.read(f"account:{handle}")["viewing_key"])
    for other in viewing:  # viewing keys disclosed to this role
        keys.viewing[other] = bytes.fromhex(ring.read(f"account:{other}")["viewing_key"])
    return keys
