"""`tenge init` and `tenge account ...`."""

from __future__ import annotations

import contextlib
import os
import shutil

import click

from tenge_ledger.core import limits
from tenge_ledger.core.canonical import check_attrs, check_handle, check_op_id, check_text
from tenge_ledger.core.errors import InputError, quoted
from tenge_ledger.core.records import LEDGER_KINDS, AccountKind

from .context import Context, emit, finish, pass_context, pass_ledger
from .render import account_json, fields_text, plain

OPENABLE_KINDS = [k.value for k in AccountKind if k not in LEDGER_KINDS]


def parse_attrs(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in values:
        key, sep, text = value.partition("=")
        if not sep:
            raise InputError(f"{value!r} is not KEY=VALUE", "--attr")
        if any(key == seen for seen, _ in pairs):  # else the last one would silently win
            raise InputError(f"{quoted(key)} is given twice", "--attr")
        pairs.append((key, text))
    return check_attrs(pairs, "--attr")


@click.command()
@click.option("--name", required=True, help="The ledger's name, e.g. 'Digital tenge pilot'.")
@click.option(
    "--central-bank", default="nbk", show_default=True, help="Handle of the central bank's account."
)
@click.option("--privacy", "privacy_mode", default="transparent", show_default=True, help="Privacy mode.")
@click.option(
    "--escrow-dealing",
    "dealings",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="escrowed, no dealer: a holder's public dealing from `tenge escrow deal` (one per holder). The holders "
    "generated the key among themselves: no process, this one included, ever holds the escrow secret.",
)
@click.option(
    "--escrow-acceptance",
    "acceptances",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="escrowed, no dealer: a holder's acceptance from `tenge escrow finish --acceptance-out` (one per holder): "
    "required: init refuses the dealings unless every holder's finish succeeded for exactly them.",
)
@click.option(
    "--share-to",
    "share_to",
    multiple=True,
    metavar="HOLDER=PATH",
    help="escrowed, with a dealer (simpler for a pilot): write HOLDER's escrow key share to PATH (repeat per "
    "holder; never the keystore). This process deals, so it holds the escrow secret for an instant; "
    "--escrow-dealing removes that dealer.",
)
@click.option(
    "--threshold",
    type=int,
    help="escrowed: holders needed to open a record (default: a majority; with --escrow-dealing, the ceremony's).",
)
@click.option(
    "--key-to",
    "key_to",
    multiple=True,
    metavar="HOLDER=PATH",
    help="Write a reader's secret key (central_bank, fma) to PATH: the operator keeps only its public half, but "
    "this process makes the key (--key-from avoids that).",
)
@click.option(
    "--key-from",
    "key_from",
    multiple=True,
    metavar="HOLDER=PUBFILE",
    help="A reader's (central_bank, fma) own key, made on its machine with `tenge privacy keygen`: PUBFILE is its "
    "public half; the private key never reaches the operator.",
)
@pass_context
def init(obj: Context, name: str, central_bank: str, privacy_mode: str, dealings: tuple[str, ...],
         acceptances: tuple[str, ...], share_to: tuple[str, ...], threshold: int | None, key_to: tuple[str, ...],
         key_from: tuple[str, ...]) -> None:  # fmt: skip
    """Create a new ledger in --db, with the central bank's key in the keystore beside it.

    \b
    Example:
      tenge --db pilot.db init --name "Digital tenge pilot"
      tenge --db p.db init --name P --privacy tiered \\
        --key-from central_bank=nbk.pub --key-from fma=fma.pub
      tenge --db p.db init --name P --privacy escrowed \\
        --escrow-dealing fma.dealing --escrow-dealing court.dealing --escrow-dealing nbk.dealing \\
        --escrow-acceptance fma.ok --escrow-acceptance court.ok --escrow-acceptance nbk.ok
      tenge --db p.db init --name P --privacy escrowed --threshold 2 \\
        --share-to fma=/media/fma/p.share --share-to court=/media/court/p.share \\
        --share-to central_bank=/media/nbk/p.share
    """
    from tenge_ledger.ledger.service import Ledger
    from tenge_ledger.ledger.signing import public_key_hex
    from tenge_ledger.privacy import ESCROW_NEEDED, EscrowDealings, EscrowPlan, KeyPlan, check_mode, normalize
    from tenge_ledger.store import open_store

    check_text(name, "--name", limits.ledger_name_length_max)
    if not name.strip():
        raise InputError("give the ledger a name, like 'Digital tenge pilot'", "--name")
    check_handle(central_bank, "--central-bank")
    if obj.db == ":memory:":
        raise InputError(
            "a ledger in memory ends with this command: give a file or a postgresql:// URL", "--db :memory:"
        )
    escrow = None
    if normalize(check_mode(privacy_mode)) == "escrowed" or share_to or dealings or threshold is not None:
        if normalize(privacy_mode) != "escrowed":
            raise InputError("--escrow-dealing, --share-to and --threshold are for --privacy escrowed")
        if share_to and dealings:
            raise InputError("--escrow-dealing (no dealer) or --share-to (a dealer), not both")
        if not share_to and not dealings:
            raise InputError(ESCROW_NEEDED)
        if acceptances and not dealings:
            raise InputError("--escrow-acceptance goes with --escrow-dealing")
        escrow = (
            EscrowDealings.read(dealings, threshold, acceptances)
            if dealings
            else EscrowPlan.parse(share_to, threshold)
        )
    readers = KeyPlan.parse(key_to, key_from)
    keystore = obj.keystore()
    # A failed init leaves nothing behind: no half-made database file, no key for a ledger that does not exist.
    fresh_file = "://" not in obj.db and obj.db != ":memory:" and not os.path.exists(obj.db)
    new_key = not keystore.has(central_bank)
    new_keystore = not keystore.path.exists()
    try:
        store = open_store(obj.db, create=True)
        try:
            if new_key:
                _refuse_if_ledger(store)
            key = keystore.create(central_bank) if new_key else keystore.get(central_bank)
            ledger = Ledger.create(store, name, public_key_hex(key), central_bank, privacy_mode=privacy_mode)
            _after_init(ledger, keystore, escrow, readers)
            meta = ledger.meta
        finally:
            store.close()
    except BaseException:
        if fresh_file:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(obj.db + suffix)
            if new_key:
                keystore.remove(central_bank)
            if new_keystore:  # made by this init, for a ledger that does not exist
                shutil.rmtree(keystore.path, ignore_errors=True)
        raise
    emit(
        obj,
        {"ledger_id": meta.ledger_id, "name": meta.name, "central_bank": meta.central_bank, "db": obj.db,
         "privacy_mode": meta.privacy_mode, "keystore": str(keystore.path)},
        f"created ledger {meta.name!r} ({meta.ledger_id}) in {obj.db}; central bank {meta.central_bank}, "
        f"keys in {keystore.path}",
    )  # fmt: skip


def _refuse_if_ledger(store) -> None:
    try:
        meta = store.meta()
    except Exception:
        return
    raise InputError(f"{store.url} already holds the ledger {meta.name!r} ({meta.ledger_id})")


def _after_init(ledger, keystore, escrow=None, readers=None) -> None:
    """Mode-specific key material (privacy modes) is created right after the ledger."""
    from tenge_ledger.privacy import setup_mode

    setup_mode(ledger, keystore, escrow, readers)


@click.group()
def account() -> None:
    """Open, inspect and manage accounts.

    \b
    Example:
      tenge --db pilot.db account open aigerim --kind person --tier 1 --bank halyk
    """


@account.command("open")
@click.argument("handle")
@click.option("--kind", type=click.Choice(OPENABLE_KINDS), required=True, help="What the account is.")
@click.option("--tier", type=click.IntRange(0, limits.tier_max), help="Wallet tier (holding limits).")
@click.option("--bank", help="The commercial bank serving a person or merchant.")
@click.option("--attr", "attrs", multiple=True, metavar="KEY=VALUE", help="An attribute; repeatable.")
@click.option("--id", "op_id", help="Operation id (idempotency key); random when omitted.")
@click.option(
    "--key-to", "key_to", type=click.Path(dir_okay=False),
    help="A bank, in a mode that seals to banks: write the bank's privacy key to this file (never the keystore).",
)  # fmt: skip
@click.option(
    "--key-from", "key_from", type=click.Path(dir_okay=False),
    help="A bank, in a mode that seals to banks: the public half of the key it made itself (`tenge privacy keygen "
    "--holder bank:HANDLE`); its private key never reaches the operator.",
)  # fmt: skip
@pass_ledger
def account_open(obj: Context, handle, kind, tier, bank, attrs, op_id, key_to, key_from) -> None:
    """Open an account: a key pair goes to the keystore, the public key to the ledger.

    \b
    Example:
      tenge account open aigerim --kind person --tier 1 --bank halyk
      tenge --db p.db account open halyk --kind bank --key-from halyk.pub
      tenge --db p.db account open halyk --kind bank --key-to /media/halyk/p.key
    """
    from tenge_ledger.privacy import mode_of, register_bank_key
    from tenge_ledger.privacy.keys import read_public_file

    check_handle(handle, "HANDLE")
    pairs = parse_attrs(attrs)
    mode = mode_of(obj.ledger().meta.privacy_mode)
    if key_to and key_from:
        raise InputError("--key-to (a key file written here) or --key-from (the bank's own key), not both")
    if kind == "bank" and mode.bank_keys and not key_to and not key_from:
        raise InputError(f"a bank of a {mode.name} ledger needs its privacy key: --key-from PUBFILE (the public "
                         "half of a key it made with `tenge privacy keygen`) or --key-to PATH")  # fmt: skip
    if (key_to or key_from) and (kind != "bank" or not mode.bank_keys):
        option = "--key-to" if key_to else "--key-from"
        raise InputError(f"{option} is for a bank of a ledger that seals to banks (this one is {mode.name})")
    if key_to and os.path.exists(key_to):
        raise InputError("already exists: refusing to overwrite a key file", where=key_to)
    if key_from:
        read_public_file(key_from, f"bank:{handle}")  # refused before the account is opened
    if (
        obj.ledger().meta.privacy_mode == "selective"
    ):  # the holder registers its viewing key: records seal to it
        from tenge_ledger.privacy.keys import VIEWING_ATTR, viewing_public_hex

        keystore = obj.keystore()
        key = keystore.get(handle) if keystore.has(handle) else keystore.create(handle)
        if VIEWING_ATTR not in dict(pairs):
            pairs = check_attrs((*pairs, (VIEWING_ATTR, viewing_public_hex(key))), "--attr")
    result = obj.wallet().open_account(handle, AccountKind(kind), tier, bank, pairs, op_id)
    if (key_to or key_from) and result.succeeded:
        try:
            register_bank_key(obj.ledger().store, handle, key_to, obj.keystore().path, key_from)
        except InputError as exc:
            raise InputError(
                f"{handle} is open, but its key was not registered ({exc}): register it with "
                f"tenge privacy bank-key {handle} --key-from PUBFILE (or --key-to PATH)"
            ) from None
    finish(obj, result)


@account.command("update")
@click.argument("handle")
@click.option("--tier", type=click.IntRange(0, limits.tier_max))
@click.option("--attr", "attrs", multiple=True, metavar="KEY=VALUE", help="Set (or with KEY= remove).")
@click.option("--id", "op_id")
@pass_ledger
def account_update(obj: Context, handle, tier, attrs, op_id) -> None:
    """Change an account's tier or attributes (signed by the central bank).

    \b
    Example:
      tenge account update builder-1 --attr licence=construction --attr obligations=met
    """
    check_handle(handle, "HANDLE")
    if tier is None and not attrs:  # else an update that changes nothing is signed and journaled
        raise InputError("nothing to update: give --tier or --attr KEY=VALUE")
    finish(obj, obj.wallet().update_account(handle, tier, parse_attrs(attrs), op_id))


@account.command("show")
@click.argument("handle")
@pass_ledger
def account_show(obj: Context, handle) -> None:
    """Show one account.

    \b
    Example:
      tenge --json account show aigerim
    """
    found = obj.ledger().store.account(check_handle(handle, "HANDLE"))
    if found is None:
        raise InputError(f"no account {handle!r}")
    data = account_json(found)
    emit(obj, data, lambda: fields_text(data))


@account.command("list")
@pass_ledger
def account_list(obj: Context) -> None:
    """List every account.

    \b
    Example:
      tenge account list
    """
    rows = [account_json(a) for a in obj.ledger().store.accounts()]
    emit(
        obj,
        rows,
        lambda: "\n".join(
            f"{r['handle']:<24} {r['kind']:<13} {r['status']:<7} tier={plain(r['tier'])} bank={plain(r['bank'])}"
            for r in rows
        ),
    )


# The status a freeze or an unfreeze would leave: asking for the status an account already has is a mistake
# (a second freeze in the journal says nothing new), unless it is the retry of the same operation id.
_STATUS_AFTER = {"freeze": "frozen", "unfreeze": "active"}


def _refuse_if_no_change(obj: Context, name: str, handle: str, op_id: str | None) -> None:
    target = _STATUS_AFTER.get(name)
    store = obj.ledger().store
    found = store.account(handle)
    if target is None or found is None or found.status.value != target:
        return
    if op_id and store.operation(check_op_id(op_id, "--id")) is not None:
        return  # a retry: the service answers `exists`
    raise InputError(f"{handle} is {target} already: nothing to {name}")


def _status_command(name: str, doc: str):
    @click.argument("handle")
    @click.option("--id", "op_id", help="Operation id: the same id is applied once. Random if omitted.")
    @pass_ledger
    def command(obj: Context, handle, op_id, reason=None) -> None:
        wallet = obj.wallet()
        check_handle(handle, "HANDLE")
        if reason is not None:
            reason = check_text(reason, "--reason", limits.memo_length_max)
        _refuse_if_no_change(obj, name, handle, op_id)
        if name == "close":
            finish(obj, wallet.close(handle, op_id))
        else:
            finish(obj, getattr(wallet, name)(handle, reason, op_id))

    if name != "close":  # a close operation carries no reason: the option would be dropped unsaid
        command = click.option("--reason", help="Why (kept in the journal).")(command)
    return account.command(name, help=doc)(command)


_status_command(
    "freeze",
    "Freeze an account: it can neither pay nor be paid.\n\n\b\nExample:\n  tenge account freeze gray-miner --reason 'FMA list'",
)
_status_command("unfreeze", "Unfreeze an account.\n\n\b\nExample:\n  tenge account unfreeze gray-miner")
_status_command(
    "close",
    "Close an empty account for good: nothing in its buckets and none of its money in a pending\nhold.\n\n\b\nExample:\n  tenge account close old-wallet",
)
