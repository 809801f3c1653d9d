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
import select
import shutil
import tempfile
import threading
from pathlib import Path

import pytest
from conftest import Clock
from test_plain_transfer import make_base

from tenge_ledger.app import ledger_over
from tenge_ledger.client.keystore import Keystore
from tenge_ledger.client.wallet import Wallet
from tenge_ledger.core.records import Transfer
from tenge_ledger.ledger.journal import check_journal
from tenge_ledger.policy.sets import enable
from tenge_ledger.store import committer as committer_module
from tenge_ledger.store import open_store

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


def _checks(path: Path) -> None:
    store = open_store(str(path))
    try:
        report = check_journal(store)
        assert report.ok, report.problems
    finally:
        store.close()


def _transfers(w: Wallet, prefix: str, count: int) -> list:
    return [w.build("aigerim", Transfer("aigerim", "cafe", 1), f"{prefix}-{i}") for i in range(count)]


def _answered(store) -> None:
    """Wait until the committer has answered the change set it was handed (so it is written)."""
    ready, _, _ = select.select([store._committer._process.stdout], [], [], 30)
    assert ready, "the committer answered in time"


def test_committer__a_stop_when_a_chunk_is_handed_over_keeps_what_was_written_ok(start, folder) -> None:
    """The committer wrote and answered the first chunk, then died before the second was handed to it: the
    first chunk's operations were applied by this call and must say so (ok, with their seqs), not `exists`
    as if someone had applied them before; the rest is applied once, the synchronous way."""
    db, keys, now = start
    path = folder / "l.db"
    shutil.copy(db, path)
    store = open_store(str(path))
    calls = [0]

    def clock() -> int:  # read once per chunk, inside its read transaction
        calls[0] += 1
        if calls[0] == 2:  # the first chunk waits in the committer
            _answered(store)
            store._committer._process.kill()
            store._committer._process.wait()
        return now

    ledger = ledger_over(store, clock)
    ledger.committer_operations_min = 0
    w = Wallet(ledger, Keystore(keys))
    results = ledger.apply_many(_transfers(w, "s", 10), verified=True, chunk=2)
    assert [r.code.value for r in results] == ["ok"] * 10
    seqs = [r.seq for r in results]
    assert seqs == sorted(seqs) and len(set(seqs)) == 10
    assert store.balances("cafe")[("cafe", "")] == 40_000 + 10
    store.close()
    _checks(path)


def test_committer__a_set_with_windows_enabled_elsewhere_keeps_the_written_chunks_ok(start, folder) -> None:
    """Another process enables a set that reads windows once the first chunk is written: the ledger stops
    working ahead of the store and commits the rest itself. The first chunk was applied by this call: its
    results are ok, as a ledger committing each chunk itself answers."""
    db, keys, now = start
    path = folder / "l.db"
    shutil.copy(db, path)
    store = open_store(str(path))
    calls = [0]

    def clock() -> int:
        calls[0] += 1
        if calls[0] == 2:
            _answered(store)
            other = open_store(str(path))
            enable(other, {"quiet.policy": QUIET_WINDOW}, now)
            other.close()
        return now

    ledger = ledger_over(store, clock)
    ledger.committer_operations_min = 0
    w = Wallet(ledger, Keystore(keys))
    results = ledger.apply_many(_transfers(w, "e", 10), verified=True, chunk=2)
    assert [r.code.value for r in results] == ["ok"] * 10
    assert ledger.policy.windows  # the set the other process enabled decided the rest
    assert store.balances("cafe")[("cafe", "")] == 40_000 + 10
    store.close()
    _checks(path)


def test_committer__a_store_closed_by_another_thread_mid_run_raises_and_does_not_hang(start, folder) -> None:
    """Another thread closes the store while chunks wait in the committer: the close lets the committer write
    what it holds, and the apply fails on the closed store. It must fail (an error the caller sees), not spin
    for ever waiting for answers from a pipe the close shut; the chunks written are whole, and the journal
    checks."""
    db, keys, now = start
    path = folder / "l.db"
    shutil.copy(db, path)
    store = open_store(str(path))
    calls = [0]

    def clock() -> int:
        calls[0] += 1
        if calls[0] == 3:  # two chunks wait in the committer
            closer = threading.Thread(target=store.close)
            closer.start()
            closer.join()
        return now

    ledger = ledger_over(store, clock)
    ledger.committer_operations_min = 0
    ops = _transfers(Wallet(ledger, Keystore(keys)), "c", 10)
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
    _checks(path)


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
    ledger = ledger_over(store, Clock(now))
    ledger.committer_operations_min = 0
    results = ledger.apply_many(_transfers(Wallet(ledger, Keystore(keys)), "r", 10), verified=True, chunk=2)
    assert [r.code.value for r in results] == ["ok"] * 10
    assert store.balances("cafe")[("cafe", "")] == 40_000 + 10
    store.close()
    for name, count in (("here", 10), ("there", 0)):
        other = open_store(str(folder / name / "l.db"))
        try:
            assert sum(other.operation(f"r-{i}") is not None for i in range(10)) == count, name
        finally:
            other.close()
    _checks(folder / "here" / "l.db")


def test_committer__a_process_that_cannot_start_leaves_the_ledger_committing_itself(
    start, folder, monkeypatch
) -> None:
    """The system refuses a new process (too many processes, no memory): the operations are applied the
    synchronous way, as when the committer stops, rather than the apply failing on an OSError."""
    db, keys, now = start
    path = folder / "l.db"
    shutil.copy(db, path)
    store = open_store(str(path))

    def refused(*args, **kwargs):
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(committer_module.subprocess, "Popen", refused)
    ledger = ledger_over(store, Clock(now))
    ledger.committer_operations_min = 0
    results = ledger.apply_many(_transfers(Wallet(ledger, Keystore(keys)), "p", 10), verified=True, chunk=2)
    assert [r.code.value for r in results] == ["ok"] * 10
    assert store.balances("cafe")[("cafe", "")] == 40_000 + 10
    store.close()
    _checks(path)
