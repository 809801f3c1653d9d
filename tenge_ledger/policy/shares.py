"""Shares of a payment, in one place: how `55%`, `12.5%` and `1/3` are read, and how an amount in tiyn is
divided among them so that every tiyn is accounted for.

A share is an exact fraction (fractions.Fraction), never a float: 55% is 55/100, 12.5% is 1/8, 1/3 is 1/3.
Each portion gets floor(amount x share) tiyn, then:
- a split that names every destination (its shares add up to exactly 1) gives the tiyn left over by rounding
  one each to the portions with the largest remainders, ties to the earlier portion (the largest-remainder
  method): 100.01 KZT in thirds is 33.34 / 33.34 / 33.33;
- otherwise what is left goes to the `remaining` destination (or the payee).
A fee may have a floor and a cap (`withhold 12% min 10 KZT max 500 KZT`); no portion takes more than is left
of the amount, so the credits always add up to the amount exactly."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from ..core import limits

ONE = Fraction(1)


@dataclass(frozen=True, slots=True)
class Portion:
    """One destination's share of an amount, with an optional floor and cap in tiyn (fees)."""

    share: Fraction
    handle: str | None  # None: the payee
    min_tiyn: int = 0
    max_tiyn: int | None = None

    def text(self) -> str:
        bounds = (f" min {self.min_tiyn} tiyn" if self.min_tiyn else "") + (
            f" max {self.max_tiyn} tiyn" if self.max_tiyn is not None else ""
        )
        return f"{share_text(self.share)}{bounds} to {self.handle or 'payee'}"


def parse_share(text: str) -> tuple[Fraction | None, str | None]:
    """ "55%" -> 11/20, "12.25%" -> 49/400, "1/3" -> 1/3; or (None, why)."""
    if "/" in text:
        num, den = (int(x) for x in text.split("/"))
        if den == 0 or den > limits.policy_share_denominator_max:
            return None, f"a fraction's denominator is 1 to {limits.policy_share_denominator_max}"
        return Fraction(num, den), None
    whole, _, frac = text.rstrip("%").partition(".")
    if len(frac) > 2:
        return None, f"{text} has more than two decimals; write a whole basis point like 12.25%"
    return Fraction(int(whole) * 100 + int(frac.ljust(2, "0") or "0"), limits.basis_points_per_whole), None


def share_text(share: Fraction) -> str:
    """A share as the author would write it: a percentage when it is a whole basis point, else a fraction."""
    bps = share * limits.basis_points_per_whole
    if bps.denominator == 1:
        whole, frac = divmod(int(bps), 100)
        return f"{whole}.{frac:02d}%".replace(".00%", "%")
    return f"{share.numerator}/{share.denominator}"


def allocate(amount: int, portions: tuple[Portion, ...], fair: bool) -> tuple[list[int], int]:
    """(tiyn of each portion, tiyn left for the remaining destination) of `amount`; they add up to `amount`."""
    return allocator(portions, fair)(amount)


def plain_shares(portions: tuple[Portion, ...], fair: bool) -> tuple[tuple[int, int], ...] | None:
    """Each share as (numerator, denominator) when `allocate` gives each portion floor(amount x share) and
    the rest to the remaining destination, whenever those floors fit the amount: shares without a floor, a cap
    or the largest remainder. None otherwise."""
    if fair or any(p.min_tiyn or p.max_tiyn is not None or p.share < 0 for p in portions):
        return None
    return tuple((p.share.numerator, p.share.denominator) for p in portions)


def allocator(portions: tuple[Portion, ...], fair: bool) -> Callable[[int], tuple[list[int], int]]:
    """`allocate` for these portions as a function of the amount, the shares read once: the engine makes one per
    combination of splitting rules and calls it per payment. Integer arithmetic only (a Fraction per payment
    costs microseconds): floor(amount x num / den) each, the largest remainders compared as integers over the
    shares' common denominator."""
    terms = tuple((p.share.numerator, p.share.denominator, p.min_tiyn, p.max_tiyn) for p in portions)
    common = math.lcm(*(den for _, den, _, _ in terms)) if terms else 1
    count = len(terms)

    def divide(amount: int) -> tuple[list[int], int]:
        given = 0
        out: list[int] = []
        remainders: list[tuple[int, int]] = []
        for num, den, low, high in terms:
            part, left_over = divmod(amount * num, den)
            if fair:  # left_over / den, as an integer over the common denominator
                remainders.append((-left_over * (common // den), len(out)))
            if high is not None and part > high:
                part = high
            if part < low:
                part = low
            if part > amount - given:  # a fee's floor never takes more than what is left
                part = amount - given
            out.append(part)
            given += part
        if fair:
            left = amount - given
            for _, i in sorted(remainders)[:left]:  # largest remainder first, ties to the earlier portion
                out[i] += 1
            given += min(left, count)
        rest = amount - given
        if rest < 0 or sum(out) + rest != amount:  # protects money: never stripped by python -O
            raise AssertionError("an allocation did not conserve money")
        return out, rest

    plain = plain_shares(portions, fair)
    if plain is not None:

        def divide_plain(amount: int) -> tuple[list[int], int]:
            """Shares without floor or cap: when the floors fit the amount (always, for shares adding up to at
            most 1), no portion is cut to what is left, and `divide` would give the same."""
            out = [amount * num // den for num, den in plain]
            rest = amount - sum(out)
            if rest < 0 or amount < 0:
                return divide(amount)
            return out, rest

        return divide_plain
    return divide
