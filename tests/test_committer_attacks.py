"""Attacks on group commit off the apply loop (store/committer.py, Ledger._apply_pipelined), beyond
tests/test_committer.py: failures at each step of the pipeline (a committer that stops when a chunk is handed
to it, a policy set with windows enabled by another process once a chunk is written, a store closed by another
thread, a process that cannot start, an interrupt in the middle of a chunk), a ledger opened by a relative
path, two threads on one store, privacy modes that must keep the committer off, and random workloads with
unverified signatures, a clock that moves between chunks and a tiny state. Each time: the results and the rows
are those of a ledger that commits each chunk itself, no operation is lost or applied twice, and the journal
checks."""

from __future__ import annotations

import errno
import json
import select
import shutil
import signal
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import pytest
from committer_support import acting_clock, checks, copy_of, ledger_on, transfers
from conftest import Clock
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_plain_transfer import BOUNDARIES, _assert_same, _build, _engine, _step, _tables, make_base

from tenge_ledger.client.wallet import Wallet
from tenge_ledger.core import limits
from tenge_ledger.core.records import Batch, Decision, Transfer
from tenge_ledger.lab import sandbox
from tenge_ledger.ledger.journal import check_journal
from tenge_ledger.policy import compile_sources
from tenge_ledger.policy.sets import enable, set_id
from tenge_ledger.store import committer as committer_module
from tenge_ledger.store import open_store
from tenge_ledger.store.sqlite import _NEXT_SETTINGS_EPOCH

# A set whose window decides nothing here (no account makes a thousand payments), so every result is "ok":
# only the window itself matters, which turns the committer off.
QUIET_WINDOW = """
rule "very-busy"
  on transfer
  when payer.out_count(24h) >= 1000
  deny "a thousand payments in a day"
"""


@pytest.fixture(scope="module")
def start(tmp_path_factory) -> tuple[Path, Path, int]:
    return make_base(tmp_path_factory.mktemp("attacks"))


@pytest.fixture
def folder():
    path = Path(tempfile.mkdtemp(prefix="tenge-attacks-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _answered(store) -> None:
    """Wait until the committer has answered the change set it was handed (so it is written)."""
    ready, _, _ = select.select([store._committer._process.stdout], [], [], 30)
    assert ready, "the committer answered in time"


def test_committer__a_stop_when_a_chunk_is_handed_over_keeps_what_was_written_ok(start, folder) -> None:
    """The committer wrote and answered the first chunk, then died before the second was handed to it: the
    first chunk's operations were applied by this call and must say so (ok, with their seqs), not `exists`
    as if someone had applied them before; the rest is applied once, the synchronous way."""
    db, keys, now = start
    path, store = copy_of(db, folder)

    def kill_after_the_first_answer() -> None:  # the first chunk waits in the committer
        _answered(store)
        store._committer._process.kill()
        store._committer._process.wait()

    ledger, w = ledger_on(store, keys, acting_clock(now, 2, kill_after_the_first_answer))
    results = ledger.apply_many(transfers(w, "s", 10), verified=True, chunk=2)
    assert [r.code.value for r in results] == ["ok"] * 10
    seqs = [r.seq for r in results]
    assert seqs == sorted(seqs) and len(set(seqs)) == 10
    assert store.balances("cafe")[("cafe", "")] == 40_000 + 10
    store.close()
    checks(path)


def test_committer__a_set_with_windows_enabled_elsewhere_keeps_the_written_chunks_ok(start, folder) -> None:
    """Another process enables a set that reads windows once the first chunk is written: the ledger stops
    working ahead of the store and commits the rest itself. The first chunk was applied by this call: its
    results are ok, as a ledger committing each chunk itself answers."""
    db, keys, now = start
    path, store = copy_of(db, folder)

    def enable_windows_elsewhere() -> None:
        _answered(store)
        other = open_store(str(path))
        enable(other, {"quiet.policy": QUIET_WINDOW}, now)
        other.close()

    ledger, w = ledger_on(store, keys, acting_clock(now, 2, enable_windows_elsewhere))
    results = ledger.apply_many(transfers(w, "e", 10), verified=True, chunk=2)
    assert [r.code.value for r in results] == ["ok"] * 10
    assert ledger.policy.windows  # the set the other process enabled decided the rest
    assert store.balances("cafe")[("cafe", "")] == 40_000 + 10
    store.close()
    checks(path)


def test_committer__a_store_closed_by_another_thread_mid_run_raises_and_does_not_hang(start, folder) -> None:
    """Another thread closes the store while chunks wait in the committer: the close lets the committer write
    what it holds, and the apply fails on the closed store. It must fail (an error the caller sees), not spin
    for ever waiting for answers from a pipe the close shut; the chunks written are whole, and the journal
    checks."""
    db, keys, now = start
    path, store = copy_of(db, folder)

    def close_from_another_thread() -> None:  # two chunks wait in the committer
        closer = threading.Thread(target=store.close)
        closer.start()
        closer.join()

    ledger, w = ledger_on(store, keys, acting_clock(now, 3, close_from_another_thread))
    ops = transfers(w, "c", 10)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            ledger.apply_many(ops, verified=True, chunk=2)
        except BaseException as exc:  # noqa: BLE001  (what it raised is the test's to look at)
            outcome.append(exc)
        else:
            outcome.append(None)

    applying = threading.Thread(target=run, daemon=True)
    applying.start()
    applying.join(60)
    assert not applying.is_alive(), "apply_many hung on a closed store"
    assert isinstance(outcome[0], Exception)
    again = open_store(str(path))
    try:
        applied = [i for i in range(10) if again.operation(f"c-{i}") is not None]
        assert applied == [0, 1, 2, 3]  # the two chunks the committer held, written whole by the close
    finally:
        again.close()
    checks(path)


def test_committer__a_ledger_opened_by_a_relative_path_is_written_where_it_was_opened(
    start, folder, monkeypatch
) -> None:
    """The committer starts on first use, maybe after the process changed its working directory: it must
    write the ledger the store opened, not a file of the same name in the new directory (here a copy of the
    same ledger, with the same head, so no check would have told them apart)."""
    db, keys, now = start
    for name in ("here", "there"):
        (folder / name).mkdir()
        shutil.copy(db, folder / name / "l.db")
    monkeypatch.chdir(folder / "here")
    store = open_store("l.db")
    monkeypatch.chdir(folder / "there")
    ledger, w = ledger_on(store, keys, Clock(now))
    results = ledger.apply_many(transfers(w, "r", 10), verified=True, chunk=2)
    assert [r.code.value for r in results] == ["ok"] * 10
    assert store.balances("cafe")[("cafe", "")] == 40_000 + 10
    store.close()
    for name, count in (("here", 10), ("there", 0)):
        other = open_store(str(folder / name / "l.db"))
        try:
            assert sum(other.operation(f"r-{i}") is not None for i in range(10)) == count, name
        finally:
            other.close()
    checks(folder / "here" / "l.db")


def test_committer__a_process_that_cannot_start_leaves_the_ledger_committing_itself(
    start, folder, monkeypatch
) -> None:
    """The system refuses a new process (too many processes, no memory): the operations are applied the
    synchronous way, as when the committer stops, rather than the apply failing on an OSError."""
    db, keys, now = start
    path, store = copy_of(db, folder)

    def refused(*args, **kwargs):
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(committer_module.subprocess, "Popen", refused)
    ledger, w = ledger_on(store, keys, Clock(now))
    results = ledger.apply_many(transfers(w, "p", 10), verified=True, chunk=2)
    assert [r.code.value for r in results] == ["ok"] * 10
    assert store.balances("cafe")[("cafe", "")] == 40_000 + 10
    store.close()
    checks(path)


# Rules without windows that read what the state must answer for chunks the committer has not written yet: a
# party's balance (its every bucket), its kind, a tag's expiry, and a note on the decision.
BALANCES = """
rule "rich-payee"
  on transfer
  when payee.balance + amount > 80_000 tiyn and payee.kind == person
  deny "a person would hold more than 800 KZT"

rule "expired"
  when tag_expired
  deny "this money has expired"

rule "low-payer"
  on transfer
  when payer.balance < 30_000 tiyn
  permit "a payer running low"
"""


def _spied(method, calls: list[bool]):
    def spy(*args):
        calls.append(True)
        return method(*args)

    return spy


_SELF = ("transfer", "aigerim", "aigerim", 1, "", False, None)


class Ticking(Clock):
    """Ledger time that moves on by `step` seconds at each chunk (a chunk reads it once): buckets move in new
    minutes, so the activity snapshots a chunk writes depend on the rows the chunks before it left."""

    def __init__(self, now: int, step: int) -> None:
        self.now, self.step = now - step, step

    def __call__(self) -> int:
        return self.advance(self.step)


@example(
    steps=BOUNDARIES * 3,
    chunk=2,
    verified=[True, False] * 15,
    policies="balances",
    step=61,
    tiny=True,
    plain=True,
)
# Found by hypothesis: a repeated id the committer refuses sends the chunks it held back to be worked out again,
# and they read the clock again, so every later chunk applied a tick later than the synchronous way's.
@example(
    steps=[_SELF] * 5
    + [("status", "unfreeze", "aigerim")]
    + [_SELF] * 3
    + [("hold", "aigerim", "aigerim", 100), ("release", "post", 0)]
    + [_SELF] * 2
    + [("hold", "aigerim", "aigerim", 100)]
    + [_SELF] * 2
    + [("again", 0), ("transfer", "aigerim", "bob", 1, "", False, None), ("hold", "aigerim", "aigerim", 100)]
    + [("again", 17)],
    chunk=1,
    verified=[True] * 30,
    policies="",
    step=7,
    tiny=False,
    plain=True,
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(_step, min_size=8, max_size=40),
    chunk=st.sampled_from((1, 2, 3)),
    verified=st.lists(st.sampled_from((True, True, True, False)), min_size=30, max_size=30),
    policies=st.sampled_from(("", "shares", "balances")),
    step=st.sampled_from((0, 7, 61)),
    tiny=st.booleans(),
    plain=st.booleans(),
)
def test_committer__same_with_unverified_signatures_a_moving_clock_balance_rules_and_a_tiny_state(
    start, steps, chunk, verified, policies, step, tiny, plain
) -> None:
    """As tests/test_committer.py's equivalence test, with what it leaves out: signatures the ledger checks,
    ledger time that moves between chunks, rules that read balances and tag expiry, and a state that is too
    big after every chunk (`state_buckets_max`), so each chunk is confirmed and the next reads afresh; and
    transfers the general way too (`plain_transfers` off)."""
    db, keys, now = start
    folder = Path(tempfile.mkdtemp(prefix="tenge-attacks-"))
    kept = limits.state_buckets_max
    try:
        if tiny:
            limits.state_buckets_max = 3
        engine = (
            compile_sources({"b.policy": BALANCES}, version=9)
            if policies == "balances"
            else _engine(policies)
        )
        outcomes, tables, used = [], [], []
        for committer in (True, False):
            path, store = copy_of(db, folder, f"{committer}.db")
            ledger, w = ledger_on(store, keys, Ticking(now, step), committer)
            ledger.plain_transfers = plain
            if engine is not None:
                ledger.policy = engine
            calls: list[bool] = []
            ledger._apply_pipelined = _spied(ledger._apply_pipelined, calls)  # type: ignore[method-assign]
            ops = _build(w, steps)
            flags = [verified[i % 30] for i in range(len(ops))]
            results = ledger.apply_many(ops, verified=flags, chunk=chunk)
            outcomes.append([(r.op_id, r.code, r.message, r.seq, r.reports) for r in results])
            store.close()
            tables.append(_tables(path))
            used.append(bool(calls))
        _assert_same(outcomes, tables)
        assert used == [len(ops) > 2 * chunk, False]
    finally:
        limits.state_buckets_max = kept
        shutil.rmtree(folder, ignore_errors=True)


class _CountsPayments:
    """A policy engine of a library caller (core/hooks.PolicyEngine) that reads a window it does not declare
    for read-ahead (its history, the unfiltered snapshots, it does declare): a view's window reads the store's
    history for it, as of the chunk."""

    policy_set_id = "counts"
    version = 1
    windows: frozenset = frozenset()
    filters: frozenset[str] = frozenset()
    activity = True

    def decide(self, proposal, view):
        _, count = view.window(proposal.payer, "out", proposal.at - 3_600)
        if count >= 3:
            return Decision(allowed=False, reasons=("a fourth payment within the hour",))
        return Decision()


def test_committer__an_engine_reading_undeclared_windows_decides_as_without_it(start, folder) -> None:
    """The engine's windows are not the ones it reads: worked out ahead of the store, its window would miss
    the payments of the chunks the committer holds (and allow what a ledger committing each chunk denies). The
    results and rows must be the same either way."""
    db, keys, now = start
    outcomes, tables = [], []
    for committer in (True, False):
        path, store = copy_of(db, folder, f"{committer}.db")
        ledger, w = ledger_on(store, keys, Clock(now), committer)
        ledger.policy = _CountsPayments()
        assert (
            w.transfer("bob", "cafe", 1, op_id="first").code.value == "ok"
        )  # the store keeps the history now
        results = ledger.apply_many(transfers(w, "w", 10), verified=True, chunk=2)
        outcomes.append([(r.op_id, r.code, r.message, r.seq) for r in results])
        store.close()
        tables.append(_tables(path))
        checks(path)
    _assert_same(outcomes, tables)
    assert [code.value for _, code, _, _ in outcomes[1]] == ["ok"] * 3 + ["policy_denied"] * 7


@pytest.mark.parametrize("mode", ["pseudonymous", "tiered", "payee-transparent", "escrowed", "selective"])
def test_committer__off_in_every_privacy_mode_that_seals_its_records(tmp_path, mode) -> None:
    """A mode whose sink seals or pseudonymises each record encodes it in the chunk's transaction (its trace
    leaves are not derived from the journal): no committer, not even a process started for nothing."""
    box = sandbox.make(tmp_path / mode.replace("-", "_"), mode)
    ledger = box.ledger
    ledger.committer_operations_min = 0
    calls: list[bool] = []
    ledger._apply_pipelined = _spied(ledger._apply_pipelined, calls)  # type: ignore[method-assign]
    ops = [box.wallet.build("alice", Transfer("alice", "bob", 100 + i), f"m-{i}") for i in range(10)]
    results = ledger.apply_many(ops, verified=True, chunk=2)
    assert [r.code.value for r in results] == ["ok"] * 10
    assert calls == [] and box.store._committer is None
    report = check_journal(box.store)
    assert report.ok, report.problems


class _Interrupted(BaseException):
    """Stands for KeyboardInterrupt (which pytest would take for the user's): not an Exception, so no policy
    error handler turns it into a denial."""


class _InterruptsAt:
    """A policy set that deems nothing, but is interrupted while it decides one operation."""

    policy_set_id = "interrupts"
    version = 2
    windows: frozenset = frozenset()
    filters: frozenset[str] = frozenset()
    activity = False

    def __init__(self, op_id: str) -> None:
        self.op_id = op_id

    def decide(self, proposal, view):
        if proposal.op.id == self.op_id:
            raise _Interrupted
        return Decision()


def test_committer__an_interrupt_while_a_chunk_is_worked_out_leaves_what_committing_each_chunk_leaves(
    start, folder
) -> None:
    """An interrupt in the middle of a chunk (a BaseException out of a policy set): the chunks before it are
    committed, nothing of it or after it, as a ledger committing each chunk itself leaves the store; the
    committer is left clean (every answer taken), and the same call again applies the rest once."""
    db, keys, now = start
    outcomes, tables = [], []
    for committer in (True, False):
        path, store = copy_of(db, folder, f"{committer}.db")
        ledger, w = ledger_on(store, keys, Clock(now), committer)
        ledger.policy = _InterruptsAt("i-7")
        ops = transfers(w, "i", 12)
        with pytest.raises(_Interrupted):
            ledger.apply_many(ops, verified=True, chunk=2)
        assert [i for i in range(12) if store.operation(f"i-{i}") is not None] == list(range(6))
        ledger.policy = _InterruptsAt("none")
        results = ledger.apply_many(ops, verified=True, chunk=2)
        assert [r.code.value for r in results] == ["exists"] * 6 + ["ok"] * 6
        outcomes.append([(r.op_id, r.code, r.message, r.seq) for r in results])
        store.close()
        tables.append(_tables(path))
        checks(path)
    _assert_same(outcomes, tables)


def test_committer__two_threads_with_a_ledger_each_on_one_store_apply_everything_once(start, folder) -> None:
    """Two threads share a store, each with its own ledger: one has the committer, the other commits itself
    on the same connection. Each one's commits are the other's conflicts; every operation is applied once."""
    db, keys, now = start
    path, store = copy_of(db, folder)
    outcome: dict[str, object] = {}

    def run(payer: str) -> None:
        ledger, w = ledger_on(store, keys, Clock(now))
        ops = [w.build(payer, Transfer(payer, "cafe", 1), f"{payer}-{i}") for i in range(40)]
        try:
            outcome[payer] = [r.code.value for r in ledger.apply_many(ops, verified=True, chunk=2)]
        except BaseException as exc:  # noqa: BLE001  (the test's to report)
            outcome[payer] = exc

    threads = [threading.Thread(target=run, args=(who,), daemon=True) for who in ("aigerim", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert outcome == {"aigerim": ["ok"] * 40, "bob": ["ok"] * 40}
    assert store.balances("cafe")[("cafe", "")] == 40_000 + 80
    store.close()
    checks(path)


def _reused_ids(w: Wallet) -> list:
    """Ids used again across chunks the committer has not written: the same operation, another operation
    under a used id (plain and tagged), an id a rejection left free, a batch's own and inner ids, and an id
    used twice within one chunk."""
    t = Transfer
    return [
        w.build("aigerim", t("aigerim", "cafe", 5), "a"),
        w.build("bob", t("bob", "cafe", 10**9), "rejected"),  # insufficient funds: the id stays free
        w.build("aigerim", t("aigerim", "cafe", 5), "a"),  # the same: exists
        w.build("aigerim", t("aigerim", "cafe", 6), "a"),  # other fields: exists_with_different_fields
        w.build("bob", t("bob", "cafe", 7), "rejected"),  # now applies
        w.build("roads", t("roads", "cafe", 3, "edu"), "tagged"),
        w.build("roads", t("roads", "cafe", 4, "edu"), "tagged"),
        w.build("roads", t("roads", "cafe", 3, "edu", "memo"), "tagged"),
        w.build("bob", t("bob", "zed", 1), "frozen"),  # zed is frozen: rejected
        w.build("bob", t("bob", "cafe", 1), "frozen"),
        w.build("bob", t("bob", "cafe", 2), "twice"),
        w.build("bob", t("bob", "cafe", 2), "twice"),  # the same chunk (of 3): exists from the chunk itself
        w.build("bob", t("bob", "cafe", 3), "twice"),
        w.build("nbk", Batch((w.build("bob", t("bob", "cafe", 8), "inner-1"),)), "batch"),
        w.build("bob", t("bob", "cafe", 8), "inner-1"),
        w.build("bob", t("bob", "cafe", 9), "inner-1"),
        w.build("bob", t("bob", "cafe", 8), "batch"),
        w.build("aigerim", t("aigerim", "cafe", 5), "a"),
        w.build("bob", t("bob", "cafe", 7), "rejected"),
        w.build(
            "bob",
            t("bob", "cafe", 7),
            "rejected",
        ),
    ]


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_committer__ids_used_again_across_unwritten_chunks_answer_as_without_it(start, folder, chunk) -> None:
    db, keys, now = start
    outcomes, tables, used = [], [], []
    for committer in (True, False):
        path, store = copy_of(db, folder, f"{committer}.db")
        ledger, w = ledger_on(store, keys, Clock(now), committer)
        calls: list[bool] = []
        ledger._apply_pipelined = _spied(ledger._apply_pipelined, calls)  # type: ignore[method-assign]
        ops = _reused_ids(w)
        results = ledger.apply_many(ops, verified=True, chunk=chunk)
        outcomes.append([(r.op_id, r.code, r.message, r.seq) for r in results])
        store.close()
        tables.append(_tables(path))
        used.append(bool(calls))
        checks(path)
    _assert_same(outcomes, tables)
    assert used == [True, False]
    codes = [code.value for _, code, _, _ in outcomes[0]]
    assert codes[2:5] == ["exists", "exists_with_different_fields", "ok"]
    assert "exists_with_different_fields" in codes[14:17]


def _losing_two_answers(store, now: int):
    """A clock that, read for the third chunk (two wait in the committer), lets the committer write both, takes
    its answers (each the journal head it left) from under the ledger and kills it."""

    def lose_them() -> None:
        process = store._committer._process
        for _ in range(2):
            written = committer_module._receive(process.stdout)
            assert isinstance(written, tuple) and written[0] > 0, written
        process.kill()
        process.wait()

    return acting_clock(now, 3, lose_them)


def test_committer__killed_after_writing_before_answering_reports_what_it_wrote_ok(start, folder) -> None:
    """The committer wrote two chunks and died before its answers reached the ledger: the store's journal head
    is the second chunk's, so both are this call's (ok, with their seqs), not `exists` as if applied before,
    and their rejections are not traced a second time. The rest is applied once, the synchronous way."""
    db, keys, now = start
    path, store = copy_of(db, folder)
    before = store.head()[0]
    ledger, w = ledger_on(store, keys, _losing_two_answers(store, now))
    ops = transfers(w, "k", 10)
    ops[1] = w.build("bob", Transfer("bob", "cafe", 10**9), "broke")  # a rejection, traced once
    results = ledger.apply_many(ops, verified=True, chunk=2)
    assert [r.code.value for r in results] == ["ok", "insufficient_funds"] + ["ok"] * 8
    assert [r.seq for r in results if r.seq is not None] == list(range(before + 1, before + 10))
    assert sum(t.op_id == "broke" for _, t in store.traces()) == 1
    store.close()
    checks(path)


def test_committer__killed_after_writing_a_chunk_of_rejections__traces_each_once(start, folder) -> None:
    """The committer wrote a chunk of transfers and then a chunk that only rejected, and died before either
    answer reached the ledger: the journal head is the first chunk's, but the trace log holds the second's
    rejections too. Both chunks are this call's (their results as the committer wrote them); worked out again,
    the second's rejections were traced a second time."""
    db, keys, now = start
    path, store = copy_of(db, folder)
    before = store.head()[0]
    ledger, w = ledger_on(store, keys, _losing_two_answers(store, now))
    ops = transfers(w, "r", 10)
    ops[2] = w.build("bob", Transfer("bob", "cafe", 10**9), "broke-1")  # the second chunk only rejects
    ops[3] = w.build("bob", Transfer("bob", "cafe", 10**9), "broke-2")
    results = ledger.apply_many(ops, verified=True, chunk=2)
    assert [r.code.value for r in results] == ["ok", "ok", "insufficient_funds", "insufficient_funds"] + [
        "ok"
    ] * 6
    assert [r.seq for r in results if r.seq is not None] == list(range(before + 1, before + 9))
    traced = [t.op_id for _, t in store.traces()]
    assert traced.count("broke-1") == 1 and traced.count("broke-2") == 1
    store.close()
    checks(path)


@pytest.mark.parametrize("chunk", [-1, -10])
def test_committer__a_chunk_size_below_one_is_refused_not_looped_on(start, folder, chunk) -> None:
    """`chunk` below one is the caller's mistake: a clear error, not an apply that never ends (the pipelined
    loop stepped backwards for ever) nor one that returns no results and applies nothing (the synchronous
    loop's range was empty)."""
    db, keys, now = start
    path, store = copy_of(db, folder)
    ledger, w = ledger_on(store, keys, Clock(now))
    ops = transfers(w, "n", 30)
    outcome: list[object] = []

    def run(minimum: int) -> None:
        ledger.committer_operations_min = minimum
        try:
            outcome.append(ledger.apply_many(ops, verified=True, chunk=chunk))
        except ValueError as exc:
            outcome.append(exc)

    for minimum in (0, 10**9):
        applying = threading.Thread(target=run, args=(minimum,), daemon=True)
        applying.start()
        applying.join(30)
        assert not applying.is_alive(), "apply_many looped for ever"
        assert isinstance(outcome[-1], ValueError) and "chunk" in str(outcome[-1])
    assert all(store.operation(f"n-{i}") is None for i in range(30))
    store.close()


SHUT = """
rule "shut"
  on transfer
  when payee.handle == "anon"
  deny "anon takes no more payments"
"""


def _changed_setting(what: str) -> tuple[str, object, str]:
    """(setting, its new value, the code every credit to anon gets under it)."""
    if what == "tiers":
        return "tier_holding_tiyn", {"0": 0, "1": 10**12, "2": 10**12, "3": 10**12}, "limit_exceeded"
    files = {"shut.policy": SHUT}
    return "policy_set", {"id": set_id(files), "version": 1, "files": files}, "policy_denied"


@pytest.mark.parametrize("what", ["tiers", "policy"])
@pytest.mark.parametrize("written", [True, False])
def test_committer__settings_changed_elsewhere_mid_run_bind_every_chunk_written_after(
    start, folder, written, what
) -> None:
    """Another process lowers the tier-0 holding limit to nothing, or enables a set (without windows) that
    denies every payment to a tier-0 wallet, while two chunks of payments to it wait in the committer, written
    already or not (another connection holds the write lock meanwhile). A chunk written after the change was
    worked out under it: the two chunks written before stay ok, or, not written yet, are refused by the
    committer and worked out again under the new settings; every later payment is refused."""
    db, keys, now = start
    path, store = copy_of(db, folder)
    blocker = sqlite3.connect(path, isolation_level=None, timeout=30)
    key, value, refused = _changed_setting(what)
    calls = [0]
    first = store.head()[0]

    def clock() -> int:
        calls[0] += 1
        if calls[0] == 1 and not written:
            blocker.execute("BEGIN IMMEDIATE")  # the committer waits for the lock
        if calls[0] == 3:
            if written:
                while blocker.execute("SELECT seq FROM journal_head").fetchone()[0] < first + 4:
                    time.sleep(0.01)
                other = open_store(str(path))
                other.set_setting(key, value)
                other.close()
            else:  # as set_setting does, in the transaction that holds the lock
                row = blocker.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
                settings = dict(json.loads(row[0]), **{key: value})
                blocker.execute("UPDATE meta SET value = ? WHERE key = 'settings'", (json.dumps(settings),))
                blocker.execute(_NEXT_SETTINGS_EPOCH)
                blocker.execute("COMMIT")
        return now

    ledger, w = ledger_on(store, keys, clock)
    ops = [w.build("halyk", Transfer("halyk", "anon", 1_000), f"t-{i}") for i in range(10)]
    results = ledger.apply_many(ops, verified=True, chunk=2)
    kept = 4 if written else 0
    assert [r.code.value for r in results] == ["ok"] * kept + [refused] * (10 - kept)
    assert store.balances("anon")[("anon", "")] == 40_000 + 1_000 * kept
    blocker.close()
    store.close()
    checks(path)


class _Torn:
    """The committer's request pipe, interrupted halfway through the next change set written to it."""

    def __init__(self, stream) -> None:
        self.stream, self.torn = stream, False

    def write(self, data: bytes) -> int:
        if not self.torn and len(data) > 64:
            self.torn = True
            self.stream.write(data[: len(data) // 2])
            self.stream.flush()
            raise _Interrupted
        return self.stream.write(data)

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        self.stream.close()


def test_committer__an_interrupt_halfway_through_handing_a_chunk_over_leaves_no_torn_pipe(
    start, folder
) -> None:
    """An interrupt (a signal handler's exception) while a change set is being written to the committer leaves
    half a request in its pipe: the committer must not be used again as if its requests were still framed (it
    would read the next one as the rest of this one, and the ledger wait for ever for an answer). The call
    fails with the interrupt, and the next call applies every operation once."""
    db, keys, now = start
    path, store = copy_of(db, folder)

    def tear_the_pipe() -> None:
        _answered(store)  # the first chunk is written
        process = store._committer._process
        process.stdin = _Torn(process.stdin)

    ledger, w = ledger_on(store, keys, acting_clock(now, 2, tear_the_pipe))
    with pytest.raises(_Interrupted):
        ledger.apply_many(transfers(w, "h", 600), verified=True, chunk=200)
    # fewer bytes than the half of a request left unwritten: they must not go down the torn pipe
    ops = transfers(w, "h", 3)
    outcome: list[object] = []

    def again() -> None:
        outcome.append([r.code.value for r in ledger.apply_many(ops, verified=True, chunk=1)])

    applying = threading.Thread(target=again, daemon=True)
    applying.start()
    applying.join(60)
    assert not applying.is_alive(), "the next apply waited for ever on a torn pipe"
    assert outcome == [["exists"] * 3]  # the first chunk (of 200) was written before the interrupt
    store.close()
    checks(path)


def test_committer__runs_the_ledgers_own_code_whatever_the_working_directory_holds(
    start, folder, monkeypatch
) -> None:
    """`python -m` puts the working directory first on the module path: a directory holding another
    `tenge_ledger` (an old checkout, a vendored copy) would have the committer write this ledger with that
    code. It must run the code the ledger itself runs."""
    db, keys, now = start
    path = folder / "l.db"
    shutil.copy(db, path)
    impostor = folder / "cwd" / "tenge_ledger" / "store"
    impostor.mkdir(parents=True)
    for package in (impostor.parent, impostor):
        (package / "__init__.py").write_text("")
    marker = folder / "impostor-ran"
    (impostor / "committer.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(folder / "cwd")
    store = open_store(str(path))
    ledger, w = ledger_on(store, keys, Clock(now))
    results = ledger.apply_many(transfers(w, "o", 10), verified=True, chunk=2)
    assert [r.code.value for r in results] == ["ok"] * 10
    assert not marker.exists()
    with store.committing() as committer:
        assert committer is not None  # it did not stop: the ledger's own committer wrote the chunks
    store.close()
    checks(path)


def test_committer__ctrl_c_at_the_terminal_leaves_the_committer_to_its_parent(start, folder) -> None:
    """Ctrl-C reaches every process of the terminal's group, the committer too: it is the applying process's
    to decide (it stops the committer if it must), so the committer neither dies of it nor prints a traceback,
    and goes on writing what it is handed."""
    db, keys, now = start
    path, store = copy_of(db, folder)
    ledger, w = ledger_on(store, keys, Clock(now))
    assert [r.code.value for r in ledger.apply_many(transfers(w, "a", 6), verified=True, chunk=2)] == [
        "ok"
    ] * 6
    process = store._committer._process
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert process.poll() is None
    assert [r.code.value for r in ledger.apply_many(transfers(w, "b", 6), verified=True, chunk=2)] == [
        "ok"
    ] * 6
    with store.committing() as committer:
        assert committer is not None and committer._process is process
    store.close()
    checks(path)
