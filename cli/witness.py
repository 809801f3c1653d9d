"""`tenge witness` and `tenge checkpoint`: witnesses outside the operator cosign the trace log's checkpoints
after checking that the log only grew since the checkpoint they cosigned last."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tenge_ledger.core.errors import InputError

from .context import Context, emit, finish, pass_context, pass_ledger

_PROOF_HELP = "Write a proof of equivocation, when the refusal yields one, to this file (default: print it)."


@click.group()
def witness() -> None:
    """Witnesses: independent parties that cosign the operator's checkpoints (C2SP tlog-cosignature).

    \b
    Example:
      tenge witness init --state ./fma-witness --name fma-witness
      tenge --db pilot.db witness add fma-witness <public key hex>
      tenge --db pilot.db witness cosign --state ./fma-witness
    """


@witness.command("init")
@click.option(
    "--state", "state", required=True, type=click.Path(file_okay=False), help="The witness's directory."
)
@click.option("--name", required=True, help="The witness's key name (e.g. fma.kz/witness): no spaces or '+'.")
@pass_context
def witness_init(obj: Context, state, name) -> None:
    """Create a witness key in STATE (mode 0600) and print its public key. Needs no ledger.

    \b
    Example:
      tenge witness init --state ./fma-witness --name fma-witness
    """
    from tenge_ledger.trace import witness as witnessing

    w = witnessing.init(state, name)
    data = {"name": w.name, "public_key": w.public_key.hex(), "verifier_key": witnessing.verifier_key(w.name, w.public_key),
            "state": state}  # fmt: skip
    emit(obj, data, f"witness {w.name}: public key {data['public_key']}\nverifier key {data['verifier_key']}\n"
         f"the central bank registers it with: tenge --db LEDGER witness add {w.name} {data['public_key']}")  # fmt: skip


@witness.command("add")
@click.argument("name")
@click.argument("pubkey")
@pass_ledger
def witness_add(obj: Context, name, pubkey) -> None:
    """Register witness NAME with its public key PUBKEY (hex or verifier key): its cosignatures are then
    accepted on the ledger's checkpoints. A journaled operation the central bank signs, so the registry is part
    of the history the witnesses cosign.

    \b
    Example:
      tenge --db pilot.db witness add fma-witness 3b6a27bc...
    """
    from tenge_ledger.privacy import operator

    body = operator.witness_registration(name, pubkey)
    ledger = obj.ledger()
    result = obj.wallet().submit(ledger.central_bank, body)
    if not result.succeeded:
        finish(obj, result)
    count = len(operator.witnesses(ledger.store))
    info = {"name": body.name, "public_key": body.public_key, "witnesses": count, "seq": result.seq}
    emit(obj, info, f"witness {body.name} registered as #{result.seq} ({count} in all)")


@witness.command("cosign")
@click.option(
    "--state", "state", required=True, type=click.Path(file_okay=False), help="The witness's directory."
)
@click.option("--proof", "proof_path", type=click.Path(dir_okay=False), help=_PROOF_HELP)
@pass_ledger
def witness_cosign(obj: Context, state, proof_path) -> None:
    """Check that the log extends what the witness in STATE cosigned last (RFC 6962 consistency proof), then
    cosign the current checkpoint and remember it. Refuses (exit 1), naming both tree heads, on a fork, a
    rollback, a rewritten record or a removed tail.

    \b
    Example:
      tenge --db pilot.db witness cosign --state ./fma-witness
    """
    from tenge_ledger.privacy import operator
    from tenge_ledger.trace.witness import NotAnExtension

    try:
        info = operator.witness_cosign(obj.ledger().store, state)
    except NotAnExtension as exc:
        _show_proof(obj, exc.proof, proof_path)
        raise
    previous = (
        f" (extends {info['previous_size']} records, root {info['previous_root']})"
        if info["previous_size"] is not None
        else " (its first: the operator's key is now pinned)"
    )
    emit(obj, info, f"{info['witness']} cosigned {info['tree_size']} records, root {info['root']}{previous}\n"
         + info["checkpoint"].rstrip("\n"))  # fmt: skip


@witness.command("check")
@click.option(
    "--state", "state", required=True, type=click.Path(file_okay=False), help="The witness's directory."
)
@click.option("--proof", "proof_path", type=click.Path(dir_okay=False), help=_PROOF_HELP)
@click.argument("bundle", type=click.Path(dir_okay=False))
@pass_context
def witness_check(obj: Context, state, proof_path, bundle) -> None:
    """Is BUNDLE's history an extension of what the witness in STATE cosigned? Exit 1, naming both tree heads,
    when it is not. Needs no ledger.

    \b
    Example:
      tenge witness check --state ./fma-witness bundle.json
    """
    from tenge_ledger.privacy import operator
    from tenge_ledger.trace.witness import NotAnExtension

    try:
        info = operator.witness_check(state, bundle)
    except NotAnExtension as exc:
        _show_proof(obj, exc.proof, proof_path)
        raise
    emit(obj, info, f"{bundle}: {info['tree_size']} records, root {info['root']}, extends the "
         f"{info['cosigned_size']} records (root {info['cosigned_root']}) {info['witness']} cosigned")  # fmt: skip


def _show_proof(obj: Context, proof: dict | None, path: str | None) -> None:
    if proof is None:
        return
    text = json.dumps(proof, indent=2, sort_keys=True) + "\n"
    if path:
        if Path(path).exists():
            raise InputError("already exists: the proof is not written over another file", where=path)
        Path(path).write_text(text)
        click.echo(f"proof of equivocation written to {path}; re-check it with: tenge audit equivocation {path}",
                   err=True)  # fmt: skip
    else:
        click.echo("proof of equivocation (re-check it with: tenge audit equivocation FILE):", err=True)
        click.echo(text, nl=False)


@click.command("checkpoint")
@click.option(
    "--every",
    type=click.IntRange(0, None),
    help="From now on also sign one after a command once N records are not covered (0: never; default 1000).",
)
@pass_ledger
def checkpoint(obj: Context, every) -> None:
    """Sign a checkpoint now: bind the journal head into the trace log, then sign its tree size and root as a
    C2SP signed note with the operator's key. Also done every N trace records (--every) and before any
    access returns data.

    \b
    Example:
      tenge --db pilot.db checkpoint --every 500
    """
    from tenge_ledger.privacy import operator

    if every is not None:
        operator.set_checkpoint_interval(obj.ledger().store, every)
    cp = operator.checkpoint(obj.ledger().store)
    data = {**cp.to_json(), "tree_size": cp.checkpoint.tree_size, "root": cp.checkpoint.root.hex(),
            "key": operator.public_key(obj.ledger().store)}  # fmt: skip
    emit(obj, data, cp.render().rstrip("\n"))
