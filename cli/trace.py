"""`tenge trace`: the trace log as a role sees it, checkpoints and proofs."""

from __future__ import annotations

import click

from tenge_ledger.core.canonical import format_time
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
    "--key", "keys", multiple=True, help="A disclosure file (viewing key or signed receipt); repeatable."
)
@click.option("--limit", type=click.IntRange(1, None), help="Only the last N records.")
@pass_ledger
def trace_view(obj: Context, role, keys, limit) -> None:
    """Show the trace as ROLE sees it with the keys it holds. Logged for every role but the public.

    \b
    Example:
      tenge --db pilot.db trace view --as bank:halyk --limit 20
    """
    from tenge_ledger.privacy import operator

    views = operator.view(obj.ledger().store, role, keys, limit)

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
        return "\n".join(lines) or "(no records)"

    emit(obj, [v.to_json() for v in views], text)


@trace.command("checkpoint")
@pass_ledger
def trace_checkpoint(obj: Context) -> None:
    """Sign a checkpoint (tree size, root, journal head, time) with the operator's key and keep it.

    \b
    Example:
      tenge --db pilot.db trace checkpoint
    """
    from tenge_ledger.privacy import operator

    cp = operator.checkpoint(obj.ledger().store)
    emit(obj, cp.to_json(), f"checkpoint: {cp.tree_size} records, root {cp.root}, journal #{cp.journal_seq}, "
         f"signed by {cp.key}")  # fmt: skip


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
