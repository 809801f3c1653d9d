"""Checked tree -> Python closures. Each expression becomes one small function of an evaluation context;
nothing is ever `eval`ed and the tree is never walked per transfer. Constants are folded at compile time."""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from typing import Any

from ..core.records import Account
from . import ast
from .check import constant_value

Fn = Callable[["Ctx"], Any]


class RuleError(Exception):
    """A rule could not be evaluated (e.g. a party's account is missing): the engine denies, naming the rule."""


class Ctx:
    """What one decision reads, fetched lazily and at most once per decision."""

    __slots__ = ("proposal", "view", "_payer", "_payee", "_cache")

    def __init__(self, proposal, view) -> None:
        self.proposal = proposal
        self.view = view
        self._payer: Account | None = None
        self._payee: Account | None = None
        self._cache: dict | None = None

    def party(self, which: str) -> Account:
        return self.payer() if which == "payer" else self.payee()

    def payer(self) -> Account:
        account = self._payer
        if account is None:
            account = self._payer = self._load(self.proposal.payer, "payer")
        return account

    def payee(self) -> Account:
        account = self._payee
        if account is None:
            account = self._payee = self._load(self.proposal.payee, "payee")
        return account

    def _load(self, handle: str | None, role: str) -> Account:
        account = self.view.account(handle) if handle else None
        if account is None:
            raise RuleError(f"the operation has no {role} account")
        return account

    def cached(self, key: tuple, compute: Callable[[], Any]) -> Any:
        cache = self._cache
        if cache is None:
            cache = self._cache = {}
        if key not in cache:
            cache[key] = compute()
        return cache[key]

    def window(self, which: str, direction: str, seconds: int, tag: str | None) -> tuple[int, int]:
        cache = self._cache
        if cache is None:
            cache = self._cache = {}
        key = (which, direction, seconds, tag)
        found = cache.get(key)
        if found is None:
            handle = self.party(which).handle
            found = cache[key] = self.view.window(handle, direction, self.proposal.at - seconds, tag)
        return found

    def tag_expiry(self) -> str:
        def compute() -> str:
            p = self.proposal
            own = getattr(p.op.body, "expires_on", None)
            if own:
                return own
            if not p.tag:
                return ""
            lookup = getattr(self.view, "tag", None)  # WorkingSet.tag; not part of the narrow LedgerView
            record = lookup(p.tag) if lookup is not None else None
            return (record.expires_on or "") if record is not None else ""

        return self.cached(("expiry",), compute)


def _date_of(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).date().isoformat()


_CMP = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def compile_expr(e: ast.Expr, lets: dict[str, ast.Expr]) -> Fn:
    value = constant_value(e, lets)
    if value is not None and not isinstance(e, ast.ListLit):
        return lambda c, v=value: v
    if isinstance(e, ast.TagRef):
        return lambda c: c.proposal.tag
    if isinstance(e, ast.Name):
        return _op_field(e.name)
    if isinstance(e, ast.Field):
        return _party_field(e.party, e.name)
    if isinstance(e, ast.Attr):
        party, key = e.party, e.key
        get = _getter(party)
        return lambda c: get(c).attr(key) or ""
    if isinstance(e, ast.Call):
        return _call(e, lets)
    if isinstance(e, ast.Not):
        f = compile_expr(e.operand, lets)
        return lambda c: not f(c)
    if isinstance(e, ast.BoolOp):
        # Folded right into two-operand closures: `a and (b and c)` short-circuits like the source and costs
        # one call per operand, where all()/any() over a generator costs a frame for the generator too.
        fs = [compile_expr(o, lets) for o in e.operands]
        f = fs.pop()
        while fs:
            f = all_of(fs.pop(), f) if e.op == "and" else _or(fs.pop(), f)
        return f
    if isinstance(e, ast.Compare):
        op = _CMP[e.op]
        left, right = compile_expr(e.left, lets), compile_expr(e.right, lets)
        rv = constant_value(e.right, lets)
        if rv is not None:
            return lambda c: op(left(c), rv)
        return lambda c: op(left(c), right(c))
    if isinstance(e, ast.In):
        values = frozenset(constant_value(i, lets) for i in e.items.items)
        left = compile_expr(e.left, lets)
        return lambda c: left(c) in values
    if isinstance(e, ast.StartsWith):
        left, right = compile_expr(e.left, lets), compile_expr(e.right, lets)
        return lambda c: left(c).startswith(right(c))
    if isinstance(e, ast.Has):
        left, right = compile_expr(e.left, lets), compile_expr(e.right, lets)
        return lambda c: right(c) in {item.strip() for item in left(c).split(",")}
    if isinstance(e, ast.Arith):
        left, right = compile_expr(e.left, lets), compile_expr(e.right, lets)
        if e.op == "+":
            return lambda c: left(c) + right(c)
        return lambda c: left(c) - right(c)
    raise TypeError(f"cannot compile {type(e).__name__}")  # the checker lets nothing else through


def all_of(a: Fn, b: Fn) -> Fn:
    return lambda c: a(c) and b(c)


def _or(a: Fn, b: Fn) -> Fn:
    return lambda c: a(c) or b(c)


def _op_field(name: str) -> Fn:
    if name == "amount":
        return lambda c: c.proposal.amount_tiyn
    if name == "memo":
        return lambda c: getattr(c.proposal.op.body, "memo", None) or ""
    if name == "time":
        return lambda c: c.proposal.at
    if name == "expires_on":
        return lambda c: c.tag_expiry()
    if name == "tag_expired":
        return lambda c: (lambda d: d != "" and d <= _date_of(c.proposal.at))(c.tag_expiry())
    raise TypeError(name)


def _getter(party: str) -> Callable[[Ctx], Account]:
    return Ctx.payer if party == "payer" else Ctx.payee


def _party_field(party: str, name: str) -> Fn:
    get = _getter(party)
    # kind and status are StrEnums: equal to, and hashing as, the strings rules compare them with
    if name == "handle":
        return lambda c: get(c).handle
    if name == "kind":
        return lambda c: get(c).kind
    if name == "tier":
        return lambda c: -1 if (t := get(c).tier) is None else t
    if name == "bank":
        return lambda c: get(c).bank or ""
    if name == "status":
        return lambda c: get(c).status
    if name == "balance":
        return lambda c: c.cached(("total", party), lambda: c.view.account_total(get(c).handle))
    raise TypeError(name)


def _call(e: ast.Call, lets: dict[str, ast.Expr]) -> Fn:
    party = e.party
    if e.name == "balance":
        tag_fn = compile_expr(e.args[0], lets)
        get = _getter(party)
        return lambda c: c.view.bucket(get(c).handle, tag_fn(c))
    seconds = constant_value(e.args[0], lets)
    assert isinstance(seconds, int)
    direction = "out" if e.name.startswith("out") else "in"
    index = 1 if e.name.endswith("count") else 0
    if len(e.args) > 1:
        tag_fn = compile_expr(e.args[1], lets)
        return lambda c: c.window(party, direction, seconds, tag_fn(c))[index]
    return lambda c: c.window(party, direction, seconds, None)[index]
