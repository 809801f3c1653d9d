"""The journal's chain link: what each entry's hash covers.

Each applied operation is one journal entry; its link covers the previous entry's link, its sequence number, its
ledger time, the hash of its signed fields, its signature, its postings and (version 2) the ledger's stored
decision and the policy set's version. Here, below the ledger and the store, because both make links: the ledger
as it applies, and a SQLite store's writer for the plain transfers a committer hands it unlinked
(store/sqlite.py, `ChangeSet.links_deferred`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

_DOMAIN = b"tenge-ledger/journal/v1\n"
_DOMAIN_V2 = b"tenge-ledger/journal/v2\n"


def entry_hash_of_legs(
    prev_hash: bytes,
    seq: int,
    at: int,
    fields_hash: bytes,
    signature: str,
    legs: Iterable[tuple[str, int, str]],
    chained: tuple[str | None, int | None] | None = None,
    tail: bytes | None = None,
) -> bytes:
    """`entry_hash` over postings given as (account, amount, tag): what the apply loop has without objects.
    `tail`: `chain_tail(*chained)` made already (the ledger keeps the tails of the decisions it repeats)."""
    parts = [
        _DOMAIN if chained is None else _DOMAIN_V2,
        prev_hash,
        seq.to_bytes(8, "big"),
        at.to_bytes(8, "big", signed=True),
        fields_hash,
        signature.encode("ascii"),
        # UTF-8 of a concatenation is the concatenation of the parts' UTF-8: one encode for every leg
        "".join([f"{account}\0{tag}\0{amount}\n" for account, amount, tag in legs]).encode(),
    ]
    if chained is not None:
        parts.append(chain_tail(*chained) if tail is None else tail)
    return hashlib.sha256(b"".join(parts)).digest()


def two_leg_suffix(
    seq: int, at: int, fields_hash: bytes, signature: str, payer: str, payee: str, amount: int, tag: str,
    chain_tail: bytes,
) -> bytes:  # fmt: skip
    """An entry's own part of its link: what `entry_hash_of_legs` hashes after the previous link for a two-leg
    move (payer -amount, payee +amount, one tag) whose chained decision and policy `chain_tail` encoded once.
    A process that does not know the previous link yet can make it, and the one that does (the applying loop,
    or a committer's store for the rows a ledger hands it unlinked) needs only `link_on`."""
    return b"".join(
        (
            seq.to_bytes(8, "big"),
            at.to_bytes(8, "big", signed=True),
            fields_hash,
            signature.encode("ascii"),
            f"{payer}\0{tag}\0{-amount}\n{payee}\0{tag}\0{amount}\n".encode(),
            chain_tail,
        )
    )


def link_on(prev_hash: bytes, suffix: bytes) -> bytes:
    """The link of a version-2 entry whose own part is `suffix` (`two_leg_suffix`), after `prev_hash`."""
    return hashlib.sha256(_DOMAIN_V2 + prev_hash + suffix).digest()


def chain_tail(decision: str | None, policy: int | None) -> bytes:
    """The last bytes `entry_hash_of_legs` hashes for a chained (decision, policy)."""
    return (
        b"\0decision\0"
        + (b"-" if decision is None else b"+" + decision.encode())
        + b"\0policy\0"
        + (b"-" if policy is None else str(policy).encode())
    )
