"""Rule planning, between check.py and compile.py: from each checked rule, what lets the engine skip it without
evaluating it (the tags it can match, a party's tier or kind it needs), the dispatch of one operation kind's
rules into one compiled function, and the warnings that need those guards (two reshaping rules that can match
one payment; tagged money guarded on one way out only)."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import ast
from .check import CheckedRule, CheckedSet, Scope, conjuncts, constant_value
from .compile import Plan, compile_plan
from .errors import Diagnostic, source_line


@dataclass(frozen=True, slots=True)
class PlannedRule:
    """A checked rule and the guards planning found for it."""

    checked: CheckedRule
    tag_equals: frozenset[str] | None  # the rule only matches these tags (a cheap pre-filter)
    tag_prefix: str | None  # ... or tags with this prefix
    index: tuple[str, frozenset] | None  # ("payer.tier", {0}): the rule only matches these values
    # Every match needs field in allowed[field] and field not in excluded[field] (from ==, != and in; for the
    # warnings: two rules whose allowed values do not meet can never match the same payment).
    allowed: dict[str, frozenset] = field(default_factory=dict)
    excluded: dict[str, frozenset] = field(default_factory=dict)
    # The conditions the guards come from: true wherever the plan has checked the guard (the tag's, or the
    # party field's value a rule is indexed by), so the compiled rule need not evaluate them again there.
    tag_atom: ast.Expr | None = None
    index_atom: ast.Expr | None = None

    @property
    def rule(self) -> ast.Rule:
        return self.checked.rule

    @property
    def file(self) -> str:
        return self.checked.file

    @property
    def kinds(self) -> tuple[str, ...]:
        return self.checked.kinds


def plan_rule(checked: CheckedRule, scope: Scope) -> PlannedRule:
    tag_equals, tag_prefix, tag_atom = _tag_guard(checked.rule, scope.values)
    allowed, excluded = _value_sets(checked.rule, scope.values)
    index, index_atom = _index_guard(checked.rule, scope.values)
    return PlannedRule(checked, tag_equals, tag_prefix, index, allowed, excluded, tag_atom, index_atom)


def _value_sets(rule: ast.Rule, lets: dict[str, object]) -> tuple[dict[str, frozenset], dict[str, frozenset]]:
    """The constant values each field must have (==, in) and must not have (!=, not in) for the rule to match."""
    atoms: list[tuple[ast.Expr, bool]] = []
    for clause in rule.clauses:
        conjuncts(clause.expr, not clause.negated, atoms)
    allowed: dict[str, frozenset] = {}
    excluded: dict[str, frozenset] = {}
    for expr, positive in atoms:
        if isinstance(expr, ast.Compare) and expr.op in ("==", "!="):
            key, values = _field_key(expr.left), [constant_value(expr.right, lets)]
            if expr.op == "!=":
                positive = not positive
        elif isinstance(expr, ast.In):
            key, values = _field_key(expr.left), [constant_value(i, lets) for i in expr.items.items]
        else:
            continue
        if key is None or any(v is None for v in values):
            continue
        found = frozenset(str(v) for v in values)
        if positive:
            allowed[key] = allowed[key] & found if key in allowed else found
        else:
            excluded[key] = excluded.get(key, frozenset()) | found
    return allowed, excluded


def _field_key(e: ast.Expr) -> str | None:
    if isinstance(e, ast.TagRef):
        return "tag"
    if isinstance(e, ast.Field):
        return f"{e.party}.{e.name}"
    if isinstance(e, ast.Attr):
        return f"{e.party}.attr.{e.key}"
    return None


def plan_rules(checked: CheckedSet) -> list[PlannedRule]:
    return [plan_rule(r, checked.scope(r.file)) for r in checked.rules]


def warnings(checked: CheckedSet) -> list[Diagnostic]:
    """What a reviewer should see about how the set's rules meet, though none of it stops the set."""
    planned = plan_rules(checked)
    sources = {f.path: f.source for f in checked.files}
    return [w for r in planned for w in _warnings(r, planned, sources[r.file])] + _overlapping_shapers(
        planned, sources
    )


def _covers(other: PlannedRule, r: PlannedRule, kind: str) -> bool:
    """Whether `other` denies `kind` for at least the tags `r` guards."""
    if kind not in other.kinds or not any(isinstance(e, ast.Deny) for e in other.rule.effects):
        return False
    if r.tag_equals is not None and other.tag_equals is not None:
        return r.tag_equals <= other.tag_equals
    if r.tag_prefix is not None and other.tag_prefix is not None:
        return r.tag_prefix.startswith(other.tag_prefix)
    return False


def _overlapping_shapers(rules: list[PlannedRule], sources: dict[str, str]) -> list[Diagnostic]:
    """Two rules that split or withhold and can match the same payment both apply, their portions together (in
    name order): a warning, so the author sees the combined effect (and `policy explain` shows the order)."""
    shapers = sorted((r for r in rules if any(isinstance(e, ast.Split | ast.Withhold) for e in r.rule.effects)),
                     key=lambda r: r.rule.name)  # fmt: skip
    out = []
    for i, later in enumerate(shapers):
        for earlier in shapers[:i]:
            if _disjoint(earlier, later):
                continue
            where = later.rule
            out.append(Diagnostic(later.file, where.line, where.col,
                                  f"warning: rules {earlier.rule.name!r} ({earlier.file}:{earlier.rule.line}) and "
                                  f"{later.rule.name!r} both split or withhold and can match the same payment: "
                                  "both apply, portions in rule-name order, over 100% together is a conflict "
                                  "that denies", source_line(sources[later.file], where.line)))  # fmt: skip
    return out


def _disjoint(a: PlannedRule, b: PlannedRule) -> bool:
    """Whether two rules can never match the same operation, as far as their guards show."""
    if not set(a.kinds) & set(b.kinds):
        return True
    if a.tag_equals is not None and b.tag_equals is not None and not a.tag_equals & b.tag_equals:
        return True
    for key in a.allowed.keys() & b.allowed.keys():
        if not a.allowed[key] & b.allowed[key]:
            return True
    for one, other in ((a, b), (b, a)):
        for key, values in one.allowed.items():
            if values <= other.excluded.get(key, frozenset()):
                return True
    return False


EXITS = ("redeem", "hold")  # the ways money leaves an account besides a transfer


def _warnings(r: PlannedRule, rules: list[PlannedRule], source: str) -> list[Diagnostic]:
    """A rule that keeps tagged money from going somewhere on `transfer` only: the same money can leave by
    redeem (cashed out at a bank) or hold (a pending payment), which the rule does not see."""
    denies = any(isinstance(e, ast.Deny) for e in r.rule.effects)
    if not denies or r.tag_equals is None and r.tag_prefix is None or "transfer" not in r.kinds:
        return []
    missing = [k for k in EXITS if k not in r.kinds and not any(_covers(other, r, k) for other in rules)]
    if not missing:
        return []
    where = r.rule.guard or r.rule
    return [Diagnostic(r.file, where.line, where.col,
                       f"warning: rule {r.rule.name!r} guards tagged money on transfer, but the same money can "
                       f"leave by {' and '.join(missing)}: add them to `on`, or a rule that covers them",
                       source_line(source, where.line))]  # fmt: skip


def _tag_guard(
    rule: ast.Rule, lets: dict[str, object]
) -> tuple[frozenset[str] | None, str | None, ast.Expr | None]:
    """If every match needs `tag == "x"`, `tag in [...]` or `tag starts_with "p"`, the engine can skip the rule
    by looking at the tag alone: (the tags, or the prefix, and that condition)."""
    atoms: list[tuple[ast.Expr, bool]] = []
    for clause in rule.clauses:
        conjuncts(clause.expr, not clause.negated, atoms)
    for expr, positive in atoms:
        if not positive:
            continue
        if isinstance(expr, ast.Compare) and expr.op == "==" and isinstance(expr.left, ast.TagRef):
            value = constant_value(expr.right, lets)
            if isinstance(value, str):
                return frozenset({value}), None, expr
        if isinstance(expr, ast.In) and isinstance(expr.left, ast.TagRef):
            values = [constant_value(i, lets) for i in expr.items.items]
            if all(isinstance(v, str) for v in values):
                return frozenset(values), None, expr  # type: ignore[arg-type]
        if isinstance(expr, ast.StartsWith) and isinstance(expr.left, ast.TagRef):
            value = constant_value(expr.right, lets)
            if isinstance(value, str):
                return None, value, expr
    return None, None, None


INDEXABLE_FIELDS = ("tier", "kind")  # in order of preference: a tier usually selects fewer rules than a kind


def _index_guard(
    rule: ast.Rule, lets: dict[str, object]
) -> tuple[tuple[str, frozenset] | None, ast.Expr | None]:
    """If every match needs `payer.tier == 0`, `payee.kind in [miner, exchange]` and the like, the engine
    indexes the rule by that field's value and never looks at it for other values: ((field, values), that
    condition)."""
    atoms: list[tuple[ast.Expr, bool]] = []
    for clause in rule.clauses:
        conjuncts(clause.expr, not clause.negated, atoms)
    found: dict[str, tuple[frozenset, ast.Expr]] = {}
    for expr, positive in atoms:
        if not positive:
            continue
        if isinstance(expr, ast.Compare) and expr.op == "==" and isinstance(expr.left, ast.Field):
            field, values = expr.left, [constant_value(expr.right, lets)]
        elif isinstance(expr, ast.In) and isinstance(expr.left, ast.Field):
            field, values = expr.left, [constant_value(i, lets) for i in expr.items.items]
        else:
            continue
        if field.name in INDEXABLE_FIELDS and all(v is not None for v in values):
            found.setdefault(f"{field.party}.{field.name}", (frozenset(values), expr))
    for name in INDEXABLE_FIELDS:
        for party in ("payer", "payee"):
            key = f"{party}.{name}"
            if key in found:
                return (key, found[key][0]), found[key][1]
    return None, None


def dispatch(kind: str, rules, tables: dict[str, object]) -> Plan:
    """The rules of one operation kind as one function that evaluates only the rules that can match: those
    without a guard, those that need the payment's tag, and those indexed by a party's tier or kind."""
    always: list = []
    by_tag: dict[str, list] = {}
    by_field: dict[str, dict[object, list]] = {}
    for rule in rules:
        if rule.tag_equals is not None:
            for value in rule.tag_equals:
                by_tag.setdefault(value, []).append(rule)
        elif rule.index is not None:
            field, values = rule.index
            table = by_field.setdefault(field, {})
            for value in values:
                table.setdefault(value, []).append(rule)
        else:
            always.append(rule)
    indexed = []
    for field, table in sorted(by_field.items()):
        party, name = field.split(".")
        every = tuple({id(r): r for rs in table.values() for r in rs}.values())
        indexed.append((party, name, table, every))
    return compile_plan(always, by_tag, indexed, kind, tables)
