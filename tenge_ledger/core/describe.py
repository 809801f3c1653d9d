"""What an applied operation did, in one sentence, made from the operation and its postings.

The journal keeps no message text: a message is derived when it is shown, so it can never disagree with what
was applied."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from .money import format_tiyn
from .records import (
    HOLDS_ACCOUNT,
    AddWitness,
    Batch,
    Close,
    Freeze,
    Hold,
    Issue,
    OpenAccount,
    Operation,
    Post,
    Redeem,
    Seize,
    Sweep,
    Transfer,
    Unfreeze,
    UpdateAccount,
    Void,
)


def duration(seconds: int) -> str:
    """`2592000` -> `30 days`, `5400` -> `1 h 30 min`, `45` -> `45 s`."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}" if days else "", f"{hours} h" if hours else "",
             f"{minutes} min" if minutes else "", f"{secs} s" if secs else ""]  # fmt: skip
    return " ".join(p for p in parts if p) or "0 s"


def tag_text(tag: str | None) -> str:
    return f" [{tag}]" if tag else ""


def describe(op: Operation, postings: Sequence[tuple[str, int, str]], central_bank: str) -> str:
    """One sentence for an applied operation; `postings` are its (account, amount, tag) legs as journaled."""
    b = op.body
    if isinstance(b, OpenAccount):
        if op.id.startswith("genesis:"):
            return "genesis: account opened"
        return f"opened {b.account_kind.value} account {b.handle}"
    if isinstance(b, UpdateAccount):
        return f"updated account {b.handle}"
    if isinstance(b, Issue):
        return f"issued {format_tiyn(b.amount_tiyn)} KZT{tag_text(b.tag)} to {b.payee}"
    if isinstance(b, Redeem):
        return f"redeemed {format_tiyn(b.amount_tiyn)} KZT{tag_text(b.tag)} from {b.payer}"
    if isinstance(b, Transfer | Hold):
        text = f"{format_tiyn(b.amount_tiyn)} KZT{tag_text(b.tag)} from {b.payer} to {b.payee}"
        if isinstance(b, Hold):  # as the ledger answered it (service._timeout_text)
            then = "posted to the payee" if b.on_timeout == "post" else "returned to the payer"
            return (
                f"held {text} until posted by {b.releaser or b.payer} "
                f"(times out in {duration(b.timeout_s)}, then {then})"
            )
        if any(account == HOLDS_ACCOUNT for account, _, _ in postings):
            return f"held {text} (a policy rule made it a hold)"
        return f"transferred {text}"
    if isinstance(b, Post):
        credits = [(a, amount) for a, amount, _ in postings if amount > 0]
        posted = credits[0][1] if credits else 0
        text = f"posted {format_tiyn(posted)} KZT of hold {b.hold_id}" + (
            f" to {credits[0][0]}" if credits else ""
        )
        if len(credits) > 1:
            text += f", {format_tiyn(credits[1][1])} KZT back to {credits[1][0]}"
        return text
    if isinstance(b, Void):
        back = [(a, amount) for a, amount, _ in postings if amount > 0]
        who, amount = back[0] if back else ("", 0)
        return f"voided hold {b.hold_id}: {format_tiyn(amount)} KZT back to {who}"
    if isinstance(b, Sweep):
        holds = sum(1 for a, amount, _ in postings if a == HOLDS_ACCOUNT and amount < 0)
        returned = [(amount, tag) for a, amount, tag in postings if a == central_bank and amount > 0]
        as_of = dt.datetime.fromtimestamp(b.as_of, tz=dt.UTC).date().isoformat()
        return (
            f"sweep as of {as_of}: {holds} holds timed out, {format_tiyn(sum(a for a, _ in returned))} KZT of "
            f"{len({t for _, t in returned})} expired tags returned to {central_bank}"
        )
    if isinstance(b, Freeze | Unfreeze):
        status = "frozen" if isinstance(b, Freeze) else "active"
        return f"account {b.account} is {status}" + (f": {b.reason}" if b.reason else "")
    if isinstance(b, Close):
        return f"account {b.account} is closed"
    if isinstance(b, Seize):
        return f"seized {format_tiyn(b.amount_tiyn)} KZT{tag_text(b.tag)} from {b.payer} to {b.payee}" + (
            f" under order {b.order}" if b.order else ""
        )
    if isinstance(b, Batch):
        return f"batch of {len(b.operations)} operations applied"
    if isinstance(b, AddWitness):
        return f"registered witness {b.name}"
    raise TypeError(f"no description for {type(b).__name__}")  # pragma: no cover - every kind is above
