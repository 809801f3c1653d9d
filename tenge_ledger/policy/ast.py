"""The policy language's syntax tree: small frozen dataclasses, each with the position it came from.

Expressions evaluate to one of the language's types (see check.py); effects say what a matching rule does.
Money is always int tiyn and percentages int basis points (55% = 5500), as the core demands."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction


@dataclass(frozen=True, slots=True)
class Node:
    line: int
    col: int
    # Where the node's text ends (line, column after its last character), for underlining the whole span in a
    # diagnostic; (0, 0) when unknown. Not part of a node's value.
    end: tuple[int, int] = field(default=(0, 0), kw_only=True, compare=False, repr=False)


# ---- expressions ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Str(Node):
    value: str


@dataclass(frozen=True, slots=True)
class Money(Node):
    tiyn: int
    text: str  # as written, e.g. "5_000_000 KZT", for fmt and messages


@dataclass(frozen=True, slots=True)
class Number(Node):
    value: int
    text: str


@dataclass(frozen=True, slots=True)
class Duration(Node):
    seconds: int
    text: str  # "24h"


@dataclass(frozen=True, slots=True)
class Bool(Node):
    value: bool


@dataclass(frozen=True, slots=True)
class Name(Node):
    """An operation field (amount, memo, ...), a `let` constant, or an account kind / status name."""

    name: str


@dataclass(frozen=True, slots=True)
class TagRef(Node):
    """The tag of the money moved ("" when untagged)."""


@dataclass(frozen=True, slots=True)
class Field(Node):
    party: str  # "payer" | "payee"
    name: str


@dataclass(frozen=True, slots=True)
class Attr(Node):
    party: str
    key: str


@dataclass(frozen=True, slots=True)
class CounterpartyFilter(Node):
    """`kind: bank` in `payer.out_sum(day, kind: bank)`: count only postings whose counterparty (the operation's
    other party) had this kind, bank or zone when the posting was made."""

    key: str  # "kind" | "bank" | "zone"
    value: Expr


@dataclass(frozen=True, slots=True)
class Call(Node):
    party: str
    name: str
    args: tuple[Expr, ...]
    filters: tuple[CounterpartyFilter, ...] = ()  # a history window's counterparty filters, in written order


@dataclass(frozen=True, slots=True)
class ListLit(Node):
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not(Node):
    operand: Expr


@dataclass(frozen=True, slots=True)
class BoolOp(Node):
    op: str  # "and" | "or"
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Compare(Node):
    op: str  # == != < <= > >=
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class In(Node):
    left: Expr
    items: ListLit


@dataclass(frozen=True, slots=True)
class InList(Node):
    """`payee in sanctioned`: membership in a named list (declared with `list`), one hash lookup."""

    left: Expr
    name: str


@dataclass(frozen=True, slots=True)
class Lookup(Node):
    """`caps[payer.bank]`: the value a named table (declared with `table`) holds for a key."""

    table: str
    key: Expr


@dataclass(frozen=True, slots=True)
class StartsWith(Node):
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Has(Node):
    """`payee.attr.licences has "construction"`: the comma-separated attribute lists the item."""

    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Arith(Node):
    op: str  # "+" | "-"
    left: Expr
    right: Expr


Expr = (
    Str | Money | Number | Duration | Bool | Name | TagRef | Field | Attr | Call | ListLit | Not | BoolOp
    | Compare | In | InList | Lookup | StartsWith | Has | Arith
)  # fmt: skip


# ---- effects --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target(Node):
    """Where a portion goes: a named account, or the payee."""

    handle: str | None  # None means the payee

    def text(self) -> str:
        return "payee" if self.handle is None else f'"{self.handle}"'


@dataclass(frozen=True, slots=True)
class Deny(Node):
    reason: str


@dataclass(frozen=True, slots=True)
class Permit(Node):
    message: str | None


@dataclass(frozen=True, slots=True)
class ReportTo(Node):
    agency: str
    reason: str


@dataclass(frozen=True, slots=True)
class HoldFor(Node):
    duration: Duration
    releaser: Target | None
    on_timeout: str | None = None  # `on timeout post|void`: what a sweep does at the timeout; None is void


@dataclass(frozen=True, slots=True)
class Portion(Node):
    share: Fraction | None  # exact share of the amount (55% is 11/20); None is `remaining`
    text: str  # "55%", "1/3" or "remaining", as written
    target: Target


@dataclass(frozen=True, slots=True)
class Split(Node):
    portions: tuple[Portion, ...]


@dataclass(frozen=True, slots=True)
class Withhold(Node):
    share: Fraction
    text: str
    target: Target
    min_amount: Expr | None = None  # a fee's floor (money)
    max_amount: Expr | None = None  # a fee's cap (money)


@dataclass(frozen=True, slots=True)
class Route(Node):
    target: Target


@dataclass(frozen=True, slots=True)
class SetTag(Node):
    tag: str


@dataclass(frozen=True, slots=True)
class ClearTag(Node):
    pass


Effect = Deny | Permit | ReportTo | HoldFor | Split | Withhold | Route | SetTag | ClearTag


# ---- declarations ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Clause(Node):
    negated: bool  # True for `unless`
    expr: Expr


@dataclass(frozen=True, slots=True)
class Guard(Node):
    kinds: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rule(Node):
    name: str
    guard: Guard | None
    clauses: tuple[Clause, ...]
    effects: tuple[Effect, ...]
    end_line: int


@dataclass(frozen=True, slots=True)
class Let(Node):
    name: str
    expr: Expr


@dataclass(frozen=True, slots=True)
class DataFile(Node):
    """`file "gray-miners.csv"`: reference data in a CSV file beside the policy (a header row, then rows)."""

    name: str


@dataclass(frozen=True, slots=True)
class ListDecl(Node):
    """`list sanctioned = ["a", "b"]` or `list gray_miners = file "gray-miners.csv"` (its first column)."""

    name: str
    items: tuple[Expr, ...] | None  # inline items, or None when read from `source`
    source: DataFile | None


@dataclass(frozen=True, slots=True)
class TableDecl(Node):
    """`table caps of money default 0 KZT = {"halyk": 5_000_000 KZT}` or `= file "caps.csv"` (key, value)."""

    name: str
    value_type: str  # money | number | string
    default: Expr | None  # what a missing key reads as; None: a missing key fails the rule (it denies)
    entries: tuple[tuple[Expr, Expr], ...] | None
    source: DataFile | None


@dataclass(frozen=True, slots=True)
class Def(Node):
    """`def housing_or_education = tag == "housing" or tag == "education"`: a named condition."""

    name: str
    expr: Expr


@dataclass(frozen=True, slots=True)
class AttrDecl(Node):
    """`attr net_cap: money default 0 KZT`: account attributes of this key are read as that type."""

    key: str
    value_type: str  # money | number | string
    default: Expr | None


Declaration = Let | Def | AttrDecl | ListDecl | TableDecl


@dataclass(frozen=True, slots=True)
class PolicyFile:
    path: str
    source: str
    title: str | None
    items: tuple[Let | Def | AttrDecl | ListDecl | TableDecl | Rule, ...]
    comments: tuple[tuple[int, int, str], ...] = ()  # (line, col, text) for fmt

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(i for i in self.items if isinstance(i, Rule))

    @property
    def lets(self) -> tuple[Let, ...]:
        return tuple(i for i in self.items if isinstance(i, Let))

    @property
    def data_files(self) -> tuple[str, ...]:
        """The reference data files this file names, in order."""
        return tuple(i.source.name for i in self.items if isinstance(i, ListDecl | TableDecl) and i.source)
