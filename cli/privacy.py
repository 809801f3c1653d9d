"""`tenge privacy`: modes, audited unmasking, the account holder's tracker, disclosures and the measured matrix."""

from __future__ import annotations

import json

import click

from tenge_ledger.core.canonical import format_time
from tenge_ledger.core.errors import InputError
from tenge_ledger.core.files import write_private

from .context import Context, emit, pass_context, pass_ledger, progress
from .render import fields_text


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
@click.option(
    "--as", "role", default="fma", show_default=True, help="Who asks: fma, central_bank, bank:HANDLE, ..."
)
@click.option(
    "--share", "shares", multiple=True, type=click.Path(dir_okay=False), help="An escrow key share file."
)
@click.option("--sealed", is_flag=True, help="Keep the case sealed: the tracker shows it once released.")
@pass_ledger
def privacy_unmask(obj: Context, record, case, basis, role, shares, sealed) -> None:
    """Open RECORD (op id or #IDX) for a case. The access is logged before anything is shown; a refusal is logged.

    \b
    Example:
      tenge --db pilot.db privacy unmask salary-001 --case FMA-7 --basis "AML art. 13" \\
        --share pilot.db.keys/privacy/fma.json --share pilot.db.keys/privacy/court.json
    """
    from tenge_ledger.privacy import operator

    store = obj.ledger().store
    access = operator.access_for(store)
    try:
        share_list = operator.shares_from_files(shares)
    except Exception as exc:
        raise access.refuse("unmask", record, case or "-", basis or "-", role, str(exc), sealed) from None
    plain = access.unmask(record, case, basis, role, share_list, sealed)
    emit(obj, plain, lambda: fields_text(plain))


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
        f"{format_time(e['at'])} {e['by']} {e['action']} {e['record']} case {e['case']} ({e['basis']}): {e['outcome']}"
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
    if record:
        data = operator.disclose(store, account, record, obj.keystore().get(account))
    else:
        data = operator.disclose_viewing_key(store, account)
    write_private(out, json.dumps(data, indent=2), fresh_only=True)
    emit(
        obj, {"written": out}, f"wrote {out}: give it to whoever may read; use it with trace view --key {out}"
    )


@privacy.command("matrix")
@click.option("--seed", default=7, show_default=True, help="Seed of the synthetic pilot.")
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
def privacy_matrix(obj: Context, seed, people, html_path, json_path, policy_path) -> None:
    """Run one seeded synthetic pilot under every mode and measure, as each role with only its keys, what it can
    link, read and detect. Every figure comes from running the observers.

    \b
    Example:
      tenge privacy matrix --seed 7 --html matrix.html
    """
    from tenge_ledger.privacy import matrix, report

    with progress(obj, len(matrix.MODES), "running the matrix") as bar:
        result = matrix.run(
            seed=seed, people=people, policy=policy_path, on_mode_done=lambda _m: bar.update(1)
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
