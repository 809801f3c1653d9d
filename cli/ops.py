"""`tenge submit`: many operations from a JSON-lines file."""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import click

from tenge_ledger.core.canonical import format_time, json_int, operation_from_dict
from tenge_ledger.core.errors import InputError, quoted

from .context import Context, emit, pass_ledger, progress, seconds

submit_file_bytes_max = 512 * 1024 * 1024
submit_problems_max = 20  # bad lines reported at once


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--verified", is_flag=True, help="Signatures were checked upstream (a bank's verified batch).")
@pass_ledger
def submit(obj: Context, path, verified) -> None:
    """Apply operations from a JSON-lines file, one operation per line.

    Lines without a signature are signed with the keystore (signer defaults to the payer, or the central
    bank); an open_account line without a public_key gets a key pair in the keystore, as account open does.
    Every line is read and checked before anything is applied. The transfers' signatures are then checked on
    every core (unless --verified; a line signed here with the signer's own key in the ledger needs no check),
    and the operations apply in order, each atomically, in groups of up to 1000 per database transaction; on
    SQLite, a file of 10,000 operations or more is written by a committer process while the next group applies
    (docs/journal.md says when not). Ctrl-C keeps what applied: submit the file again for the rest (a line
    already applied answers exists).

    \b
    Example line:
      {"id": "t-1", "kind": "transfer", "payer": "halyk", "payee": "aigerim", "amount": "2500.50"}
    \b
    Example:
      tenge submit ops.jsonl
    """
    wallet = obj.wallet()
    started = time.perf_counter()
    ops, need_keys, signed_with = _read_operations(obj, wallet, path)
    created = _make_keys(wallet, ops, need_keys)
    read_s = time.perf_counter() - started
    results: list = []

    def applied(part: list) -> None:
        """Each chunk's results once committed, so that a failure knows what was applied."""
        results.extend(part)
        bar.update(len(part))

    try:
        flags: bool | list[bool] = verified
        if not verified:  # on every core first; the ledger checks again only what did not verify here
            with progress(obj, len(ops), "verifying signatures") as bar:
                flags = wallet.ledger.verified_upfront(ops, bar.update, signed_with)
        with progress(obj, len(ops), "applying") as bar:
            # one call, so that a large file is written by the store's committer while the next chunk applies
            wallet.ledger.apply_many(ops, verified=flags, on_results=applied)
    except KeyboardInterrupt:
        # Ctrl-C: what the user needs to know is what became of the file (the summary is not printed)
        click.echo(
            "Interrupted: the operations applied before it stay applied, each whole. Submit the same file again"
            " for the rest: a line already applied answers exists.",
            err=True,
        )
        raise
    finally:
        # No key for an account that was not opened: rejected, or in a chunk that failed as a whole (a store
        # error rolls its transaction back) or never ran. After an interrupt (Ctrl-C) the results stop short of
        # what the store holds (chunks the committer had, or a commit the interrupt came just after): the store
        # says whether such an account was opened.
        for index, handles in created.items():
            if index >= len(results) or not results[index].succeeded:
                for handle in handles:
                    if index >= len(results) and _opened_with_key(wallet, handle):
                        continue
                    wallet.keystore.remove(handle)
    apply_s = time.perf_counter() - started - read_s
    counts = Counter(r.code.value for r in results)
    failed = [r for r in results if not r.succeeded]
    rate = len(results) / apply_s if apply_s > 0 else 0.0
    emit(
        obj,
        {"total": len(results), "codes": dict(counts), "failed": [r.to_json() for r in failed],
         "read_and_signed_s": round(read_s, 3), "applied_s": round(apply_s, 3), "applied_per_s": round(rate)},
        lambda: "\n".join(
            [f"{len(results)} operations: " + ", ".join(f"{c} {k}" for k, c in counts.most_common())]
            + [f"  {r.op_id}: {r.code.value}: {r.message}" for r in failed[:20]]
            + ([f"  ... and {len(failed) - 20} more"] if len(failed) > 20 else [])
            + [f"read and signed in {seconds(read_s)}, applied in {seconds(apply_s)} ({rate:,.0f} operations/s)"]
        ),
    )  # fmt: skip
    if failed:
        raise SystemExit(1)


def _opened_with_key(wallet, handle: str) -> bool:
    """Whether the store has `handle` opened with the keystore's key for it (unknown when the store cannot be
    read: then the key goes, as for a chunk that failed)."""
    from tenge_ledger.ledger.signing import public_key_hex

    try:
        account = wallet.ledger.store.account(handle)
    except Exception:  # noqa: BLE001  (the failure being raised is the one to report)
        return False
    return account is not None and account.public_key == public_key_hex(wallet.keystore.get(handle))


# An `open_account` line without a public key gets one from the keystore, as `tenge account open` does. While
# the file is checked, this stands in for the key; the keys are made once every line has passed.
_KEY_PLACEHOLDER = "0" * 64


def _keys_wanted(doc: object) -> list[dict]:
    """The open_account documents (this one, or inside a batch) that carry neither a public key nor a signature."""
    if not isinstance(doc, dict) or doc.get("signature"):
        return []
    if doc.get("kind") == "open_account" and "public_key" not in doc and isinstance(doc.get("handle"), str):
        return [doc]
    inner = doc.get("operations") if doc.get("kind") == "batch" else None
    return [d for item in inner for d in _keys_wanted(item)] if isinstance(inner, list) else []


def _read_operations(
    obj: Context, wallet, path: str
) -> tuple[list, dict[int, tuple[int, dict, str]], dict[int, bytes]]:
    """Every line parsed, checked and signed, or one error naming every bad line (up to a limit). Also, for
    each line signed here, the public key it was signed with (`Ledger.verified_upfront` need not check it)."""
    ops: list = []
    need_keys: dict[int, tuple[int, dict, str]] = {}  # index in ops -> (line number, document, where)
    signed_with: dict[int, bytes] = {}
    problems: list[str] = []
    try:
        fh = click.open_file(path, "r", encoding="utf-8")
        size = os.fstat(fh.fileno()).st_size if path != "-" else 0
    except OSError as exc:
        raise InputError(f"cannot read it: {exc.strerror or exc}", path) from None
    now = wallet.ledger.clock()
    with fh, progress(obj, size, "reading and signing") as bar:
        number = 0
        try:
            for number, line in enumerate(fh, start=1):
                bar.update(len(line))
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    doc = _json_line(line, where)
                    wanted = _keys_wanted(doc)
                    for d in wanted:
                        d["public_key"] = _KEY_PLACEHOLDER
                    op = operation_from_dict(doc, where)
                    _refuse_future_sweep(op, now, where)
                    if wanted:
                        need_keys[len(ops)] = (number, doc, where)
                    else:
                        signed_here = not op.signature  # (a signed batch may still hold unsigned operations)
                        op = wallet.sign_document(op)
                        if signed_here:
                            signed_with[len(ops)] = wallet.public_key(op.signer)
                    ops.append(op)
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
    return ops, need_keys, signed_with


def _refuse_future_sweep(op, now: int, where: str) -> None:
    """A sweep as of a later time returns budget money before its expiry and times out holds early: `tenge sweep
    --at` does that only with --simulate-future, and a file must not do it unasked."""
    from tenge_ledger.core.records import Batch, Sweep

    inner = op.body.operations if isinstance(op.body, Batch) else (op,)
    for one in inner:
        if isinstance(one.body, Sweep) and one.body.as_of > now:
            raise InputError(
                f"a sweep as of {format_time(one.body.as_of)}, later than now ({format_time(now)}), returns budget"
                " money before its expiry and times out holds early: use tenge sweep --at ... --simulate-future",
                f"{where}.as_of",
            )


def _json_line(line: str, where: str) -> object:
    try:
        return json.loads(line, parse_int=json_int, object_pairs_hook=_distinct_fields)
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg} at column {exc.colno}", where) from None
    except RecursionError:
        raise InputError("not JSON this ledger reads: nested too deeply", where) from None


def _distinct_fields(pairs: list[tuple[str, object]]) -> dict:
    """An object whose names are distinct: JSON leaves a repeated one to the reader (Python keeps the last)."""
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        twice = next(name for name, _ in pairs if name in seen or seen.add(name))
        raise InputError(f"the field {quoted(twice)} is given twice")
    return doc


def _make_keys(wallet, ops: list, need_keys: dict[int, tuple[int, dict, str]]) -> dict[int, list[str]]:
    """Make the keys the file's open_account lines asked for, and sign those lines. Answers, per operation,
    the handles whose key was made here (removed again if the account is not opened)."""
    from tenge_ledger.ledger.signing import public_key_hex

    created: dict[int, list[str]] = {}
    for index, (_, doc, where) in need_keys.items():
        for d in _keys_wanted_filled(doc):
            handle = d["handle"]
            if wallet.keystore.has(handle):
                key = wallet.keystore.get(handle)
            else:
                key = wallet.keystore.create(handle)
                created.setdefault(index, []).append(handle)
            d["public_key"] = public_key_hex(key)
        ops[index] = wallet.sign_document(operation_from_dict(doc, where))
    return created


def _keys_wanted_filled(doc: dict) -> list[dict]:
    if doc.get("kind") == "open_account" and doc.get("public_key") == _KEY_PLACEHOLDER:
        return [doc]
    return [
        d for item in doc.get("operations") or [] if isinstance(item, dict) for d in _keys_wanted_filled(item)
    ]
