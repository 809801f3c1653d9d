"""Chunks a committer writes read no operation ids from the store (WorkingSet.ids_unread): the journal's unique
op_id refuses a repeated one as the committer writes it (KnownOperationId), and the ledger works that chunk out
again reading them. A call that repeats operations the journal holds must answer and write exactly what a ledger
reading every id does: `exists` for a repeat that would succeed as new, `exists` (never a rejection) for one that
would now be refused, and `exists_with_different_fields` for a changed one."""

from __future__ import annotations

from pathlib import Path

import pytest
from committer_support import checks, copy_of, ledger_on, transfers
from conftest import Clock
from test_plain_transfer import _tables, make_base

from tenge_ledger.core.errors import KnownOperationId
from tenge_ledger.core.records import Transfer


@pytest.fixture(scope="module")
def start(tmp_path_factory) -> tuple[Path, Path, int]:
    return make_base(tmp_path_factory.mktemp("unread-ids"))


def _from_bob(w, prefix: str, count: int) -> list:
    return [w.build("bob", Transfer("bob", "cafe", 1), f"{prefix}-{i}") for i in range(count)]


def _run(start, folder: Path, name: str, committer: bool):
    """Twelve transfers applied, then a call that repeats four of them among new ones: two that would succeed
    as new, one that would now be refused (its payer spent everything since), one with other fields."""
    db, keys, now = start
    path, store = copy_of(db, folder, name)
    ledger, w = ledger_on(store, keys, Clock(now), committer)
    first = transfers(w, "first", 12)  # aigerim pays cafe 1 tiyn each, from 40,000
    assert all(r.code.value == "ok" for r in ledger.apply_many(first, verified=True, chunk=3))
    changed = w.build("aigerim", Transfer("aigerim", "cafe", 2), "first-5")  # first-5 moved 1 tiyn
    drain = w.build("aigerim", Transfer("aigerim", "cafe", 40_000 - 12), "drain")
    # the would-be refusal first: after the first repeat the store refuses, the rest of the call reads ids
    again = [*_from_bob(w, "second", 10), drain, first[7], *_from_bob(w, "third", 10), first[2], first[9]]
    again += [changed, *_from_bob(w, "fourth", 6)]
    results = ledger.apply_many(again, verified=True, chunk=3)
    store.close()
    return [(r.op_id, r.code.value, r.message, r.seq) for r in results], path


def test_repeats_among_unread_ids_answer_as_a_ledger_reading_every_id(start, tmp_path) -> None:
    piped, piped_path = _run(start, tmp_path, "piped.db", True)
    itself, itself_path = _run(start, tmp_path, "itself.db", False)
    assert piped == itself
    codes = {op_id: code for op_id, code, _, _ in piped}
    assert codes["first-2"] == codes["first-9"] == "exists"
    assert codes["first-5"] == "exists_with_different_fields"
    # aigerim has nothing left: as new it would be insufficient_funds, but an id is answered first
    assert codes["first-7"] == "exists"
    assert list(codes.values()).count("ok") == 27
    assert _tables(piped_path) == _tables(itself_path)
    checks(piped_path)


def test_a_repeat_that_would_succeed_is_refused_by_the_store_and_worked_out_again(start, tmp_path) -> None:
    """The repeat of a journaled transfer goes the plain way as new (no id was read); the committer's write of
    its chunk fails on the unique op_id, nothing of that chunk is written, and the rest of the call reads ids."""
    db, keys, now = start
    path, store = copy_of(db, tmp_path)
    ledger, w = ledger_on(store, keys, Clock(now))
    first = transfers(w, "a", 6)
    ledger.apply_many(first, verified=True, chunk=2)
    raised = []
    real = store.committing

    from contextlib import contextmanager

    @contextmanager
    def watched():
        with real() as committer:
            committed = committer.committed

            def answer():
                try:
                    return committed()
                except KnownOperationId:
                    raised.append(True)
                    raise

            committer.committed = answer
            try:
                yield committer
            finally:
                del committer.committed

    store.committing = watched  # type: ignore[method-assign]
    ops = [*transfers(w, "b", 8), first[4], *transfers(w, "c", 8)]
    results = ledger.apply_many(ops, verified=True, chunk=2)
    assert raised, "the store refused the repeated id"
    assert [r.code.value for r in results] == ["ok"] * 8 + ["exists"] + ["ok"] * 8
    assert results[8].seq == ledger.store.operation("a-4").seq
    assert len({r.seq for r in results}) == 17
    assert store.balances("cafe")[("cafe", "")] == 40_000 + 6 + 16
    store.close()
    checks(path)


def test_a_store_refuses_a_repeated_id_as_known_and_writes_nothing(start, tmp_path) -> None:
    """What the committer answers for a repeated id: KnownOperationId (a WriteConflict the ledger handles), with
    the transaction rolled back, not an IntegrityError that would reach the user as a crash."""
    db, keys, now = start
    path, store = copy_of(db, tmp_path)
    ledger, w = ledger_on(store, keys, Clock(now), committer=False)
    op = transfers(w, "x", 1)[0]
    ledger.apply_many([op], verified=True)
    head = store.head()
    with pytest.raises(KnownOperationId), store.transaction() as tx:
        tx._c.execute("UPDATE journal_head SET seq = seq + 1")  # type: ignore[attr-defined]
        tx._c.execute(  # type: ignore[attr-defined]
            "INSERT INTO journal (seq, op_id, kind, signer, at, signature, link, flags) VALUES (?,?,?,?,?,?,?,?)",
            (head[0] + 1, op.id, 4, 1, 0, bytes(64), bytes(32), 0),
        )
    assert store.head() == head
    store.close()
    checks(path)


def test_a_repeat_in_the_last_chunk_is_answered_and_nothing_waits_for_ever(start, tmp_path) -> None:
    """The store's refusal can be the last answer the committer owes: the ledger must not wait for another
    (a chunk whose answer was the failure stays held while the chunks behind it are answered)."""
    import threading

    db, keys, now = start
    path, store = copy_of(db, tmp_path)
    ledger, w = ledger_on(store, keys, Clock(now))
    first = transfers(w, "a", 6)
    ledger.apply_many(first, verified=True, chunk=2)
    ops = [*transfers(w, "b", 7), first[0]]  # the repeat alone in the last chunk, after three whole ones
    out: list = []
    worker = threading.Thread(target=lambda: out.append(ledger.apply_many(ops, verified=True, chunk=2)))
    worker.daemon = True
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "apply_many waited for an answer the committer did not owe"
    assert [r.code.value for r in out[0]] == ["ok"] * 7 + ["exists"]
    store.close()
    checks(path)
