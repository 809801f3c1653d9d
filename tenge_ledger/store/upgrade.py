"""Schema version 2, the compact journal, made from the rows of version 1: shared by both SQL stores.

Version 1 kept each operation's signed document, message and decision as text, and every posting as a row with
a covering index. Version 2 keeps one compact row per operation (store/entries.py); this module turns the old
rows into the new ones and refuses to go on if any signed document would not come back byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..core.canonical import document_json
from ..core.errors import StoreError
from ..core.records import HOLDS_ACCOUNT, OpenAccount
from .entries import (
    FLAG_LEGS,
    UNTAGGED_ID,
    add_flow,
    journal_row,
    operation_from_document,
    standard_legs,
)

CENTRAL_BANK_ID = 1  # the genesis opens the central bank first: the only account whose buckets go negative


@dataclass
class Converted:
    accounts: list[tuple] = field(
        default_factory=list
    )  # (id, handle, kind, public_key, tier, bank, attrs, ...)
    tag_names: list[tuple[int, str]] = field(default_factory=list)
    journal: list[tuple] = field(default_factory=list)
    legs: list[tuple] = field(default_factory=list)
    balances: list[tuple] = field(
        default_factory=list
    )  # (account, tag, balance, out, out_n, in, in_n, minute)
    activity: list[tuple] = field(default_factory=list)


def plain_decision(text: str | None) -> bool:
    """A stored decision of version 1 that says nothing beyond the policy set id: version 2 keeps none."""
    if not text:
        return True
    d = json.loads(text)
    return not (d.get("rules") or d.get("reasons") or d.get("reports") or d.get("detail"))


def policy_version(history: list[dict], set_id: str | None, at: int) -> int | None:
    """The version of the policy set `set_id` that was enabled at ledger time `at`, from the policy history."""
    if not set_id:
        return None
    enabled = [h for h in history if h.get("action") == "enable" and h.get("id") == set_id]
    before = [h for h in enabled if h.get("at", 0) <= at]
    chosen = (before or enabled)[-1:]
    return chosen[0].get("version") if chosen else None


def convert(
    central_bank: str,
    account_rows: Iterable[tuple],
    operation_rows: Iterable[tuple],
    posting_rows: Iterable[tuple],
    balance_rows: Iterable[tuple],
    settings: dict | None = None,
) -> Converted:
    """Version 1 rows (accounts in ACCOUNT_COLUMNS order; operations as seq, op_id, document, at, decision,
    entry_hash; postings as seq, account, tag, amount, at ordered by seq, idx; balances as account, tag,
    balance) -> version 2 rows."""
    out = Converted()
    postings: dict[int, list[tuple[str, int, str]]] = {}
    for seq, account, tag, amount, _ in posting_rows:
        postings.setdefault(seq, []).append((account, amount, tag))
    operations = [(seq, op_id, operation_from_document(json.loads(doc)), doc, at, decision, link)
                  for seq, op_id, doc, at, decision, link in operation_rows]  # fmt: skip
    ids: dict[str, int] = {}
    for _, _, op, *_ in operations:
        if isinstance(op.body, OpenAccount) and op.body.handle not in ids:
            ids[op.body.handle] = len(ids) + 1
    if operations and ids.get(central_bank) != CENTRAL_BANK_ID:
        raise StoreError("cannot upgrade: the journal does not open the central bank first")
    tags: dict[str, int] = {"": UNTAGGED_ID}
    history = list((settings or {}).get("policy_history") or [])

    def tag_id(tag: str) -> int:
        if tag not in tags:
            tags[tag] = len(tags)
        return tags[tag]

    accounts = {row[0]: row for row in account_rows}
    missing = sorted(set(accounts) - set(ids))
    if missing:
        raise StoreError(f"cannot upgrade: account {missing[0]} was not opened by a journaled operation")
    out.accounts = [(ids[handle], *accounts[handle]) for handle in sorted(ids, key=ids.get)]
    flows: dict[tuple[int, int], list[int]] = {}  # out, out_n, in, in_n, minute
    for seq, op_id, op, doc, at, decision, link in operations:
        if document_json(op) != doc:
            raise StoreError(
                f"cannot upgrade: the document of #{seq} ({op_id}) would not be kept byte for byte"
            )
        body = op.body
        payer, payee = getattr(body, "payer", None), getattr(body, "payee", None)
        amount, tag = getattr(body, "amount_tiyn", None), getattr(body, "tag", None)
        legs = postings.get(seq, [])
        implied = standard_legs(op.kind, payer, payee, amount, tag or "", central_bank, HOLDS_ACCOUNT)
        flags = 0 if list(implied) == legs else FLAG_LEGS
        if flags:
            out.legs.extend((seq, i, ids[a], tag_id(t), amount_) for i, (a, amount_, t) in enumerate(legs))
        kept = None if plain_decision(decision) else decision
        version = policy_version(history, json.loads(decision).get("policy_set_id") if decision else None, at)
        out.journal.append(
            journal_row(seq, op, at, bytes(link), flags, kept, version, ids.__getitem__, tag_id)
        )
        minute = at // 60
        for account, amount_, tag_ in legs:
            key = (ids[account], tag_id(tag_))
            snapshot = add_flow(flows, key, amount_, minute)
            if snapshot is not None:
                out.activity.append((*key, minute, *snapshot))
    for account, tag, balance in balance_rows:
        key = (ids[account], tag_id(tag))
        flow = flows.get(key, [0, 0, 0, 0, -1])
        out.balances.append((*key, balance, *flow))
    out.tag_names = sorted((i, t) for t, i in tags.items())
    return out
