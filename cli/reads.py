"""Reading the ledger: balance, supply, history, operation, reports, check."""

from __future__ import annotations

import json

import click

from tenge_ledger.core.canonical import check_handle, check_op_id, format_time
from tenge_ledger.core.errors import InputError, TengeError, quoted
from tenge_ledger.ledger.journal import check_journal

from .context import Context, emit, pass_ledger
from .render import kzt, tag_name


@click.command()
@click.argument("handle")
@pass_ledger
def balance(obj: Context, handle) -> None:
    """An account's balance, in total and by tag (earmark).

    \b
    Example:
      tenge --json balance aigerim
    """
    check_handle(handle, "HANDLE")
    store = obj.ledger().store
    if store.account(handle) is None:
        raise InputError(f"no account {handle!r}")
    by_tag = {tag_name(t): b for (_, t), b in store.balances(handle).items()}
    total = sum(by_tag.values())
    data = {"account": handle, "balance_tiyn": total, "by_tag": by_tag}
    lines = [f"{handle}: {kzt(total)}"] + [f"  {t:<28} {kzt(b)}" for t, b in sorted(by_tag.items())]
    emit(obj, data, "\n".join(lines))


@click.command()
@pass_ledger
def supply(obj: Context) -> None:
    """Money issued, redeemed (including expired) and in circulation.

    \b
    Example:
      tenge --json supply
    """
    ledger = obj.ledger()
    issued, redeemed = ledger.store.supply()
    held = -sum(b for (a, _), b in ledger.store.balances(ledger.central_bank).items())
    data = {"issued_tiyn": issued, "redeemed_tiyn": redeemed, "circulating_tiyn": issued - redeemed}
    if held != issued - redeemed:  # the two are kept apart on purpose: each checks the other
        raise TengeError(
            f"supply counters disagree with the central bank's balance ({held}): run 'tenge check'"
        )
    emit(
        obj,
        data,
        f"issued      {kzt(issued)}\nredeemed    {kzt(redeemed)}\ncirculating {kzt(issued - redeemed)}",
    )


@click.command()
@click.argument("handle")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@pass_ledger
def history(obj: Context, handle, limit) -> None:
    """An account's postings, newest first.

    \b
    Example:
      tenge history aigerim --limit 20
    """
    check_handle(handle, "HANDLE")
    store = obj.ledger().store
    if store.account(handle) is None:
        raise InputError(f"no account {handle!r}")
    rows = []
    for op, p in store.history(handle, limit):
        rows.append(
            {"seq": op.seq, "op_id": op.op_id, "kind": op.kind, "at": format_time(op.at),
             "amount_tiyn": p.amount_tiyn, "tag": tag_name(p.tag), "message": op.message}
        )  # fmt: skip
    emit(
        obj,
        rows,
        lambda: (
            "\n".join(
                f"#{r['seq']:<6} {r['at']} {r['kind']:<9} {kzt(r['amount_tiyn']):>22} {r['tag']:<20} {r['message']}"
                for r in rows
            )
            or f"{handle} has no postings yet"
        ),
    )


@click.command("operation")
@click.argument("op_id")
@pass_ledger
def operation(obj: Context, op_id) -> None:
    """Show one applied operation, by its id or by its journal number (#SEQ, as every command prints it):
    its signed document, journal entry and decision.

    Journal numbers count applied operations only; the trace log (`tenge trace view`) numbers its own records,
    which also hold rejected operations, reports and accesses, so the two differ for the same operation.

    \b
    Example:
      tenge operation 7f3c0d
      tenge operation '#7'
    """
    store = obj.ledger().store
    op = find_operation(store, op_id)
    if op is None:
        raise InputError(f"no applied operation {quoted(op_id)}")
    data = {
        "seq": op.seq, "id": op.op_id, "kind": op.kind, "signer": op.signer, "at": format_time(op.at),
        "message": op.message, "document": json.loads(op.document), "decision": json.loads(op.decision),
        "entry_hash": op.entry_hash.hex(), "prev_hash": op.prev_hash.hex(),
    }  # fmt: skip

    def text() -> str:
        decision = data["decision"]
        lines = [
            f"#{op.seq} {op.kind} {op.op_id} signed by {op.signer} at {data['at']}",
            f"  {op.message}",
            f"  policy set: {decision.get('policy_set_id') or 'none (built-in checks only)'}",
        ]
        if decision.get("rules"):
            lines.append(f"  decided by: {', '.join(decision['rules'])}")
        lines.append(f"  entry hash {data['entry_hash']} (after {data['prev_hash'][:16]}...)")
        lines.append(f"  document: {json.dumps(data['document'], ensure_ascii=False, sort_keys=True)}")
        return "\n".join(lines)

    emit(obj, data, text)


def find_operation(store, text: str):
    """The applied operation named by its id or by its journal number `#N` (None when there is none)."""
    if not text.startswith("#"):
        return store.operation(check_op_id(text, "OP_ID"))
    if not text[1:].isdigit() or len(text) > 20:
        raise InputError(f"{quoted(text)} is not a journal number: write #7, as commands print it", "OP_ID")
    seq = int(text[1:])
    if seq < 1:
        return None
    found = next(iter(store.journal(after_seq=seq - 1)), None)
    return found[0] if found is not None and found[0].seq == seq else None


@click.command()
@click.option("--agency", help="Only reports for this agency (e.g. fma).")
@pass_ledger
def reports(obj: Context, agency) -> None:
    """Reports filed by policy rules (e.g. for the financial monitoring agency).

    \b
    Example:
      tenge reports --agency fma
    """
    rows = [
        {"seq": r.seq, "op_id": r.op_id, "agency": r.agency, "reason": r.reason, "rule": r.rule,
         "at": format_time(r.at)}
        for r in obj.ledger().store.reports(agency)
    ]  # fmt: skip
    emit(
        obj,
        rows,
        lambda: (
            "\n".join(
                f"{r['at']} {r['agency']:<6} {r['op_id']:<34} {r['reason']} [{r['rule']}]" for r in rows
            )
            or "no reports"
        ),
    )


@click.command()
@pass_ledger
def check(obj: Context) -> None:
    """Rebuild every balance from the journal and compare; verify the hash chain and the supply.

    \b
    Example:
      tenge check
    """
    result = check_journal(obj.ledger().store)
    emit(
        obj,
        {"ok": result.ok, "entries": result.entries, "problems": result.problems},
        lambda: (
            f"ok: {result.entries} journal entries, balances rebuilt and equal, chain verified"
            if result.ok
            else "\n".join(result.problems)
        ),
    )
    if not result.ok:
        raise TengeError(f"{len(result.problems)} problems found in {obj.db}")
