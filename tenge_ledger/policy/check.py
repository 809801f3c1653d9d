"""The checker: names, types, limits, effects, cost and what each rule reads, over a whole policy set.

It collects every problem it finds (not just the first) as located diagnostics. Types are few: money (int
tiyn), number (int), string, bool, duration, kind (account kind), status, and lists of them. Like CEL, the cost
of a rule is known before it runs: there are no loops, every node costs one unit and a history window (an
indexed query) costs `policy_window_cost_units`."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from fractions import Fraction

from ..core import limits
from ..core.records import DECIDED_KINDS, HOLD_ON_TIMEOUT, PAYMENT_KINDS, AccountKind, AccountStatus
from ..core.windows import filter_key
from . import ast
from .data import DataRef, Table, cell_value, read_rows, sha256_of
from .errors import Diagnostic, PolicyCheckError, source_line
from .shares import share_text

MONEY, NUMBER, STRING, BOOL, DURATION, KIND, STATUS = (
    "money",
    "number",
    "string",
    "bool",
    "duration",
    "kind",
    "status",
)
KIND_NAME, STATUS_NAME = (
    "kind name",
    "status name",
)  # a bare word that is only meaningful against kind / status

# Operation fields a rule may read by bare name.
OP_FIELDS: dict[str, str] = {
    "amount": MONEY,  # the amount moved, tiyn
    "memo": STRING,  # the operation's memo or purpose, a seizure's court order, a freeze's reason ("" when none)
    "signer": STRING,  # the handle of the account that signed it (a court voiding a provisional seizure)
    # The hold a post or void settles, or a hold operation's own: who may release it, and when it times out
    "releaser": STRING,
    "deadline": NUMBER,  # unix seconds, like `time`
    "time": NUMBER,  # ledger time of the operation, unix seconds (no hidden clock: it is the operation's time)
    "expires_on": STRING,  # ISO date the moved tag expires on ("" when it never does)
    "tag_expired": BOOL,  # the moved tag has an expiry date at or before the operation's date
}
# Fields of payer / payee.
PARTY_FIELDS: dict[str, str] = {
    "handle": STRING,
    "kind": KIND,
    "tier": NUMBER,  # an account without a tier reads as -1
    "bank": STRING,  # "" when none
    "status": STATUS,
    "balance": MONEY,  # all buckets
}
# Calls on payer / payee: name -> (argument types, optional argument types, result type).
PARTY_CALLS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "balance": ((STRING,), (), MONEY),  # balance("budget:roads-2026"); "" is the untagged bucket
    "out_sum": ((DURATION,), (STRING,), MONEY),  # sum sent in the last N (optionally of one tag)
    "out_count": ((DURATION,), (STRING,), NUMBER),
    "in_sum": ((DURATION,), (STRING,), MONEY),
    "in_count": ((DURATION,), (STRING,), NUMBER),
}
# The operation kinds a rule may name (their one place is core/records.py), and those a rule without `on` sees.
RULE_KINDS = tuple(k.value for k in DECIDED_KINDS)
DEFAULT_KINDS = tuple(k.value for k in PAYMENT_KINDS)
HOLD_KINDS = ("transfer", "seize")  # a hold makes a transfer pending and a seizure provisional
# What an operation of a lifecycle kind does not have, so a rule on it cannot read it: reads by prefix.
_MONEY_READS = ("op.amount", "op.tag", "op.expires_on", "op.tag_expired")
_HOLD_READS = ("op.releaser", "op.deadline")  # only a hold, a post and a void have a hold
_NO_HOLD = "it has no hold to read a releaser or deadline of"
_MISSING_READS: dict[str, tuple[tuple[str, ...], str]] = {
    "sweep": (
        ("payer", "payee", *_MONEY_READS, "op.memo", *_HOLD_READS),
        "a sweep has no parties, amount, tag, memo or single hold",
    ),
    "freeze": ((*_MONEY_READS, *_HOLD_READS), "a freeze moves no money: it has no amount, tag or hold"),
    "open_account": (
        (*_MONEY_READS, *_HOLD_READS),
        "opening an account moves no money: it has no amount, tag or hold",
    ),
    **{kind: (_HOLD_READS, f"a {kind} is no hold: {_NO_HOLD}") for kind in ("issue", "redeem", "transfer")},
    "seize": (_HOLD_READS, f"a seizure is no hold until a rule makes it one: {_NO_HOLD}"),
}
# What a history window may filter its postings by: the counterparty's (the operation's other party's) kind,
# bank or `zone` attribute, as they were when the posting was made.
COUNTERPARTY_KEYS = ("kind", "bank", "zone")
KIND_NAMES = frozenset(k.value for k in AccountKind)
STATUS_NAMES = frozenset(s.value for s in AccountStatus)
_ORDERED = {MONEY, NUMBER, STRING, DURATION}
_NEGATE = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
# What a ref can be, before any condition narrows it (for "can never hold").
_INF = limits.amount_tiyn_max * 10**6


@dataclass
class CheckedRule:
    """A rule that passed the checker: where it applies, what it reads and what it costs (plan.py works out how
    the engine can skip it)."""

    rule: ast.Rule
    file: str
    kinds: tuple[str, ...]  # operation kinds it applies to
    reads: tuple[str, ...]  # the data-access manifest: every field it reads
    cost: int
    data: tuple[DataRef, ...] = ()  # the lists and tables it reads


@dataclass(frozen=True, slots=True)
class _Def:
    expr: ast.Expr
    type: str | None  # None when the condition did not check
    reads: frozenset[str]
    cost: int  # of its whole expansion
    data: dict[str, DataRef]
    line: int


@dataclass(frozen=True, slots=True)
class Scope:
    """What a file's rules may name besides the operation: its lets (folded values), named conditions, and
    lists and tables."""

    values: dict[str, object]
    data: dict[str, DataRef]
    defs: dict[str, ast.Expr] = field(default_factory=dict)
    attrs: dict[str, tuple[str, object, bool]] = field(
        default_factory=dict
    )  # key -> (type, default, has one)


@dataclass
class CheckedSet:
    files: list[ast.PolicyFile]
    rules: list[CheckedRule]
    # The value of every let of each file (by path), folded once in declaration order: a let names only earlier
    # lets, so folding is linear in the file and nothing downstream expands a definition again.
    constants: dict[str, dict[str, object]] = field(default_factory=dict)
    # The lists and tables declared in each file (by path), by name.
    data: dict[str, dict[str, DataRef]] = field(default_factory=dict)
    defs: dict[str, dict[str, ast.Expr]] = field(default_factory=dict)  # named conditions of each file
    attrs: dict[str, dict[str, tuple[str, object, bool]]] = field(default_factory=dict)  # attribute schemas
    warnings: list[Diagnostic] = field(
        default_factory=list
    )  # what does not stop a set, but a reviewer should see

    def scope(self, path: str) -> Scope:
        return Scope(self.constants.get(path, {}), self.data.get(path, {}), self.defs.get(path, {}),
                     self.attrs.get(path, {}))  # fmt: skip

    def tables(self) -> dict[str, frozenset | Table]:
        """Every list and table by the label the compiled plan knows it by (D0, D1, ...)."""
        return {ref.label: ref.values for refs in self.data.values() for ref in refs.values()}


def check(files: list[ast.PolicyFile], data_files: dict[str, str] | None = None) -> CheckedSet:
    """Check a whole set, with the text of the reference data files it names (by file name); raises
    PolicyCheckError listing every problem found."""
    data_files = data_files or {}
    diags: list[Diagnostic] = []
    if len(files) > limits.policy_files_max:
        diags.append(
            Diagnostic("<set>", 0, 0, f"{len(files)} files, over the limit of {limits.policy_files_max}")
        )
    total_rules = sum(len(f.rules) for f in files)
    if total_rules > limits.policy_rules_max:
        first = files[0].path if files else "<set>"
        diags.append(
            Diagnostic(first, 0, 0, f"{total_rules} rules, over the limit of {limits.policy_rules_max}")
        )
    seen: dict[str, tuple[str, int]] = {}
    filters: dict[str, tuple[str, int]] = {}  # the set's filtered windows: key -> (file, line) of the first
    checked: list[CheckedRule] = []
    constants: dict[str, dict[str, object]] = {}
    attrs: dict[str, dict[str, tuple[str, object, bool]]] = {}
    attr_warnings: list[Diagnostic] = []
    data: dict[str, dict[str, DataRef]] = {}
    defs: dict[str, dict] = {}
    labels = iter(range(1_000_000))
    for f in files:
        c = _FileChecker(f, diags)
        c.filters = filters
        constants[f.path] = c.lets
        data[f.path] = c.data
        defs[f.path] = c.defs
        attrs[f.path] = c.attrs
        if len(f.lets) > limits.policy_let_count_max:
            c.error(
                f.lets[limits.policy_let_count_max], f"more than {limits.policy_let_count_max} let constants"
            )
        for item in f.items:
            if isinstance(item, ast.Let):
                c.let(item)
                continue
            if isinstance(item, ast.ListDecl | ast.TableDecl):
                c.data_decl(item, data_files, f"D{next(labels)}")
                continue
            if isinstance(item, ast.Def):
                c.def_decl(item)
                continue
            if isinstance(item, ast.AttrDecl):
                c.attr_decl(item)
                continue
            if item.name in seen:
                where = seen[item.name]
                c.error(item, f"rule {item.name!r} is already defined at {where[0]}:{where[1]}",
                        notes=((where[1], 1, "the first rule of that name is here"),) if where[0] == f.path else ())  # fmt: skip
            else:
                seen[item.name] = (f.path, item.line)
            result = c.rule(item)
            if result is not None:
                checked.append(result)
        for key, node in c.undeclared_attrs.items():
            attr_warnings.append(Diagnostic(f.path, node.line, node.col, f"warning: attribute {key!r} is read without "
                                            f"a declaration, so a missing one reads as \"\": declare it, e.g. `attr "
                                            f"{key}: string default \"\"`", source_line(f.source, node.line)))  # fmt: skip
    if diags:
        raise PolicyCheckError(diags)
    scoped_defs = {path: {name: d.expr for name, d in found.items()} for path, found in defs.items()}
    return CheckedSet(files=files, rules=checked, constants=constants, data=data, defs=scoped_defs, attrs=attrs,
                      warnings=attr_warnings)  # fmt: skip


class _FileChecker:
    def __init__(self, f: ast.PolicyFile, diags: list[Diagnostic]) -> None:
        self.f = f
        self.diags = diags
        self.lets: dict[str, object] = {}  # let name -> its folded value
        self.let_types: dict[str, str | None] = {}
        self.let_places: dict[str, tuple[int, int]] = {}  # let name -> where it is declared (for notes)
        self.data: dict[str, DataRef] = {}  # lists and tables declared so far
        self.data_failed: set[str] = set()  # declared, but did not check (reported there)
        self.data_used: dict[str, DataRef] = {}  # of the rule being checked
        self.defs: dict[str, _Def] = {}  # named conditions checked so far
        self.attrs: dict[str, tuple[str, object, bool]] = {}  # key -> (type, default, has a default)
        self.undeclared_attrs: dict[str, ast.Attr] = {}  # read without a schema: first read of each key
        self.reads: set[str] = set()
        self.filters: dict[str, tuple[str, int]] = {}  # shared by the set's files (see check)
        self.cost = 0
        self.ok = True

    def error(self, node: ast.Node, message: str, notes: tuple[tuple[int, int, str], ...] = ()) -> None:
        self.ok = False
        line = source_line(self.f.source, node.line)
        self.diags.append(
            Diagnostic(self.f.path, node.line, node.col, message, line, _width(node, line), notes)
        )

    # ---- declarations ----------------------------------------------------------------------------------------

    def let(self, item: ast.Let) -> None:
        if item.name in self._declared() or item.name in OP_FIELDS or item.name in KIND_NAMES | STATUS_NAMES:
            self.error(item, f"{item.name!r} is already a name; pick another for this constant")
            return
        if not _is_constant(item.expr, self.lets):
            if not _names_failed_let(item.expr, self.let_types, self.lets):  # else already reported there
                self.error(
                    item.expr, "a let is a constant: a literal, a list of literals, or other constants"
                )
            self.let_types.setdefault(item.name, None)
            return
        self.let_places[item.name] = (item.line, item.col)
        t = self.let_types[item.name] = self.type_of(item.expr)
        value = _constant_value(item.expr, self.lets)
        if t is None:
            return
        if value is None:
            self.error(item.expr, "a let is a constant: a literal, a list of literals, or other constants")
            return
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > limits.amount_tiyn_max:
            self.error(item.expr, f"this constant adds up to {value}, beyond the ledger's largest amount")
            return
        self.lets[item.name] = value

    def data_decl(self, item: ast.ListDecl | ast.TableDecl, data_files: dict[str, str], label: str) -> None:
        """A list or table: its entries checked (inline, or from its CSV file) and loaded for lookups."""
        name = item.name
        if name in self._declared() or name in OP_FIELDS:
            self.error(item, f"{name!r} is already a name; pick another for this {_kind_of(item)}")
            return
        self.data_failed.add(name)  # until it checks
        source = item.source
        text = None
        if source is not None:
            if "/" in source.name or "\\" in source.name or not source.name.endswith(".csv"):
                self.error(
                    source, "a data file is a .csv file in the policy's own folder, named without a path"
                )
                return
            text = data_files.get(source.name)
            if text is None:
                self.error(source, f"no data file {source.name!r} beside the policy")
                return
        before = len(self.diags)
        if isinstance(item, ast.ListDecl):
            key_type, values = self._list_values(item, text)
            value_type = None
        else:
            key_type, value_type, values = self._table_values(item, text)
        if len(self.diags) != before or values is None:
            self.ok = False
            return
        digest = sha256_of(text) if text is not None else None
        self.data_failed.discard(name)
        self.data[name] = DataRef(_kind_of(item), name, label, key_type, value_type, values,
                                  source.name if source else None, digest, item.line)  # fmt: skip

    def _list_values(self, item: ast.ListDecl, text: str | None) -> tuple[str | None, frozenset | None]:
        if text is not None and item.source is not None:
            values = []
            for number, cells in read_rows(item.source.name, text, 1, self.diags):
                value, why = cell_value(cells[0], STRING)
                if why:
                    self._data_error(item.source.name, text, number, why)
                values.append(value)
            return STRING, frozenset(values)
        items = item.items or ()
        if len(items) > limits.policy_list_entries_max:
            self.error(item, f"more than {limits.policy_list_entries_max} entries")
            return None, None
        types = set()
        for entry in items:
            if not _is_constant(entry, self.lets):
                self.error(entry, "list items are constants")
                continue
            types.add(self.type_of(entry))
        if None in types:
            return None, None
        if len(types) > 1:
            self.error(item, f"a list holds values of one type, not {' and '.join(sorted(types))}")  # type: ignore[arg-type]
            return None, None
        return next(iter(types), None), frozenset(_constant_value(e, self.lets) for e in items)

    def _table_values(self, item: ast.TableDecl, text: str | None):
        value_type = item.value_type
        if value_type not in (MONEY, NUMBER, STRING):
            self.error(item, f"a table holds money, number or string values, not {value_type!r}")
            return None, None, None
        default = None
        if item.default is not None:
            t = self.type_of(item.default)
            default = _constant_value(item.default, self.lets)
            if t is not None and (t != value_type or default is None):
                self.error(item.default, f"the default is a constant {value_type}")
        entries: dict[object, object] = {}
        if text is not None and item.source is not None:
            key_type = STRING
            for number, cells in read_rows(item.source.name, text, 2, self.diags):
                key, why = cell_value(cells[0], STRING)
                value, why2 = cell_value(cells[1], value_type)
                if why or why2:
                    self._data_error(item.source.name, text, number, why or why2 or "")
                elif key in entries:
                    self._data_error(item.source.name, text, number, f"the key {key!r} is given twice")
                entries[key] = value
        else:
            key_types = set()
            for key_expr, value_expr in item.entries or ():
                kt, vt = self.type_of(key_expr), self.type_of(value_expr)
                key, value = _constant_value(key_expr, self.lets), _constant_value(value_expr, self.lets)
                if key is None or value is None:
                    self.error(key_expr if key is None else value_expr, "table keys and values are constants")
                    continue
                if vt is not None and vt != value_type:
                    self.error(value_expr, f"this table holds {value_type} values, not a {vt}")
                key_types.add(kt)
                if key in entries:
                    self.error(key_expr, f"the key {key!r} is given twice")
                entries[key] = value
            if len(key_types) > 1 or None in key_types:
                if None not in key_types:
                    self.error(item, "a table's keys are of one type")
                return None, None, None
            key_type = next(iter(key_types), STRING)
        return key_type, value_type, Table(item.name, entries, default)

    def _data_error(self, name: str, text: str, line: int, message: str) -> None:
        self.ok = False
        self.diags.append(Diagnostic(name, line, 1, message, source_line(text, line)))

    def _declared(self) -> set[str]:
        return set(self.let_types) | set(self.data) | self.data_failed | set(self.defs)

    def attr_decl(self, item: ast.AttrDecl) -> None:
        if item.key in self.attrs:
            self.error(item, f"attribute {item.key!r} is already declared")
            return
        if item.value_type not in (MONEY, NUMBER, STRING):
            self.error(item, f"an attribute is money, number or string, not {item.value_type!r}")
            return
        default, has_default = None, item.default is not None
        if item.default is not None:
            t, default = self.type_of(item.default), _constant_value(item.default, self.lets)
            if t is not None and (t != item.value_type or default is None):
                self.error(item.default, f"the default is a constant {item.value_type}")
                return
        self.attrs[item.key] = (item.value_type, default, has_default)

    def def_decl(self, item: ast.Def) -> None:
        """A named condition: checked once here; a rule that names it takes its type, reads and cost (the cost
        of its expansion, so nesting defs cannot hide work from the rule's cost limit) in O(1)."""
        if item.name in self._declared() or item.name in OP_FIELDS or item.name in KIND_NAMES | STATUS_NAMES:
            self.error(item, f"{item.name!r} is already a name; pick another for this condition")
            return
        saved = (self.reads, self.cost, self.ok, self.data_used)
        self.reads, self.cost, self.ok, self.data_used = set(), 0, True, {}
        t = self.type_of(item.expr)
        if t is not None and t != BOOL:
            self.error(
                item.expr, f"a def names a condition (true or false), not a {t}; for a constant use let"
            )
        if self.cost > limits.policy_rule_cost_max:
            self.error(
                item, f"condition costs {self.cost} units, over the limit of {limits.policy_rule_cost_max}"
            )
        self.defs[item.name] = _Def(item.expr, BOOL if self.ok else None, frozenset(self.reads), self.cost,
                                    dict(self.data_used), item.line)  # fmt: skip
        self.reads, self.cost, self.ok, self.data_used = saved

    def rule(self, rule: ast.Rule) -> CheckedRule | None:
        self.reads = set()
        self.data_used = {}
        self.cost = 0
        self.ok = True
        kinds = self.guard(rule)
        for clause in rule.clauses:
            t = self.type_of(clause.expr)
            if t is not None and t != BOOL:
                self.error(clause.expr, f"a condition must be true or false, not a {t}")
        self.effects(rule, kinds)
        self.kind_reads(rule, kinds)
        self.never_holds(rule)
        if self.cost > limits.policy_rule_cost_max:
            self.error(rule, f"rule costs {self.cost} units, over the limit of {limits.policy_rule_cost_max}")
        if not self.ok:
            return None
        reads = {"op.kind"} | self.reads
        return CheckedRule(rule, self.f.path, kinds, tuple(sorted(reads)), self.cost,
                           tuple(self.data_used.values()))  # fmt: skip

    def guard(self, rule: ast.Rule) -> tuple[str, ...]:
        if rule.guard is None:
            return DEFAULT_KINDS
        kinds = []
        for kind in rule.guard.kinds:
            if kind not in RULE_KINDS:
                self.error(rule.guard, f"unknown operation kind {kind!r}{_suggest(kind, RULE_KINDS)}; "
                           f"rules decide {', '.join(RULE_KINDS)}")  # fmt: skip
            elif kind in kinds:
                self.error(rule.guard, f"{kind} is listed twice")
            else:
                kinds.append(kind)
        return tuple(kinds)

    def effects(self, rule: ast.Rule, kinds: tuple[str, ...]) -> None:
        kinds_seen: dict[type, ast.Effect] = {}
        for effect in rule.effects:
            self.cost += 1
            if type(effect) in kinds_seen and not isinstance(effect, ast.ReportTo):
                self.error(effect, "a rule has each kind of effect at most once")
            kinds_seen[type(effect)] = effect
            if isinstance(effect, ast.HoldFor):
                if rule.guard is None or not set(kinds) <= set(HOLD_KINDS):
                    self.error(
                        effect,
                        "hold turns a transfer into a pending payment and a seizure into a provisional one: "
                        "the rule must say `on transfer`, `on seize` or both",
                    )
                elif "seize" in kinds and effect.releaser is None:
                    self.error(effect, 'a provisional seizure names who releases it: `released by "court"`')
                elif "seize" in kinds and effect.releaser is not None and effect.releaser.handle is None:
                    self.error(effect.releaser, "a provisional seizure is released by a named account, "
                               "not by the payee it pays")  # fmt: skip
                if effect.on_timeout is not None and effect.on_timeout not in HOLD_ON_TIMEOUT:
                    self.error(effect, f"a hold does `post` (to the payee) or `void` (back to the payer) at its "
                               f"timeout, not {effect.on_timeout!r}")  # fmt: skip
                s = effect.duration.seconds
                if not 0 < s <= limits.hold_timeout_s_max:
                    self.error(
                        effect.duration,
                        f"a hold times out after 1 s to {limits.hold_timeout_s_max // 86400} days",
                    )
            elif isinstance(effect, ast.Split):
                self.split(effect)
            elif isinstance(effect, ast.Withhold):
                self.withhold(effect)
            elif isinstance(effect, ast.SetTag):
                from ..core.canonical import TAG_RE

                if not TAG_RE.fullmatch(effect.tag):
                    self.error(
                        effect, f"{effect.tag!r} is not a tag (lower-case letters, digits and ':._/-')"
                    )
            elif isinstance(effect, ast.ReportTo | ast.Deny) and not getattr(effect, "reason", "x"):
                self.error(effect, "give a reason")
        if ast.SetTag in kinds_seen and ast.ClearTag in kinds_seen:
            self.error(kinds_seen[ast.ClearTag], "a rule cannot both set and clear the tag")
        reshapes = [e for e in rule.effects if isinstance(e, ast.Split | ast.Withhold | ast.Route)]
        if len(reshapes) > 1:
            self.error(
                reshapes[1], "one split, withhold or route per rule; write one split with several portions"
            )
        lifecycle = [k for k in kinds if k not in DEFAULT_KINDS]
        retags = [e for e in rule.effects if isinstance(e, ast.SetTag | ast.ClearTag)]
        if lifecycle and (reshapes or retags):
            self.error((reshapes or retags)[0], f"split, withhold, route and set/clear tag reshape a payment's "
                       f"credit: a rule on {', '.join(lifecycle)} may deny, permit, report or hold")  # fmt: skip
        if ast.HoldFor in kinds_seen and (reshapes or ast.SetTag in kinds_seen or ast.ClearTag in kinds_seen):
            self.error(kinds_seen[ast.HoldFor], "a held payment cannot also be split, routed or re-tagged")
        if ast.Deny in kinds_seen and len([e for e in rule.effects if not isinstance(e, ast.ReportTo)]) > 1:
            self.error(kinds_seen[ast.Deny], "a rule that denies may also report, but has no other effect")

    def kind_reads(self, rule: ast.Rule, kinds: tuple[str, ...]) -> None:
        """A rule on a kind that lacks what it reads (a sweep's payer, a freeze's amount) would fail on every
        operation of that kind, so deny it always: say so now, at the rule's `on`."""
        for kind in kinds:
            missing, why = _MISSING_READS.get(kind, ((), ""))
            found = sorted(r for r in self.reads if r.startswith(missing)) if missing else []
            if found:
                self.error(rule.guard or rule, f"{why}, so a rule on {kind} cannot read {', '.join(found)}")

    def withhold(self, effect: ast.Withhold) -> None:
        self.reads.add("op.amount")
        if not 0 < effect.share < 1:
            self.error(effect, "withhold takes more than 0% and less than 100%")
        bounds = []
        for bound in (effect.min_amount, effect.max_amount):
            if bound is None:
                bounds.append(None)
                continue
            t, value = self.type_of(bound), _constant_value(bound, self.lets)
            if t is not None and (t != MONEY or not isinstance(value, int)):
                self.error(bound, "a fee's min and max are constant money, like 500 KZT")
            bounds.append(value if isinstance(value, int) else None)
        low, high = bounds
        if low is not None and high is not None and low > high:
            self.error(effect, "the fee's min is above its max")

    def split(self, effect: ast.Split) -> None:
        self.reads.add("op.amount")
        if len(effect.portions) > limits.policy_portions_max:
            self.error(effect, f"more than {limits.policy_portions_max} portions")
        total = Fraction(0)
        for i, portion in enumerate(effect.portions):
            if portion.share is None:
                if i != len(effect.portions) - 1:
                    self.error(
                        portion, "`remaining` must be the last portion (it takes what the others leave)"
                    )
                continue
            if portion.share <= 0:
                self.error(portion, "a portion is more than 0%")
            total += portion.share
        has_remaining = any(p.share is None for p in effect.portions)
        if total > 1:
            self.error(effect, f"portions add up to {share_text(total)}, over 100%")
        elif has_remaining and total == 1:
            self.error(effect, "portions already add up to 100%: nothing remains for `remaining`")
        elif not has_remaining and total != 1:
            self.error(
                effect,
                f"portions add up to {share_text(total)}: make them 100% or end with `remaining to ...`",
            )

    # ---- expressions -----------------------------------------------------------------------------------------

    def type_of(self, e: ast.Expr) -> str | None:
        """The type of an expression, or None after reporting why it has none."""
        self.cost += 1
        if isinstance(e, ast.Str):
            return STRING
        if isinstance(e, ast.Money):
            return MONEY
        if isinstance(e, ast.Number):
            return NUMBER
        if isinstance(e, ast.Duration):
            return DURATION
        if isinstance(e, ast.Bool):
            return BOOL
        if isinstance(e, ast.TagRef):
            self.reads.add("op.tag")
            return STRING
        if isinstance(e, ast.Name):
            return self.name(e)
        if isinstance(e, ast.Field):
            t = PARTY_FIELDS.get(e.name)
            if t is None:
                extra = (
                    " (attributes are read as payer.attr.NAME)"
                    if e.name not in PARTY_CALLS
                    else " (call it: balance(tag))"
                )
                self.error(e, f"unknown field {e.party}.{e.name}{_suggest(e.name, PARTY_FIELDS)}{extra}")
                return None
            self.reads.add(f"{e.party}.{e.name}")
            return t
        if isinstance(e, ast.Attr):
            self.reads.add(f"{e.party}.attr.{e.key}")
            declared = self.attrs.get(e.key)
            if declared is None:
                self.undeclared_attrs.setdefault(e.key, e)
                return STRING
            return declared[0]
        if isinstance(e, ast.Call):
            return self.call(e)
        if isinstance(e, ast.ListLit):
            self.error(e, "a list stands only after `in`")
            return None
        if isinstance(e, ast.Not):
            t = self.type_of(e.operand)
            if t is not None and t != BOOL:
                self.error(e, f"`not` needs true or false, not a {t}")
            return BOOL
        if isinstance(e, ast.BoolOp):
            for operand in e.operands:
                t = self.type_of(operand)
                if t is not None and t != BOOL:
                    self.error(operand, f"`{e.op}` joins conditions; this is a {t}")
            return BOOL
        if isinstance(e, ast.Compare):
            return self.compare(e)
        if isinstance(e, ast.In):
            return self.in_(e)
        if isinstance(e, ast.InList):
            return self.in_list(e)
        if isinstance(e, ast.Lookup):
            return self.lookup(e)
        if isinstance(e, ast.StartsWith | ast.Has):
            word = "starts_with" if isinstance(e, ast.StartsWith) else "has"
            for side in (e.left, e.right):
                t = self.type_of(side)
                if t is not None and t != STRING:
                    self.error(side, f"`{word}` works on strings, not a {t}")
            return BOOL
        if isinstance(e, ast.Arith):
            lt, rt = self.type_of(e.left), self.type_of(e.right)
            if lt is None or rt is None:
                return None
            if lt != rt or lt not in (MONEY, NUMBER):
                self.error(e, f"cannot {'add' if e.op == '+' else 'subtract'} a {rt} {'to' if e.op == '+' else 'from'} a {lt}"
                           + (": money needs a unit, like 5 KZT" if {lt, rt} == {MONEY, NUMBER} else ""))  # fmt: skip
                return None
            return lt
        self.error(e, "not an expression")  # pragma: no cover
        return None

    def name(self, e: ast.Name) -> str | None:
        if e.name in self.let_types:
            return self.let_types[e.name]
        if e.name in OP_FIELDS:
            self.reads.add(f"op.{e.name}")
            if e.name in ("tag_expired", "expires_on"):
                self.reads.add("op.tag")
            return OP_FIELDS[e.name]
        if e.name in KIND_NAMES:
            return KIND_NAME
        if e.name in STATUS_NAMES:
            return STATUS_NAME
        if e.name in self.defs:
            named = self.defs[e.name]
            self.reads |= named.reads
            self.cost += named.cost
            self.data_used.update(named.data)
            if named.type is None:
                self.ok = False  # its errors are reported where it is declared
            return named.type
        if e.name in self.data:
            ref = self.data[e.name]
            self.error(e, f"{e.name} is a {ref.kind}: use it as `x in {e.name}`" if ref.kind == "list"
                       else f"{e.name} is a table: look a key up with {e.name}[key]")  # fmt: skip
            return None
        if e.name in self.data_failed:
            self.ok = False
            return None
        choices = list(OP_FIELDS) + list(self.let_types)
        self.error(e, f"unknown name {e.name!r}{_suggest(e.name, choices + sorted(KIND_NAMES))}")
        return None

    def call(self, e: ast.Call) -> str | None:
        spec = PARTY_CALLS.get(e.name)
        if spec is None:
            self.error(e, f"unknown function {e.party}.{e.name}(){_suggest(e.name, PARTY_CALLS)}")
            return None
        required, optional, result = spec
        if not len(required) <= len(e.args) <= len(required) + len(optional):
            n = len(required)
            self.error(
                e, f"{e.name}() takes {n}{' or ' + str(n + len(optional)) if optional else ''} arguments"
            )
            return None
        calendar = e.name != "balance" and _calendar_unit(e.args[0], self.let_types) is not None
        for i, (arg, want) in enumerate(zip(e.args, required + optional, strict=False)):
            if i == 0 and calendar:
                continue  # `day` or `month`: a calendar window
            t = self.type_of(arg)
            if t is not None and t != want:
                self.error(arg, f"{e.name}() wants a {want} here, not a {t}")
                calendar = calendar or i == 0  # the window is reported: no second error about it
        if e.name == "balance":
            if e.filters:
                self.error(
                    e.filters[0], "balance() takes no counterparty filter: only history sums and counts do"
                )
            self.reads.add(f"{e.party}.balance")
            self.cost += 5
            return result
        counterparty = self._counterparty(e) if e.filters else ""
        window = e.args[0]
        seconds = _constant_value(window, self.lets)
        if calendar:
            pass  # a calendar window, or one already reported
        elif not isinstance(window, ast.Duration | ast.Name) or not isinstance(seconds, int):
            self.error(window, "the window is a fixed duration like 24h or 30d, or the calendar's day or month",
                       notes=self._declared_here(window))  # fmt: skip
        elif not 0 < seconds <= limits.policy_window_s_max:
            self.error(window, f"a history window is at most {limits.policy_window_s_max // 86400} days: "
                       "longer is unbounded work per payment", notes=self._declared_here(window))  # fmt: skip
        direction = "out" if e.name.startswith("out") else "in"
        text = window.text if isinstance(window, ast.Duration) else getattr(window, "name", "?")
        by_tag = ", by tag" if len(e.args) > 1 else ""
        self.reads.add(f"{e.party}.history.{direction}({text}{by_tag}{counterparty})")
        self.cost += limits.policy_window_cost_units
        return result

    def _counterparty(self, e: ast.Call) -> str:
        """Check a window's counterparty filters (constants: the set's filtered aggregates are kept for exactly
        the filters it names) and count its key against the set's limit; the manifest's words for it."""
        given: dict[str, ast.CounterpartyFilter] = {}
        for f in e.filters:
            if f.key not in COUNTERPARTY_KEYS:
                self.error(f, f"unknown counterparty filter {f.key!r}: a history sum or count filters by the "
                           f"counterparty's kind, bank or zone{_suggest(f.key, COUNTERPARTY_KEYS)}")  # fmt: skip
                continue
            if f.key in given:
                self.error(f, f"the counterparty filter {f.key!r} is given twice",
                           notes=((given[f.key].line, given[f.key].col, "first given here"),))  # fmt: skip
                continue
            given[f.key] = f
            t = self.type_of(f.value)
            if t is None:
                continue
            if f.key == "kind":
                if t != KIND_NAME:
                    self.error(
                        f.value, f"a counterparty filter's kind is an account kind like bank, not a {t}"
                    )
            elif t != STRING or not _is_constant(f.value, self.lets):
                self.error(f.value, f"a counterparty filter's {f.key} is a constant string (or a let of one), "
                           f"not a {t if t != STRING else 'value read from the operation'}")  # fmt: skip
        if len(e.args) > 1 and not _is_constant(e.args[1], self.lets):
            self.error(e.args[1], "with a counterparty filter, the tag is a constant string: the set keeps one "
                       "running total per filter it names")  # fmt: skip
        if not self.ok:
            return ""
        key = window_filter(e, self.lets)
        if key is not None and key not in self.filters:
            if len(self.filters) >= limits.policy_window_filters_max:
                self.error(e, f"more than {limits.policy_window_filters_max} different counterparty filters in "
                           "the set: each is a running total the ledger keeps on every payment")  # fmt: skip
                return ""
            self.filters[key] = (self.f.path, e.line)
        return ", counterparty " + " ".join(f"{k}={_constant_value(f.value, self.lets)}"
                                            for k, f in sorted(given.items()))  # fmt: skip

    def _declared_here(self, e: ast.Expr) -> tuple[tuple[int, int, str], ...]:
        """A secondary label at the let a name refers to."""
        if isinstance(e, ast.Name) and e.name in self.let_places:
            line, col = self.let_places[e.name]
            return ((line, col, f"{e.name} is declared here"),)
        return ()

    def compare(self, e: ast.Compare) -> str | None:
        for side, other in ((e.left, e.right), (e.right, e.left)):
            if self._unknown_kind_or_status(side, other):
                return BOOL
        lt, rt = self.type_of(e.left), self.type_of(e.right)
        if lt is None or rt is None:
            return BOOL
        for a, b, node in ((lt, rt, e.right), (rt, lt, e.left)):
            if a == KIND and b == KIND_NAME or a == STATUS and b == STATUS_NAME:
                if e.op not in ("==", "!="):
                    self.error(e, f"a {a} is compared with == or != only")
                return BOOL
            if a == KIND and b != KIND:
                self.error(node, f"compare a kind with a kind name: {', '.join(sorted(KIND_NAMES))}")
                return BOOL
            if a == STATUS and b != STATUS:
                self.error(node, f"compare a status with one of: {', '.join(sorted(STATUS_NAMES))}")
                return BOOL
        if lt in (KIND_NAME, STATUS_NAME) or rt in (KIND_NAME, STATUS_NAME):
            self.error(e, "a kind or status name is compared with payer.kind / payee.kind or .status")
            return BOOL
        if lt != rt:
            hint = ": money needs a unit, like 5 KZT" if {lt, rt} == {MONEY, NUMBER} else ""
            self.error(e, f"type mismatch: cannot compare a {lt} with a {rt}{hint}")
        elif e.op not in ("==", "!=") and lt not in _ORDERED:
            self.error(e, f"a {lt} has no order; use == or !=")
        return BOOL

    def _unknown_kind_or_status(self, field: ast.Expr, other: ast.Expr) -> bool:
        """`payee.kind == minr`: say it is an unknown account kind, and which kinds exist."""
        if not (
            isinstance(field, ast.Field) and field.name in ("kind", "status") and isinstance(other, ast.Name)
        ):
            return False
        names = KIND_NAMES if field.name == "kind" else STATUS_NAMES
        if other.name in names or other.name in self.let_types or other.name in OP_FIELDS:
            return False
        what = "account kind" if field.name == "kind" else "account status"
        self.error(
            other,
            f"unknown {what} {other.name!r}{_suggest(other.name, names)} (one of: {', '.join(sorted(names))})",
        )
        return True

    def in_(self, e: ast.In) -> str | None:
        lt = self.type_of(e.left)
        if len(e.items.items) > limits.policy_list_items_max:
            self.error(e.items, f"more than {limits.policy_list_items_max} items")
        if not e.items.items:
            self.error(e.items, "an empty list: the condition can never hold")
        for item in e.items.items:
            if self._unknown_kind_or_status(e.left, item):
                continue
            if not _is_constant(item, self.lets):
                self.error(item, "list items are constants")
                continue
            t = self.type_of(item)
            want = {KIND: KIND_NAME, STATUS: STATUS_NAME}.get(lt or "", lt)
            if t is not None and lt is not None and t != want:
                if t == KIND_NAME and lt == KIND or t == STATUS_NAME and lt == STATUS:
                    continue
                self.error(item, f"type mismatch: a {t} in a list compared with a {lt}")
        return BOOL

    def _data_ref(self, node: ast.Node, name: str, kind: str) -> DataRef | None:
        ref = self.data.get(name)
        if ref is None:
            if name not in self.data_failed:
                choices = [n for n, r in self.data.items() if r.kind == kind]
                self.error(node, f"unknown {kind} {name!r}{_suggest(name, choices)}; declare it first: "
                           + ("list NAME = [...] or = file \"x.csv\"" if kind == "list"
                              else "table NAME of money = {...} or = file \"x.csv\""))  # fmt: skip
            else:
                self.ok = False
            return None
        if ref.kind != kind:
            self.error(node, f"{name} is a {ref.kind}, not a {kind}")
            return None
        self.data_used[name] = ref
        self.reads.add(f"{kind} {name}")
        return ref

    def in_list(self, e: ast.InList) -> str | None:
        lt = self.type_of(e.left)
        ref = self._data_ref(e, e.name, "list")
        if ref is None or lt is None or ref.key_type is None:
            return BOOL
        want = {KIND_NAME: KIND, STATUS_NAME: STATUS}.get(ref.key_type, ref.key_type)
        if lt != want:
            self.error(
                e, f"type mismatch: the list {e.name} holds {ref.key_type} values, compared with a {lt}"
            )
        return BOOL

    def lookup(self, e: ast.Lookup) -> str | None:
        kt = self.type_of(e.key)
        ref = self._data_ref(e, e.table, "table")
        if ref is None:
            return None
        if kt is not None and kt != ref.key_type:
            self.error(e.key, f"the table {e.table} is keyed by {ref.key_type}, not a {kt}")
        return ref.value_type

    # ---- conditions that can never hold ----------------------------------------------------------------------

    def never_holds(self, rule: ast.Rule) -> None:
        """Constant-false conditions and contradictory bounds on the same value (`amount < 0 KZT`, `tag == "a"
        and tag == "b"`, `payer.tier > 3`) are errors: such a rule is dead code that a reviewer would trust."""
        if not self.ok:
            return
        atoms: list[tuple[ast.Expr, bool]] = []
        for clause in rule.clauses:
            conjuncts(clause.expr, not clause.negated, atoms)
        ranges: dict[str, list] = {}
        equal: dict[str, str] = {}
        unequal: dict[str, set] = {}
        for expr, positive in atoms:
            value = _constant_value(expr, self.lets)
            if isinstance(value, bool):
                if value != positive:
                    self.error(expr, "this condition can never hold")
                    return
                continue
            if not isinstance(expr, ast.Compare):
                continue
            op = expr.op if positive else _NEGATE[expr.op]
            left, right = expr.left, expr.right
            lv, rv = _constant_value(left, self.lets), _constant_value(right, self.lets)
            if lv is not None and rv is None:
                left, right, rv = right, left, lv
                op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
            if rv is None or _constant_value(left, self.lets) is not None:
                continue
            key = _ref_key(left)
            if key is None:
                continue
            if isinstance(rv, int):
                lo, hi = ranges.setdefault(key, list(_domain(left)))
                if op == "==":
                    lo, hi = max(lo, rv), min(hi, rv)
                elif op == "<":
                    hi = min(hi, rv - 1)
                elif op == "<=":
                    hi = min(hi, rv)
                elif op == ">":
                    lo = max(lo, rv + 1)
                elif op == ">=":
                    lo = max(lo, rv)
                ranges[key] = [lo, hi]
                if lo > hi:
                    self.error(expr, "this condition can never hold (together with the others of this rule)")
                    return
            elif isinstance(rv, str):
                if op == "==":
                    if key in equal and equal[key] != rv or rv in unequal.get(key, ()):
                        self.error(
                            expr, "this condition can never hold (together with the others of this rule)"
                        )
                        return
                    equal[key] = rv
                elif op == "!=":
                    if equal.get(key) == rv:
                        self.error(
                            expr, "this condition can never hold (together with the others of this rule)"
                        )
                        return
                    unequal.setdefault(key, set()).add(rv)


def conjuncts(e: ast.Expr, positive: bool, out: list) -> None:
    if positive and isinstance(e, ast.BoolOp) and e.op == "and":
        for operand in e.operands:
            conjuncts(operand, True, out)
    elif not positive and isinstance(e, ast.BoolOp) and e.op == "or":
        for operand in e.operands:
            conjuncts(operand, False, out)
    elif isinstance(e, ast.Not):
        conjuncts(e.operand, not positive, out)
    else:
        out.append((e, positive))


def _ref_key(e: ast.Expr) -> str | None:
    if isinstance(e, ast.TagRef):
        return "tag"
    if isinstance(e, ast.Name):
        return e.name
    if isinstance(e, ast.Field):
        return f"{e.party}.{e.name}"
    if isinstance(e, ast.Attr):
        return f"{e.party}.attr.{e.key}"
    if isinstance(e, ast.Call):
        args = ",".join(str(getattr(a, "text", getattr(a, "value", getattr(a, "name", "?")))) for a in e.args)
        return f"{e.party}.{e.name}({args})"
    return None


def _domain(e: ast.Expr) -> tuple[int, int]:
    """The values a numeric ref can take at all."""
    if isinstance(e, ast.Name) and e.name == "amount":
        return 1, limits.amount_tiyn_max
    if isinstance(e, ast.Field) and e.name == "tier":
        return -1, limits.tier_max
    if isinstance(e, ast.Field | ast.Call):
        return 0, _INF
    return -_INF, _INF


def _names_failed_let(e: ast.Expr, declared: dict[str, str | None], lets: dict[str, object]) -> bool:
    """Whether `e` names a let that was declared but did not check (its error is reported where it is)."""
    todo = [e]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Name) and node.name in declared and node.name not in lets:
            return True
        if isinstance(node, ast.Arith):
            todo += [node.left, node.right]
        elif isinstance(node, ast.ListLit):
            todo += list(node.items)
    return False


def _is_constant(e: ast.Expr, lets: dict[str, object]) -> bool:
    if isinstance(e, ast.Str | ast.Money | ast.Number | ast.Duration | ast.Bool):
        return True
    if isinstance(e, ast.Name):
        return e.name in lets or e.name in KIND_NAMES or e.name in STATUS_NAMES
    if isinstance(e, ast.ListLit):
        return all(_is_constant(i, lets) for i in e.items)
    if isinstance(e, ast.Arith):
        return _is_constant(e.left, lets) and _is_constant(e.right, lets)
    return False


def _constant_value(e: ast.Expr, lets: dict[str, object]) -> object:
    """The value of a constant expression (ints for money, numbers and durations), else None. `lets` holds the
    folded values of the lets in scope, so a name is one lookup: the work is the size of `e`, whose depth the
    parser bounds."""
    if isinstance(e, ast.Str | ast.Bool):
        return e.value
    if isinstance(e, ast.Money):
        return e.tiyn
    if isinstance(e, ast.Number):
        return e.value
    if isinstance(e, ast.Duration):
        return e.seconds
    if isinstance(e, ast.Name):
        if e.name in lets:
            return lets[e.name]
        if e.name in KIND_NAMES or e.name in STATUS_NAMES:
            return e.name
        return None
    if isinstance(e, ast.Arith):
        left, right = _constant_value(e.left, lets), _constant_value(e.right, lets)
        if isinstance(left, int) and isinstance(right, int) and not isinstance(left, bool):
            return left + right if e.op == "+" else left - right
        return None
    if isinstance(e, ast.Compare):
        left, right = _constant_value(e.left, lets), _constant_value(e.right, lets)
        if left is None or right is None or type(left) is not type(right):
            return None
        ops = {"==": left == right, "!=": left != right}
        if e.op in ops:
            return ops[e.op]
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[e.op]  # type: ignore[operator]
    return None


def constant_value(e: ast.Expr, lets: dict[str, object]) -> object:
    return _constant_value(e, lets)


def window_filter(e: ast.Call, lets: dict[str, object]) -> str | None:
    """The key of the filtered aggregate a checked window reads: its counterparty filters (and its tag, when it
    names one) as canonical JSON, e.g. `[["kind","bank"]]`; None for a window without counterparty filters."""
    if not e.filters:
        return None
    pairs = [(f.key, str(_constant_value(f.value, lets))) for f in e.filters]
    if len(e.args) > 1:
        pairs.append(("tag", str(_constant_value(e.args[1], lets))))
    return filter_key(pairs)


CALENDAR_UNITS = ("day", "month")  # windows from the start of the ledger's calendar day or month


def _calendar_unit(e: ast.Expr, declared: dict) -> str | None:
    """`day` or `month` as a window argument (unless a let of that name hides it)."""
    if isinstance(e, ast.Name) and e.name in CALENDAR_UNITS and e.name not in declared:
        return e.name
    return None


def _width(node: ast.Node, line: str) -> int:
    """Columns to underline for a node: its whole text when it ends on its line (to the end of the line when it
    goes on), else a name, string or number token's width."""
    end_line, end_col = node.end
    if end_line == node.line and end_col > node.col:
        return end_col - node.col
    if end_line > node.line:
        return max(len(line.rstrip()) - node.col + 1, 1)
    rest = line[node.col - 1 :]
    match = re.match(r'"(?:[^"\\]|\\.)*"|[A-Za-z0-9_.]+', rest)
    return len(match.group(0)) if match else 1


def _kind_of(item: ast.ListDecl | ast.TableDecl) -> str:
    return "list" if isinstance(item, ast.ListDecl) else "table"


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
