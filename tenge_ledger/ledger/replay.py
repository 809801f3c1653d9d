"""The tables a journal implies besides balances, re-derived by replaying its operations: accounts (kind, key,
tier, bank, attributes, status), holds and tags, and the public key of every signer as of each operation.

`tenge check` compares them with what the store holds, so editing one of those tables directly is found."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..core import limits
from ..core.records import (
    HOLD_ON_TIMEOUT_DEFAULT,
    HOLDS_ACCOUNT,
    Account,
    AccountStatus,
    Close,
    Freeze,
    Hold,
    HoldRecord,
    Issue,
    OpenAccount,
    Operation,
    Post,
    Seize,
    Sweep,
    TagRecord,
    Transfer,
    Unfreeze,
    UpdateAccount,
    Void,
)


@dataclass
class Replay:
    accounts: dict[str, Account] = field(default_factory=dict)
    holds: dict[str, HoldRecord] = field(default_factory=dict)
    # holds a policy rule made before its decision recorded the hold (releaser, timeout, direction): their
    # releaser and deadline are the rule's, in neither the operation nor the journal
    policy_holds: set[str] = field(default_factory=set)
    tags: dict[str, TagRecord] = field(default_factory=dict)
    # What a sweep asks before posting a hold to its payee (Ledger._can_receive): the tiers' holding limits and
    # each account's total just before the operation being replayed (None: every payee can receive).
    tier_limits: dict[int, int] = field(default_factory=dict)
    totals: Callable[[str], int] | None = None

    def key_of(self, handle: str) -> str | None:
        """The public key the account had when the operation being replayed was applied."""
        account = self.accounts.get(handle)
        return None if account is None else account.public_key

    def apply(
        self, op: Operation, at: int, postings: list[tuple[str, int, str]], decision: dict | None = None
    ) -> None:
        """What one journaled operation did to accounts, holds and tags. `decision` is the stored policy decision:
        a hold a rule made (a held transfer, a provisional seizure) is rebuilt from what it records."""
        b = op.body
        if isinstance(b, OpenAccount):
            self.accounts[b.handle] = Account(
                b.handle, b.account_kind, b.public_key, b.tier, b.bank, b.attrs, opened_at=at
            )
        elif isinstance(b, UpdateAccount):
            account = self.accounts[b.handle]
            attrs = account.attrs_dict()
            for key, value in b.attrs:
                if value == "":
                    attrs.pop(key, None)
                else:
                    attrs[key] = value
            tier = b.tier if b.tier is not None else account.tier
            self.accounts[b.handle] = replace(account, tier=tier, attrs=tuple(sorted(attrs.items())))
        elif isinstance(b, Freeze | Unfreeze | Close):
            status = {
                Freeze: AccountStatus.frozen,
                Unfreeze: AccountStatus.active,
                Close: AccountStatus.closed,
            }
            self.accounts[b.account] = replace(self.accounts[b.account], status=status[type(b)])
        elif isinstance(b, Issue) and b.tag and b.tag not in self.tags:
            self.tags[b.tag] = TagRecord(b.tag, b.expires_on, at)
        elif isinstance(b, Hold):
            releaser = b.releaser or b.payer
            self.holds[op.id] = HoldRecord(
                op.id, b.payer, b.payee, b.amount_tiyn, b.tag or "", releaser, at + b.timeout_s,
                on_timeout=b.on_timeout or HOLD_ON_TIMEOUT_DEFAULT,
            )  # fmt: skip
        elif isinstance(b, Transfer | Seize) and any(a == HOLDS_ACCOUNT for a, _, _ in postings):
            rule = ((decision or {}).get("detail") or {}).get("hold")
            if rule is None:  # made before decisions recorded their hold
                self.holds[op.id] = HoldRecord(op.id, b.payer, b.payee, b.amount_tiyn, b.tag or "", "", 0)
                self.policy_holds.add(op.id)
            else:
                releaser = rule.get("releaser") or (b.payer if isinstance(b, Transfer) else op.signer)
                self.holds[op.id] = HoldRecord(
                    op.id, b.payer, b.payee, b.amount_tiyn, b.tag or "", releaser, at + int(rule["timeout_s"]),
                    on_timeout=rule.get("on_timeout") or HOLD_ON_TIMEOUT_DEFAULT,
                )  # fmt: skip
        elif isinstance(b, Post | Void):
            hold = self.holds.get(b.hold_id)
            if hold is not None:
                self.holds[b.hold_id] = replace(hold, status="posted" if isinstance(b, Post) else "voided")
        elif isinstance(b, Sweep):
            self._expire(b.as_of, postings)

    def _expire(self, as_of: int, postings: list[tuple[str, int, str]]) -> None:
        """A sweep settled these holds: each pair of legs (@holds -x, account +x) is one hold, returned to its
        payer or posted to its payee as the hold says, taken in the order the sweep takes them (deadline, then
        id) among pending holds going to that account. A hold whose payee (or payer, for a return) could not
        receive it then (a closed payee, or over the holding limit with what the sweep credited before) waited,
        as in the sweep."""
        returned = [(postings[i + 1][0], postings[i + 1][1], postings[i + 1][2])
                    for i in range(len(postings) - 1)
                    if postings[i][0] == HOLDS_ACCOUNT and postings[i][1] < 0]  # fmt: skip
        pending = sorted(
            (h for h in self.holds.values() if h.status == "pending"),
            key=lambda h: (h.hold_id in self.policy_holds or h.deadline > as_of, h.deadline, h.hold_id),
        )
        incoming: dict[str, int] = {}
        for payer, amount, tag in returned:
            for hold in pending:
                posts = hold.on_timeout == "post"
                to = hold.payee if posts else hold.payer
                if hold.status == "pending" and (to, hold.amount_tiyn, hold.tag) == (payer, amount, tag):
                    if not self._can_receive(to, incoming.get(to, 0) + amount, returned=not posts):
                        continue  # it waited for a later sweep: the leg is another hold's
                    incoming[to] = incoming.get(to, 0) + amount
                    status = "posted" if posts else "expired"
                    self.holds[hold.hold_id] = hold = replace(hold, status=status)
                    pending = [h for h in pending if h.hold_id != hold.hold_id]
                    break

    def _can_receive(self, handle: str, amount: int, returned: bool = False) -> bool:
        account = self.accounts.get(handle)
        if self.totals is None or account is None:
            return True
        if account.status is AccountStatus.closed and not returned:
            return False
        if account.tier is None:
            return True
        return self.totals(handle) + amount <= self.tier_limits.get(account.tier, limits.amount_tiyn_max)
