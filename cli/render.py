"""Records as JSON and text for people."""

from __future__ import annotations

from tenge_ledger.core.canonical import UNTAGGED, format_time
from tenge_ledger.core.money import format_tiyn
from tenge_ledger.core.records import Account


def account_json(a: Account) -> dict:
    return {
        "handle": a.handle,
        "kind": a.kind.value,
        "tier": a.tier,
        "bank": a.bank,
        "attrs": dict(a.attrs),
        "status": a.status.value,
        "public_key": a.public_key,
        "opened_at": format_time(a.opened_at),
    }


def tag_name(tag: str) -> str:
    return tag or UNTAGGED


def kzt(tiyn: int) -> str:
    return f"{format_tiyn(tiyn)} KZT"
