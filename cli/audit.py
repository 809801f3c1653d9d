"""`tenge audit`: export a bundle, verify it (or the live database) offline with the operator's public key."""

from __future__ import annotations

import os
import sys

import click

from tenge_ledger.core.errors import InputError

from .context import Context, emit, pass_context, pass_ledger, progress_updates


@click.group()
def audit() -> None:
    """Audit bundles of the trace log and the journal.

    \b
    Example:
      tenge --db pilot.db audit export bundle.json
      tenge audit verify bundle.json --key <operator public key hex>
    """


@audit.command("export")
@click.argument("bundle", type=click.Path(dir_okay=False, writable=True))
@click.option("--no-journal", is_flag=True, help="Leave the journal out (it carries postings in clear).")
@pass_ledger
def audit_export(obj: Context, bundle, no_journal) -> None:
    """Sign a checkpoint and write BUNDLE: trace log, journal chain, signed checkpoints.

    \b
    Example:
      tenge --db pilot.db audit export audit.json
    """
    from tenge_ledger.privacy import operator

    folder = os.path.dirname(os.path.abspath(bundle))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):  # before a checkpoint is signed for it
        raise InputError(f"cannot write there: {folder} is not a directory you may write to", bundle)
    with progress_updates(obj, "writing the bundle") as step:
        info = operator.export(obj.ledger().store, bundle, with_journal=not no_journal, progress=step)
    emit(obj, info, f"wrote {bundle}: {info['traces']} trace records, {info['journal_entries']} journal entries; "
         f"sha256 {info['sha256']}\nverify with: tenge audit verify {bundle} --key {info['checkpoint']['key']}")  # fmt: skip


@audit.command("verify")
@click.argument("bundle", required=False, type=click.Path(dir_okay=False))
@click.option("--key", help="The operator's Ed25519 public key (hex, or a file holding it).")
@click.option(
    "--against", type=click.Path(dir_okay=False), help="An earlier bundle: name each changed record."
)
@click.option(
    "--trust-bundle-key",
    is_flag=True,
    help="Without --key, check against the key written in the bundle: authenticates nothing.",
)
@click.option(
    "--witness", "witnesses", multiple=True, help="A witness's public key (hex or verifier key); repeatable."
)
@click.option(
    "--quorum",
    type=click.IntRange(1, None),
    help="How many of the --witness keys must have cosigned (default: all of them).",
)
@pass_context
def audit_verify(obj: Context, bundle, key, against, trust_bundle_key, witnesses, quorum) -> None:
    """Verify BUNDLE offline (or the live --db when no BUNDLE): every change, removal, reordering or insertion
    in the trace log or the journal is found and named, every client signature re-checked with the keys the
    journal itself opened, and with --witness a quorum of witnesses' cosignatures required. Exit 1 when
    anything is wrong.

    \b
    Example:
      tenge audit verify audit.json --key 3b6a27bc... --witness 9f1c... --witness 07aa... --quorum 2
    """
    from tenge_ledger.privacy import operator

    if bundle:
        result = operator.verify_bundle(bundle, key, against, trust_bundle_key, witnesses, quorum or 0)
        if not key:
            click.echo(f"WARNING: {operator.UNAUTHENTICATED}", err=True)
    else:
        if witnesses:
            raise InputError(
                "--witness checks a bundle: export one with tenge audit export", where="--witness"
            )
        result = operator.verify_live(obj.ledger().store, key, against)
    what = bundle or obj.db

    def text() -> str:
        head = (
            f"{what}: verified {result.traces} trace records, {result.journal} journal entries "
            f"({result.signatures} client signatures), {result.checkpoints} checkpoints"
            + (f", witnessed up to #{result.witnessed}" if witnesses else "")
            if result.ok
            else f"{what}: {len(result.problems)} problem(s)"
        )
        return "\n".join(
            [head] + [f"  - {p}" for p in result.problems] + [f"  note: {n}" for n in result.notes]
        )

    emit(obj, result.to_json(), text)
    if not result.ok:
        sys.exit(1)


@audit.command("equivocation")
@click.argument("proof", type=click.Path(dir_okay=False))
@click.option(
    "--key", help="The operator's public key: the proof must be about it (hex, or a file holding it)."
)
@pass_context
def audit_equivocation(obj: Context, proof, key) -> None:
    """Re-check a proof of equivocation: two checkpoints of one ledger, both signed by the operator's key, that
    no append-only history explains. Exit 0 when it proves it, 1 when it does not.

    \b
    Example:
      tenge audit equivocation proof.json --key 3b6a27bc...
    """
    from tenge_ledger.privacy import operator

    finding = operator.check_equivocation(proof, key)
    data = {"proven": finding.proven, "reason": finding.reason, "key": finding.key}
    emit(obj, data, f"{'PROVEN' if finding.proven else 'not proven'}: {finding.reason}"
         + (f"\nboth signed by {finding.key}" if finding.proven else ""))  # fmt: skip
    if not finding.proven:
        sys.exit(1)
