"""Checked tree -> Python functions. Each rule's condition becomes one function of an evaluation context,
compiled from a Python syntax tree built node by node (never from text, so nothing a policy says is ever run as
code); the policy tree is never walked per transfer. Constants are folded at compile time."""

from __future__ import annotations

import ast as py
import datetime as dt
from collections.abc import Callable, Sequence
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

    def tag_expired(self) -> bool:
        expiry = self.tag_expiry()
        return expiry != "" and expiry <= _date_of(self.proposal.at)

    def memo(self) -> str:
        return getattr(self.proposal.op.body, "memo", None) or ""

    def total(self, which: str) -> int:
        """A party's balance over all its buckets."""
        return self.cached(("total", which), lambda: self.view.account_total(self.party(which).handle))

    @staticmethod
    def tier_of(account: Account) -> int:
        return -1 if account.tier is None else account.tier

    @staticmethod
    def has_item(text: str, item: str) -> bool:
        """`has`: an item of a comma-separated attribute ("construction, roads")."""
        return item in {part.strip() for part in text.split(",")}


def _date_of(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).date().isoformat()


# ---- checked tree -> Python syntax tree -> bytecode ------------------------------------------------------------
#
# Each condition becomes one Python function, built node by node as a Python syntax tree and compiled by CPython:
# one call per rule instead of one closure call per operator. No source text is ever made, so user text (a
# string in a policy) can only be a constant node, never code. `_validated` still checks the finished tree
# against the short list of names and attributes the compiler itself uses before it is compiled.

_CMP_NODES = {"==": py.Eq, "!=": py.NotEq, "<": py.Lt, "<=": py.LtE, ">": py.Gt, ">=": py.GtE}
_CTX_ATTRS = frozenset(
    {"proposal", "view", "payer", "payee", "total", "window", "memo", "tag_expiry", "tag_expired", "tier_of",
     "has_item"}
)  # fmt: skip
_VALUE_ATTRS = frozenset({"tag", "amount_tiyn", "at", "handle", "kind", "tier", "bank", "status", "attr",
                          "bucket", "startswith"})  # fmt: skip
_NODES_ALLOWED = (
    py.Expression, py.Lambda, py.arguments, py.arg, py.Name, py.Load, py.Attribute, py.Call, py.Constant,
    py.Subscript, py.Compare, py.BoolOp, py.And, py.Or, py.UnaryOp, py.Not, py.BinOp, py.Add, py.Sub, py.In,
    *(node for node in _CMP_NODES.values()),
)  # fmt: skip


def _c() -> py.expr:
    return py.Name("c", py.Load())


def _attr(value: py.expr, name: str) -> py.expr:
    return py.Attribute(value, name, py.Load())


def _call(func: py.expr, *args: py.expr) -> py.expr:
    return py.Call(func, list(args), [])


def _const(value: object) -> py.expr:
    return py.Constant(value)


def _party(party: str) -> py.expr:
    return _call(_attr(_c(), "payer" if party == "payer" else "payee"))


def _node(e: ast.Expr, lets: dict[str, ast.Expr]) -> py.expr:
    value = constant_value(e, lets)
    if value is not None and not isinstance(e, ast.ListLit):
        return _const(value)
    if isinstance(e, ast.TagRef):
        return _attr(_attr(_c(), "proposal"), "tag")
    if isinstance(e, ast.Name):
        return _op_field(e.name)
    if isinstance(e, ast.Field):
        return _party_field_node(e.party, e.name)
    if isinstance(e, ast.Attr):  # a missing attribute reads as ""
        return py.BoolOp(py.Or(), [_call(_attr(_party(e.party), "attr"), _const(e.key)), _const("")])
    if isinstance(e, ast.Call):
        return _call_node(e, lets)
    if isinstance(e, ast.Not):
        return py.UnaryOp(py.Not(), _node(e.operand, lets))
    if isinstance(e, ast.BoolOp):  # Python's and / or short-circuit as the language does
        return py.BoolOp(py.And() if e.op == "and" else py.Or(), [_node(o, lets) for o in e.operands])
    if isinstance(e, ast.Compare):
        return py.Compare(_node(e.left, lets), [_CMP_NODES[e.op]()], [_node(e.right, lets)])
    if isinstance(e, ast.In):
        values = frozenset(constant_value(i, lets) for i in e.items.items)
        return py.Compare(_node(e.left, lets), [py.In()], [_const(values)])
    if isinstance(e, ast.StartsWith):
        return _call(_attr(_node(e.left, lets), "startswith"), _node(e.right, lets))
    if isinstance(e, ast.Has):
        return _call(_attr(_c(), "has_item"), _node(e.left, lets), _node(e.right, lets))
    if isinstance(e, ast.Arith):
        op = py.Add() if e.op == "+" else py.Sub()
        return py.BinOp(_node(e.left, lets), op, _node(e.right, lets))
    raise TypeError(f"cannot compile {type(e).__name__}")  # the checker lets nothing else through


def _op_field(name: str) -> py.expr:
    proposal = _attr(_c(), "proposal")
    if name == "amount":
        return _attr(proposal, "amount_tiyn")
    if name == "time":
        return _attr(proposal, "at")
    if name in ("memo", "tag_expiry", "tag_expired"):
        return _call(_attr(_c(), name))
    if name == "expires_on":
        return _call(_attr(_c(), "tag_expiry"))
    raise TypeError(name)


def _party_field_node(party: str, name: str) -> py.expr:
    # kind and status are StrEnums: equal to, and hashing as, the strings rules compare them with
    account = _party(party)
    if name in ("handle", "kind", "status"):
        return _attr(account, name)
    if name == "tier":
        return _call(_attr(_c(), "tier_of"), account)
    if name == "bank":
        return py.BoolOp(py.Or(), [_attr(account, "bank"), _const("")])
    if name == "balance":
        return _call(_attr(_c(), "total"), _const(party))
    raise TypeError(name)


def _call_node(e: ast.Call, lets: dict[str, ast.Expr]) -> py.expr:
    if e.name == "balance":
        bucket = _attr(_attr(_c(), "view"), "bucket")
        return _call(bucket, _attr(_party(e.party), "handle"), _node(e.args[0], lets))
    seconds = constant_value(e.args[0], lets)
    assert isinstance(seconds, int)
    direction = "out" if e.name.startswith("out") else "in"
    index = 1 if e.name.endswith("count") else 0
    tag = _node(e.args[1], lets) if len(e.args) > 1 else _const(None)
    window = _call(_attr(_c(), "window"), _const(e.party), _const(direction), _const(seconds), tag)
    return py.Subscript(window, _const(index), py.Load())


def _function(body: py.expr, name: str) -> Fn:
    """`lambda c: body`, compiled. The globals are empty: the function can reach only what `c` offers."""
    args = py.arguments(posonlyargs=[], args=[py.arg("c")], kwonlyargs=[], kw_defaults=[], defaults=[])
    tree = py.fix_missing_locations(py.Expression(py.Lambda(args, body)))
    code = compile(_validated(tree), f"<policy {name}>", "eval")
    return eval(code, {"__builtins__": {}})  # noqa: S307 - a tree built above and validated, never text


def _validated(tree: py.Expression) -> py.Expression:
    for node in py.walk(tree):
        if not isinstance(node, _NODES_ALLOWED):
            raise TypeError(f"policy compiler made a {type(node).__name__} node")
        if isinstance(node, py.Name) and node.id != "c":
            raise TypeError(f"policy compiler made a reference to {node.id!r}")
        if isinstance(node, py.Attribute):
            direct = isinstance(node.value, py.Name)
            if node.attr not in (_CTX_ATTRS if direct else _VALUE_ATTRS):
                raise TypeError(f"policy compiler made an attribute {node.attr!r}")
    return tree


def compile_expr(e: ast.Expr, lets: dict[str, ast.Expr], name: str = "expression") -> Fn:
    return _function(_node(e, lets), name)


def compile_condition(clauses: Sequence[tuple[ast.Expr, bool]], lets: dict[str, ast.Expr], name: str) -> Fn:
    """A rule's `when` / `unless` clauses, (expression, negated) in source order, as one function."""
    nodes = [py.UnaryOp(py.Not(), _node(e, lets)) if negated else _node(e, lets) for e, negated in clauses]
    return _function(nodes[0] if len(nodes) == 1 else py.BoolOp(py.And(), nodes), f"rule {name}")


def party_field(party: str, name: str) -> Fn:
    """A function reading one field of a party's account (the engine's index lookups)."""
    return _function(_party_field_node(party, name), f"{party}.{name}")
