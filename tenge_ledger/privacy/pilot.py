"""A seeded synthetic pilot: people, merchants, banks, budget bodies, firms and miners paying each other for eight
weeks, with planted corruption patterns. The ground truth is kept beside the ledger only to score observers.

Planted patterns:
- `diversion`: earmarked budget money paid to an unlicensed firm;
- `structuring`: many payments just under the reporting threshold from one payer to one cash-out account;
- `kickback`: a budget contract paid to a firm, then a slice of it to a public official within days;
- `gray_miner`: payments to a listed gray miner.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.records import AccountKind, Issue, OpenAccount, Operation, Transfer

DAY_S = 86_400
START_AT = 1_767_225_600  # 2026-01-01T00:00:00Z
REPORTING_THRESHOLD_TIYN = 2_000_000  # 20,000 KZT
GRANT_TAG = "budget:roads-2026"
NO_KEY = "11" * 32  # synthetic accounts never sign: the pilot applies pre-verified operations


@dataclass
class Pilot:
    seed: int
    days: int
    accounts: list[OpenAccount] = field(default_factory=list)
    funding: list[Issue] = field(default_factory=list)
    schedule: list[list[Transfer]] = field(default_factory=list)  # one list per day
    truth: dict[str, dict] = field(default_factory=dict)  # op id -> payer, payee, amount, pattern
    planted: dict[str, set[str]] = field(default_factory=dict)  # pattern -> op ids
    officials: set[str] = field(default_factory=set)
    gray_miners: set[str] = field(default_factory=set)
    licensed: set[str] = field(default_factory=set)
    budget_bodies: set[str] = field(default_factory=set)

    @property
    def payments(self) -> int:
        return sum(len(d) for d in self.schedule)


def build(seed: int = 7, people: int = 1500, days: int = 56) -> Pilot:
    rng = random.Random(seed)
    p = Pilot(seed=seed, days=days)
    banks = [f"bank{i}" for i in range(4)]
    persons = [f"p{i:05d}" for i in range(people)]
    merchants = [f"shop{i:04d}" for i in range(max(10, people // 10))]
    firms = [f"firm{i:02d}" for i in range(10)]
    unlicensed = [f"shell{i}" for i in range(3)]
    bodies = [f"akimat{i}" for i in range(8)]
    miners = [f"miner{i}" for i in range(10)]
    exchange = "cashout"
    p.officials = set(rng.sample(persons, 10))
    p.gray_miners = set(miners[:2])
    p.licensed = set(firms)
    p.budget_bodies = set(bodies)

    def open_(handle, kind, bank=None, attrs=()):
        p.accounts.append(
            OpenAccount(handle, kind, NO_KEY, 3 if kind is AccountKind.person else None, bank, attrs)
        )

    for b in banks:
        open_(b, AccountKind.bank)
    for h in persons:
        attrs = (("role", "official"),) if h in p.officials else ()
        open_(h, AccountKind.person, rng.choice(banks), attrs)
    for h in merchants:
        open_(h, AccountKind.merchant, rng.choice(banks), (("licence", "retail"),))
    for h in firms:
        open_(h, AccountKind.merchant, rng.choice(banks), (("licence", "construction"),))
    for h in unlicensed:
        open_(h, AccountKind.merchant, rng.choice(banks))
    open_(exchange, AccountKind.merchant, rng.choice(banks), (("licence", "exchange"),))
    for h in bodies:
        open_(h, AccountKind.government)
    for h in miners:
        open_(h, AccountKind.miner, attrs=(("listed", "gray"),) if h in p.gray_miners else ())

    for h in persons:
        p.funding.append(Issue(h, 100_000_000))  # 1,000,000 KZT
    for h in firms + unlicensed + merchants:
        p.funding.append(Issue(h, 200_000_000))
    for h in bodies:
        p.funding.append(Issue(h, 5_000_000_000, tag=GRANT_TAG))
        p.funding.append(Issue(h, 500_000_000))

    p.schedule = [[] for _ in range(days)]
    counter = [0]

    def pay(
        day: int, payer: str, payee: str, amount: int, tag: str | None = None, pattern: str | None = None
    ):
        counter[0] += 1
        op_id = f"pay{counter[0]:07d}"
        p.schedule[day].append(Transfer(payer, payee, amount, tag))
        p.truth[op_id] = {"payer": payer, "payee": payee, "amount": amount, "pattern": pattern, "day": day}
        if pattern:
            p.planted.setdefault(pattern, set()).add(op_id)
        return op_id

    # Everyday life: people pay shops and each other; shops pay miners for power; bodies pay licensed firms.
    for day in range(days):
        for _ in range(people * 4 // days + 1):
            payer = rng.choice(persons)
            if rng.random() < 0.8:
                pay(
                    day, payer, rng.choice(merchants), int(10_000 * (150 ** rng.random()))
                )  # 100 .. 15,000 KZT
            else:
                other = rng.choice(persons)
                if other != payer:
                    pay(
                        day,
                        payer,
                        other,
                        rng.choice([int(10_000 * (150 ** rng.random())), rng.randint(2_000_000, 8_000_000)]),
                    )
        if day % 2 == 0:
            pay(day, rng.choice(merchants), rng.choice(miners[2:]), rng.randint(500_000, 5_000_000))
        if day % 3 == 0:
            pay(day, rng.choice(bodies), rng.choice(firms), rng.randint(10_000_000, 80_000_000), GRANT_TAG)

    # Planted: diversion of earmarked money to an unlicensed firm.
    for i in range(6):
        pay(
            rng.randrange(days),
            rng.choice(bodies),
            unlicensed[i % 3],
            rng.randint(5_000_000, 40_000_000),
            GRANT_TAG,
            "diversion",
        )
    # Planted: structuring, 15 payments each just under the threshold to one cash-out account, within a week.
    for s in rng.sample([h for h in persons if h not in p.officials], 3):
        start = rng.randrange(days - 7)
        for _ in range(15):
            amount = rng.randint(int(REPORTING_THRESHOLD_TIYN * 0.9), REPORTING_THRESHOLD_TIYN - 1)
            pay(start + rng.randrange(7), s, exchange, amount, None, "structuring")
    # Planted: kickback loops, contract then a 5-20% slice to an official within three days.
    for official in rng.sample(sorted(p.officials), 4):
        day = rng.randrange(days - 3)
        firm = rng.choice(firms)
        contract = rng.randint(30_000_000, 90_000_000)
        pay(day, rng.choice(bodies), firm, contract, GRANT_TAG, "kickback")
        pay(day + rng.randint(0, 3), firm, official, contract * rng.randint(5, 20) // 100, None, "kickback")
    # Planted: payments to listed gray miners (small and large).
    for i in range(8):
        payer = rng.choice(merchants + firms)
        amount = rng.randint(300_000, 1_900_000) if i % 2 else rng.randint(2_000_000, 9_000_000)
        pay(rng.randrange(days), payer, rng.choice(sorted(p.gray_miners)), amount, None, "gray_miner")

    # Within a day, order is shuffled so patterns do not sit together; op ids follow the final order.
    final: dict[str, dict] = {}
    planted: dict[str, set[str]] = {}
    order = 0
    for day in range(days):
        items = [(t, op) for op, t in zip(_ids_for_day(p, day), p.schedule[day], strict=True)]
        rng.shuffle(items)
        p.schedule[day] = [t for t, _ in items]
        for _t, old in items:
            order += 1
            new = f"pay{order:07d}"
            final[new] = p.truth[old]
            if final[new]["pattern"]:
                planted.setdefault(final[new]["pattern"], set()).add(new)
    p.truth, p.planted = final, planted
    return p


def _ids_for_day(p: Pilot, day: int) -> list[str]:
    return [op for op, t in p.truth.items() if t["day"] == day]


def apply(pilot: Pilot, ledger, set_now: Callable[[int], None]) -> None:
    """Apply the pilot to a ledger whose clock reads what `set_now` sets. Operations are pre-verified."""
    cb = ledger.central_bank
    set_now(START_AT - DAY_S)
    ops = [Operation(f"open:{a.handle}", cb, a) for a in pilot.accounts]
    ops += [Operation(f"fund:{i}", cb, f) for i, f in enumerate(pilot.funding)]
    _check(ledger.apply_many(ops, verified=True), "setting up the pilot")
    order = 0
    for day, transfers in enumerate(pilot.schedule):
        set_now(START_AT + day * DAY_S + 12 * 3600)
        ops = []
        for t in transfers:
            order += 1
            ops.append(Operation(f"pay{order:07d}", t.payer, t))
        ledger.apply_many(ops, verified=True)


def _check(results, what: str) -> None:
    bad = [r for r in results if not r.succeeded]
    if bad:
        raise RuntimeError(f"{what}: {bad[0].op_id} {bad[0].code.value}: {bad[0].message}")
