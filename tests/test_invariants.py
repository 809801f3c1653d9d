"""Invariants under random workloads (hypothesis stateful testing).

After every step: supply = issued - redeemed = -(central bank balance); no balance below zero; every journal
entry's postings sum to zero and the hash chain verifies; balances rebuilt from the journal equal the stored
ones (all three by check_journal); and re-applying an already applied operation changes nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from conftest import Clock, build_ledger
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    precondition,
    rule,
)

from tenge_ledger.core.records import AccountKind, Transfer
from tenge_ledger.core.results import ResultCode
from tenge_ledger.ledger.journal import check_journal

PEOPLE = ["halyk", "aigerim", "cafe", "roads", "miner"]
TAGS = [None, None, "b:roads"]
amounts = st.integers(min_value=1, max_value=60_000)
people = st.sampled_from(PEOPLE)


class LedgerMachine(RuleBasedStateMachine):
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="tenge-hyp-"))
        self.env = build_ledger(":memory:", self.dir / "keys", Clock())
        self.env.open_basic()
        assert self.env.wallet.open_account("miner", AccountKind.miner).succeeded
        self.issued = 0
        self.redeemed = 0
        self.applied: list = []  # operations that answered ok, for replay
        self.n = 0

    def teardown(self) -> None:
        self.env.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _id(self) -> str:
        self.n += 1
        return f"op-{self.n}"

    def _apply(self, signer: str, body):
        op = self.env.wallet.build(signer, body, self._id())
        result = self.env.ledger.apply(op)
        assert result.code is not ResultCode.exists
        event(f"{body.__class__.__name__}: {result.code.value}")
        if result.code is ResultCode.ok:
            self.applied.append(op)
        return result

    @rule(payee=people, amount=amounts, tag=st.sampled_from(TAGS))
    def issue(self, payee, amount, tag) -> None:
        from tenge_ledger.core.records import Issue

        if self._apply(self.env.cb, Issue(payee, amount, tag)).code is ResultCode.ok:
            self.issued += amount

    @rule(payer=people, amount=amounts, tag=st.sampled_from(TAGS))
    def redeem(self, payer, amount, tag) -> None:
        from tenge_ledger.core.records import Redeem

        if self._apply(self.env.cb, Redeem(payer, amount, tag)).code is ResultCode.ok:
            self.redeemed += amount

    @rule(payer=people, payee=people, amount=amounts, tag=st.sampled_from(TAGS))
    def transfer(self, payer, payee, amount, tag) -> None:
        before = self.env.balance(payer, tag or "")
        result = self._apply(payer, Transfer(payer, payee, amount, tag))
        if result.code is ResultCode.insufficient_funds:
            assert before < amount

    @rule(target=holds, payer=people, payee=people, amount=amounts, timeout=st.integers(50, 1_000))
    def hold(self, payer, payee, amount, timeout):
        from tenge_ledger.core.records import Hold

        result = self._apply(payer, Hold(payer, payee, amount, timeout))
        return result.op_id if result.code is ResultCode.ok else multiple()

    @rule(hold_id=consumes(holds), part=st.integers(0, 60_000))
    def post(self, hold_id, part) -> None:
        from tenge_ledger.core.records import Post

        record = next((h for h in self.env.store.holds() if h.hold_id == hold_id), None)
        signer = record.releaser if record else "halyk"
        self._apply(signer, Post(hold_id, part or None))

    @rule(hold_id=consumes(holds))
    def void(self, hold_id) -> None:
        from tenge_ledger.core.records import Void

        record = next((h for h in self.env.store.holds() if h.hold_id == hold_id), None)
        self._apply(record.payee if record else "halyk", Void(hold_id))

    @rule(seconds=st.integers(1, 300))
    def sweep(self, seconds) -> None:
        from tenge_ledger.core.records import Sweep

        self.env.clock.advance(seconds)
        assert self._apply(self.env.cb, Sweep(self.env.clock.now)).code is ResultCode.ok

    @rule(
        legs=st.lists(st.tuples(people, people, amounts), min_size=1, max_size=4),
        signer=people,
    )
    def batch(self, legs, signer) -> None:
        from tenge_ledger.core.records import Batch

        inner = tuple(self.env.wallet.build(p, Transfer(p, q, a), self._id()) for p, q, a in legs)
        before = self.env.snapshot()
        result = self._apply(signer, Batch(inner))
        if result.code is not ResultCode.ok:
            assert self.env.snapshot()[:2] == before[:2]  # all or nothing
            for op in inner:
                assert self.env.store.operation(op.id) is None

    @rule(account=people, frozen=st.booleans())
    def freeze(self, account, frozen) -> None:
        from tenge_ledger.core.records import Freeze, Unfreeze

        self._apply(self.env.cb, Freeze(account) if frozen else Unfreeze(account))

    @precondition(lambda self: self.applied)
    @rule(pick=st.integers(min_value=0))
    def replay(self, pick) -> None:
        op = self.applied[pick % len(self.applied)]
        before = self.env.snapshot()
        result = self.env.ledger.apply(op)
        assert result.code is ResultCode.exists
        assert result.seq == self.env.store.operation(op.id).seq
        assert self.env.snapshot() == before

    @invariant()
    def supply_matches(self) -> None:
        issued, redeemed = self.env.store.supply()
        assert (issued, redeemed) == (self.issued, self.redeemed)
        central = sum(self.env.store.balances(self.env.cb).values())
        assert issued - redeemed == -central

    @invariant()
    def no_negative_balance(self) -> None:
        for (account, _tag), value in self.env.store.balances().items():
            if account != self.env.cb:
                assert value >= 0, (account, value)

    @invariant()
    def journal_checks(self) -> None:
        found = check_journal(self.env.store)
        assert found.ok, found.problems
        for op, postings in self.env.store.journal():
            assert sum(p.amount_tiyn for p in postings) == 0, op.op_id


LedgerMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLedgerInvariants = LedgerMachine.TestCase
