"""Reference data of a policy set: named lists and tables, written inline or read from a CSV file beside the
policy (`list gray_miners = file "gray-miners.csv"`). A data file is part of the set: its text is hashed into the
set's id, stored with the sources when the set is enabled, and listed by `policy reads`.

A list becomes a frozenset and a table a dict, so `payee in gray_miners` and `caps[payer.bank]` are one hash
lookup however long the list is. CSV files have a header row; a list reads the first column, a table the first
two (key, value). Every problem is a diagnostic located in the CSV file itself."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from typing import Any

from ..core import limits
from ..core.money import parse_amount
from ..core.text import first_unsafe_char
from .errors import Diagnostic

DATA_SUFFIX = ".csv"
MONEY, NUMBER, STRING = "money", "number", "string"
VALUE_TYPES = (MONEY, NUMBER, STRING)


class MissingEntry(LookupError):
    """A table has no entry for the key and no default: the rule that asked fails, and so denies."""


class Table(dict):
    """A table's entries; a missing key reads as the declared default, or fails the rule naming the key."""

    __slots__ = ("name", "default")

    def __init__(self, name: str, entries: dict, default: object = None) -> None:
        super().__init__(entries)
        self.name = name
        self.default = default

    def __missing__(self, key: object) -> Any:
        if self.default is None:
            raise MissingEntry(f"table {self.name} has no entry {key!r} and no default")
        return self.default


@dataclass(frozen=True, slots=True)
class DataRef:
    """A declared list or table, checked and loaded."""

    kind: str  # "list" | "table"
    name: str
    label: str  # the name the compiled plan knows it by: D0, D1, ...
    key_type: str | None  # type of a list's items or a table's keys; None for an empty list
    value_type: str | None  # a table's values; None for a list
    values: frozenset | Table
    source: str | None  # the CSV file it was read from; None when inline
    sha256: str | None  # of the CSV file's text
    line: int

    def describe(self) -> str:
        where = f"{self.source} sha256:{self.sha256[:16]}" if self.source and self.sha256 else "inline"
        return f"{self.kind} {self.name} ({len(self.values)} entries, {where})"


def read_rows(name: str, text: str, columns: int, diags: list[Diagnostic]) -> list[tuple[int, list[str]]]:
    """(line, cells) of each data row of a CSV text with a header row; problems go to `diags`."""
    if len(text.encode("utf-8", "surrogatepass")) > limits.policy_data_file_bytes_max:
        diags.append(
            Diagnostic(name, 1, 1, f"data file over the limit of {limits.policy_data_file_bytes_max} bytes")
        )
        return []
    lines = text.splitlines()
    rows: list[tuple[int, list[str]]] = []
    try:
        for number, cells in enumerate(csv.reader(lines), 1):
            if number == 1:
                continue  # the header names the columns, for people
            cells = [c.strip() for c in cells]
            if not any(cells):
                continue
            if len(cells) < columns:
                diags.append(_at(name, lines, number, f"expected {columns} columns, found {len(cells)}"))
                continue
            if len(rows) == limits.policy_list_entries_max:
                diags.append(_at(name, lines, number, f"more than {limits.policy_list_entries_max} entries"))
                break
            rows.append((number, cells))
    except csv.Error as exc:
        diags.append(Diagnostic(name, 1, 1, f"not a CSV file: {exc}"))
    if not lines:
        diags.append(Diagnostic(name, 1, 1, "an empty data file: give a header row, then one entry per row"))
    return rows


def cell_value(text: str, value_type: str) -> tuple[object, str | None]:
    """A CSV cell as a value of `value_type`, or (None, why)."""
    if len(text) > limits.policy_string_length_max:
        return None, f"a cell longer than {limits.policy_string_length_max} characters"
    if first_unsafe_char(text) is not None:
        return None, "a cell holds a control or format character (newline, NUL, bidi override)"
    if value_type == STRING:
        return text, None
    if value_type == MONEY:
        try:
            return parse_amount(text.replace("_", ""), "value"), None
        except Exception as exc:  # noqa: BLE001 - InputError; its message is the diagnostic
            return None, f"{text!r} is not an amount in KZT like 5000000 or 2500.50 ({exc})"
    digits = text.replace("_", "").removeprefix("-")
    if not digits.isdigit() or len(digits) > limits.policy_literal_digits_max:
        return None, f"{text!r} is not a whole number"
    return int(text.replace("_", "")), None


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _at(name: str, lines: list[str], number: int, message: str) -> Diagnostic:
    return Diagnostic(name, number, 1, message, lines[number - 1] if number <= len(lines) else "")
