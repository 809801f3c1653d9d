"""A seeded synthetic pilot: people, merchants, banks, budget bodies, firms and miners paying each other for eight
weeks, with planted corruption patterns. The ground truth is kept beside the ledger only to score observers.

Planted patterns, each instance's parameters drawn from `PlantRanges` (never the detectors' settings):
- `diversion`: earmarked budget money paid to an unlicensed firm;
- `structuring`: many payments just under the reporting threshold from one payer to one cash-out account;
- `kickback`: a budget contract paid to a firm, then a slice of it to a public official within days;
- `gray_miner`: payments to a listed gray miner.

Legitimate look-alikes in the background traffic (truth `lookalike`, never `pattern`): people buying costly goods
just under the threshold; traders paying a wholesaler often; firms paying salaries, and officials' honest fees
from firms; contractors paying their suppliers with earmarked money (allowed: the marking ends there); refunds
that send a payment back. A detector that fires on them raises a false alarm.
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
GRANT_EXPIRES_ON = "2026-12-31"  # budget money is issued with an expiry date (policies/09-expiry.policy)
SYSTEM_ACCOUNTS = ("aifc-exchange", "state-budget", "kgd-vat", "local-budget")  # where policies route money
NO_KEY = "11" * 32  # synthetic accounts never sign: the pilot applies pre-verified operations


@dataclass(frozen=True, slots=True)
class PlantRanges:
    """The ranges each planted instance's parameters are drawn from (uniformly). Amounts tiyn."""

    diversions: int = 6
    diversion_tiyn: tuple[int, int] = (5_000_000, 40_000_000)
    structurers: int = 3
    structuring_count: tuple[int, int] = (6, 18)
    structuring_band_low: tuple[float, float] = (
        0.75,
        0.97,
    )  # the smallest amount, as a share of the threshold
    structuring_days: tuple[int, int] = (3, 14)  # the run is spread over this many days
    kickbacks: int = 4
    kickback_contract_tiyn: tuple[int, int] = (30_000_000, 90_000_000)
    kickback_share_pct: tuple[int, int] = (2, 30)
    kickback_delay_days: tuple[int, int] = (0, 7)
    gray_payments: int = 8


RANGES = PlantRanges()


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


def build(seed: int = 7, people: int = 1500, days: int = 56, ranges: PlantRanges = RANGES) -> Pilot:
    rng = random.Random(seed)
    p = Pilot(seed=seed, days=days)
    banks = [f"bank{i}" for i in range(4)]
    persons = [f"p{i:05d}" for i in range(people)]
    merchants = [f"shop{i:04d}" for i in range(max(10, people // 10))]
    firms = [f"firm{i:02d}" for i in range(10)]
    unlicensed = [f"shell{i}" for i in range(3)]
    bodies = [f"akimat{i}" for i in range(8)]
    miners = [f"miner{i}" for i in range(10)]
    suppliers = [f"supply{i}" for i in range(3)]
    wholesaler = "wholesale"
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
        open_(
            h, AccountKind.merchant, rng.choice(banks), (("licences", "construction"), ("obligations", "met"))
        )
    for h in unlicensed:
        open_(h, AccountKind.merchant, rng.choice(banks))
    for h in suppliers:
        open_(h, AccountKind.merchant, rng.choice(banks), (("role", "supplier"),))
    open_(wholesaler, AccountKind.merchant, rng.choice(banks), (("licence", "retail"),))
    open_(exchange, AccountKind.merchant, rng.choice(banks), (("licence", "exchange"),))
    for h in bodies:
        open_(h, AccountKind.government)
    for h in miners:
        open_(h, AccountKind.miner, attrs=(("listed", "gray"),) if h in p.gray_miners else ())
    for h in SYSTEM_ACCOUNTS:
        open_(h, AccountKind.government)

    for h in persons:
        p.funding.append(Issue(h, 100_000_000))  # 1,000,000 KZT
    for h in unlicensed + merchants + suppliers + [wholesaler]:
        p.funding.append(Issue(h, 200_000_000))
    for h in firms:  # salaries and suppliers are paid from the firm's own (untagged) money
        p.funding.append(Issue(h, 2_000_000_000))
    for h in bodies:
        p.funding.append(Issue(h, 5_000_000_000, tag=GRANT_TAG, expires_on=GRANT_EXPIRES_ON))
        p.funding.append(Issue(h, 500_000_000))

    p.schedule = [[] for _ in range(days)]
    counter = [0]

    def pay(
        day: int, payer: str, payee: str, amount: int, tag: str | None = None, pattern: str | None = None,
        lookalike: str | None = None,
    ):  # fmt: skip
        counter[0] += 1
        op_id = f"pay{counter[0]:07d}"
        day = min(max(day, 0), days - 1)
        p.schedule[day].append(Transfer(payer, payee, amount, tag))
        p.truth[op_id] = {"payer": payer, "payee": payee, "amount": amount, "pattern": pattern, "day": day,
                          "lookalike": lookalike}  # fmt: skip
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

    r = ranges
    threshold = REPORTING_THRESHOLD_TIYN
    honest = [h for h in persons if h not in p.officials]
    # Look-alikes: costly purchases just under the threshold (shops selling them see several a week)...
    for day in range(days):
        for _ in range(max(1, people // 150)):
            pay(day, rng.choice(honest), rng.choice(merchants[:5]), rng.randint(int(threshold * 0.8), threshold - 1),
                lookalike="structuring")  # fmt: skip
    # ...traders paying their wholesaler several times a week, often just under the threshold...
    for trader in rng.sample(honest, 3):
        for day in range(0, days, 2):
            pay(day, trader, wholesaler, rng.randint(threshold // 2, threshold - 1), lookalike="structuring")
    # ...firms paying salaries twice a month, and officials' honest fees from firms...
    for firm in firms:
        staff = rng.sample(honest, 4)
        for day in range(0, days, 14):
            for person in staff:
                pay(day, firm, person, rng.randint(500_000, 5_000_000), lookalike="kickback")
    for official in sorted(p.officials):
        for _ in range(2):
            pay(
                rng.randrange(days),
                rng.choice(firms),
                official,
                rng.randint(1_000_000, 15_000_000),
                lookalike="kickback",
            )
    # ...contractors paying their suppliers with earmarked money (the policy allows it: the marking ends there)...
    for _ in range(days // 4):
        pay(rng.randrange(days), rng.choice(firms), rng.choice(suppliers), rng.randint(1_000_000, 8_000_000), GRANT_TAG,
            lookalike="diversion")  # fmt: skip
    # ...and refunds: a shop sends a payment back within days.
    for _ in range(days):
        day, buyer, shop = rng.randrange(days - 3), rng.choice(honest), rng.choice(merchants)
        amount = rng.randint(100_000, 3_000_000)
        pay(day, buyer, shop, amount, lookalike="round_trip")
        pay(day + rng.randint(1, 3), shop, buyer, amount, lookalike="round_trip")

    # Planted: diversion of earmarked money to an unlicensed firm.
    for i in range(r.diversions):
        pay(rng.randrange(days), rng.choice(bodies), unlicensed[i % 3], rng.randint(*r.diversion_tiyn), GRANT_TAG,
            "diversion")  # fmt: skip
    # Planted: structuring, runs of payments just under the threshold from one payer to one cash-out account.
    for s_ in rng.sample([h for h in honest], r.structurers):
        count, spread = rng.randint(*r.structuring_count), rng.randint(*r.structuring_days)
        low = int(threshold * rng.uniform(*r.structuring_band_low))
        start = rng.randrange(days - spread)
        for _ in range(count):
            pay(
                start + rng.randrange(spread),
                s_,
                exchange,
                rng.randint(low, threshold - 1),
                None,
                "structuring",
            )
    # Planted: kickback loops, a contract then a slice of it to an official some days later.
    for official in rng.sample(sorted(p.officials), r.kickbacks):
        delay = rng.randint(*r.kickback_delay_days)
        day = rng.randrange(days - delay)
        firm = rng.choice(firms)
        contract = rng.randint(*r.kickback_contract_tiyn)
        pay(day, rng.choice(bodies), firm, contract, GRANT_TAG, "kickback")
        pay(
            day + delay,
            firm,
            official,
            contract * rng.randint(*r.kickback_share_pct) // 100,
            None,
            "kickback",
        )
    # Planted: payments to listed gray miners (small and large).
    for i in range(r.gray_payments):
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


def apply(
    pilot: Pilot, ledger, set_now: Callable[[int], None], on_opened: Callable[[], None] | None = None
) -> None:
    """Apply the pilot to a ledger whose clock reads what `set_now` sets. Operations are pre-verified.
    `on_opened` runs once the accounts are open, before any money moves (the banks register their keys)."""
    cb = ledger.central_bank
    set_now(START_AT - DAY_S)
    ops = [Operation(f"open:{a.handle}", cb, a) for a in pilot.accounts]
    _check(ledger.apply_many(ops, verified=True), "opening the pilot's accounts")
    if on_opened is not None:
        on_opened()
    ops = [Operation(f"fund:{i}", cb, f) for i, f in enumerate(pilot.funding)]
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
