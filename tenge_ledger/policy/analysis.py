"""Set analysis: which decisions change between two policy sets (`tenge policy diff OLD NEW`).

Both sets decide the same operations: generated boundary cases (amounts at and around every money constant of
either set, each tier, each account kind, each tag and attribute value the sets compare with, each kind of
operation) and, when a ledger is given, its recent operations as they were submitted. Decisions that differ are
grouped by how they differ, each group with a count and one example operation."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..core import limits
from ..core.hooks import Proposal
from ..core.records import (
    DECIDED_KINDS,
    HOLDS_ACCOUNT,
    PAYMENT_KINDS,
    Account,
    AccountKind,
    Decision,
    Freeze,
    Hold,
    HoldRecord,
    Issue,
    OpenAccount,
    Operation,
    Post,
    Posting,
    Redeem,
    Seize,
    Sweep,
    Transfer,
    Void,
)
from ..core.windows import ActivityReplay, FilterReplay, keeps_activity, kept_filters
from . import ast
from .check import CheckedSet

DECIDED = tuple(k.value for k in DECIDED_KINDS)  # generated cases: every kind a rule can see
# what moves no money: its generated cases do not vary the amount or the tag
_NO_AMOUNT = ("sweep", "freeze", "open_account")
_ONE_PARTY = ("freeze", "open_account")  # the account is both payer and payee
# Ledger operations decided again by `diff --recent`: payments, seizures and operations on one account (a post,
# void or sweep needs the hold or the due holds as they were, which the ledger no longer has as they were).
REPLAYED = (*(k.value for k in PAYMENT_KINDS), "seize", "freeze", "open_account")
T0 = 1_772_000_000  # generated cases happen at this ledger time
SAMPLE_SEED = 13  # a set of cases larger than the limit is sampled, the same way every run


@dataclass
class MemoryView:
    """The ledger as a generated case sees it: the two parties, no balances and no history."""

    accounts: dict[str, Account]

    def account(self, handle: str) -> Account | None:
        return self.accounts.get(handle)

    def bucket(self, handle: str, tag: str) -> int:
        return 0

    def account_total(self, handle: str) -> int:
        return 0

    def window(
        self, handle: str, direction: str, since: int, tag: str | None = None, counterparty: str | None = None
    ) -> tuple[int, int]:
        return 0, 0


@dataclass
class Difference:
    """Decisions that changed the same way: `count` cases, the first of them as the example."""

    change: str  # "allow -> deny", "allow -> allow (postings)", ...
    old: dict
    new: dict
    example: dict
    count: int = 0
    sources: set[str] = field(default_factory=set)  # "generated", "ledger"


def constants_of(checked: CheckedSet) -> tuple[set[int], set[str]]:
    """Every money amount (tiyn) and string the set compares with: literals, lets, table values."""
    money: set[int] = set()
    strings: set[str] = set()
    todo: list[object] = [f.items for f in checked.files]
    while todo:  # no recursion: the tree is bounded, but this walk does not depend on it
        item = todo.pop()
        if isinstance(item, ast.Money):
            money.add(item.tiyn)
        elif isinstance(item, ast.Str):
            strings.add(item.value)
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            todo.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        elif isinstance(item, list | tuple):
            todo.extend(item)
    for refs in checked.data.values():
        for ref in refs.values():
            if ref.kind == "table" and ref.value_type == "money":
                money.update(v for v in list(ref.values.values())[:64] if isinstance(v, int))
            sample = list(ref.values)[:8]  # a few entries of each list or table: members and keys
            strings.update(v for v in sample if isinstance(v, str))
    return money, strings


def boundary_cases(
    sets: Iterable[CheckedSet], cases_max: int = limits.policy_diff_cases_max
) -> Iterator[tuple]:
    """(proposal, view) pairs around every constant of the sets; at most `cases_max`, sampled if more."""
    money: set[int] = {1, 100_00, 1_000_000_00}
    strings: set[str] = set()
    attr_keys: set[str] = set()
    for checked in sets:
        m, s = constants_of(checked)
        money |= m
        strings |= s
        attr_keys |= {
            read.split(".attr.", 1)[1] for r in checked.rules for read in r.reads if ".attr." in read
        }
    amounts = sorted({a for c in money for a in (c - 1, c, c + 1) if 0 < a <= limits.amount_tiyn_max})
    tags = sorted({""} | {s for s in strings if _looks_like_tag(s)})
    values = sorted({""} | {s for s in strings if len(s) <= limits.attr_value_length_max})
    kinds = [k for k in AccountKind if k is not AccountKind.system]
    from ..core.canonical import HANDLE_RE

    named = sorted(s for s in strings if HANDLE_RE.fullmatch(s))[:16]
    who = [("", ""), *(("payer", h) for h in named), *(("payee", h) for h in named)]
    dimensions = [DECIDED, kinds, kinds, amounts, (None, 0, 1, 2, 3), tags, values, who]
    total = 1
    for d in dimensions:
        total *= len(d)
    indexes: Iterable[int] = range(total)
    if total > cases_max:
        indexes = sorted(random.Random(SAMPLE_SEED).sample(range(total), cases_max))
    for index in indexes:
        picked = []
        for d in reversed(dimensions):
            index, i = divmod(index, len(d))
            picked.append(d[i])
        op_kind, payer_kind, payee_kind, amount, tier, tag, value, (role, handle) = reversed(picked)
        if op_kind in _NO_AMOUNT and (amount != amounts[0] or tag):
            continue  # the same case as the first amount's
        if op_kind in _ONE_PARTY and (payee_kind != kinds[0] or role == "payee"):
            continue  # the account is both parties: the payee's dimensions repeat the payer's cases
        sweep_case = (payer_kind, payee_kind, tier, value, role) == (kinds[0], kinds[0], None, "", "")
        if op_kind == "sweep" and not sweep_case:
            continue  # a sweep has no parties: one case
        attrs = tuple(sorted((k, value) for k in attr_keys)) if value else ()
        payer_handle = handle if role == "payer" else "case-payer"
        payee_handle = handle if role == "payee" else "case-payee"
        if payer_handle == payee_handle:
            continue
        payer = Account(payer_handle, payer_kind, "00" * 32, tier, "bank-1", attrs)
        payee = Account(payee_handle, payee_kind, "00" * 32, tier, "bank-1", attrs)
        yield (
            _proposal(op_kind, payer, payee, amount, tag, value),
            MemoryView({payer.handle: payer, payee.handle: payee}),
        )


def _looks_like_tag(text: str) -> bool:
    from ..core.canonical import TAG_RE

    return bool(TAG_RE.fullmatch(text))


def _proposal(kind: str, payer: Account, payee: Account, amount: int, tag: str, text: str = "") -> Proposal:
    """The proposal the ledger would make for an operation of `kind` between these parties; `text` is the
    memo a seizure's order or a freeze's reason carries."""
    tagged = tag or None
    if kind in ("post", "void"):  # the hold's parties and the amount that moves on
        hold = HoldRecord("case-hold", payer.handle, payee.handle, amount, tag, payee.handle, T0 + 86_400)
        to = payee.handle if kind == "post" else payer.handle
        op = Operation("case", payee.handle, Post(hold.hold_id) if kind == "post" else Void(hold.hold_id))
        return Proposal(op, T0, payer.handle, payee.handle, amount, tag,
                        (Posting(HOLDS_ACCOUNT, -amount, tag), Posting(to, amount, tag)), hold=hold)  # fmt: skip
    if kind == "seize":
        op = Operation("case", "nbk", Seize(payer.handle, payee.handle, amount, tagged, text or "order-1"))
        return Proposal(op, T0, payer.handle, payee.handle, amount, tag,
                        (Posting(payer.handle, -amount, tag), Posting(payee.handle, amount, tag)))  # fmt: skip
    if kind == "sweep":
        return Proposal(Operation("case", "nbk", Sweep(T0)), T0, None, None, None, "", ())
    if kind == "freeze":
        op = Operation("case", "nbk", Freeze(payer.handle, text or None))
        return Proposal(op, T0, payer.handle, payer.handle, None, "", (), payer, payer)
    if kind == "open_account":
        body = OpenAccount(payer.handle, payer.kind, payer.public_key, payer.tier, payer.bank, payer.attrs)
        return Proposal(
            Operation("case", "nbk", body), T0, payer.handle, payer.handle, None, "", (), payer, payer
        )
    if kind == "issue":
        body: object = Issue(payee.handle, amount, tagged)
        return Proposal(Operation("case", "nbk", body), T0, None, payee.handle, amount, tag,
                        (Posting(payee.handle, amount, tag),), None, payee)  # fmt: skip
    if kind == "redeem":
        body = Redeem(payer.handle, amount, tagged)
        return Proposal(Operation("case", payer.handle, body), T0, payer.handle, None, amount, tag,
                        (Posting(payer.handle, -amount, tag),), payer, None)  # fmt: skip
    body = (Hold(payer.handle, payee.handle, amount, 86_400, tagged) if kind == "hold"
            else Transfer(payer.handle, payee.handle, amount, tagged))  # fmt: skip
    return Proposal(Operation("case", payer.handle, body), T0, payer.handle, payee.handle, amount, tag,
                    (Posting(payer.handle, -amount, tag), Posting(payee.handle, amount, tag)), payer, payee)  # fmt: skip


def ledger_cases(store, recent: int, filters: frozenset[str] = frozenset()) -> Iterator[tuple]:
    """The ledger's `recent` latest operations of the REPLAYED kinds, proposed again as they were
    submitted, against the ledger as it is now (balances and history windows of today: an approximation). The
    history the ledger does not keep is replayed from the journal first, once, so a set that reads it never
    reads it short: the unfiltered windows of a ledger that keeps no activity snapshots (no enabled set reads
    them), and those of `filters` (the counterparty filters the sets compared read) it keeps no flows of."""
    from ..core.canonical import operation_from_dict

    settings = store.meta().settings
    history = None if keeps_activity(settings) else ActivityReplay()
    missing = filters - kept_filters(settings)
    filtered = FilterReplay(missing, store.meta().central_bank) if missing else None
    if history is not None or filtered is not None:
        for stored, postings in store.journal():
            legs = [(p.account, p.amount_tiyn, p.tag) for p in postings]
            if history is not None:
                history.apply(stored.at, legs)
            if filtered is not None:
                filtered.apply(stored.operation, stored.at, legs)
    head, _ = store.head()
    ops = []
    for stored, _postings in store.journal(after_seq=max(head - recent * 4, 0)):
        if stored.kind in REPLAYED and not stored.op_id.startswith("genesis:"):  # init's, never decided
            ops.append(stored)
    accounts = {a.handle: a for a in store.accounts()}
    with store.transaction() as tx:
        view = _StoreView(tx, history, filtered)
        for stored in ops[-recent:]:
            op = operation_from_dict(json.loads(stored.document), stored.op_id)
            body = op.body
            payer = accounts.get(getattr(body, "payer", None) or "")
            payee = accounts.get(getattr(body, "payee", None) or getattr(body, "account", None) or "")
            amount = getattr(body, "amount_tiyn", 0)
            tag = getattr(body, "tag", None) or ""
            if stored.kind in ("freeze", "open_account"):
                account = accounts.get(getattr(body, "account", None) or getattr(body, "handle", None) or "")
                if account is None:
                    continue
                proposal = Proposal(
                    op, stored.at, account.handle, account.handle, None, "", (), account, account
                )
            elif stored.kind == "issue" and payee is not None:
                proposal = Proposal(op, stored.at, None, payee.handle, amount, tag, (Posting(payee.handle, amount, tag),),
                                    None, payee)  # fmt: skip
            elif stored.kind == "redeem" and payer is not None:
                proposal = Proposal(op, stored.at, payer.handle, None, amount, tag,
                                    (Posting(payer.handle, -amount, tag),), payer, None)  # fmt: skip
            elif payer is not None and payee is not None:
                proposal = Proposal(op, stored.at, payer.handle, payee.handle, amount, tag,
                                    (Posting(payer.handle, -amount, tag), Posting(payee.handle, amount, tag)),
                                    payer, payee)  # fmt: skip
            else:
                continue
            yield proposal, view


class _StoreView:
    """A LedgerView over a store transaction (read only); unfiltered windows from `history` when given, and
    those of the filters `filtered` replays from it."""

    def __init__(
        self, tx, history: ActivityReplay | None = None, filtered: FilterReplay | None = None
    ) -> None:
        self.tx = tx
        self.history = history
        self.filtered = filtered
        self.replayed = frozenset() if filtered is None else frozenset(k for k, _ in filtered.filters)

    def account(self, handle: str) -> Account | None:
        return self.tx.account(handle)

    def bucket(self, handle: str, tag: str) -> int:
        return self.tx.bucket(handle, tag)

    def account_total(self, handle: str) -> int:
        return sum(self.tx.buckets(handle).values())

    def window(
        self, handle: str, direction: str, since: int, tag: str | None = None, counterparty: str | None = None
    ) -> tuple[int, int]:
        if counterparty is None and self.history is not None:
            return self.history.window(handle, direction, since, tag)
        if counterparty in self.replayed:
            assert self.filtered is not None
            return self.filtered.window(handle, direction, since, counterparty)
        return self.tx.window(handle, direction, since, tag, counterparty)


def outcome(decision: Decision) -> dict:
    """What a decision does, without the set's id and the evaluation details."""
    return {
        "allowed": decision.allowed,
        "rules": sorted(decision.rules),
        "postings": [[p.account, p.amount_tiyn, p.tag] for p in decision.postings or ()],
        "hold_timeout_s": decision.hold_timeout_s,
        "hold_on_timeout": decision.hold_on_timeout,
        "reports": sorted(r.agency for r in decision.reports),
    }


def diff(old, new, cases: Iterable[tuple], source: str, found: dict[str, Difference] | None = None) -> dict:
    """Decide every case with both engines; the differences grouped by how they changed."""
    found = {} if found is None else found
    for proposal, view in cases:
        a, b = outcome(old.decide(proposal, view)), outcome(new.decide(proposal, view))
        if a == b:
            continue
        change = _change(a, b)
        key = json.dumps([change, a["rules"], b["rules"]])
        entry = found.get(key)
        if entry is None:
            entry = found[key] = Difference(change, a, b, describe(proposal, view))
        elif _typical(proposal) > _typical_of(entry.example):  # show the most ordinary payment as the example
            entry.example = describe(proposal, view)
        entry.count += 1
        entry.sources.add(source)
    return found


_ORDINARY_KINDS = ("person", "merchant")


def _typical(proposal: Proposal) -> int:
    """How ordinary an example is: persons and merchants paying each other read best."""
    kinds = [a.kind.value for a in (proposal.payer_account, proposal.payee_account) if a is not None]
    return sum(k in _ORDINARY_KINDS for k in kinds) + (proposal.op.kind.value == "transfer")


def _typical_of(example: dict) -> int:
    kinds = [p["kind"] for p in (example["payer"], example["payee"]) if p]
    return sum(k in _ORDINARY_KINDS for k in kinds) + (example["kind"] == "transfer")


def _change(a: dict, b: dict) -> str:
    word = {True: "allow", False: "deny"}
    head = f"{word[a['allowed']]} -> {word[b['allowed']]}"
    if a["allowed"] == b["allowed"]:
        what = [
            k for k in ("rules", "postings", "hold_timeout_s", "hold_on_timeout", "reports") if a[k] != b[k]
        ]
        head += f" ({', '.join(what)})"
    return head


def describe(proposal: Proposal, view) -> dict:
    def party(handle: str | None) -> dict | None:
        account = view.account(handle) if handle else None
        if account is None:
            return None
        return {"handle": account.handle, "kind": account.kind.value, "tier": account.tier, "bank": account.bank,
                "attrs": dict(account.attrs)}  # fmt: skip

    return {"id": proposal.op.id, "kind": proposal.op.kind.value, "amount_tiyn": proposal.amount_tiyn,
            "tag": proposal.tag, "payer": party(proposal.payer), "payee": party(proposal.payee)}  # fmt: skip
