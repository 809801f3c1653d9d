"""Amounts typed by people: decimal strings with at most two places, parsed to int tiyn."""

from __future__ import annotations

import pytest

from tenge_ledger.core import limits
from tenge_ledger.core.errors import InputError
from tenge_ledger.core.money import check_amount_tiyn, format_tiyn, parse_amount


@pytest.mark.parametrize(
    ("text", "tiyn"),
    [("1200", 120_000), ("2500.50", 250_050), ("2500.5", 250_050), ("0.01", 1), ("0.10", 10), ("7", 700)],
)
def test_parse_amount__good(text: str, tiyn: int) -> None:
    assert parse_amount(text) == tiyn
    assert type(parse_amount(text)) is int


def test_parse_amount__largest_allowed() -> None:
    text = format_tiyn(limits.amount_tiyn_max)
    assert parse_amount(text) == limits.amount_tiyn_max


@pytest.mark.parametrize(
    "text",
    ["1e3", "-5", "0", "0.001", "NaN", "1,000", "", " 5", "5 ", "+5", "0.00", "1.", ".5", "01", "inf", "５"],
)
def test_parse_amount__bad_input_rejected(text: str) -> None:
    with pytest.raises(InputError) as info:
        parse_amount(text, "AMOUNT")
    assert "AMOUNT" in str(info.value)


def test_parse_amount__over_maximum_rejected() -> None:
    with pytest.raises(InputError, match="maximum"):
        parse_amount(format_tiyn(limits.amount_tiyn_max + 1))


def test_parse_amount__over_maximum_names_the_input_in_kzt() -> None:
    # "100000000000000.01" was echoed as "10000000000000001 tiyn": not what the user typed, and 100 times it.
    typed = format_tiyn(limits.amount_tiyn_max + 1)
    with pytest.raises(InputError) as info:
        parse_amount(typed, "AMOUNT")
    assert f'"{typed}" KZT is over' in str(info.value) and "tiyn" not in str(info.value)


def test_parse_amount__not_a_string_rejected() -> None:
    with pytest.raises(InputError):
        parse_amount(12.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -1, 1.0, True, "5", limits.amount_tiyn_max + 1, None])
def test_check_amount_tiyn__bad_rejected(value: object) -> None:
    with pytest.raises(InputError):
        check_amount_tiyn(value)


@pytest.mark.parametrize(
    ("tiyn", "text"), [(1, "0.01"), (250_050, "2500.50"), (-120_000, "-1200.00"), (0, "0.00")]
)
def test_format_tiyn__round_trips(tiyn: int, text: str) -> None:
    assert format_tiyn(tiyn) == text
    if tiyn > 0:
        assert parse_amount(text) == tiyn
