"""`tenge submit`: many operations from a JSON-lines file."""

from __future__ import annotations

import json
import sys
from collections import Counter

import click

from tenge_ledger.core import limits
from tenge_ledger.core.canonical import json_int, operation_from_dict
from tenge_ledger.core.errors import InputError

from .main import Context, cli, emit, pass_ledger

submit_file_bytes_max = 512 * 1024 * 1024
submit_problems_max = 20  # bad lines reported at once


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--verified", is_flag=True, help="Signatures were checked upstream (a bank's verified batch).")
@pass_ledger
def submit(obj: Context, path, verified) -> None:
    """Apply operations from a JSON-lines file, one operation per line.

    Lines without a signature are signed with the keystore (signer defaults to the payer, or the central
    bank). Every line is read and checked before anything is applied; operations then apply in order, each
    atomically, in groups of up to 1000 per database transaction.

    \b
    Example line:
      {"id": "t-1", "kind": "transfer", "payer": "halyk", "payee": "aigerim", "amount": "2500.50"}
    \b
    Example:
      tenge submit ops.jsonl
    """
    wallet = obj.wallet()
    ops = []
    problems: list[str] = []
    try:
        fh = click.open_file(path, "r", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read it: {exc.strerror or exc}", path) from None
    with fh:
        number = 0
        try:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    try:
                        doc = json.loads(line, parse_int=json_int)
                    except json.JSONDecodeError as exc:
                        raise InputError(f"not JSON: {exc.msg} at column {exc.colno}", where) from None
                    ops.append(wallet.sign_document(operation_from_dict(doc, where)))
                except InputError as exc:  # read on: a file's mistakes are reported together
                    problems.append(str(exc) if exc.where else f"{where}: {exc}")
                    if len(problems) == submit_problems_max:
                        break
        except UnicodeDecodeError:
            raise InputError("not UTF-8 text", f"{path}:{number + 1}") from None
    if len(problems) == 1:
        raise InputError(problems[0] + "; nothing applied")
    if problems:
        more = " (and perhaps more: stopped reading)" if len(problems) == submit_problems_max else ""
        raise InputError(
            f"{len(problems)} bad line(s){more}, nothing applied:\n  " + "\n  ".join(problems), path
        )
    if not ops:
        raise InputError("no operations in the file", path)
    results = []
    chunk = limits.submit_chunk_operations
    with click.progressbar(
        length=len(ops), label="applying", file=sys.stderr, hidden=obj.json or not sys.stderr.isatty()
    ) as bar:
        for start in range(0, len(ops), chunk):
            part = ops[start : start + chunk]
            results.extend(wallet.ledger.apply_many(part, verified=verified))
            bar.update(len(part))
    counts = Counter(r.code.value for r in results)
    failed = [r for r in results if not r.succeeded]
    emit(
        obj,
        {"total": len(results), "codes": dict(counts), "failed": [r.to_json() for r in failed]},
        lambda: "\n".join(
            [f"{len(results)} operations: " + ", ".join(f"{c} {k}" for k, c in counts.most_common())]
            + [f"  {r.op_id}: {r.code.value}: {r.message}" for r in failed[:20]]
            + ([f"  ... and {len(failed) - 20} more"] if len(failed) > 20 else [])
        ),
    )
    if failed:
        raise SystemExit(1)
