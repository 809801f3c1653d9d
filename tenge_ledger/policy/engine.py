"""The policy engine: compiled rules, indexed by operation kind, combined into one Decision.

How rules combine (order never matters; every list below is sorted by rule name):
- Deny overrides everything, as in Cedar: if any matching rule denies, the operation is refused with every
  denying rule's reason, and only the reports of the denying rules are filed ("denied and reported").
- A rule that fails at run time denies, naming the rule (fail closed). Cedar skips a failing policy, which is
  fail-open; money must not be.
- Otherwise the effects of all matching rules apply together: reports are filed; holds turn a transfer into a
  pending payment and a seizure into a provisional one (the longest timeout wins; two different releasers, or
  two different things to do at the timeout, are a conflict and deny); portions of splits, withholdings and
  routes redirect the payee's credit; set/clear tag re-tags the credits.
- Rules are compiled per operation kind (core/records.py DECIDED_KINDS); a kind no rule sees has no plan, so
  deciding it costs one dict lookup and the payment kinds' plans are the same whatever lifecycle rules exist.

Allotments (the idea of Formance Numscript's destination allotments, where portions must sum to 100% and
`remaining` takes the rest): every portion is an exact share of the operation's amount, divided as shares.py
says (floor, then largest remainder for a split that names every destination; fees with a floor and a cap).
What the portions leave goes to the `remaining` destination: the one a rule names (`remaining to X`, `route to
X`) or else the payee. Portions of all matching rules together over 100%, or two rules naming different
`remaining` destinations, are a conflict: deny. Shaping rules apply in name order (explain lists it).
Credits therefore always sum to the amount exactly, so money is conserved."""

from __future__ import annotations

import ast as py
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction

from ..core.hooks import LedgerView, Proposal
from ..core.records import DECIDED_KINDS, KIND_BY_BODY, Decision, Posting, Report
from . import ast
from .check import CALENDAR_UNITS, CheckedSet, Scope, window_filter
from .compile import Ctx, Plan, compile_probes, condition_node, constant_value
from .plan import PlannedRule, dispatch, plan_rule
from .shares import Portion, allocator, plain_shares, share_text

COMBINATIONS_CACHED_MAX = 4096  # combinations of matching rules whose decision is remembered per engine


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    file: str
    line: int
    kinds: frozenset[str]
    tag_equals: frozenset[str] | None
    tag_prefix: str | None
    condition: py.expr | None  # a Python expression of the evaluation context; None: always matches
    deny: str | None
    permit: str | None
    reports: tuple[tuple[str, str], ...]
    hold: (
        tuple[int, str | None, str | None] | None
    )  # (timeout_s, releaser handle or None, on_timeout or None)
    portions: tuple[Portion, ...]  # fixed shares of the amount, in the order written
    remaining: tuple[str | None] | None  # (handle,) when the rule names where the rest goes; (None,) = payee
    set_tag: str | None
    clear_tag: bool
    reads: tuple[str, ...]
    index: tuple[str, frozenset] | None = None
    fair: bool = False  # a split naming every destination: rounding residue by largest remainder
    summary: dict = field(default_factory=dict)  # what `explain` shows for a match: computed once
    # The parts of `condition` a plan checks before evaluating it (compile.PlanRule): its tag guard's, and the
    # condition on the party field it is indexed by (plan.PlannedRule).
    tag_guard: py.expr | None = None
    index_guard: py.expr | None = None

    def effect_texts(self) -> list[str]:
        out = []
        if self.deny is not None:
            out.append(f"deny: {self.deny}")
        if self.permit is not None:
            out.append(f"permit: {self.permit}" if self.permit else "permit")
        out += [f"report to {agency}: {reason}" for agency, reason in self.reports]
        if self.hold:
            out.append(f"hold {self.hold[0]} s" + (f" released by {self.hold[1]}" if self.hold[1] else "")
                       + (f" on timeout {self.hold[2]}" if self.hold[2] else ""))  # fmt: skip
        out += [p.text() for p in self.portions]
        if self.remaining is not None:
            out.append(f"remaining to {self.remaining[0] or 'payee'}")
        if self.set_tag is not None:
            out.append(f"set tag {self.set_tag}")
        if self.clear_tag:
            out.append("clear tag")
        return out


def compile_rule(planned: PlannedRule, lets: Scope) -> CompiledRule:
    rule = _compile_rule(planned, lets)
    summary = {"rule": rule.name, "file": rule.file, "line": rule.line, "effects": rule.effect_texts()}
    return replace(rule, summary=summary)


def _compile_rule(planned: PlannedRule, lets: Scope) -> CompiledRule:
    checked = planned.checked
    rule = checked.rule
    clauses = [(clause.expr, clause.negated) for clause in rule.clauses]
    condition = condition_node(clauses, lets)
    tag_guard = condition_node([(planned.tag_atom, False)], lets) if planned.tag_atom is not None else None
    index_guard = (
        condition_node([(planned.index_atom, False)], lets) if planned.index_atom is not None else None
    )
    deny = permit = set_tag = None
    clear = False
    reports: list[tuple[str, str]] = []
    hold = None
    portions: list[Portion] = []
    remaining: tuple[str | None] | None = None
    fair = False
    for e in rule.effects:
        if isinstance(e, ast.Deny):
            deny = e.reason
        elif isinstance(e, ast.Permit):
            permit = e.message or ""
        elif isinstance(e, ast.ReportTo):
            reports.append((e.agency, e.reason))
        elif isinstance(e, ast.HoldFor):
            hold = (e.duration.seconds, e.releaser.handle if e.releaser else None, e.on_timeout)
        elif isinstance(e, ast.Split):
            parts = list(e.portions)
            if parts[-1].share is None:
                remaining = (parts.pop().target.handle,)
            else:  # names every destination: its rounding residue goes by largest remainder
                fair = True
            portions += [Portion(p.share, p.target.handle) for p in parts if p.share]
        elif isinstance(e, ast.Withhold):
            low = constant_value(e.min_amount, lets.values) if e.min_amount is not None else None
            high = constant_value(e.max_amount, lets.values) if e.max_amount is not None else None
            portions.append(Portion(e.share, e.target.handle, low or 0, high))  # type: ignore[arg-type]
        elif isinstance(e, ast.Route):
            remaining = (e.target.handle,)
        elif isinstance(e, ast.SetTag):
            set_tag = e.tag
        elif isinstance(e, ast.ClearTag):
            clear = True
    return CompiledRule(
        name=rule.name, file=checked.file, line=rule.line, kinds=frozenset(checked.kinds),
        tag_equals=planned.tag_equals, tag_prefix=planned.tag_prefix, condition=condition, deny=deny,
        permit=permit, reports=tuple(reports), hold=hold, portions=tuple(portions), remaining=remaining,
        set_tag=set_tag, clear_tag=clear, reads=checked.reads, index=planned.index, fair=fair,
        tag_guard=tag_guard, index_guard=index_guard,
    )  # fmt: skip


class PolicySetEngine:
    """The compiled engine of one policy set. `decide` is what the ledger calls for every payment."""

    def __init__(self, checked: CheckedSet, policy_set_id: str, version: int | None = None) -> None:
        self._policy_set_id = policy_set_id
        self._version = (
            version  # read-only: one engine per (set, version), owned by the ledger that loaded it
        )
        self.checked = checked
        rules: list[CompiledRule] = []
        # The untagged and counterparty-filtered history windows the set reads, known before it runs, each with
        # what a payment needs for a rule reading it to match (its kind, a party's kind or tier, its tag): the
        # ledger reads them for a whole chunk of payments in grouped queries, for the payments that need them.
        windows: set[tuple[str, str, int | str, str | None, tuple]] = set()
        for f in checked.files:
            lets = checked.scope(f.path)
            by_rule = {id(r.rule): r for r in checked.rules if r.file == f.path}
            for rule in f.rules:
                if id(rule) in by_rule:
                    planned = plan_rule(by_rule[id(rule)], lets)
                    rules.append(compile_rule(planned, lets))
                    _collect_windows(rule, lets.values, windows, _window_needs(planned))
            for item in f.items:  # a named condition's windows: read by whichever rule names it
                if isinstance(item, ast.Def):
                    _collect_windows(item, lets.values, windows, ())
        self.rules = sorted(rules, key=lambda r: r.name)  # decisions never depend on file or rule order
        self.by_kind: dict[str, tuple[CompiledRule, ...]] = {
            kind.value: tuple(r for r in self.rules if kind.value in r.kinds) for kind in DECIDED_KINDS
        }
        tables = checked.tables()
        # Kinds with the same rules share one compiled plan (a set of unguarded rules compiles once, not 4 times).
        shared: dict[tuple[str, ...], Plan] = {}
        self.plans: dict[str, Plan] = {}
        for kind, rules in self.by_kind.items():
            if not rules:  # a kind no rule sees gets no plan: deciding it is one dict miss
                continue
            names = tuple(r.name for r in rules)
            if names not in shared:
                shared[names] = dispatch(kind, rules, tables)
            self.plans[kind] = shared[names]
        # The plans by the type of an operation's body, which names its kind: no Operation.kind call per payment.
        self._planned: dict[type, tuple[str, Callable, tuple[CompiledRule, ...]]] = {
            body: (kind.value, *self.plans[kind.value])
            for body, kind in KIND_BY_BODY.items()
            if kind in self.plans
        }
        self._allow = Decision(policy_set_id=policy_set_id)
        self._combinations: dict[tuple, Callable[[Proposal], Decision]] = {}
        self.windows = frozenset(windows)
        # The filtered aggregates the ledger keeps while this set is enabled (check.window_filter keys).
        self.filters = frozenset(w[3] for w in windows if w[3] is not None)
        # Whether any window reads the unfiltered running flows (the `activity` snapshots), the ledger keeps them
        # only then. Not from `windows`: a tagged window is read when its rule runs, never prefetched.
        self.activity = any(_reads_activity(f) for f in checked.files)

    @property
    def policy_set_id(self) -> str:
        return self._policy_set_id

    @property
    def version(self) -> int | None:
        return self._version

    def probes(self) -> list[Probe]:
        """Every `when` / `unless` clause of every rule as a function of a context, for `policy test --coverage`."""
        found: list[Probe] = []
        nodes = []
        for f in self.checked.files:
            scope = self.checked.scope(f.path)
            names = {r.rule.name for r in self.checked.rules if r.file == f.path}
            for rule in f.rules:
                if rule.name not in names:
                    continue
                kinds = next(r.kinds for r in self.checked.rules if r.rule is rule)
                for i, clause in enumerate(rule.clauses):
                    nodes.append(condition_node([(clause.expr, False)], scope))
                    found.append(
                        Probe(f.path, rule.name, clause.line, i, clause.negated, frozenset(kinds), None)
                    )
        functions = compile_probes(nodes, self.checked.tables()) if nodes else []
        return [replace(p, function=fn) for p, fn in zip(found, functions, strict=True)]

    def decide(self, proposal: Proposal, view: LedgerView) -> Decision:
        planned = self._planned.get(type(proposal.op.body))
        if planned is None:
            return self._allow
        kind, plan, rules = planned
        matched, failed, evaluated = plan(Ctx(proposal, view), proposal.tag)
        if failed:
            errors = [
                (rules[i], f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)) for i, exc in failed
            ]
            errors.sort(key=lambda e: e[0].name)
            return self._combine(proposal, _chosen(rules, matched), errors, evaluated)
        if not matched:
            return self._allow
        # What a combination of matching rules decides depends only on the rules, the operation's kind and how
        # many were evaluated, except a split's amounts: work it out once per combination, then reuse it.
        key = (kind, matched, evaluated)
        combination = self._combinations.get(key)
        if combination is None:
            if len(self._combinations) >= COMBINATIONS_CACHED_MAX:
                self._combinations.clear()
            chosen = _chosen(rules, matched)
            combination = self._combinations[key] = self._combination(proposal, chosen, evaluated)
        return combination(proposal)

    # ---- combining ---------------------------------------------------------------------------------------------

    def _combination(
        self, first: Proposal, matched: list[CompiledRule], evaluated: int
    ) -> Callable[[Proposal], Decision]:
        """How a combination of matching rules decides, as a function of the proposal: a constant Decision
        unless it splits, when only the postings are computed per operation (by the same `_split`)."""
        template = self._combine(first, matched, [], evaluated)
        shapers = [r for r in matched if _shapes(r)]
        if not shapers or any(r.deny is not None for r in matched):
            return lambda p: template
        if any(r.hold is not None for r in matched):
            return lambda p: self._combine(p, matched, [], evaluated)
        shape = self._shape(shapers, {})
        if template.postings is None or isinstance(shape, Decision):
            return lambda p: self._combine(p, matched, [], evaluated)

        split = _splitter(shape)
        with_postings = _with_postings(template)

        def decide_split(p: Proposal) -> Decision:
            postings = split(p)
            if postings is None:  # this credit cannot be split: the full path says why
                return self._combine(p, matched, [], evaluated)
            return with_postings(postings)

        return decide_split

    def _combine(self, p: Proposal, matched: list[CompiledRule], errors, evaluated: int) -> Decision:
        detail = {
            "policy_set_id": self.policy_set_id,
            "version": self.version,
            "evaluated": evaluated,
            "matched": [r.summary for r in matched],
            "errors": [{"rule": r.name, "file": r.file, "line": r.line, "error": msg} for r, msg in errors],
        }
        denials = [r for r in matched if r.deny is not None]
        if errors or denials:
            reasons = [f"rule {r.name} failed at run time, denied (fail closed): {msg}" for r, msg in errors]
            reasons += [f"{r.deny} [{r.name}]" for r in denials]
            deciding = sorted({r.name for r, _ in errors} | {r.name for r in denials})
            detail["deciding"] = deciding
            detail["outcome"] = "deny"
            reports = tuple(Report(a, reason, r.name) for r in denials for a, reason in r.reports)
            return Decision(False, tuple(reasons), tuple(deciding), reports=reports,
                            policy_set_id=self.policy_set_id, detail=detail)  # fmt: skip
        return self._allow_with_effects(p, matched, detail)

    def _conflict(self, detail: dict, rules: list[CompiledRule], why: str) -> Decision:
        names = tuple(sorted(r.name for r in rules))
        detail["deciding"] = list(names)
        detail["outcome"] = "deny"
        reason = f"policy conflict, denied: {why} [{', '.join(names)}]"
        return Decision(False, (reason,), names, policy_set_id=self.policy_set_id, detail=detail)

    def _allow_with_effects(self, p: Proposal, matched: list[CompiledRule], detail: dict) -> Decision:
        reports = tuple(Report(a, reason, r.name) for r in matched for a, reason in r.reports)
        notes = tuple(f"{r.permit} [{r.name}]" for r in matched if r.permit)
        # holds
        holders = [r for r in matched if r.hold is not None]
        hold_timeout = hold_releaser = hold_on_timeout = None
        if holders:
            releasers = {r.hold[1] for r in holders if r.hold[1] is not None}  # type: ignore[index]
            if len(releasers) > 1:
                return self._conflict(detail, holders, "rules name different releasers for the hold")
            directions = {r.hold[2] for r in holders if r.hold[2] is not None}  # type: ignore[index]
            if len(directions) > 1:
                return self._conflict(
                    detail, holders, "rules say different things to do at the hold's timeout"
                )
            hold_timeout = max(r.hold[0] for r in holders)  # type: ignore[index]
            hold_releaser = next(iter(releasers), None)
            hold_on_timeout = next(iter(directions), None)
            # recorded with the operation, so replaying the journal rebuilds the hold (tenge check)
            detail["hold"] = {
                "timeout_s": hold_timeout,
                "releaser": hold_releaser,
                "on_timeout": hold_on_timeout,
            }
        # reshaping: portions, remaining, tags
        shapers = [r for r in matched if _shapes(r)]
        postings = None
        if shapers:
            if holders and p.op.kind in ("transfer", "seize"):
                return self._conflict(detail, holders + shapers, "a payment cannot be both held and split")
            shaped = self._reshape(p, shapers, detail)
            if isinstance(shaped, Decision):
                return shaped
            postings = shaped
        detail["deciding"] = [r.name for r in matched]
        detail["outcome"] = "allow"
        return Decision(
            True, notes, tuple(r.name for r in matched), postings, hold_timeout, hold_releaser, reports,
            self.policy_set_id, detail, hold_on_timeout,
        )  # fmt: skip

    def _reshape(
        self, p: Proposal, shapers: list[CompiledRule], detail: dict
    ) -> tuple[Posting, ...] | Decision:
        if _credit(p) is None:
            return self._conflict(detail, shapers, "this operation's credit cannot be split")
        shape = self._shape(shapers, detail)
        if isinstance(shape, Decision):
            return shape
        out = _split(shape, p)
        assert out is not None  # _credit said it can be split
        return out

    def _shape(self, shapers: list[CompiledRule], detail: dict) -> _Shape | Decision:
        """What the shaping rules together do to a credit, or the conflict that denies: rules only."""
        remaining_names = {r.remaining[0] for r in shapers if r.remaining is not None}
        if len(remaining_names) > 1:
            return self._conflict(detail, [r for r in shapers if r.remaining is not None],
                                  "rules send what remains to different accounts")  # fmt: skip
        tags = {
            r.set_tag if r.set_tag is not None else ""
            for r in shapers
            if r.set_tag is not None or r.clear_tag
        }
        if len(tags) > 1:
            return self._conflict(
                detail, [r for r in shapers if r.set_tag or r.clear_tag], "rules re-tag differently"
            )
        portions = tuple(p for r in shapers for p in r.portions)
        total = sum((p.share for p in portions), Fraction(0))
        if total > 1:
            return self._conflict(detail, [r for r in shapers if r.portions],
                                  f"portions add up to {share_text(total)}, over 100%")  # fmt: skip
        if len([r for r in shapers if r.portions]) > 1:
            detail["applied_in_order"] = [r.name for r in shapers if r.portions]
        fair = any(r.fair for r in shapers)
        return _Shape(portions, next(iter(remaining_names), None), next(iter(tags), None), fair)


@dataclass(frozen=True, slots=True)
class Probe:
    """One clause of a rule, compiled alone: what `policy test --coverage` evaluates on every decision."""

    file: str
    rule: str
    line: int
    index: int  # of the clause in its rule
    negated: bool  # an `unless`
    kinds: frozenset[str]
    function: Callable | None


@dataclass(frozen=True, slots=True)
class _Shape:
    """How matching rules redirect a payment's credit: shares of the amount, where the rest goes, its tag."""

    portions: tuple[Portion, ...]  # of every shaping rule, in name order
    rest_to: str | None  # None: the payee
    tag: str | None  # None: the credit keeps its tag ("" clears it)
    fair: bool = False  # residue by largest remainder (a split naming every destination)


def _with_postings(template: Decision) -> Callable[[tuple[Posting, ...]], Decision]:
    """Copies of `template` with other postings. A frozen dataclass's __init__ sets each field through
    object.__setattr__; setting the slots through their own descriptors, the template's values read once, costs
    half (every split payment makes a Decision; dataclasses.replace is slower still). Each of Decision's ten
    fields is set: one more or fewer fails here, when a combination is first worked out."""
    others = [f.name for f in dataclasses.fields(Decision) if f.name != "postings"]
    s0, s1, s2, s3, s4, s5, s6, s7, s8 = (getattr(Decision, n).__set__ for n in others)
    v0, v1, v2, v3, v4, v5, v6, v7, v8 = (getattr(template, n) for n in others)
    set_postings = Decision.postings.__set__  # type: ignore[attr-defined]
    new = object.__new__

    def copy(postings: tuple[Posting, ...]) -> Decision:
        d = new(Decision)
        s0(d, v0)
        s1(d, v1)
        s2(d, v2)
        s3(d, v3)
        s4(d, v4)
        s5(d, v5)
        s6(d, v6)
        s7(d, v7)
        s8(d, v8)
        set_postings(d, postings)
        return d

    return copy


def _shapes(rule: CompiledRule) -> bool:
    return bool(rule.portions or rule.remaining is not None or rule.set_tag or rule.clear_tag)


def _credit(p: Proposal) -> Posting | None:
    """The proposal's one credit of its whole amount, the only kind of credit rules may split."""
    credits = [x for x in p.postings if x.amount_tiyn > 0]
    if p.amount_tiyn is None or len(credits) != 1 or credits[0].amount_tiyn != p.amount_tiyn:
        return None
    return credits[0]


def _split(shape: _Shape, p: Proposal) -> tuple[Posting, ...] | None:
    """The proposal's postings with its credit split as `shape` says; None if its credit cannot be split."""
    return _splitter(shape)(p)


def _splitter(shape: _Shape) -> Callable[[Proposal], tuple[Posting, ...] | None]:
    """`_split` for one shape as a function of the proposal, the shape read once: a combination of splitting
    rules makes one and calls it for every payment it decides."""
    divide = allocator(shape.portions, shape.fair)
    handles = tuple(portion.handle for portion in shape.portions)
    rest_to, new_tag = shape.rest_to, shape.tag
    # Named destinations that differ from each other and from the rest's: unless the payee is one of them, each
    # credit goes to its own account and nothing needs adding up by account.
    named = [*handles, rest_to] if rest_to is not None else handles
    distinct = all(named) and len(set(named)) == len(named)
    taken = frozenset(named)
    plain = plain_shares(shape.portions, shape.fair)
    floors = (
        None if plain is None else tuple((h, num, den) for h, (num, den) in zip(handles, plain, strict=True))
    )

    def split(p: Proposal) -> tuple[Posting, ...] | None:
        postings = p.postings
        if len(postings) == 2 and postings[0].amount_tiyn < 0:  # a payment's debit and credit: _credit's case
            debit, credit = postings
            amount = credit.amount_tiyn
            if amount != p.amount_tiyn or amount <= 0:
                return None
            if floors is not None and distinct and credit.account not in taken:
                # allocate() for plain shares written out (see shares.plain_shares): the common split, a call
                # and a list fewer
                credits = [(h, amount * num // den) for h, num, den in floors]
                rest = amount - sum([part for _, part in credits])
                if rest >= 0:
                    credits.append((rest_to or credit.account, rest))
                    return _credited(
                        [debit], debit.amount_tiyn, credits, credit.tag if new_tag is None else new_tag
                    )
            out, total = [debit], debit.amount_tiyn
        else:
            credit = _credit(p)
            if credit is None:
                return None
            out = [x for x in postings if x.amount_tiyn < 0]
            total = sum([x.amount_tiyn for x in out])
        amount, payee = credit.amount_tiyn, credit.account
        parts, rest = divide(amount)
        if distinct and payee not in taken:
            credits = [*zip(handles, parts, strict=True), (rest_to or payee, rest)]
        else:
            by_account: dict[str, int] = {}
            for handle, part in zip(handles, parts, strict=True):
                target = handle or payee
                by_account[target] = by_account.get(target, 0) + part
            target = rest_to or payee
            by_account[target] = by_account.get(target, 0) + rest
            credits = list(by_account.items())
        return _credited(out, total, credits, credit.tag if new_tag is None else new_tag)

    return split


# A Posting made without its named tuple's __new__ (a lambda with a default): half the cost.
_new_tuple = tuple.__new__


def _credited(
    out: list[Posting], total: int, credits: list[tuple[str, int]], tag: str
) -> tuple[Posting, ...]:
    """The debits `out` (adding up to `total`) and a posting of each credit that is not zero, by account (the
    accounts are distinct)."""
    credits.sort()
    for handle, amount in credits:
        if amount:
            out.append(_new_tuple(Posting, (handle, amount, tag)))
            total += amount
    if total != 0:  # the postings' sum; protects money: never stripped by python -O
        raise AssertionError("a split did not conserve money")
    return tuple(out)


def _by_name(rule: CompiledRule) -> str:
    return rule.name


def _chosen(rules: tuple[CompiledRule, ...], matched: int) -> list[CompiledRule]:
    """The rules whose bits are set in a plan's `matched`, by name."""
    return sorted([r for i, r in enumerate(rules) if matched >> i & 1], key=_by_name)


# What the ledger can tell of a payment before deciding it, to prefetch only the windows a matching rule reads.
WINDOW_NEED_FIELDS = ("payer.kind", "payee.kind", "payer.tier", "payee.tier", "tag")


def _window_needs(planned: PlannedRule) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """What a payment needs for the rule to match: (field, allowed values) pairs, "op" for the operation kind."""
    needs = [("op", tuple(sorted(planned.kinds)))]
    needs += [(k, tuple(sorted(v))) for k, v in planned.allowed.items() if k in WINDOW_NEED_FIELDS]
    return tuple(sorted(needs))


def _reads_activity(node: object) -> bool:
    """Whether a history window without counterparty filters (tagged or not) is read anywhere under `node`."""
    todo = [node]
    while todo:  # no recursion, as _collect_windows
        item = todo.pop()
        if isinstance(item, ast.Call) and item.name != "balance" and not item.filters:
            return True
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            todo.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        elif isinstance(item, list | tuple):
            todo.extend(item)
    return False


def _collect_windows(node: object, lets: dict[str, object], out: set[tuple], needs: tuple) -> None:
    """Every untagged or counterparty-filtered history window read anywhere under `node`: (party, direction,
    seconds or calendar unit, filter key or None, what a payment needs for it to be read)."""
    todo = [node]
    while todo:  # no recursion: policy trees are bounded, but this walk must not depend on it
        item = todo.pop()
        if isinstance(item, ast.Call) and item.name != "balance" and (len(item.args) == 1 or item.filters):
            first = item.args[0]
            unit = first.name if isinstance(first, ast.Name) and first.name in CALENDAR_UNITS else None
            span = unit if unit is not None and first.name not in lets else constant_value(first, lets)
            if isinstance(span, int | str):
                direction = "out" if item.name.startswith("out") else "in"
                out.add((item.party, direction, span, window_filter(item, lets), needs))
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            todo.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        elif isinstance(item, list | tuple):
            todo.extend(item)
