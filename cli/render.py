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


def plain(value: object) -> str:
    """A value as people read it: `-` for nothing, `none` for an empty collection, `k=v` pairs, list items
    joined; never a Python repr."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}={plain(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return (
            "; ".join(
                " ".join(plain(x) for x in v) if isinstance(v, list | tuple) else plain(v) for v in value
            )
            or "none"
        )
    return str(value)


def fields_text(data: dict) -> str:
    """`key: value` lines; times (`at`, `*_at`, given in unix seconds) in ISO form."""
    lines = []
    for key, value in data.items():
        if (key == "at" or key.endswith("_at")) and type(value) is int:
            value = format_time(value)
        elif key.endswith("_tiyn") and type(value) is int:
            value = f"{value} ({kzt(value)})"
        elif key == "postings" and isinstance(value, list):
            value = "; ".join(_posting(*p) for p in value) or "none"
        lines.append(f"{key}: {plain(value)}")
    return "\n".join(lines)


def _posting(account: str, tag: str, amount_tiyn: int) -> str:
    return f"{account} {format_tiyn(amount_tiyn)} KZT" + (f" [{tag}]" if tag else "")


def tag_name(tag: str) -> str:
    return tag or UNTAGGED


def kzt(tiyn: int) -> str:
    return f"{format_tiyn(tiyn)} KZT"
