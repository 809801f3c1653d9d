"""Checked tree -> Python functions: the rules of one operation kind become one function of an evaluation
context (`Ctx`), compiled from a Python syntax tree built node by node (never from text, so nothing a policy says
is ever run as code); the policy tree is never walked per transfer. Constants are folded at compile time."""

from __future__ import annotations

import ast as py
import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from ..core.records import Account
from ..core.windows import calendar_start
from . import ast
from .check import Scope, constant_value, window_filter
from .data import cell_value


class RuleError(Exception):
    """A rule could not be evaluated (e.g. a party's account is missing): the engine denies, naming the rule."""


class Ctx:
    """What one decision reads, fetched lazily and at most once per decision (a rolling window or a balance at
    most once per plan function: the plan keeps it in a local and reads the view itself, see _shared_reads)."""

    __slots__ = ("proposal", "view", "payer_account", "payee_account", "_cache")

    def __init__(self, proposal, view) -> None:
        self.proposal = proposal
        self.view = view
        # The parties' accounts once known (the ledger hands them in): rules read `c.payer_account or c.payer()`,
        # an attribute load where a method call would do the same.
        self.payer_account: Account | None = proposal.payer_account
        self.payee_account: Account | None = proposal.payee_account
        self._cache: dict = {}  # calendar window and tag-expiry reads of this decision

    def party(self, which: str) -> Account:
        return self.payer() if which == "payer" else self.payee()

    def payer(self) -> Account:
        account = self.payer_account
        if account is None:
            account = self.payer_account = self._load(self.proposal.payer, "payer")
        return account

    def payee(self) -> Account:
        account = self.payee_account
        if account is None:
            account = self.payee_account = self._load(self.proposal.payee, "payee")
        return account

    def _load(self, handle: str | None, role: str) -> Account:
        account = self.view.account(handle) if handle else None
        if account is None:
            raise RuleError(f"the operation has no {role} account")
        return account

    def calendar_window(
        self, which: str, direction: str, unit: str, tag: str | None, counterparty: str | None = None
    ) -> tuple[int, int]:
        """A window from the start of the operation's calendar day or month, in the ledger's time zone."""
        key = (which, direction, unit, tag, counterparty)
        found = self._cache.get(key)
        if found is None:
            handle = self.party(which).handle
            since = calendar_start(self.proposal.at, unit)
            found = self._cache[key] = self._window(handle, direction, since, tag, counterparty)
        return found

    def _window(self, handle: str, direction: str, since: int, tag: str | None, counterparty: str | None):
        if counterparty is None:  # a view written before counterparty filters takes four arguments
            return self.view.window(handle, direction, since, tag)
        return self.view.window(handle, direction, since, tag, counterparty)

    def attr_value(self, which: str, key: str, value_type: str, has_default: bool, default: object) -> object:
        """A declared attribute as its type; missing: the declared default, or the rule fails (denies)."""
        text = self.party(which).attr(key)
        if text is None:
            if has_default:
                return default
            raise RuleError(f"the {which} account has no attribute {key} (declared without a default)")
        if value_type == "string":
            return text
        value, why = cell_value(text, value_type)
        if why:
            raise RuleError(f"the {which} account's attribute {key} is not a {value_type}: {why}")
        return value

    def tag_expiry(self) -> str:
        p = self.proposal
        own = getattr(p.op.body, "expires_on", None)
        if own or not p.tag:
            return own or ""
        found = self._cache.get("expiry")
        if found is None:
            lookup = getattr(self.view, "tag", None)  # WorkingSet.tag; not part of the narrow LedgerView
            record = lookup(p.tag) if lookup is not None else None
            found = self._cache["expiry"] = (record.expires_on or "") if record is not None else ""
        return found

    def tag_expired(self) -> bool:
        p = self.proposal
        if not p.tag and not getattr(p.op.body, "expires_on", None):  # tag_expiry() is "": most payments
            return False
        expiry = self.tag_expiry()
        return expiry != "" and expiry <= _date_of(p.at)

    def memo(self) -> str:
        """The memo, or what stands for it: a seizure's court order, a freeze's reason."""
        body = self.proposal.op.body
        return (
            getattr(body, "memo", None) or getattr(body, "order", None) or getattr(body, "reason", None) or ""
        )

    def signer(self) -> str:
        return self.proposal.op.signer

    def releaser(self) -> str:
        """Who may release the hold a post or void settles, or that a hold operation makes (its payer when it
        names nobody)."""
        p = self.proposal
        if p.hold is not None:
            return p.hold.releaser
        body = p.op.body
        return getattr(body, "releaser", None) or getattr(body, "payer", None) or ""

    def deadline(self) -> int:
        """When that hold times out, in ledger time."""
        p = self.proposal
        if p.hold is not None:
            return p.hold.deadline
        return p.at + getattr(p.op.body, "timeout_s", 0)

    @staticmethod
    def has_item(text: str, item: str) -> bool:
        """`has`: an item of a comma-separated attribute ("construction, roads")."""
        return item in {part.strip() for part in text.split(",")}


def _date_of(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).date().isoformat()


# ---- checked tree -> Python syntax tree -> bytecode ------------------------------------------------------------
#
# The rules of one operation kind become one Python function (`compile_plan`), built node by node as a Python
# syntax tree and compiled by CPython: a payment costs one call, and each rule's condition is inline code instead
# of one closure call per operator. No source text is ever made, so user text (a string in a policy) can only be
# a constant node, never code; `validated` checks the finished tree against the short lists of node types,
# names and attributes this compiler itself uses before it is compiled, and the function's globals are empty
# but for the rules it reports, the exception type it catches and its dispatch tables.

_CMP_NODES = {"==": py.Eq, "!=": py.NotEq, "<": py.Lt, "<=": py.LtE, ">": py.Gt, ">=": py.GtE}
_CTX_ATTRS = frozenset(
    {"proposal", "view", "payer", "payee", "payer_account", "payee_account", "calendar_window", "attr_value", "memo", "signer", "releaser", "deadline", "tag_expiry", "tag_expired",
     "has_item"}
)  # fmt: skip
_VALUE_ATTRS = frozenset({"tag", "amount_tiyn", "at", "handle", "kind", "tier", "bank", "status", "attr", "attrs",
                          "bucket", "window", "account_total", "startswith", "append", "get"})  # fmt: skip
_NAMES = frozenset({"c", "tag", "m", "f", "n", "v", "ok", "x", "g", "a", "Exception"})
_NUMBERED_NAMES = re.compile(
    r"[gTDw][0-9]+"
)  # a dispatch's group functions and tables, the set's lists and tables, reads kept in locals
_NODES_ALLOWED = (
    py.Module, py.FunctionDef, py.arguments, py.arg, py.Try, py.ExceptHandler, py.If, py.Expr, py.Assign,
    py.AugAssign, py.Return, py.Tuple, py.List, py.Store, py.Name, py.Load, py.Attribute, py.Call, py.Constant,
    py.Subscript, py.Compare, py.BoolOp, py.And, py.Or, py.UnaryOp, py.Not, py.BinOp, py.Add, py.Sub, py.BitOr, py.In,
    py.Is, py.IsNot, py.IfExp, py.NamedExpr,
    *(node for node in _CMP_NODES.values()),
)  # fmt: skip


def _c() -> py.expr:
    return _name("c")


def _attr(value: py.expr, name: str) -> py.expr:
    return py.Attribute(value, name, py.Load())


def _call(func: py.expr, *args: py.expr) -> py.expr:
    return py.Call(func, list(args), [])


def _const(value: object) -> py.expr:
    return py.Constant(value)


def _party(party: str) -> py.expr:
    return py.BoolOp(py.Or(), [_attr(_c(), f"{party}_account"), _call(_attr(_c(), party))])


def _node(e: ast.Expr, lets: Scope) -> py.expr:
    value = constant_value(e, lets.values)
    if value is not None and not isinstance(e, ast.ListLit):
        return _const(value)
    if isinstance(e, ast.TagRef):
        return _attr(_attr(_c(), "proposal"), "tag")
    if isinstance(e, ast.Name):
        named = lets.defs.get(e.name)
        # a named condition is compiled where it is used: the checker counted its expansion in the rule's cost
        return _op_field(e.name) if named is None else _node(named, lets)
    if isinstance(e, ast.Field):
        return _party_field_node(e.party, e.name)
    if isinstance(e, ast.Attr):
        declared = lets.attrs.get(e.key)
        if declared is None:  # no schema: a missing attribute reads as "" (the checker warns)
            return _attr_or_empty(e.party, e.key)
        value_type, default, has_default = declared
        if value_type == "string" and has_default and default == "":  # reads as an undeclared one: inline
            return _attr_or_empty(e.party, e.key)
        return _call(_attr(_c(), "attr_value"), _const(e.party), _const(e.key), _const(value_type),
                     _const(has_default), _const(default))  # fmt: skip
    if isinstance(e, ast.Call):
        return _call_node(e, lets)
    if isinstance(e, ast.Not):
        return py.UnaryOp(py.Not(), _node(e.operand, lets))
    if isinstance(e, ast.BoolOp):  # Python's and / or short-circuit as the language does
        return py.BoolOp(py.And() if e.op == "and" else py.Or(), [_node(o, lets) for o in e.operands])
    if isinstance(e, ast.Compare):
        return py.Compare(_node(e.left, lets), [_CMP_NODES[e.op]()], [_node(e.right, lets)])
    if isinstance(e, ast.In):
        values = frozenset(constant_value(i, lets.values) for i in e.items.items)
        return py.Compare(_node(e.left, lets), [py.In()], [_const(values)])
    if isinstance(e, ast.InList):  # a frozenset in the plan's globals: one hash lookup, however long the list
        return py.Compare(_node(e.left, lets), [py.In()], [_name(lets.data[e.name].label)])
    if isinstance(e, ast.Lookup):  # a Table: a missing key is its default, or fails the rule (denies)
        return py.Subscript(_name(lets.data[e.table].label), _node(e.key, lets), py.Load())
    if isinstance(e, ast.StartsWith):
        return _call(_attr(_node(e.left, lets), "startswith"), _node(e.right, lets))
    if isinstance(e, ast.Has):
        return _call(_attr(_c(), "has_item"), _node(e.left, lets), _node(e.right, lets))
    if isinstance(e, ast.Arith):
        op = py.Add() if e.op == "+" else py.Sub()
        return py.BinOp(_node(e.left, lets), op, _node(e.right, lets))
    raise TypeError(f"cannot compile {type(e).__name__}")  # the checker lets nothing else through


def _attr_or_empty(party: str, key: str) -> py.expr:
    """`(account.attrs and account.attr(key)) or ""`: most accounts have no attributes, and an empty tuple
    answers without the call."""
    account = _party(party)
    found = py.BoolOp(py.And(), [_attr(account, "attrs"), _call(_attr(account, "attr"), _const(key))])
    return py.BoolOp(py.Or(), [found, _const("")])


def _op_field(name: str) -> py.expr:
    proposal = _attr(_c(), "proposal")
    if name == "amount":
        return _attr(proposal, "amount_tiyn")
    if name == "time":
        return _attr(proposal, "at")
    if name in ("memo", "signer", "releaser", "deadline", "tag_expiry", "tag_expired"):
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
        # a wallet without a tier reads as tier -1 (written out: a call costs more than the test)
        tier = _attr(account, "tier")
        return py.IfExp(py.Compare(tier, [py.Is()], [_const(None)]), _const(-1), _attr(_party(party), "tier"))
    if name == "bank":
        return py.BoolOp(py.Or(), [_attr(account, "bank"), _const("")])
    if name == "balance":
        # the view read directly, as a window is (a plan keeps a balance read twice in a local)
        return _call(_attr(_attr(_c(), "view"), "account_total"), _attr(account, "handle"))
    raise TypeError(name)


def _call_node(e: ast.Call, lets: Scope) -> py.expr:
    if e.name == "balance":
        bucket = _attr(_attr(_c(), "view"), "bucket")
        return _call(bucket, _attr(_party(e.party), "handle"), _node(e.args[0], lets))
    direction = "out" if e.name.startswith("out") else "in"
    index = 1 if e.name.endswith("count") else 0
    counterparty = window_filter(e, lets.values)
    # a filtered aggregate's key holds the tag: the window reads that aggregate, not a tag's bucket
    tag = _node(e.args[1], lets) if len(e.args) > 1 and counterparty is None else _const(None)
    filtered = () if counterparty is None else (_const(counterparty),)
    first = e.args[0]
    if isinstance(first, ast.Name) and first.name in ("day", "month") and first.name not in lets.values:
        window = _call(
            _attr(_c(), "calendar_window"),
            _const(e.party),
            _const(direction),
            _const(first.name),
            tag,
            *filtered,
        )
        return py.Subscript(window, _const(index), py.Load())
    seconds = constant_value(first, lets.values)
    if not isinstance(seconds, int):
        raise TypeError("a window that is not a constant")  # the checker lets none through
    # The view read directly, not through a Ctx method: a plan keeps each window it reads in a local
    # (_shared_reads). A view written before counterparty filters takes four arguments.
    handle = _attr(_party(e.party), "handle")
    since = py.BinOp(_attr(_attr(_c(), "proposal"), "at"), py.Sub(), _const(seconds))
    window = _call(_attr(_attr(_c(), "view"), "window"), handle, _const(direction), since, tag, *filtered)
    return py.Subscript(window, _const(index), py.Load())


def condition_node(clauses: Sequence[tuple[ast.Expr, bool]], lets: Scope) -> py.expr | None:
    """A rule's `when` / `unless` clauses, (expression, negated) in source order, as one Python expression of
    `c`; None when the rule has none (it always matches)."""
    nodes = [py.UnaryOp(py.Not(), _node(e, lets)) if negated else _node(e, lets) for e, negated in clauses]
    if not nodes:
        return None
    return nodes[0] if len(nodes) == 1 else py.BoolOp(py.And(), nodes)


class PlanRule(Protocol):
    condition: py.expr | None
    tag_prefix: str | None
    # Parts of the condition (as compiled) that hold wherever the plan has checked the rule's tag guard or the
    # field it is indexed by; None when it has no such guard.
    tag_guard: py.expr | None
    index_guard: py.expr | None


R = TypeVar("R", bound=PlanRule)
# plan(c, tag) -> (matched, failed, evaluated), rules by their number in the plan's rules: (plan, rules)
Plan = tuple[Callable[[Ctx, str], tuple[int, list[tuple[int, Exception]], int]], tuple]


INLINE_GROUPS_MAX = 8  # up to this many groups, a dispatch is an if / elif chain; beyond, a dict of functions


def compile_plan(
    always: Sequence[R],
    by_tag: dict[str, Sequence[R]],
    indexed: Sequence[tuple[str, str, dict[object, Sequence[R]], Sequence[R]]],
    name: str,
    data: dict[str, object] | None = None,
) -> Plan:
    """One function `plan(c, tag) -> (matched, failed, evaluated)` evaluating the rules that can match: `always`,
    those of `by_tag[tag]`, and for each (party, field, table, every) of `indexed` the rules table[that field of
    the party], or all of `every` if the field cannot be read; with the rules it numbers. `matched` has bit i
    set when rule i matches (an int: a cheap key for what the rules decide together), `failed` holds (i,
    exception) for a rule whose condition raises; `evaluated` counts the rules looked at."""
    rules: list[R] = []
    position: dict[int, int] = {}
    for r in [*always, *(r for rs in by_tag.values() for r in rs), *(r for g in indexed for r in g[3])]:
        if id(r) not in position:
            position[id(r)] = len(rules)
            rules.append(r)
    functions: list[py.stmt] = []  # the groups of a dict dispatch, one function each: g0, g1, ...
    tables: dict[str, dict[object, tuple[str, int]]] = {}  # T0, T1, ...: value -> (group function, its size)

    def evaluate(rs: Sequence[R], indexed: bool = False) -> list[py.stmt]:
        """Each rule's test where the plan has checked its tag guard (a rule with one is only evaluated after
        it), and when `indexed` the value of the field it is indexed by: those parts of it are true."""
        out = []
        for r in rs:
            known = [g for g in (r.tag_guard, r.index_guard if indexed else None) if g is not None]
            out.append(_evaluate(position[id(r)], r, assume(r.condition, known) if known else r.condition))
        return out

    def dispatch(subject: str, table: dict[object, Sequence[R]], indexed: bool) -> list[py.stmt]:
        """Count and evaluate the rules of table[subject]. Values with the same rules share one group, so a rule
        naming 64 tags is compiled once; a long chain of groups becomes a dict lookup (and never nests deep)."""
        groups: dict[tuple[int, ...], list[object]] = {}
        for value, rs in table.items():
            groups.setdefault(tuple(position[id(r)] for r in rs), []).append(value)
        if len(groups) <= INLINE_GROUPS_MAX:
            chain: list[py.stmt] = []
            for key, values in sorted(groups.items(), reverse=True):
                test = py.Compare(_name(subject), [py.In()], [_const(frozenset(values))])
                chain = [
                    py.If(test, [_add("n", len(key)), *evaluate([rules[i] for i in key], indexed)], chain)
                ]
            if len(groups) > 1:  # a value no rule is indexed by (most payments) is told by one test, not each
                every_value = frozenset(value for values in groups.values() for value in values)
                chain = [py.If(py.Compare(_name(subject), [py.In()], [_const(every_value)]), chain, [])]
            return chain
        label = f"T{len(tables)}"
        entries: dict[object, tuple[str, int]] = {}
        for key, values in groups.items():
            function = f"g{len(functions)}"
            body = [_set("m", _const(0)), *evaluate([rules[i] for i in key], indexed), py.Return(_name("m"))]
            functions.append(_def(function, ("c", "tag", "f"), _shared_reads(body)))
            entries.update((value, (function, len(key))) for value in values)
        tables[label] = entries
        found = py.Compare(_name("g"), [py.IsNot()], [_const(None)])
        run = _call(py.Subscript(_name("g"), _const(0), py.Load()), *(_name(a) for a in ("c", "tag", "f")))
        count = py.AugAssign(
            py.Name("n", py.Store()), py.Add(), py.Subscript(_name("g"), _const(1), py.Load())
        )
        return [
            _set("g", _call(_attr(_name(label), "get"), _name(subject))),
            py.If(found, [count, py.AugAssign(py.Name("m", py.Store()), py.BitOr(), run)], []),
        ]

    body: list[py.stmt] = [_set("m", _const(0)), _set("f", py.List([], py.Load())),
                           _set("n", _const(len(always))), *evaluate(always), *dispatch("tag", dict(by_tag), False)]  # fmt: skip
    for party, field, table, every in indexed:
        read = py.Try([_set("v", _party_field_node(party, field)), _set("ok", _const(True))],
                      [py.ExceptHandler(_name("Exception"), None, [_set("ok", _const(False))])], [], [])  # fmt: skip
        unreadable = [_add("n", len(every)), *evaluate(every)]
        body += [read, py.If(py.UnaryOp(py.Not(), _name("ok")), unreadable, dispatch("v", table, True))]
    body.append(py.Return(py.Tuple([_name("m"), _name("f"), _name("n")], py.Load())))
    body = _shared_reads(body)
    module = py.fix_missing_locations(py.Module([*functions, _def("plan", ("c", "tag"), body)], []))
    code = compile(validated(module), f"<policy plan {name}>", "exec")
    namespace: dict[str, Any] = {
        "__builtins__": {},
        "Exception": Exception,
        **(data or {}),
    }
    exec(code, namespace)  # noqa: S102 - a tree built above and validated, never text
    for label, entries in tables.items():
        namespace[label] = {value: (namespace[f], size) for value, (f, size) in entries.items()}
    return namespace["plan"], tuple(rules)


def compile_probes(conditions: Sequence[py.expr], data: dict[str, object]) -> list[Callable[[Ctx], object]]:
    """One function `g(c)` per condition node, each returning its value for a context (for coverage: which
    conditions were ever true, ever false). Built and validated like a plan; never used to decide."""
    functions = [_def(f"g{i}", ("c",), [py.Return(node)]) for i, node in enumerate(conditions)]
    module = py.fix_missing_locations(py.Module(functions, []))
    code = compile(validated(module), "<policy probes>", "exec")
    namespace: dict[str, Any] = {"__builtins__": {}, **data}
    exec(code, namespace)  # noqa: S102 - a tree built above and validated, never text
    return [namespace[f"g{i}"] for i in range(len(conditions))]


def _def(name: str, params: tuple[str, ...], body: list[py.stmt]) -> py.stmt:
    args = py.arguments(posonlyargs=[], args=[py.arg(p) for p in params], kwonlyargs=[], kw_defaults=[],
                        defaults=[])  # fmt: skip
    fields: dict[str, Any] = {"name": name, "args": args, "body": body, "decorator_list": [], "returns": None}
    if "type_params" in py.FunctionDef._fields:  # Python 3.12+
        fields["type_params"] = []
    return py.FunctionDef(**fields)


def _evaluate(i: int, rule: PlanRule, condition: py.expr | None) -> py.stmt:
    """`if <condition>: m |= 1 << i`, and a failing condition goes to f as (i, exception)."""
    this = _const(i)
    match = py.AugAssign(py.Name("m", py.Store()), py.BitOr(), _const(1 << i))
    test = condition  # may be shared by every branch and plan the rule sits in: CPython compiles it alike
    if rule.tag_prefix is not None:
        prefix = _call(_attr(_name("tag"), "startswith"), _const(rule.tag_prefix))
        test = prefix if test is None else py.BoolOp(py.And(), [prefix, test])
    if test is None:
        return match
    fail = py.Expr(_call(_attr(_name("f"), "append"), py.Tuple([this, _name("x")], py.Load())))
    return py.Try([py.If(test, [match], [])], [py.ExceptHandler(_name("Exception"), "x", [fail])], [], [])


# ---- rewriting a compiled tree: what the plan knows, and reads done once ---------------------------------------


def _rewritten(node: py.AST, swap: Callable[[py.AST], py.AST | None]) -> py.AST:
    """`node` with each subtree for which `swap` gives a node replaced by it, then folded (`_folded`). Nodes are
    shared between rules' branches and plans, so nothing is changed in place: a node is copied only on the way
    to a replaced one."""
    swapped = swap(node)
    if swapped is not None:
        return swapped
    changed: dict[str, object] = {}
    for name, value in py.iter_fields(node):
        if isinstance(value, py.AST):
            new = _rewritten(value, swap)
            if new is not value:
                changed[name] = new
        elif isinstance(value, list):
            items = [_rewritten(x, swap) if isinstance(x, py.AST) else x for x in value]
            if any(a is not b for a, b in zip(items, value, strict=True)):
                changed[name] = items
    if not changed:
        return node
    return _folded(type(node)(**{**dict(py.iter_fields(node)), **changed}))


def _folded(node: py.AST) -> py.AST:
    """`not` of a constant, and `and` / `or` without the operands that cannot change them (true in an `and`,
    false in an `or`): a checked condition joins only true-or-false values, so the result is the same value.
    An operand that decides (false in an `and`) is kept as it is: what comes before it may still raise."""
    if isinstance(node, py.UnaryOp) and isinstance(node.op, py.Not) and isinstance(node.operand, py.Constant):
        return _const(not node.operand.value)
    if isinstance(node, py.BoolOp):
        neutral = isinstance(node.op, py.And)
        values = [v for v in node.values if not (isinstance(v, py.Constant) and v.value is neutral)]
        if not values:
            return _const(neutral)
        if len(values) == 1:
            return values[0]
        if len(values) < len(node.values):
            return py.BoolOp(node.op, values)
    return node


def assume(condition: py.expr | None, known: Sequence[py.expr]) -> py.expr | None:
    """`condition` where each of `known` (parts of it, as compiled) is true: those parts replaced by True and
    the rest folded; None when nothing is left to evaluate (it always matches there)."""
    if condition is None:
        return None
    shapes = {py.dump(k) for k in known}

    def swap(node: py.AST) -> py.AST | None:
        if type(node) in (py.Compare, py.Call) and py.dump(node) in shapes:
            return _const(True)
        return None

    result = _rewritten(condition, swap)
    return None if isinstance(result, py.Constant) and result.value is True else result  # type: ignore[return-value]


_READS_SHARED = frozenset({"calendar_window"})  # a Ctx read of constant arguments
_VIEW_READS = frozenset({"window", "account_total"})  # a read of the view, whatever its arguments


def _is_c(node: py.AST) -> bool:
    return isinstance(node, py.Name) and node.id == "c"


def _shared_reads(body: list[py.stmt]) -> list[py.stmt]:
    """The function body with each history window or balance it reads more than once (the same call: its
    arguments are expressions of the decision's context, the same value wherever they stand) read at most once,
    into a local: `(w0 if w0 is not None else (w0 := c.view.window(...)))`, after `w0 = None` on entry; and the
    amount, read more than once, read once into `a`. A read that raises leaves its local None: the next rule
    reading it raises the same way, as before. A dispatch's group functions (g0, ...) keep their own locals: a
    window read in two of them is read twice, as the same value."""

    def is_read(node: py.AST) -> bool:
        if not isinstance(node, py.Call) or not isinstance(node.func, py.Attribute):
            return False
        on, name = node.func.value, node.func.attr
        if name in _VIEW_READS:  # c.view.window(...): its arguments are what the compiler made of a rule
            return isinstance(on, py.Attribute) and on.attr == "view" and _is_c(on.value)
        return name in _READS_SHARED and _is_c(on) and all(isinstance(a, py.Constant) for a in node.args)

    def is_amount(node: py.AST) -> bool:  # c.proposal.amount_tiyn
        proposal = node.value if isinstance(node, py.Attribute) and node.attr == "amount_tiyn" else None
        return (
            isinstance(proposal, py.Attribute)
            and proposal.attr == "proposal"
            and isinstance(proposal.value, py.Name)
            and proposal.value.id == "c"
        )

    counts: dict[str, int] = {}
    amounts = 0
    for stmt in body:
        for node in py.walk(stmt):
            if is_read(node):
                key = py.dump(node)
                counts[key] = counts.get(key, 0) + 1
            elif is_amount(node):
                amounts += 1
    names = {key: f"w{i}" for i, key in enumerate(k for k, n in counts.items() if n > 1)}
    if not names and amounts < 2:
        return body

    def swap(node: py.AST) -> py.AST | None:
        if amounts > 1 and is_amount(node):
            return _name("a")
        if not is_read(node):
            return None
        local = names.get(py.dump(node))
        if local is None:
            return None
        known = py.Compare(_name(local), [py.IsNot()], [_const(None)])
        return py.IfExp(known, _name(local), py.NamedExpr(py.Name(local, py.Store()), node))

    prelude = [_set(local, _const(None)) for local in names.values()]
    if amounts > 1:
        prelude.append(_set("a", _attr(_attr(_c(), "proposal"), "amount_tiyn")))
    return prelude + [_rewritten(stmt, swap) for stmt in body]  # type: ignore[misc]


def _name(name: str) -> py.Name:
    return py.Name(name, py.Load())


def _set(name: str, value: py.expr) -> py.stmt:
    return py.Assign([py.Name(name, py.Store())], value)


def _add(name: str, value: int) -> py.stmt:
    return py.AugAssign(py.Name(name, py.Store()), py.Add(), _const(value))


def validated(tree: py.Module) -> py.Module:
    """The tree, if it uses only what this compiler makes; TypeError otherwise (a bug here, never a policy)."""
    for node in py.walk(tree):
        if not isinstance(node, _NODES_ALLOWED):
            raise TypeError(f"policy compiler made a {type(node).__name__} node")
        if isinstance(node, py.Name) and node.id not in _NAMES and not _NUMBERED_NAMES.fullmatch(node.id):
            raise TypeError(f"policy compiler made a reference to {node.id!r}")
        if isinstance(node, py.Attribute):
            on_ctx = isinstance(node.value, py.Name) and node.value.id == "c"
            if node.attr not in (_CTX_ATTRS if on_ctx else _VALUE_ATTRS):
                raise TypeError(f"policy compiler made an attribute {node.attr!r}")
        if isinstance(node, py.Constant) and type(node.value) not in (str, int, bool, type(None), frozenset):
            raise TypeError(f"policy compiler made a constant of type {type(node.value).__name__}")
    return tree
