"""Operations that move money: issue, redeem, transfer, hold, post, void, seize, sweep."""

from __future__ import annotations

import click

from tenge_ledger.core import limits
from tenge_ledger.core.canonical import (
    check_date,
    check_handle,
    check_op_id,
    check_tag,
    check_text,
    format_time,
    parse_time,
)
from tenge_ledger.core.errors import InputError
from tenge_ledger.core.money import parse_amount
from tenge_ledger.core.records import HOLD_ON_TIMEOUT

from .context import Context, finish, pass_ledger


def _tag(value: str | None) -> str | None:
    return check_tag(value, "--tag") if value else None


def _memo(value: str | None) -> str | None:
    return check_text(value, "--memo", limits.memo_length_max) if value else None


def _id(value: str | None) -> str | None:
    return check_op_id(value, "--id") if value else None


# A negative amount looks like an option to click; let it through so parse_amount can say what is wrong.
AMOUNT_ARGS = {"ignore_unknown_options": True}

tag_option = click.option("--tag", help="Earmark: the bucket to draw from (untagged when omitted).")
issue_tag_option = click.option(
    "--tag", help="Earmark the issued money with this tag (untagged when omitted)."
)
memo_option = click.option("--memo", help="Purpose of the payment.")
id_option = click.option(
    "--id", "op_id", help="Operation id: the same id is applied once. Random if omitted."
)


@click.command(context_settings=AMOUNT_ARGS)
@click.argument("payee")
@click.argument("amount")
@issue_tag_option
@click.option(
    "--expires", help="Expiry date of tagged money (YYYY-MM-DD): then it returns to the central bank."
)
@memo_option
@id_option
@pass_ledger
def issue(obj: Context, payee, amount, tag, expires, memo, op_id) -> None:
    """The central bank issues AMOUNT KZT to PAYEE.

    \b
    Example:
      tenge issue roads-ministry 5000000.00 --tag budget:roads-2026 --expires 2027-01-01
    """
    check_handle(payee, "PAYEE")
    tiyn = parse_amount(amount, "AMOUNT")
    expires_on = check_date(expires, "--expires") if expires is not None else None
    if expires_on and not tag:
        raise InputError("only tagged money expires: give --tag as well", "--expires")
    finish(obj, obj.wallet().issue(payee, tiyn, _tag(tag), expires_on, _memo(memo), _id(op_id)))


@click.command(context_settings=AMOUNT_ARGS)
@click.argument("payer")
@click.argument("amount")
@tag_option
@memo_option
@id_option
@pass_ledger
def redeem(obj: Context, payer, amount, tag, memo, op_id) -> None:
    """PAYER returns AMOUNT KZT to the central bank: it leaves circulation.

    \b
    Example:
      tenge redeem halyk 100.00
    """
    check_handle(payer, "PAYER")
    finish(
        obj, obj.wallet().redeem(payer, parse_amount(amount, "AMOUNT"), _tag(tag), _memo(memo), _id(op_id))
    )


@click.command(context_settings=AMOUNT_ARGS)
@click.argument("payer")
@click.argument("payee")
@click.argument("amount")
@tag_option
@memo_option
@id_option
@pass_ledger
def transfer(obj: Context, payer, payee, amount, tag, memo, op_id) -> None:
    """PAYER pays AMOUNT KZT to PAYEE, signed with PAYER's key.

    The central bank may pay (nbk -> halyk): that puts new money into circulation and counts as issued, like
    `tenge issue`. Paying the central bank is refused: money leaves circulation only through `tenge redeem`,
    so that the supply counters stay exact.

    \b
    Example:
      tenge transfer halyk aigerim 2500.50 --id 7f3c0d
    """
    check_handle(payer, "PAYER")
    check_handle(payee, "PAYEE")
    tiyn = parse_amount(amount, "AMOUNT")
    finish(obj, obj.wallet().transfer(payer, payee, tiyn, _tag(tag), _memo(memo), _id(op_id)))


@click.command(context_settings=AMOUNT_ARGS)
@click.argument("payer")
@click.argument("payee")
@click.argument("amount")
@click.option("--timeout", "timeout_s", type=click.IntRange(1, limits.hold_timeout_s_max), required=True,
              help="Seconds until a sweep settles it, as --on-timeout says.")  # fmt: skip
@click.option("--releaser", help="Who may post or void it (default: the payer).")
@click.option("--on-timeout", type=click.Choice(HOLD_ON_TIMEOUT), default=None,
              help="What the sweep does at the timeout: void returns the money to the payer (the default), "
                   "post pays the payee.")  # fmt: skip
@tag_option
@memo_option
@id_option
@pass_ledger
def hold(obj: Context, payer, payee, amount, timeout_s, releaser, on_timeout, tag, memo, op_id) -> None:
    """Hold AMOUNT KZT from PAYER for PAYEE until posted, voided or timed out (escrow).

    \b
    Example:
      tenge hold aigerim developer 30000000 --timeout 2592000 --releaser land-registry --id flat-42
      tenge hold aigerim developer 30000000 --timeout 2592000 --releaser land-registry --on-timeout post
    """
    check_handle(payer, "PAYER")
    check_handle(payee, "PAYEE")
    rel = check_handle(releaser, "--releaser") if releaser else None
    tiyn = parse_amount(amount, "AMOUNT")
    wallet = obj.wallet()
    finish(
        obj, wallet.hold(payer, payee, tiyn, timeout_s, _tag(tag), rel, _memo(memo), _id(op_id), on_timeout)
    )


@click.command(context_settings=AMOUNT_ARGS)
@click.argument("hold_id")
@click.option("--amount", help="Post only part; the rest returns to the payer.")
@click.option("--as", "signer", help="Who signs (default: the hold's releaser).")
@id_option
@pass_ledger
def post(obj: Context, hold_id, amount, signer, op_id) -> None:
    """Post a held payment to its payee, fully or partly.

    \b
    Example:
      tenge post flat-42 --as land-registry
    """
    check_op_id(hold_id, "HOLD_ID")
    wallet = obj.wallet()
    tiyn = parse_amount(amount, "--amount") if amount else None
    finish(obj, wallet.post(signer or _releaser(obj, hold_id), hold_id, tiyn, _id(op_id)))


@click.command(context_settings=AMOUNT_ARGS)
@click.argument("hold_id")
@click.option("--as", "signer", help="Who signs (the releaser or the payee).")
@id_option
@pass_ledger
def void(obj: Context, hold_id, signer, op_id) -> None:
    """Void a held payment: the money returns to the payer.

    \b
    Example:
      tenge void flat-42 --as land-registry
    """
    check_op_id(hold_id, "HOLD_ID")
    finish(obj, obj.wallet().void(signer or _releaser(obj, hold_id), hold_id, _id(op_id)))


def _releaser(obj: Context, hold_id: str) -> str:
    releaser = obj.wallet().releaser_of(hold_id)
    if releaser is None:
        raise InputError(f"no hold {hold_id!r}")
    return releaser


@click.command(context_settings=AMOUNT_ARGS)
@click.argument("payer")
@click.argument("payee")
@click.argument("amount")
@click.option("--order", required=True, help="The court order's reference (required: no order, no seizure).")
@tag_option
@id_option
@pass_ledger
def seize(obj: Context, payer, payee, amount, order, tag, op_id) -> None:
    """Court-ordered debit from PAYER (even if frozen) to PAYEE.

    \b
    Example:
      tenge seize gray-miner state-budget 1000.00 --order "Almaty court 2-123/2026"
    """
    check_handle(payer, "PAYER")
    check_handle(payee, "PAYEE")
    order = check_text(order, "--order", limits.memo_length_max) if order else None
    finish(
        obj, obj.wallet().seize(payer, payee, parse_amount(amount, "AMOUNT"), _tag(tag), order, _id(op_id))
    )


@click.command(context_settings=AMOUNT_ARGS)
@click.option("--at", "as_of", help="Ledger time to sweep as of (YYYY-MM-DD[THH:MM:SS], UTC); default now.")
@click.option(
    "--simulate-future",
    is_flag=True,
    help="Allow an --at later than now (a rehearsal: it really returns money and times out holds early).",
)
@id_option
@pass_ledger
def sweep(obj: Context, as_of, simulate_future, op_id) -> None:
    """Return expired tagged money to the central bank and settle timed-out holds: back to their payers, or to
    their payees when the hold says `post` at its timeout (a provisional seizure becoming final).

    A time later than now is refused unless --simulate-future is given: sweeping as of a future date returns
    budget money before its expiry date and times out holds before their deadlines.

    \b
    Example:
      tenge sweep
      tenge sweep --at 2027-01-01 --simulate-future
    """
    ledger = obj.ledger()
    now = ledger.clock()
    when = parse_time(as_of, "--at") if as_of else now
    if when < ledger.meta.created_at:
        raise InputError(f"{as_of} is before the ledger was created: nothing to sweep", "--at")
    if when > now:
        due = sum(1 for h in ledger.store.holds("pending") if now < h.deadline <= when)
        effect = (
            f"sweeping as of {format_time(when)} (now is {format_time(now)}) returns tagged money expiring by"
            f" then to the central bank before its expiry date and times out {due} pending hold(s) early"
        )
        if not simulate_future:
            raise InputError(f"{effect}; add --simulate-future to do it on purpose", "--at")
        click.echo(f"simulating the future: {effect}", err=True)
    finish(obj, obj.wallet().sweep(when, _id(op_id)))
