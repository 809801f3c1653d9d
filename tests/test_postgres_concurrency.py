"""Several writers on one ledger at once, threads and processes, on each store: no lost update, no negative
balance, and one id submitted at the same moment by several writers is applied once (the others get `exists`)."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import bank_workload as bank
import pytest
from bank_support import fresh_schema, pg_base_url

from tenge_ledger.core.results import ResultCode
from tenge_ledger.ledger.journal import check_journal
from tenge_ledger.ledger.service import Ledger
from tenge_ledger.store import open_store

STORES = ["sqlite"] + (["postgres"] if pg_base_url() else [])
THREADS = 8


@pytest.fixture(params=STORES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "conc.db")
        return
    with fresh_schema(pg_base_url(), prefix="conc") as pg_url:
        yield pg_url


def _threads(count: int, work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            work(i)
        except BaseException as exc:  # noqa: BLE001 - surfaced to the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[0]


def _ledger(url: str) -> Ledger:
    return Ledger(open_store(url))


def _check(url: str) -> dict[tuple[str, str], int]:
    store = open_store(url)
    try:
        found = check_journal(store)
        assert found.ok, found.problems
        return store.balances()
    finally:
        store.close()


def test_threads__no_lost_update(url: str) -> None:
    bank.setup_bank(url, count=THREADS + 1)
    payee, per_thread, amount = bank.handles(THREADS + 1)[-1], 20, 100
    codes: list[str] = []

    def work(i: int) -> None:
        ledger = _ledger(url)  # each thread its own store: its own connection
        payer = bank.handles()[i]
        specs = [(f"t{i}-{n}", payer, payee, amount) for n in range(per_thread)]
        codes.extend(ledger.apply(op).code.value for op in bank.transfer_ops(ledger.ledger_id, specs))
        ledger.store.close()

    _threads(THREADS, work)
    assert Counter(codes) == {"ok": THREADS * per_thread}
    balances = _check(url)
    assert balances[(payee, "")] == bank.OPENING_TIYN + THREADS * per_thread * amount


def test_threads__shared_ledger_no_lost_update(url: str) -> None:
    """One store shared by every thread: PostgreSQL through its pool, SQLite through its connection's lock."""
    bank.setup_bank(url, count=THREADS + 1)
    ledger = _ledger(url)  # one store shared by every thread
    payee = bank.handles(THREADS + 1)[-1]
    codes: list[str] = []

    def work(i: int) -> None:
        specs = [(f"s{i}-{n}", bank.handles()[i], payee, 7) for n in range(20)]
        codes.extend(ledger.apply(op).code.value for op in bank.transfer_ops(ledger.ledger_id, specs))

    _threads(THREADS, work)
    ledger.store.close()
    assert Counter(codes) == {"ok": THREADS * 20}
    assert _check(url)[(payee, "")] == bank.OPENING_TIYN + THREADS * 20 * 7


def test_threads__no_negative_balance(url: str) -> None:
    bank.setup_bank(url, count=THREADS + 1)
    names = bank.handles(THREADS + 1)
    payer, amount = names[0], bank.OPENING_TIYN // 10  # exactly ten transfers fit
    codes: list[str] = []

    def work(i: int) -> None:
        ledger = _ledger(url)
        specs = [(f"n{i}-{n}", payer, names[1 + (i + n) % THREADS], amount) for n in range(5)]
        codes.extend(ledger.apply(op).code.value for op in bank.transfer_ops(ledger.ledger_id, specs))
        ledger.store.close()

    _threads(THREADS, work)
    assert Counter(codes) == {"ok": 10, "insufficient_funds": THREADS * 5 - 10}
    balances = _check(url)
    assert balances.get((payer, ""), 0) == 0
    assert all(b >= 0 for (a, _t), b in balances.items() if a != bank.CENTRAL_BANK)


def test_same_id_at_once__one_ok_others_exist__threads(url: str) -> None:
    bank.setup_bank(url, count=2)
    a, b = bank.handles(2)
    ledgers = [_ledger(url) for _ in range(2)]
    for round_ in range(15):
        (op,) = bank.transfer_ops(ledgers[0].ledger_id, [(f"dup-{round_}", a, b, 5)])
        barrier = threading.Barrier(2)
        codes: list[str] = []

        def work(i: int, op=op, barrier=barrier, codes=codes) -> None:
            barrier.wait()
            codes.append(ledgers[i].apply(op).code.value)

        _threads(2, work)
        assert sorted(codes) == [ResultCode.exists.value, ResultCode.ok.value], codes
    for ledger in ledgers:
        ledger.store.close()
    assert _check(url)[(b, "")] == bank.OPENING_TIYN + 15 * 5


def test_processes__no_lost_update_and_same_ids_applied_once(url: str, tmp_path: Path) -> None:
    """4 processes: each sends 25 transfers of its own and the same 25 shared ones, all starting together."""
    workers = 4
    bank.setup_bank(url, count=workers + 1)
    names = bank.handles(workers + 1)
    payee = names[-1]
    shared = [(f"shared-{n}", names[n % workers], payee, 3) for n in range(25)]
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0  # after every spawned interpreter has imported the ledger
    outs = [tmp_path / f"p{i}.json" for i in range(workers)]
    procs = []
    for i in range(workers):
        own = [(f"p{i}-{n}", names[i], payee, 11) for n in range(25)]
        mixed = [x for pair in zip(own, shared, strict=True) for x in pair]
        procs.append(ctx.Process(target=bank.apply_each, args=(url, mixed, str(outs[i]), start_at)))
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
    assert [p.exitcode for p in procs] == [0] * workers
    per_id: dict[int, list[str]] = {}
    own_codes: list[str] = []
    for out in outs:
        codes = json.loads(out.read_text())
        own_codes += codes[0::2]
        for n, code in enumerate(codes[1::2]):
            per_id.setdefault(n, []).append(code)
    assert Counter(own_codes) == {"ok": workers * 25}
    for n, codes in per_id.items():
        assert Counter(codes) == {"ok": 1, "exists": workers - 1}, (n, codes)
    assert _check(url)[(payee, "")] == bank.OPENING_TIYN + workers * 25 * 11 + 25 * 3


def test_check_journal__one_snapshot_while_writers_work(url: str, tmp_path: Path) -> None:
    """`tenge check` on a live ledger: the journal, the balances and the supply are read in one snapshot, so
    transfers committed by another process meanwhile never show up as a mismatch."""
    bank.setup_bank(url, count=10)
    ctx = multiprocessing.get_context("spawn")
    writer = ctx.Process(target=bank.writer, args=(url, 0, 6.0, str(tmp_path / "w.log"), 1, 10))
    writer.start()
    store = open_store(url)
    checks = 0
    try:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            found = check_journal(store)
            assert found.ok, found.problems
            checks += 1
    finally:
        store.close()
        writer.join(60)
    written = (tmp_path / "w.log").read_text().count('"ok"')
    assert checks >= 2 and written >= 10, (checks, written)


@pytest.mark.skipif(not pg_base_url(), reason="needs $TENGE_TEST_PG_URL (.ci/run starts a server)")
def test_optimistic_writer__leaves_appended_since_its_snapshot_conflict(tmp_path: Path) -> None:
    """The store gives leaf indexes from the last leaf it sees: an optimistic writer's snapshot may predate a
    write that added only leaves (an access record, say); that writer must fail and retry, never reuse the
    indexes. Deterministic: the other write commits between the snapshot and the write."""
    from conftest import build_ledger

    from tenge_ledger.core.errors import WriteConflict
    from tenge_ledger.core.hooks import EncodedTrace
    from tenge_ledger.store.base import ChangeSet
    from tenge_ledger.trace import log, merkle

    def record(name: str) -> EncodedTrace:
        payload = json.dumps({"op_id": name, "at": 1, "type": "note"}).encode()
        return EncodedTrace(
            op_id=name, at=1, mode="transparent", payload=payload, leaf_hash=merkle.leaf_hash(payload)
        )

    with fresh_schema(pg_base_url(), prefix="conc") as pg_url:
        env = build_ledger(pg_url, tmp_path / "keys")
        store = env.store
        try:
            before = [idx for idx, _ in store.traces()]
            with pytest.raises(WriteConflict), store.transaction(optimistic=True) as tx:
                log.append(store, [record("meanwhile")])
                tx.write(ChangeSet(traces=[record("stale")]))
            with store.transaction(optimistic=True) as tx:  # the retry sees it
                tx.write(ChangeSet(traces=[record("retried")]))
            got = [(idx, t.op_id) for idx, t in store.traces()][len(before) :]
            assert got == [(len(before) + 1, "meanwhile"), (len(before) + 2, "retried")]
        finally:
            store.close()
