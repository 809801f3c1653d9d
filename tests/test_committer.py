"""Group commit off the apply loop (store/committer.py, Ledger._apply_pipelined): a ledger whose chunks a
committer process writes while the next is worked out must answer and write exactly what a ledger committing
each chunk itself does, for random workloads (rejections, repeated ids across chunks the committer has not
written yet, holds, batches, tags, splits); and when another writer gets in between, or the committer dies, no
operation is lost, none is applied twice, and the ledger still checks."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest
from committer_support import acting_clock, checks, copy_of, ledger_on, transfers
from conftest import Clock
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_plain_transfer import BOUNDARIES, _assert_same, _build, _engine, _step, _t, _tables, make_base

from tenge_ledger.app import ledger_over
from tenge_ledger.client.keystore import Keystore
from tenge_ledger.client.wallet import Wallet
from tenge_ledger.core import limits
from tenge_ledger.core.errors import InvariantViolation
from tenge_ledger.core.records import Issue, Sweep, Transfer
from tenge_ledger.ledger import service
from tenge_ledger.store import open_store


@pytest.fixture(scope="module")
def start(tmp_path_factory) -> tuple[Path, Path, int]:
    return make_base(tmp_path_factory.mktemp("committer"))


def _run(db: Path, folder: Path, keys: Path, now: int, steps, chunk: int, policies: str, committer: bool):
    """Apply the workload to a copy of `db`: with the committer (from any size of batch) or without it."""
    path, store = copy_of(db, folder, f"{committer}.db")
    ledger, w = ledger_on(store, keys, Clock(now), committer)
    engine = _engine(policies)
    if engine is not None:
        ledger.policy = engine
    used = []
    real = ledger._apply_pipelined

    def spy(*args):
        used.append(True)
        return real(*args)

    ledger._apply_pipelined = spy  # type: ignore[method-assign]
    ops = _build(w, steps)
    results = ledger.apply_many(ops, verified=True, chunk=chunk)
    store.close()
    return [(r.op_id, r.code, r.message, r.seq, r.reports) for r in results], bool(used), len(ops), path


@example(steps=BOUNDARIES * 3, chunk=2, policies="")
@example(steps=[_t("aigerim", "cafe", 99)] * 12 + [("again", 3), ("again", 0)] * 3, chunk=2, policies="")
@example(steps=BOUNDARIES * 2, chunk=3, policies="shares")
@example(steps=BOUNDARIES * 2, chunk=3, policies="windows")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(_step, min_size=8, max_size=40),
    chunk=st.sampled_from((1, 2, 3)),
    policies=st.sampled_from(("", "shares", "windows")),
)
def test_committer__same_results_and_rows_as_committing_each_chunk(start, steps, chunk, policies) -> None:
    db, keys, now = start
    folder = Path(tempfile.mkdtemp(prefix="tenge-committer-"))
    try:
        outcomes, tables, used = [], [], []
        for committer in (True, False):
            outcome, pipelined, count, path = _run(db, folder, keys, now, steps, chunk, policies, committer)
            outcomes.append(outcome)
            tables.append(_tables(path))
            used.append(pipelined)
        _assert_same(outcomes, tables)
        # the committer writes from three chunks on, where no rule reads a window (which reads the store, lagging)
        assert used == [policies != "windows" and count > 2 * chunk, False]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_committer__another_writer_between_chunks_is_a_conflict_worked_out_again(start, tmp_path) -> None:
    """A second process commits while chunks wait in the committer: the chunks worked out on the old head are
    refused by the committer (never written over the other's entry) and worked out again, so every operation is
    applied once, in order after the other writer's, and the journal checks."""
    db, keys, now = start
    path, store = copy_of(db, tmp_path)

    def another_writer_commits() -> None:
        other = open_store(str(path))
        other_ledger = ledger_over(other, Clock(now))
        w = Wallet(other_ledger, Keystore(keys))
        assert w.transfer("bob", "cafe", 7, op_id="from-elsewhere").code.value == "ok"
        other.close()

    ledger, w = ledger_on(store, keys, acting_clock(now, 4, another_writer_commits))
    ops = transfers(w, "p", 20)
    conflicts = []
    real = service.Ledger._apply_chunk

    def counted(self, *args):
        conflicts.append(True)
        return real(self, *args)

    ledger._apply_chunk = counted.__get__(ledger)  # type: ignore[method-assign]
    results = ledger.apply_many(ops, verified=True, chunk=2)
    assert [r.code.value for r in results] == ["ok"] * 20
    assert conflicts, "the chunks after the other writer's commit were worked out again"
    seqs = [r.seq for r in results]
    assert seqs == sorted(seqs) and len(set(seqs)) == 20
    assert store.balances("cafe")[("cafe", "")] == 40_000 + 20 + 7
    assert store.operation("from-elsewhere").seq < seqs[-1]
    store.close()
    checks(path)


def test_committer__killed_mid_run_loses_nothing_and_applies_nothing_twice(start, tmp_path) -> None:
    """The committer process dies while chunks wait in it: the ledger goes on committing itself. What the
    committer wrote before it died is this call's (its answers, or the store's journal head, say which chunks),
    the rest is applied now, each exactly once."""
    db, keys, now = start
    path, store = copy_of(db, tmp_path)

    def kill_the_committer() -> None:
        store._committer._process.kill()  # type: ignore[attr-defined]
        store._committer._process.wait()  # type: ignore[attr-defined]

    ledger, w = ledger_on(store, keys, acting_clock(now, 5, kill_the_committer))
    ops = transfers(w, "k", 20)
    results = ledger.apply_many(ops, verified=True, chunk=2)
    assert [r.code.value for r in results] == ["ok"] * 20
    assert len({r.seq for r in results}) == 20
    assert store.balances("cafe")[("cafe", "")] == 40_000 + 20
    with store.committing() as committer:  # it stopped unasked: the store starts no other behind its back
        assert committer is None
    more = ledger.apply_many(
        [w.build("aigerim", Transfer("aigerim", "cafe", 1), f"m-{i}") for i in range(6)],
        verified=True,
        chunk=2,
    )
    assert [r.code.value for r in more] == ["ok"] * 6
    store.close()
    checks(path)


def test_committer__a_failed_write_raises_and_writes_nothing_queued_behind_it(
    start, tmp_path, monkeypatch
) -> None:
    """A change set the store refuses (here a balance made negative on its way to the committer: a transfer's
    amount raised past its payer's funds, which the database's own check catches as the store debits the payer)
    fails the batch as a refused write fails it without the committer: the error
    is raised, the chunks before it are committed (and told to `on_results`), none queued behind it, and the
    journal checks."""
    db, keys, now = start
    path, store = copy_of(db, tmp_path)
    ledger, w = ledger_on(store, keys, Clock(now))
    ops = transfers(w, "f", 20)
    monkeypatch.setattr(limits, "legs_buckets_per_row_twice", 0)  # chunks of two rows go by their legs
    with store.committing() as committer:
        real = committer.submit
    sent = [0]

    def spoiled(change, expected):
        sent[0] += 1
        if sent[0] == 4:
            assert (
                change.legs_from_rows
            )  # plain untagged transfers: the store moves the buckets by their rows
            row = change.plain_entries[0]
            change.plain_entries[0] = (*row[:6], 10**15, *row[7:])
        return real(change, expected)

    monkeypatch.setattr(committer, "submit", spoiled)
    heard: list = []  # what apply_many's caller learns before the failure loses its return value
    with pytest.raises(InvariantViolation, match="refused a write"):
        ledger.apply_many(ops, verified=True, chunk=2, on_results=heard.extend)
    applied = [i for i in range(20) if store.operation(f"f-{i}") is not None]
    assert applied == list(range(6))  # the first three chunks; nothing queued behind the refused one
    assert [(r.op_id, r.seq) for r in heard] == [(f"f-{i}", store.operation(f"f-{i}").seq) for i in range(6)]
    again = ledger.apply_many(ops, verified=True, chunk=2)  # the state was dropped: it reads the store again
    assert [r.code.value for r in again] == ["exists"] * 6 + ["ok"] * 14
    store.close()
    checks(path)


def test_committer__one_caller_at_a_time(start, tmp_path) -> None:
    """Two threads sharing a store never share its committer (its answers come in the order of one caller's
    chunks): the second is told there is none and commits its chunks itself."""
    db, _, _ = start
    shutil.copy(db, tmp_path / "l.db")
    store = open_store(str(tmp_path / "l.db"))
    with store.committing() as first, store.committing() as second:
        assert first is not None and second is None
    with store.committing() as again:
        assert again is first  # released, and kept: one process for the store's life
    store.close()
    assert first.stopped is False and first._process.poll() is not None  # closed with the store


def test_committer__a_sweep_after_unwritten_tagged_transfers_sweeps_what_they_left(start, tmp_path) -> None:
    """A sweep reads the holders of an expired tag from the store: worked out while the chunks that moved that
    money wait in the committer, it would return what the store still says they hold. Such an operation is only
    worked out once every chunk before it is written, so both ways return the same amounts."""
    db, keys, now = start
    day = 86_400
    outcomes, tables = [], []
    for committer in (True, False):
        path, store = copy_of(db, tmp_path, f"{committer}.db")
        # ledger time: three chunks today, then two days on (the tag expired); read once per chunk
        times = iter([now] * 3 + [now + 2 * day] * 100)
        ledger, w = ledger_on(store, keys, times.__next__, committer)
        soon = time.strftime("%Y-%m-%d", time.gmtime(now + day))
        ops = [
            w.build("nbk", Issue("roads", 1_000, "soon", soon), "i-1"),
            w.build("roads", Transfer("roads", "cafe", 10), "t-0"),
            *(w.build("roads", Transfer("roads", "cafe", 100, "soon"), f"t-{i}") for i in range(1, 5)),
            w.build("nbk", Sweep(now + 2 * day), "s-1"),
            w.build("cafe", Transfer("cafe", "bob", 5), "t-5"),
        ]
        results = ledger.apply_many(ops, verified=True, chunk=2)
        outcomes.append([(r.op_id, r.code, r.message, r.seq) for r in results])
        store.close()
        tables.append(_tables(path))
    _assert_same(outcomes, tables)
    assert outcomes[0][6][1].value == "ok" and "10.00 KZT of 1 expired tags" in outcomes[0][6][2]


def test_committer__chunks_written_before_a_fallback_keep_their_results(start, tmp_path, monkeypatch) -> None:
    """When the ledger stops using the committer midway (here: the settings changed so that it may not), the
    chunks the committer had written are this call's own: answered `ok`, not `exists` as if someone else had
    applied them; the rest are worked out the synchronous way."""
    db, keys, now = start
    path, store = copy_of(db, tmp_path)
    ledger, w = ledger_on(store, keys, Clock(now))
    ops = transfers(w, "h", 20)
    real = ledger._work_out
    calls = [0]

    def work_out(tx, part, flags, at, head, *rest):
        calls[0] += 1
        if calls[0] == 4:  # three chunks handed over; let the committer write them, then give up on it
            time.sleep(0.5)
            raise service._HistoryNotKept
        return real(tx, part, flags, at, head, *rest)

    monkeypatch.setattr(ledger, "_work_out", work_out)
    results = ledger.apply_many(ops, verified=True, chunk=2)
    assert [r.code.value for r in results] == ["ok"] * 20
    assert len({r.seq for r in results}) == 20
    store.close()
    checks(path)


@pytest.mark.parametrize("committer", [True, False])
def test_apply_many__tells_each_chunk_once_committed_in_order(start, tmp_path, committer) -> None:
    """`on_results` hears every chunk's results once they are final, in order, with or without the committer;
    together they are what apply_many returns."""
    db, keys, now = start
    path, store = copy_of(db, tmp_path)
    ledger, w = ledger_on(store, keys, Clock(now), committer)
    heard: list[list] = []
    results = ledger.apply_many(transfers(w, "o", 11), verified=True, chunk=2, on_results=heard.append)
    assert [len(part) for part in heard] == [2, 2, 2, 2, 2, 1]
    assert [r for part in heard for r in part] == results
    assert [r.code.value for r in results] == ["ok"] * 11
    store.close()


def test_apply_many__hears_of_chunks_as_they_are_written_not_at_the_end(start, tmp_path) -> None:
    """With the committer, a chunk's results reach `on_results` soon after it is written, so a progress bar moves
    while a large file applies (they came in one burst at the end, 64 chunks at a time)."""
    db, keys, now = start
    path, store = copy_of(db, tmp_path)
    heard: list = []
    seen_at_chunk: list[int] = []

    def clock() -> int:  # once per chunk, before it is worked out
        seen_at_chunk.append(len(heard))
        if len(seen_at_chunk) == 4:
            time.sleep(0.5)  # the committer has written the first three chunks by the end of this one
        return now

    ledger, w = ledger_on(store, keys, clock)
    results = ledger.apply_many(transfers(w, "e", 20), verified=True, chunk=2, on_results=heard.extend)
    assert [r.code.value for r in results] == ["ok"] * 20
    assert seen_at_chunk[5] >= 6  # the fifth chunk's hand-over took the answers in: three chunks heard of
    store.close()
    checks(path)
