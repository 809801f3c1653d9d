"""Reading the ledger: balance, supply, history, operation, reports, check."""

from __future__ import annotations

import json
import os

import click

from tenge_ledger.core.canonical import check_handle, check_op_id, format_time, parse_time
from tenge_ledger.core.errors import InputError, TengeError, quoted
from tenge_ledger.core.text import shown
from tenge_ledger.ledger.journal import check_journal

from .context import Context, emit, pass_ledger, progress_updates
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


history_scan_max = 10_000_000  # postings of one account a filtered history reads at most


@click.command()
@click.argument("handle")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000), help="The newest N.")
@click.option("--since", help="Postings at or after this time (YYYY-MM-DD[THH:MM:SS], UTC).")
@click.option("--until", help="Postings before this time; with --limit, pages back through older postings.")
@click.option("--kind", help="Only operations of this kind (transfer, issue, hold, ...).")
@pass_ledger
def history(obj: Context, handle, limit, since, until, kind) -> None:
    """An account's postings, newest first.

    \b
    Example:
      tenge history aigerim --limit 20
      tenge history aigerim --kind transfer --since 2026-06-01 --until 2026-07-01
    """
    check_handle(handle, "HANDLE")
    start = parse_time(since, "--since") if since else None
    end = parse_time(until, "--until") if until else None
    if kind is not None:
        check_kind(kind)
    store = obj.ledger().store
    if store.account(handle) is None:
        raise InputError(f"no account {handle!r}")
    if start is None and end is None and kind is None:
        found = store.history(handle, limit)
    else:  # the store answers the newest N; filters read the account's postings through
        found = [
            (op, p)
            for op, p in store.history(handle, history_scan_max)
            if (start is None or op.at >= start)
            and (end is None or op.at < end)
            and (kind in (None, op.kind))
        ][:limit]
    rows = []
    for op, p in found:
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
            or (
                f"no postings of {handle} match"
                if found is not None and (since or until or kind)
                else f"{handle} has no postings yet"
            )
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
    signature = _signature_status(store, op)
    data = {
        "seq": op.seq, "id": op.op_id, "kind": op.kind, "signer": op.signer, "at": format_time(op.at),
        "message": op.message, "document": json.loads(op.document), "decision": json.loads(op.decision),
        "entry_hash": op.entry_hash.hex(), "prev_hash": op.prev_hash.hex(), "signature": signature,
    }  # fmt: skip

    def text() -> str:
        decision = data["decision"]
        lines = [
            f"#{op.seq} {op.kind} {op.op_id} by {op.signer} at {data['at']}: {signature}",
            f"  {shown(op.message)}",  # from the journal: a reason journaled before input was checked
            f"  policy set: {decision.get('policy_set_id') or 'none (built-in checks only)'}",
        ]
        if decision.get("rules"):
            lines.append(f"  decided by: {', '.join(decision['rules'])}")
        lines.append(f"  entry hash {data['entry_hash']} (after {data['prev_hash'][:16]}...)")
        lines.append(f"  document: {json.dumps(data['document'], ensure_ascii=False, sort_keys=True)}")
        return "\n".join(lines)

    emit(obj, data, text)


def _signature_status(store, op) -> str:
    """Whether the stored signature verifies with the key the journal opened the signer with: an operation
    applied as pre-checked (`submit --verified`) never shows as signed unless it is."""
    from tenge_ledger.core.canonical import canonical_bytes
    from tenge_ledger.ledger.signing import verify_bytes
    from tenge_ledger.store.entries import operation_from_document

    operation = operation_from_document(json.loads(op.document))
    if not operation.signature:
        return "signed by nobody (the ledger's genesis)" if op.op_id.startswith("genesis:") else "NOT signed"
    key = store.journaled_public_key(op.signer)
    if key and verify_bytes(canonical_bytes(store.meta().ledger_id, operation), operation.signature, key):
        return f"signature verifies with {op.signer}'s journaled key"
    return f"signature does NOT verify with {op.signer}'s journaled key"


def check_kind(kind: str, record_types: tuple[str, ...] = ()) -> str:
    """`--kind`: an operation kind (or one of `record_types`); a typo would silently match nothing."""
    from tenge_ledger.core.records import OpKind

    known = [k.value for k in OpKind] + list(record_types)
    if kind not in known:
        raise InputError(f"{quoted(kind)} is not one of: {', '.join(known)}", "--kind")
    return kind


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
@pass_ledger
def info(obj: Context) -> None:
    """What this ledger is: name, id, privacy mode, policy version, counts, size, store and keystore.

    \b
    Example:
      tenge --db pilot.db info
    """
    ledger = obj.ledger()
    store = ledger.store
    meta = store.meta()
    policy_set = meta.settings.get("policy_set")
    issued, redeemed = store.supply()
    data = {
        "name": meta.name, "ledger_id": meta.ledger_id, "privacy_mode": meta.privacy_mode,
        "central_bank": meta.central_bank, "created_at": format_time(meta.created_at),
        "policy_set": {"version": policy_set["version"], "id": policy_set["id"]} if policy_set else None,
        "accounts": len(store.accounts()), "journal_entries": store.head()[0],
        "trace_records": sum(1 for _ in store.traces()), "circulating_tiyn": issued - redeemed,
        "store": "postgresql" if "://" in obj.db else "sqlite", "db": _without_password(obj.db),
        "size_bytes": _file_bytes(obj.db), "keystore": str(obj.keystore().path),
    }  # fmt: skip
    escrow = (meta.settings.get("privacy_public") or {}).get("escrow")
    if escrow:  # what a holder compares with its own `tenge escrow finish` output
        data["escrow"] = {"threshold": escrow["threshold"], "holders": [h["name"] for h in escrow["holders"]],
                          "group_public": escrow["group_public"], "ceremony": escrow.get("ceremony"),
                          "transcript": escrow.get("transcript")}  # fmt: skip

    def text() -> str:
        ps = data["policy_set"]
        size = data["size_bytes"]
        return "\n".join([
            f"name:            {data['name']}",
            f"ledger id:       {data['ledger_id']}",
            f"privacy mode:    {data['privacy_mode']}",
            f"central bank:    {data['central_bank']}",
            f"created at:      {data['created_at']}",
            "policy set:      " + (f"version {ps['version']} ({ps['id'][:16]}…)" if ps else "none enabled"),
            f"accounts:        {data['accounts']}",
            f"journal entries: {data['journal_entries']}",
            f"trace records:   {data['trace_records']}",
            f"circulating:     {kzt(data['circulating_tiyn'])}",
            f"store:           {data['store']} {data['db']}" + (f" ({size:,} bytes)" if size is not None else ""),
            f"keystore:        {data['keystore']}",
        ] + _escrow_lines(data.get("escrow")))  # fmt: skip

    emit(obj, data, text)


def _escrow_lines(escrow: dict | None) -> list[str]:
    if not escrow:
        return []
    how = f"ceremony {escrow['ceremony']}" if escrow["ceremony"] else "dealt at init"
    lines = [f"escrow:          {escrow['threshold']} of {', '.join(escrow['holders'])} ({how})",
             f"escrow key:      {escrow['group_public']}"]  # fmt: skip
    if escrow["transcript"]:
        lines.append(f"transcript:      {escrow['transcript']}")
    return lines


def _without_password(url: str) -> str:
    """A server URL as it may be shown: the password replaced by ***."""
    from urllib.parse import urlsplit, urlunsplit

    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _file_bytes(db: str) -> int | None:
    """A SQLite ledger's size on disk, its write-ahead log included (None for a server database)."""
    if "://" in db or db == ":memory:":
        return None
    return sum(os.path.getsize(db + suffix) for suffix in ("", "-wal") if os.path.exists(db + suffix))


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
@click.option(
    "--no-signatures", is_flag=True, help="Skip re-verifying every signature (only that step; it says so)."
)
@pass_ledger
def check(obj: Context, no_signatures: bool) -> None:
    """Re-derive everything from the journal and compare: the hash chain, every signature against the signer's
    journaled key (on every core), balances, history flows, supply, accounts, holds and tags.

    \b
    Example:
      tenge check
      tenge check --no-signatures
    """
    with progress_updates(obj, "verifying signatures") as step:
        result = check_journal(
            obj.ledger().store,
            policy=obj.ledger().policy,
            signatures=not no_signatures,
            progress=lambda _label, done, total: step(done, total),
        )
    signed = (
        "signatures NOT verified (--no-signatures)"
        if result.signatures_checked is None
        else f"{result.signatures_checked} signatures verified"
    )
    emit(
        obj,
        {
            "ok": result.ok,
            "entries": result.entries,
            "signatures_checked": result.signatures_checked,
            "problems": result.problems,
        },
        lambda: (
            f"ok: {result.entries} journal entries, chain verified, {signed}; balances, history flows, supply,"
            " accounts, holds and tags rebuilt from the journal and equal"
            if result.ok
            else "\n".join(result.problems) + f"\n({signed})"
        ),
    )
    if not result.ok:
        raise TengeError(f"{len(result.problems)} problems found in {obj.db}")
