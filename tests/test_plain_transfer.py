"""The plain-transfer path (ledger/plain.py) against the general one: random workloads (rejections of every kind,
repeated ids, holds, posts and voids, batches, tagged money, frozen accounts, tier limits, unverified
signatures, policies) applied to two copies of one ledger, one with `plain_transfers` off. Every table must be
byte for byte the same, and every result."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from conftest import Clock, build_ledger
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tenge_ledger.app import ledger_over
from tenge_ledger.client.keystore import Keystore
from tenge_ledger.client.wallet import Wallet
from tenge_ledger.core.records import AccountKind, Batch, Freeze, Hold, Post, Transfer, Unfreeze, Void
from tenge_ledger.policies import shipped_policies
from tenge_ledger.policy import compile_sources, read_sources
from tenge_ledger.store import open_store

PEOPLE = ("aigerim", "bob", "cafe", "roads", "halyk", "zed", "anon")
TAGS = ("", "", "", "edu", "none-such")
TABLES = ("journal", "legs", "balances", "activity", "traces", "trace_runs", "holds", "accounts", "supply", "journal_head",
          "reports", "tags", "tag_names")  # fmt: skip


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, Path, int]:
    return make_base(tmp_path_factory.mktemp("plain"))


def make_base(folder: Path) -> tuple[Path, Path, int]:
    """A ledger with a bank, people of tiers 0, 1 and 3, a shop, a budget, a frozen account and tagged money:
    (its file, its keystore, its clock's time)."""
    clock = Clock()
    env = build_ledger(str(folder / "base.db"), folder / "keys", clock)
    w = env.wallet
    env.open_basic()  # halyk, aigerim (tier 1), cafe, roads
    assert w.open_account("bob", AccountKind.person, tier=3, bank="halyk").succeeded
    assert w.open_account("zed", AccountKind.person, tier=3, bank="halyk").succeeded
    assert w.open_account("anon", AccountKind.person, tier=0, bank="halyk").succeeded  # holds 100,000 KZT
    assert w.issue("halyk", 50_000_000).succeeded
    assert w.issue("roads", 5_000_000, tag="edu", expires_on="2099-01-01").succeeded
    for who in ("aigerim", "bob", "cafe", "zed", "anon"):
        assert w.transfer("halyk", who, 40_000).succeeded
    assert w.freeze("zed").succeeded
    env.store.close()
    return folder / "base.db", folder / "keys", clock.now


_transfer = st.tuples(
    st.just("transfer"),
    st.sampled_from((*PEOPLE, *PEOPLE, "nbk", "ghost")),  # the central bank (not a plain payer), no account
    st.sampled_from((*PEOPLE, *PEOPLE, "nbk", "ghost")),
    st.sampled_from((1, 99, 99, 5_000, 39_999, 40_000, 60_000, 9_960_000, 9_960_001, 10**7, 0)),
    st.sampled_from(TAGS),
    st.sampled_from((False, False, False, True)),  # signed by someone other than the payer
    # a memo; the last one is refused (a control character)
    st.sampled_from((None, None, None, "rent", "a\nb")),
)
_step = st.one_of(
    _transfer,
    _transfer,
    _transfer,
    st.tuples(
        st.just("hold"), st.sampled_from(PEOPLE), st.sampled_from(PEOPLE), st.sampled_from((100, 10**7))
    ),
    st.tuples(st.just("release"), st.sampled_from(("post", "void")), st.integers(0, 20)),
    st.tuples(st.just("batch"), st.lists(_transfer, min_size=1, max_size=3)),
    st.tuples(st.just("status"), st.sampled_from(("freeze", "unfreeze")), st.sampled_from(PEOPLE)),
    st.tuples(st.just("again"), st.integers(0, 50)),
)


def _signer(payer: str, other: bool) -> str:
    if payer == "ghost":
        return "nbk"
    return ("bob" if payer != "bob" else "aigerim") if other else payer


def _build(w: Wallet, steps: list) -> list:
    ops, holds = [], []
    for i, step in enumerate(steps):
        kind, op_id = step[0], f"op-{i}"
        if kind == "transfer":
            _, payer, payee, amount, tag, other, *memo = step  # the explicit examples have no memo
            body = Transfer(payer, payee, amount, tag or None, *memo)
            ops.append(w.build(_signer(payer, other), body, op_id))
        elif kind == "hold":
            _, payer, payee, amount = step
            ops.append(w.build(payer, Hold(payer, payee, amount, 600), op_id))
            holds.append((op_id, payer))
        elif kind == "release" and holds:
            hold_id, payer = holds[step[2] % len(holds)]
            body = Post(hold_id) if step[1] == "post" else Void(hold_id)
            ops.append(w.build(payer, body, op_id))
        elif kind == "batch":
            inner = tuple(
                w.build(_signer(p, o), Transfer(p, q, a, t or None, *m), f"{op_id}-{j}")
                for j, (_, p, q, a, t, o, *m) in enumerate(step[1])
            )
            ops.append(w.build("nbk", Batch(inner), op_id))
        elif kind == "status":
            body = Freeze(step[2]) if step[1] == "freeze" else Unfreeze(step[2])
            ops.append(w.build("nbk", body, op_id))
        elif kind == "again" and ops:
            ops.append(ops[step[1] % len(ops)])  # the same operation submitted twice
    return ops


# Rules whose answers depend on the chunk's own earlier payments (history windows, a counterparty filter) and
# that report: what the plain path must keep for them exactly as the general path does.
WINDOWS = """
rule "busy-payer"
  on transfer
  when payer.out_count(24h) >= 3
  report fma "a third payment today"

rule "merchant-heavy"
  on transfer
  when payer.out_sum(day, kind: merchant) > 200 tiyn
  report fma "paid merchants more than 2 KZT today"

rule "big-inflow"
  on transfer
  when payee.in_sum(24h) + amount > 80000 tiyn and payee.kind == person
  deny "too much in a day"
"""


# Rules that reshape a payment the plain path has checked: a share to a frozen account (zed, frozen in `base`,
# unfrozen by some workloads), a share to an account at its tier's holding limit (anon), a note. The final postings
# fail the built-in checks that the payer and payee alone passed, so the general path's checks must run.
SHARES = """
rule "tithe-to-zed"
  on transfer
  when payee.handle == "cafe"
  split {
    10% to "zed",
    remaining to payee,
  }

rule "tithe-to-anon"
  on transfer
  when payee.handle == "roads"
  withhold 50% to "anon"

rule "noted"
  on transfer
  when amount == 99 tiyn
  permit "a noted payment"
"""


def _engine(policies: str):
    """The policy set of a run, with a version (chained into every journal row it decides on), or None."""
    if policies == "shares":
        return compile_sources({"shares.policy": SHARES}, version=5)
    if policies == "shipped":
        return compile_sources(read_sources([shipped_policies()]), version=7)
    if policies == "windows":
        return compile_sources({"windows.policy": WINDOWS}, version=3)
    return None


def _tables(db: Path) -> dict[str, list]:
    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}
    finally:
        conn.close()


def _assert_same(outcomes: list[list], tables: list[dict[str, list]]) -> None:
    """Both runs gave the same results and left every table the same, row for row."""
    assert outcomes[0] == outcomes[1]
    for table in TABLES:
        assert tables[0][table] == tables[1][table], table


def _t(payer: str, payee: str, amount: int, tag: str = "", other: bool = False) -> tuple:
    return ("transfer", payer, payee, amount, tag, other)


# Each check's boundary, every time (random workloads reach them only now and then): the payer's whole balance
# and a tiyn more, the tier-0 holding limit exactly and a tiyn over, the central bank and a frozen account as
# payee, a frozen payer, a signer who is not the payer, the same id twice, a tagged bucket.
BOUNDARIES = [
    _t("aigerim", "cafe", 40_000), _t("bob", "cafe", 40_001), _t("halyk", "anon", 9_960_000),
    _t("halyk", "anon", 1), _t("cafe", "nbk", 5), _t("bob", "zed", 5), _t("zed", "bob", 5),
    _t("bob", "cafe", 5, other=True), ("again", 0), _t("roads", "cafe", 99, "edu"), _t("cafe", "bob", 99, "edu"),
    _t("ghost", "bob", 5), _t("bob", "ghost", 5), _t("bob", "bob", 5), _t("nbk", "bob", 5),
]  # fmt: skip


@example(steps=BOUNDARIES, chunk=1000, verified=[True] * 30, policies="")
@example(steps=BOUNDARIES, chunk=1, verified=[True] * 30, policies="")
@example(steps=BOUNDARIES * 2, chunk=1000, verified=[True] * 30, policies="windows")
@example(
    steps=[_t("aigerim", "cafe", 99)] * 4 + [_t("bob", "roads", 99)] * 4 + [_t("cafe", "bob", 15_000)] * 3,
    chunk=1000,
    verified=[True] * 30,
    policies="windows",
)  # the plain way keeps what later decisions in the chunk count: a third payment reported, a third inflow denied
@example(steps=BOUNDARIES, chunk=1000, verified=[True] * 30, policies="shipped")
@example(
    steps=[
        _t("bob", "cafe", 99),
        ("status", "unfreeze", "zed"),
        _t("bob", "cafe", 99),
        _t("halyk", "anon", 9_950_000),
        _t("bob", "roads", 20_000),
        _t("bob", "roads", 20_001),
        _t("aigerim", "roads", 20_002),
    ],
    chunk=1000,
    verified=[True] * 30,
    policies="shares",
)  # a share to a frozen account, then to the same account unfrozen; a withheld share over a holding limit
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(_step, min_size=1, max_size=30),
    chunk=st.sampled_from((1, 4, 1000)),
    verified=st.lists(st.sampled_from((True, True, True, False)), min_size=30, max_size=30),
    policies=st.sampled_from(("", "shipped", "windows", "shares")),
)
def test_plain_path__same_rows_balances_leaves_and_results_as_the_general_path(
    base, steps, chunk, verified, policies
) -> None:
    db, keys, now = base
    folder = Path(tempfile.mkdtemp(prefix="tenge-plain-"))
    try:
        outcomes, tables = [], []
        engine = _engine(policies)
        for plain in (True, False):
            path = folder / f"{plain}.db"
            shutil.copy(db, path)
            store = open_store(str(path))
            ledger = ledger_over(store, Clock(now))
            ledger.plain_transfers = plain
            if engine is not None:
                ledger.policy = engine
            ops = _build(Wallet(ledger, Keystore(keys)), steps)
            flags = [verified[i % 30] for i in range(len(ops))]
            results = ledger.apply_many(ops, verified=flags, chunk=chunk)
            outcomes.append([(r.op_id, r.code, r.message, r.seq, r.reports) for r in results])
            store.close()
            tables.append(_tables(path))
        _assert_same(outcomes, tables)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_plain_path__taken_for_a_plain_transfer(base, monkeypatch) -> None:
    """The fast path is not dead code: a plain transfer goes through it (and a rejection does not)."""
    from tenge_ledger.ledger import plain, service

    db, keys, now = base
    folder = Path(tempfile.mkdtemp(prefix="tenge-plain-"))
    taken = []

    def spy(ws, ops, verified, start, results, *rest):
        end = plain.apply_plain_transfers(ws, ops, verified, start, results, *rest)
        taken.extend([True] * (end - start) + [False] * (end < len(ops)))
        return end

    monkeypatch.setattr(service, "apply_plain_transfers", spy)
    try:
        shutil.copy(db, folder / "l.db")
        store = open_store(str(folder / "l.db"))
        ledger = ledger_over(store, Clock(now))
        w = Wallet(ledger, Keystore(keys))
        ops = [w.build("aigerim", Transfer("aigerim", "cafe", 100), "fine"),
               w.build("aigerim", Transfer("aigerim", "cafe", 10**7), "too-much")]  # fmt: skip
        results = ledger.apply_many(ops, verified=True)
        assert [r.code.value for r in results] == ["ok", "insufficient_funds"]
        assert taken == [True, False]
        store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@example(
    steps=[("status", "freeze", "halyk"), ("status", "unfreeze", "halyk"), _t("halyk", "bob", 5)], chunk=1
)
@example(steps=BOUNDARIES * 2, chunk=4)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(_step, min_size=1, max_size=30), chunk=st.sampled_from((1, 2, 4)))
def test_cached_state__two_writers_taking_turns_write_what_one_writer_does(base, steps, chunk) -> None:
    """What a ledger keeps between chunks (ledger/state.py) is only a cache: one ledger applying a workload, and
    two ledgers over the same database (two processes) taking turns chunk by chunk, each finding the other's
    commits, must answer and write exactly the same. A stale cache shows here as a different result."""
    db, keys, now = base
    folder = Path(tempfile.mkdtemp(prefix="tenge-turns-"))
    try:
        outcomes, tables = [], []
        for writers in (1, 2):
            path = folder / f"{writers}.db"
            shutil.copy(db, path)
            stores = [open_store(str(path)) for _ in range(writers)]
            ledgers = [ledger_over(store, Clock(now)) for store in stores]
            ops = _build(Wallet(ledgers[0], Keystore(keys)), steps)
            results = []
            for turn, start in enumerate(range(0, len(ops), chunk)):
                results += ledgers[turn % writers].apply_many(ops[start : start + chunk], chunk=chunk)
            outcomes.append([(r.op_id, r.code, r.message, r.seq, r.reports) for r in results])
            for store in stores:
                store.close()
            tables.append(_tables(path))
        _assert_same(outcomes, tables)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
