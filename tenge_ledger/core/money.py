"""Amounts: int tiyn inside, decimal strings with at most two places outside. No float ever touches money."""

from __future__ import annotations

import re

from .errors import InputError, quoted
from .limits import amount_tiyn_max, tiyn_per_kzt

_AMOUNT = re.compile(r"(?P<whole>0|[1-9][0-9]*)(?:\.(?P<frac>[0-9]{1,2}))?")
_DIGITS_MAX = len(str(amount_tiyn_max))  # longer input is over the maximum without parsing it


def parse_amount(text: str, where: str = "amount") -> int:
    """Parse a positive KZT amount typed by a person ("1200", "2500.50") into tiyn."""
    if not isinstance(text, str):
        raise InputError(f"expected a decimal string like 2500.50, got {type(text).__name__}", where)
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise InputError(
            f"{quoted(text)} is not an amount: write digits with at most two decimals, like 1200 or 2500.50",
            where,
        )
    tiyn = None
    if len(match["whole"]) <= _DIGITS_MAX:  # longer is over the maximum: not worth an int()
        tiyn = int(match["whole"]) * tiyn_per_kzt + int((match["frac"] or "").ljust(2, "0"))
    if tiyn is None or tiyn > amount_tiyn_max:
        raise InputError(
            f"{quoted(text)} KZT is over the ledger's maximum of {format_tiyn(amount_tiyn_max)} KZT", where
        )
    return check_amount_tiyn(tiyn, where)


def check_amount_tiyn(tiyn: object, where: str = "amount_tiyn") -> int:
    """Check an amount already in tiyn: a positive int no larger than the ledger's maximum."""
    if type(tiyn) is not int:  # bool is an int subclass and must not pass as money
        raise InputError(f"must be a whole number of tiyn, got {quoted(tiyn)}", where)
    if tiyn <= 0:
        raise InputError(f"must be positive, got {tiyn}", where)
    if tiyn > amount_tiyn_max:
        raise InputError(
            f"{tiyn} tiyn is over the ledger's maximum of {format_tiyn(amount_tiyn_max)} KZT", where
        )
    return tiyn


# The tiyn of an amount as a message shows them ("05"): a lookup, not a format spec parsed per payment (format_tiyn,
# and the plain transfer loop, which formats its message inline)
TIYN_SHOWN = tuple(f"{t:02d}" for t in range(tiyn_per_kzt))


def format_tiyn(tiyn: int) -> str:
    """12345 -> "123.45"; negative amounts keep their sign."""
    if type(tiyn) is int and tiyn >= 0:  # every message of an applied payment: no format spec to parse
        whole, frac = divmod(tiyn, tiyn_per_kzt)
        return f"{whole}.{TIYN_SHOWN[frac]}"
    sign = "-" if tiyn < 0 else ""
    whole, frac = divmod(abs(tiyn), tiyn_per_kzt)
    return f"{sign}{whole}.{frac:02d}"
