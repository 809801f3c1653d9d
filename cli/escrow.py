"""`tenge escrow`: the escrow holders generate the escrow key among themselves, each on its own machine, with no
ledger database (holders have none) and no dealer. See tenge_ledger/privacy/dkg.py and docs/privacy.md."""

from __future__ import annotations

import json
import os

import click

from tenge_ledger.core.errors import InputError

from .context import Context, emit, pass_context


@click.group()
def escrow() -> None:
    """Generate an escrowed ledger's key among its holders, with no dealer: nobody ever holds the escrow secret.

    Each holder runs `keygen` once, the holders agree on a ceremony (an id, the threshold, the order of their
    cards), each runs `deal` and publishes its dealing, each runs `finish` with all the dealings and keeps its
    share file; the operator runs `tenge init --privacy escrowed --escrow-dealing FILE ...` with the same
    dealings. No command here needs a ledger database.

    \b
    Example:
      tenge escrow keygen fma --out /media/fma/fma.identity --public-out fma.card
      tenge escrow deal --identity /media/fma/fma.identity --ceremony pilot-2026 --threshold 2 \\
        --holder fma.card --holder court.card --holder nbk.card --out fma.dealing
      tenge escrow finish --identity /media/fma/fma.identity --dealing fma.dealing \\
        --dealing court.dealing --dealing nbk.dealing --out /media/fma/pilot.share
    """


@escrow.command("keygen")
@click.argument("holder")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Your private identity file (0600, new): keep it on your machine.")  # fmt: skip
@click.option("--public-out", "public_out", type=click.Path(dir_okay=False),
              help="Also write your public card here, for the other holders and the ceremony.")  # fmt: skip
@pass_context
def escrow_keygen(obj: Context, holder, out, public_out) -> None:
    """Make HOLDER's identity: an Ed25519 signing key (signs its dealing and its consent to each opening) and an
    X25519 key (receives the shares dealt to it). The public card is printed (and written with --public-out).

    \b
    Example:
      tenge escrow keygen court --out /media/court/court.identity --public-out court.card
    """
    from tenge_ledger.privacy import dkg

    identity = dkg.keygen(holder)
    card = identity.card().to_json()
    if public_out and os.path.exists(public_out):
        raise InputError("already exists: refusing to overwrite a holder card", where=public_out)
    dkg.write_identity(out, identity)
    if public_out:
        dkg.write_card(public_out, identity.card())
    emit(obj, {"card": card, "written": out, "public_written": public_out},
         f"wrote {holder}'s identity to {out} (keep it there)\n"
         + (f"wrote its public card to {public_out}" if public_out else json.dumps(card)))  # fmt: skip


@escrow.command("deal")
@click.option("--identity", required=True, type=click.Path(dir_okay=False), help="Your identity file.")
@click.option("--ceremony", "ceremony_id", required=True, help="The ceremony id the holders agreed on.")
@click.option("--threshold", type=int, help="Holders needed to open a record (default: a majority).")
@click.option("--holder", "cards", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="Each holder's public card, yours too, in the agreed order (holder j gets index j).")  # fmt: skip
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Your public dealing (new file).")
@pass_context
def escrow_deal(obj: Context, identity, ceremony_id, threshold, cards, out) -> None:
    """Your dealing for the ceremony: a random polynomial of degree k-1, its public commitments, and its value at
    each holder's index sealed to that holder's key, all signed with your key. Publish the file to every holder
    and to the operator; the polynomial itself is not kept.

    \b
    Example:
      tenge escrow deal --identity /media/fma/fma.identity --ceremony pilot-2026 --threshold 2 \\
        --holder fma.card --holder court.card --holder nbk.card --out fma.dealing
    """
    from tenge_ledger.privacy import dkg

    me = dkg.read_identity(identity)
    ceremony = dkg.make_ceremony(ceremony_id, threshold, [dkg.read_card(c) for c in cards])
    dealing = dkg.deal(me, ceremony)
    dkg.write_dealing(out, dealing)
    emit(obj, {"written": out, "dealer": me.holder, "ceremony": ceremony_id, "threshold": ceremony.threshold,
               "holders": [h.holder for h in ceremony.holders]},
         f"wrote {me.holder}'s dealing for ceremony {ceremony_id} ({ceremony.threshold} of "
         f"{len(ceremony.holders)}) to {out}")  # fmt: skip


@escrow.command("finish")
@click.option("--identity", required=True, type=click.Path(dir_okay=False), help="Your identity file.")
@click.option("--dealing", "dealings", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="Every holder's dealing, yours too.")  # fmt: skip
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Your share file (0600, new).")
@click.option("--acceptance-out", "acceptance_out", required=True, type=click.Path(dir_okay=False),
              help="Write your signed acceptance here, for the operator's `init --escrow-acceptance` (required "
                   "there).")  # fmt: skip
@pass_context
def escrow_finish(obj: Context, identity, dealings, out, acceptance_out) -> None:
    """Check every dealing (signature, ceremony, commitments), open the shares dealt to you and check each against
    its dealer's commitments, and write your share of the escrow key. A dealer whose share or dealing is wrong is
    named and nothing is written: the holders then start a new ceremony without it (there is no complaint round).
    The acceptance (--acceptance-out) is your signed word that this succeeded, for exactly these dealings: the
    operator's `init --escrow-acceptance` checks every holder's. Compare the printed group key and transcript with
    the other holders' and with the ledger's (`tenge info`).

    \b
    Example:
      tenge escrow finish --identity /media/fma/fma.identity --dealing fma.dealing \\
        --dealing court.dealing --dealing nbk.dealing --out /media/fma/pilot.share --acceptance-out fma.ok
    """
    from tenge_ledger.privacy import dkg
    from tenge_ledger.privacy.threshold import write_share_file

    me = dkg.read_identity(identity)
    share = dkg.finish(me, [dkg.read_dealing(d) for d in dealings])
    accepted = dkg.acceptance(me, share)
    if os.path.exists(acceptance_out):
        raise InputError("already exists: refusing to overwrite an acceptance", where=acceptance_out)
    write_share_file(out, share)
    dkg.write_acceptance(acceptance_out, accepted)
    assert share.group_public is not None and share.transcript is not None
    data = {"written": out, "holder": share.holder, "index": share.index, "ceremony": share.ceremony,
            "group_public": share.group_public.hex(), "transcript": share.transcript.hex(),
            "acceptance": accepted}  # fmt: skip
    told = f"wrote your acceptance to {acceptance_out}: give it to the operator (init --escrow-acceptance)"
    emit(obj, data,
         f"wrote {share.holder}'s share (holder {share.index} of ceremony {share.ceremony}) to {out}\n"
         f"group key {data['group_public']}\ntranscript {data['transcript']}\n{told}")  # fmt: skip
