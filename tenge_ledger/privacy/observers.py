"""Observers: a role with only the keys that role holds in a mode, reading the stored trace.

`keys_for(role, ring, store)` builds what the role holds; the metrics run over the views it gets, so every
figure of the matrix comes from decoding stored records, never from the ground truth (which is used only to
score them).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

from ..core.errors import InputError
from ..store.base import Store
from .keys import KeyRing
from .modes.base import ObserverKeys
from .views import RecordView

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
    role: str, ring: KeyRing | None, store: Store, epoch_s: int, viewing: Iterable[str] = ()
) -> ObserverKeys:
    """The keys `role` holds. The central bank is also the bank of accounts no commercial bank serves."""
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
    if ring is None:
        return keys
    if kind in ("central_bank", "fma") and ring.exists(kind):
        keys.boxes[kind] = ring.box_key(kind)
    if kind == "account":
        if store.account(handle) is None:  # type: ignore[attr-defined]
            raise InputError(f"no account {handle!r} in this ledger")
        keys.me = handle
        if ring.exists(f"account:{handle}"):
            keys.viewing[handle] = bytes.fromhex(ring.read(f"account:{handle}")["viewing_key"])
    for other in viewing:  # viewing keys disclosed to this role
        keys.viewing[other] = bytes.fromhex(ring.read(f"account:{other}")["viewing_key"])
    return keys


# ---- metrics over views ---------------------------------------------------------------------------------------


def payments(views: list[RecordView]) -> list[RecordView]:
    return [v for v in views if v.type == "op" and v.kind in ("transfer", "hold") and v.code == "ok"]


def linkable_pair_share(views: list[RecordView], truth: dict[str, str], field: str = "payer") -> float:
    """Of all pairs of payments by the same payer (or to the same payee), the share this observer can link: both
    fields shown as the same clear value or the same pseudonym (one-time tokens never repeat)."""
    by_payer: dict[str, Counter] = defaultdict(Counter)
    for v in views:
        payer = truth.get(v.op_id)
        if payer is None:
            continue
        f = v.fields[field]
        token = (f.level, f.value) if f.level in ("clear", "pseudonym") else ("unlinkable", v.op_id)
        by_payer[payer][token] += 1
    total = linked = 0
    for counts in by_payer.values():
        n = sum(counts.values())
        total += n * (n - 1) // 2
        linked += sum(c * (c - 1) // 2 for c in counts.values())
    return linked / total if total else 0.0


def amount_share(views: list[RecordView]) -> float:
    if not views:
        return 0.0
    return sum(1 for v in views if v.fields["amount"].level == "clear") / len(views)


def anonymity(views: list[RecordView], truth: dict[str, str]) -> tuple[float, float]:
    """(mean payer anonymity set size, mean entropy in bits) over payments. A payer shown in clear has a set of
    one. Otherwise the candidates are the payers of every payment whose payer this observer cannot read, weighted
    by how often each pays (what an observer who knows activity levels can do); a pseudonym counts as unread."""
    if not views:
        return 0.0, 0.0
    hidden = [truth[v.op_id] for v in views if v.fields["payer"].level != "clear" and v.op_id in truth]
    counts = Counter(hidden)
    total = sum(counts.values())
    size = len(counts)
    entropy = -sum((c / total) * math.log2(c / total) for c in counts.values()) if total else 0.0
    n = len(views)
    shown = n - len(hidden)
    return (shown * 1 + len(hidden) * size) / n, (len(hidden) * entropy) / n


SEALED_FIELDS = ("sealed", "fma_ident", "payer_sealed", "payee_sealed", "rules")


def metadata_leaks(docs: list[dict]) -> dict:
    """What an observer with no key at all reads off the stored payment records' metadata: the share whose rule
    names are in clear (they say what kind of party a payment touches), how many distinct sealed-field lengths
    occur (each distinct length is something a length can tell), and how finely time is kept (the share of
    payments whose ledger time no other payment shares)."""
    payments = [d for d in docs if d.get("kind") in ("transfer", "hold")]
    n = max(1, len(payments))
    clear_rules = sum(
        1 for d in payments if isinstance(d.get("rules", d.get("record", {}).get("rules")), list)
    )
    lengths = {len(d[f]) for d in payments for f in SEALED_FIELDS if isinstance(d.get(f), str)}
    times = Counter(d.get("at") for d in payments)
    return {
        "rule_names_clear": round(clear_rules / n, 4),
        "sealed_length_classes": len(lengths),
        "unique_times": round(sum(1 for d in payments if times[d.get("at")] == 1) / n, 4),
    }
