"""Observers: a role with only the keys that role holds in a mode, reading the stored trace.

`keys_for(role, ring, store)` builds what the role holds; the metrics run over the views it gets, so every
figure of the matrix comes from decoding stored records, never from the ground truth (which is used only to
score them).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..core.errors import InputError
from ..store.base import Store
from .keys import KeyRing, PartyKey, signing_box_secret, viewing_secret
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
    keystore=None,
    parties: Sequence[PartyKey] = (),
) -> ObserverKeys:
    """The keys `role` holds: its own key files (`parties`, written at init or at the bank's registration, never
    in the operator's keystore `ring`, which gives a role nothing). The central bank is also the bank of accounts
    no commercial bank serves. `keystore`: the client keystore an account holder's own keys are in (its viewing key
    derives from its signing key). A key file of another holder is refused."""
    kind, handle = parse_role(role)
    meta = store.meta()
    central_bank = meta.central_bank
    keys = ObserverKeys(
        role=role if kind in BASE_ROLES else f"{kind}:{handle}", epoch_s=epoch_s, ledger_id=meta.ledger_id
    )
    own = {"central_bank": ("central_bank", f"bank:{central_bank}"), "fma": ("fma",),
           "bank": (f"bank:{handle}",), "account": (f"account:{handle}",), "public": ()}[kind]  # fmt: skip
    for party in parties:
        if party.ledger_id != meta.ledger_id:
            raise InputError(f"the key of {party.holder} belongs to another ledger ({party.ledger_id})")
        if party.holder not in own:
            raise InputError(f"that key file is {party.holder}'s, not {keys.role}'s", where="--key")
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
        for party in parties:
            if party.pseudonym_root is not None:
                keys.banks[bank] = party.pseudonym_root
            if party.box_key is not None and party.holder.startswith("bank:"):
                keys.bank_boxes[party.holder] = party.box_key
            elif party.box_key is not None:  # the central bank's own key: it is also the bank of last resort
                keys.bank_boxes[bank] = party.box_key
    if kind in ("central_bank", "fma"):
        for party in parties:
            if party.holder == kind and party.box_key is not None:
                keys.boxes[kind] = party.box_key
    if kind == "account":
        account = store.account(handle)  # type: ignore[attr-defined]
        if account is None:
            raise InputError(f"no account {handle!r} in this ledger")
        keys.me = handle
        if keystore is not None and keystore.has(handle):  # the holder's own keys, from its signing key
            seed = keystore.get(handle)
            keys.viewing_boxes[handle] = viewing_secret(bytes(seed))
            keys.signing_boxes[handle] = signing_box_secret(seed)
        for party in parties:  # an operator-kept viewing key of the old layout, moved to the holder's file
            if party.viewing_key is not None:
                keys.viewing[handle] = party.viewing_key
    return keys
