"""`tenge privacy`: modes, audited unmasking, the account holder's tracker, disclosures and the measured matrix."""

from __future__ import annotations

import json
import os

import click

from tenge_ledger.core.canonical import format_time
from tenge_ledger.core.errors import InputError
from tenge_ledger.core.files import create_new_private, write_private

from .context import Context, emit, pass_context, pass_ledger, progress
from .render import fields_text, plain


@click.group()
def privacy() -> None:
    """Privacy modes: who sees what, audited unmasking, the tracker and the measured matrix.

    \b
    Example:
      tenge privacy modes
      tenge --db pilot.db privacy tracker aigerim
    """


@privacy.command("modes")
@pass_context
def privacy_modes(obj: Context) -> None:
    """The visibility table: each mode, each role, each field (the one source of truth).

    \b
    Example:
      tenge privacy modes
    """
    from tenge_ledger.privacy.visibility import (
        FIELDS,
        MODE_SUMMARY,
        MODES,
        ROLES,
        UNMASK_ROUTE,
        VARIANTS,
        VISIBILITY,
    )

    def text() -> str:
        lines = []
        for variant in VARIANTS:
            mode = variant.split(".")[0]
            lines.append(f"{variant}: {MODE_SUMMARY[mode]}; unmasking: {UNMASK_ROUTE[mode]}")
            lines.append("  " + "role".ljust(14) + "".join(f.ljust(11) for f in FIELDS))
            for role in ROLES:
                lines.append(
                    "  " + role.ljust(14) + "".join(VISIBILITY[variant][role][f].ljust(11) for f in FIELDS)
                )
        return "\n".join(lines)

    emit(obj, {"modes": list(MODES), "visibility": VISIBILITY, "summary": MODE_SUMMARY}, text)


@privacy.command("unmask")
@click.argument("record")
@click.option("--case", required=True, help="The case this access belongs to.")
@click.option("--basis", required=True, help="The legal basis, in words.")
@click.option("--as", "role", help="Who opens (not escrowed): fma, central_bank, bank:HANDLE, ...")
@click.option(
    "--share", "shares", multiple=True, type=click.Path(dir_okay=False),
    help="escrowed: a holder's share file (its partial decryption is made here).",
)  # fmt: skip
@click.option(
    "--partial", "partials", multiple=True, type=click.Path(dir_okay=False),
    help="escrowed: a partial decryption a holder made with `privacy partial`.",
)  # fmt: skip
@click.option(
    "--key", "key_files", multiple=True, type=click.Path(dir_okay=False),
    help="Not escrowed: the --as role's own key file (written at init, or at the bank's registration).",
)  # fmt: skip
@click.option("--sealed", is_flag=True, help="Keep the case sealed: the tracker shows it once released.")
@pass_ledger
def privacy_unmask(obj: Context, record, case, basis, role, shares, partials, key_files, sealed) -> None:
    """Open RECORD (op id or #IDX) for a case. The access is logged before anything is shown; a refusal is logged.

    An escrowed record needs k holders: each gives its partial decryption (`privacy partial`, on its own machine)
    or its share file; each is checked (proof and signature) and the log names the holders who took part.

    \b
    Example:
      tenge --db pilot.db privacy unmask salary-001 --case FMA-7 --basis "AML art. 13" \\
        --partial fma.partial --partial court.partial
      tenge --db pilot.db privacy unmask p1 --case AML-9 --basis "art. 13" --as bank:halyk \\
        --key /media/halyk/pilot.key
    """
    from tenge_ledger.privacy import operator
    from tenge_ledger.privacy.keys import read_party_file

    store = obj.ledger().store
    access = operator.access_for(store)
    try:
        share_list = operator.shares_from_files(shares)
        partial_list = operator.partials_from_files(partials)
        meta = store.meta()
        parties = [read_party_file(p, meta.ledger_id, meta.settings.get("privacy_public")) for p in key_files]
    except InputError as exc:
        raise access.refuse(
            "unmask", record, case or "-", basis or "-", role or "nobody", str(exc), sealed
        ) from None
    opened = access.unmask(record, case, basis, role, share_list, sealed, partial_list, parties)
    emit(obj, opened, lambda: fields_text(opened))


@privacy.command("bank-key")
@click.argument("bank")
@click.option("--key-from", "key_from", type=click.Path(dir_okay=False),
              help="The public half of the key BANK made itself (`privacy keygen --holder bank:BANK`).")  # fmt: skip
@click.option("--key-to", "key_to", type=click.Path(dir_okay=False),
              help="Write a key file for BANK here (this process then makes BANK's key; --key-from avoids that).")  # fmt: skip
@pass_ledger
def privacy_bank_key(obj: Context, bank, key_from, key_to) -> None:
    """Register BANK's privacy key (BANK was opened without one): the public half of a key BANK made itself
    (--key-from), or a key file written for it (--key-to). From then on what is sealed to BANK is sealed to it
    (until then its customers' identities were sealed to the central bank, the bank of last resort).

    \b
    Example:
      tenge --db pilot.db privacy bank-key halyk --key-from halyk.pub
      tenge --db pilot.db privacy bank-key halyk --key-to /media/halyk/pilot.key
    """
    from tenge_ledger.privacy import register_bank_key

    done = register_bank_key(obj.ledger().store, bank, key_to, obj.keystore().path, key_from)
    text = (f"registered {bank}'s own key from {key_from}" if key_from else
            f"wrote {bank}'s privacy key to {key_to}") + "; its public half is in the ledger settings"  # fmt: skip
    emit(obj, done, text)


@privacy.command("keygen")
@click.option("--holder", required=True, help="Whose key: central_bank, fma or bank:HANDLE.")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False), help="The private key file (0600, new)."
)
@click.option("--public-out", "public_out", type=click.Path(dir_okay=False),
              help="Also write the public half here (it is printed either way).")  # fmt: skip
@pass_context
def privacy_keygen(obj: Context, holder, out, public_out) -> None:
    """A reader's own privacy key, made on the reader's machine (no ledger needed): the private file stays there;
    the operator is given the public half (`init --key-from HOLDER=PUBFILE`, `account open BANK --kind bank
    --key-from PUBFILE`, `privacy bank-key BANK --key-from PUBFILE`). The ledger records that public half and
    accepts this file as HOLDER's only if it matches: the file works with every command that takes --key.

    \b
    Example:
      tenge privacy keygen --holder fma --out /media/fma/pilot.key --public-out fma.pub
    """
    from tenge_ledger.core.files import create_new, create_new_private
    from tenge_ledger.privacy.keys import keygen_party, public_json

    party = keygen_party(holder)
    half = public_json(party)
    if public_out and os.path.exists(public_out):
        raise InputError("already exists: refusing to overwrite a public key file", where=public_out)
    create_new_private(out, json.dumps(party.to_json(), indent=2), "key file")
    if public_out:
        create_new(public_out, json.dumps(half, indent=2), "public key file")
    emit(obj, {**half, "written": out, "public_written": public_out},
         f"wrote {holder}'s private key to {out} (keep it there)\n" +
         (f"wrote its public half to {public_out}" if public_out else json.dumps(half)))  # fmt: skip


@privacy.command("migrate-keys")
@click.option("--key-to", "key_to", multiple=True, metavar="HOLDER=PATH",
              help="Where HOLDER's secret goes (one per holder the old keystore holds).")  # fmt: skip
@pass_context
def privacy_migrate_keys(obj: Context, key_to) -> None:
    """Move the other parties' secret keys out of the operator's keystore (the old layout kept the central bank's,
    the FMA's, the court's, the banks' and some accounts' keys there) into the files named for them. Each keeps its
    key, so every record sealed before still opens with the new file; the keystore keeps only the operator's own.

    \b
    Example:
      tenge --db pilot.db privacy migrate-keys --key-to central_bank=/media/nbk/p.key \\
        --key-to fma=/media/fma/p.key --key-to court=/media/court/p.key --key-to bank:halyk=/media/halyk/p.key
    """
    from tenge_ledger.privacy import KeyPlan, migrate_keys
    from tenge_ledger.store import open_store

    plan = KeyPlan.parse(key_to)
    store = open_store(obj.db)  # not through the ledger: its sink refuses a keystore in the old layout
    try:
        done = migrate_keys(store, plan, obj.keystore().path)
    finally:
        store.close()
    emit(obj, done, "\n".join(f"moved {h}'s key to {p}" for h, p in done["moved"].items()))


@privacy.command("partial")
@click.argument("record")
@click.option("--share", "share", required=True, type=click.Path(dir_okay=False), help="Your share file.")
@click.option("--case", required=True, help="The case the opening is for.")
@click.option("--basis", required=True, help="The legal basis, in words.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the partial.")
@pass_ledger
def privacy_partial(obj: Context, record, share, case, basis, out) -> None:
    """An escrow holder's partial decryption of RECORD for one case: proved, signed with the holder's key, good
    for this record, case and basis only. It opens nothing alone; hand it to whoever runs `privacy unmask`.

    \b
    Example:
      tenge --db pilot.db privacy partial salary-001 --share /media/fma/pilot.share \\
        --case FMA-7 --basis "AML art. 13" --out fma.partial
    """
    from tenge_ledger.privacy import operator

    data = operator.partial(obj.ledger().store, record, share, case, basis)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InputError("already exists", where=out) from None
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    emit(
        obj,
        {"written": out, "holder": data["holder"]},
        f"wrote {data['holder']}'s partial decryption to {out}",
    )


@privacy.command("consents")
@click.argument("access_record")
@pass_ledger
def privacy_consents(obj: Context, access_record) -> None:
    """Check who took part in an escrowed opening: each holder's signed consent in ACCESS_RECORD (#IDX) against the
    holder's public key and the case, basis and record it was given for.

    \b
    Example:
      tenge --db pilot.db privacy consents '#12'
    """
    from tenge_ledger.privacy.access import verify_participants

    store = obj.ledger().store
    ref = access_record[1:] if access_record.startswith("#") else access_record
    if not ref.isdigit():
        raise InputError("name the access record by its trace index, e.g. #12", where="ACCESS_RECORD")
    public = store.meta().settings.get("privacy_public") or {}
    if "escrow" not in public:
        raise InputError("this ledger has no escrow holders: consents exist only on escrowed ledgers")
    holders = verify_participants(store, public, int(ref))
    emit(obj, {"record": f"#{ref}", "verified": holders},
         f"#{ref}: signed by {', '.join(holders)} (verified)" if holders else f"#{ref}: no holder took part")  # fmt: skip


@privacy.command("tracker")
@click.argument("account")
@pass_ledger
def privacy_tracker(obj: Context, account) -> None:
    """Who looked at ACCOUNT's data, when and why (entries of a sealed case appear once it is released).

    \b
    Example:
      tenge --db pilot.db privacy tracker aigerim
    """
    store = obj.ledger().store
    if store.account(account) is None:
        from tenge_ledger.core.errors import InputError

        raise InputError(f"no account {account!r}")
    from tenge_ledger.privacy import operator

    entries = operator.access_for(store).tracker(account)
    emit(obj, entries, lambda: "\n".join(
        f"{format_time(e['at'])} {plain(e['by'])} {e['action']} {plain(e['record'])} case {plain(e['case'])} "
        f"({plain(e['basis'])}): {plain(e['outcome'])}"
        for e in entries) or f"no one has looked at {account}'s data")  # fmt: skip


@privacy.command("release")
@click.argument("case")
@click.option("--basis", required=True, help="Why the case is released.")
@click.option("--as", "role", default="court", show_default=True)
@pass_ledger
def privacy_release(obj: Context, case, basis, role) -> None:
    """Release a sealed CASE: its accesses appear in the trackers of the people concerned.

    \b
    Example:
      tenge --db pilot.db privacy release FMA-7 --basis "investigation closed"
    """
    from tenge_ledger.privacy import operator

    operator.access_for(obj.ledger().store).release(case, basis, role)
    emit(obj, {"released": case}, f"case {case} released")


@privacy.command("disclose")
@click.argument("account")
@click.option("--record", help="Disclose one record (a signed receipt) instead of the viewing key.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the disclosure.")
@pass_ledger
def privacy_disclose(obj: Context, account, record, out) -> None:
    """Selective mode: write ACCOUNT's viewing key, or a receipt for one RECORD signed with the account's key.

    \b
    Example:
      tenge --db pilot.db privacy disclose aigerim --record salary-001 --out receipt.json
    """
    from tenge_ledger.privacy import operator

    store = obj.ledger().store
    mode = obj.ledger().meta.privacy_mode
    if mode != "selective":
        raise InputError(
            f"disclosure is for selective ledgers; this one is {mode}, where it would reveal nothing"
        )
    if os.path.lexists(out):  # before the disclosure is made and logged: never over a key or another's file
        raise InputError("already exists: refusing to overwrite it with a disclosure", where=out)
    if record:
        data = operator.disclose(store, account, record, obj.keystore().get(account))
    else:
        data = operator.disclose_viewing_key(store, account, obj.keystore().get(account))
    create_new_private(out, json.dumps(data, indent=2), "disclosure")
    emit(
        obj, {"written": out}, f"wrote {out}: give it to whoever may read; use it with trace view --key {out}"
    )


@privacy.command("matrix")
@click.option(
    "--seed", default=7, show_default=True, help="Seed of the synthetic pilot (the first, with --seeds)."
)
@click.option("--seeds", default=1, show_default=True, type=click.IntRange(1, 20),
              help="Run this many consecutive seeds: means, with the spread over seeds.")  # fmt: skip
@click.option(
    "--people", default=1000, show_default=True, type=click.IntRange(50, 100_000), help="People in the pilot."
)
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Write the HTML report here.")
@click.option("--out", "json_path", type=click.Path(dir_okay=False), help="Write the JSON results here.")
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True),
    help="Policy file or directory (default: policies/).",
)
@pass_context
def privacy_matrix(obj: Context, seed, seeds, people, html_path, json_path, policy_path) -> None:
    """Run one seeded synthetic pilot under every mode and measure, as each role with only its keys, what it can
    link, read and detect. Every figure comes from running the observers.

    \b
    Example:
      tenge privacy matrix --seed 7 --seeds 5 --html matrix.html
    """
    from tenge_ledger.lab import matrix, report

    with progress(obj, len(matrix.MODES) * seeds, "running the matrix") as bar:
        result = matrix.run_seeds(
            seed=seed, seeds=seeds, people=people, policy=policy_path, on_mode_done=lambda _m: bar.update(1)
        )
    if json_path:
        write_private(json_path, json.dumps(result, indent=2, sort_keys=True))
    if html_path:
        report.write_html(result, html_path)
    emit(
        obj,
        result,
        lambda: matrix.format_table(result) + (f"\nHTML report: {html_path}" if html_path else ""),
    )
