"""`tenge trace`: the trace log as a role sees it, checkpoints and proofs."""

from __future__ import annotations

import click

from tenge_ledger.core.canonical import check_handle, format_time, parse_time
from tenge_ledger.core.money import format_tiyn

from .context import Context, emit, pass_ledger


@click.group()
def trace() -> None:
    """The tamper-evident trace log (RFC 6962 Merkle tree).

    \b
    Example:
      tenge --db pilot.db trace view --as fma
    """


def _value(field, money: bool = False) -> str:
    if field.level == "none" or field.value is None:
        return "-"
    if field.level == "clear":
        return (
            f"{format_tiyn(field.value)} KZT" if money and isinstance(field.value, int) else str(field.value)
        )
    return f"{field.level}:{str(field.value)[:10]}"


@trace.command("view")
@click.option("--as", "role", required=True, help="central_bank, fma, public, bank:HANDLE or account:HANDLE.")
@click.option(
    "--key",
    "keys",
    multiple=True,
    help="ROLE's own key file (written at init or at the bank's registration), or a disclosure (viewing key or "
    "signed receipt); repeatable.",
)
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1, None), help="The last N records."
)
@click.option("--since", help="Records at or after this time (YYYY-MM-DD[THH:MM:SS], UTC).")
@click.option("--until", help="Records before this time (YYYY-MM-DD[THH:MM:SS], UTC).")
@click.option("--account", help="Records where ROLE sees this account as payer or payee.")
@click.option(
    "--kind", help="Operation kind (transfer, issue, ...) or record type (access, checkpoint, ...)."
)
@pass_ledger
def trace_view(obj: Context, role, keys, limit, since, until, account, kind) -> None:
    """Show the trace as ROLE sees it with the keys it holds. Logged for every role but the public.

    #N is the record's number in the trace log, which holds every applied and rejected operation, report and
    access; it differs from the journal's #SEQ, which counts applied operations only. Filters judge what
    ROLE sees: --account finds only records where the account is visible to ROLE.

    \b
    Example:
      tenge --db pilot.db trace view --as bank:halyk --key /media/halyk/pilot.key --limit 20
      tenge --db pilot.db trace view --as fma --since 2026-06-01 --account aigerim --kind transfer
    """
    from tenge_ledger.privacy import operator

    select = record_filter(since, until, account, kind)
    views = operator.view(obj.ledger().store, role, keys, limit, select=select)

    def text() -> str:
        lines = []
        for v in views:
            if v.type != "op":
                lines.append(f"#{v.idx} {format_time(v.at)} [{v.type}] {v.op_id}")
                continue
            f = v.fields
            lines.append(
                f"#{v.idx} {format_time(v.at)} {v.kind} {v.code} payer={_value(f['payer'])} "
                f"payee={_value(f['payee'])} amount={_value(f['amount'], money=True)} tag={_value(f['tag'])} "
                f"memo={_value(f['memo'])}"
            )
        if len(views) == limit:
            lines.append(f"(the last {limit} matching records; --limit N shows more)")
        return "\n".join(lines) or "(no records)"

    emit(obj, [v.to_json() for v in views], text)


# The trace log's records other than operations (privacy/views.py, trace/checkpoint.py JOURNAL_HEAD_TYPE).
RECORD_TYPES = ("op", "access", "case_release", "checkpoint", "journal-head")


def record_filter(since: str | None, until: str | None, account: str | None, kind: str | None):
    """The predicate of trace view's filters, or None when there are none."""
    if not (since or until or account or kind):
        return None
    start = parse_time(since, "--since") if since else None
    end = parse_time(until, "--until") if until else None
    handle = check_handle(account, "--account") if account else None
    if kind:
        from .reads import check_kind

        check_kind(kind, RECORD_TYPES)

    def keep(v) -> bool:
        if start is not None and v.at < start or end is not None and v.at >= end:
            return False
        if kind and kind not in (v.kind, v.type):
            return False
        if handle is None:
            return True
        return v.type == "op" and any(
            v.fields[f].level == "clear" and v.fields[f].value == handle for f in ("payer", "payee")
        )

    return keep


@trace.command("checkpoint")
@pass_ledger
def trace_checkpoint(obj: Context) -> None:
    """Sign a checkpoint (a C2SP signed note: origin, tree size, root) with the operator's key and keep it; the
    journal head is bound into the log first. The same as `tenge checkpoint`.

    \b
    Example:
      tenge --db pilot.db trace checkpoint
    """
    from tenge_ledger.privacy import operator

    cp = operator.checkpoint(obj.ledger().store)
    data = {**cp.to_json(), "tree_size": cp.checkpoint.tree_size, "root": cp.checkpoint.root.hex(),
            "key": operator.public_key(obj.ledger().store)}  # fmt: skip
    emit(obj, data, f"checkpoint: {cp.checkpoint.describe()}, signed by {data['key']}")


@trace.command("prove")
@click.argument("record")
@click.option("--size", type=click.IntRange(1, None), help="Tree size (default: the whole log).")
@pass_ledger
def trace_prove(obj: Context, record, size) -> None:
    """Inclusion proof of RECORD (an op id or #IDX) in the tree of SIZE records.

    \b
    Example:
      tenge --db pilot.db trace prove salary-001
    """
    from tenge_ledger.privacy import operator

    p = operator.inclusion(obj.ledger().store, record, size)
    emit(obj, p, lambda: f"record {record} is trace #{p['index'] + 1} (RFC 6962 leaf index {p['index']}) of "
         f"{p['tree_size']}; root {p['root']}\n" + "\n".join(p["proof"]))  # fmt: skip


@trace.command("consistency")
@click.argument("first", type=click.IntRange(0, None))
@click.argument("second", type=click.IntRange(0, None), required=False)
@pass_ledger
def trace_consistency(obj: Context, first, second) -> None:
    """Consistency proof that the tree of FIRST records is a prefix of the tree of SECOND (default: all).

    \b
    Example:
      tenge --db pilot.db trace consistency 10
    """
    from tenge_ledger.privacy import operator

    p = operator.consistency(obj.ledger().store, first, second)
    emit(obj, p, lambda: f"{p['first']} -> {p['second']}: {p['first_root']} -> {p['second_root']}\n"
         + "\n".join(p["proof"]))  # fmt: skip
