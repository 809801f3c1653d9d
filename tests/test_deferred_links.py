"""Chain links a committer's store makes: with a committer, the plain loop leaves each row's link to the store
(ChangeSet.links_deferred), which links the rows on its journal head as it writes them. The links must be the
ones the ledger would have made itself, a row the general path journals after them must chain on them, and
a store must never link rows onto a head they were not worked out on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from committer_support import checks, copy_of, ledger_on
from conftest import Clock
from test_plain_transfer import _tables, make_base

from tenge_ledger.core.chain import chain_tail, entry_hash_of_legs, two_leg_suffix
from tenge_ledger.core.errors import InvariantViolation
from tenge_ledger.core.records import Operation, Transfer
from tenge_ledger.ledger import service
from tenge_ledger.store import open_store
from tenge_ledger.store.base import ChangeSet
from tenge_ledger.store.entries import JOURNAL_COLUMNS, link_deferred


@pytest.fixture(scope="module")
def start(tmp_path_factory) -> tuple[Path, Path, int]:
    return make_base(tmp_path_factory.mktemp("deferred"))


def _journal(path: Path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM journal ORDER BY seq").fetchall()
    finally:
        conn.close()


def _workload(w) -> list[Operation]:
    """Plain transfers, with a central-bank transfer (the general path journals it, chaining on the plain
    rows before it in its chunk) in the middle of a chunk, and one opening a chunk (chaining on a chunk the
    committer may still hold)."""
    ops = []
    for i in range(12):
        if i in (4, 9):
            ops.append(w.build("nbk", Transfer("nbk", "bob", 5), f"cb-{i}"))
        else:
            ops.append(
                w.build(
                    "aigerim", Transfer("aigerim", "cafe", 1 + i, None, "rent" if i % 3 else None), f"t-{i}"
                )
            )
    return ops


_WORK_OUT = service.Ledger._work_out


def _run(start, folder: Path, committer: bool, monkeypatch) -> tuple[Path, list, list[bool]]:
    db, keys, now = start
    path, store = copy_of(db, folder, f"{committer}.db")
    ledger, w = ledger_on(store, keys, Clock(now), committer)
    deferred: list[bool] = []  # per chunk that journaled: whether its rows went to the store unlinked
    real = _WORK_OUT  # not a spy an earlier run left (monkeypatch undoes them only after the test)

    def work_out(self, *args):
        root, results = real(self, *args)
        if root.entries or root.plain_entries:
            deferred.append(root.links_deferred)
        return root, results

    monkeypatch.setattr(service.Ledger, "_work_out", work_out)
    results = ledger.apply_many(_workload(w), verified=True, chunk=3)
    store.close()
    return path, [(r.op_id, r.code, r.seq) for r in results], deferred


def test_deferred_links__the_store_makes_the_links_the_ledger_makes(start, tmp_path, monkeypatch) -> None:
    with_committer, results, deferred = _run(start, tmp_path, True, monkeypatch)
    without, expected, linked_here = _run(start, tmp_path, False, monkeypatch)
    assert results == expected
    assert all(code.value == "ok" for _, code, _ in results)
    assert _journal(with_committer) == _journal(without)  # every link byte for byte
    checks(with_committer)
    # the store linked the chunk of plain rows before the first general entry; from that chunk on, the ledger
    # linked every row itself, so no later chunk waits for the committer to learn its base's link
    assert deferred == [True, False, False, False], deferred
    assert not any(linked_here)  # without a committer, never


def test_link_deferred__equals_linking_one_row_at_a_time(start, tmp_path, monkeypatch) -> None:
    """The function the store links with, against the rows the ledger linked itself (a run without committer):
    the same rows with their own part of the link (two_leg_suffix) in the link's place link to the same bytes,
    which are the journal's general definition of a link (entry_hash_of_legs)."""
    path, _, _ = _run(start, tmp_path, False, monkeypatch)
    conn = sqlite3.connect(path)
    try:
        handles = dict(conn.execute("SELECT id, handle FROM accounts"))
        tags = dict(conn.execute("SELECT id, tag FROM tag_names"))
        rows = conn.execute(
            f"SELECT {JOURNAL_COLUMNS} FROM journal WHERE op_id LIKE 't-%' ORDER BY seq"
        ).fetchall()
        first = rows[0][0]
        prev = conn.execute("SELECT link FROM journal WHERE seq = ?", (first - 1,)).fetchone()[0]
    finally:
        conn.close()
    store = open_store(str(path))
    try:
        digests = {r[1]: store.operation(r[1]).fields_hash for r in rows}
    finally:
        store.close()
    run = [r for r in rows if r[0] < first + 3]  # consecutive plain rows (t-0 .. t-2)
    assert [r[0] for r in run] == [first, first + 1, first + 2]
    unlinked, link = [], bytes(prev)
    for seq, op_id, _, _, payer, payee, amount, tag, at, signature, _, _, _, _, policy in run:
        parts = (seq, at, digests[op_id], bytes(signature).hex())
        tag_name = "" if tag is None else tags[tag]
        legs = [(handles[payer], -amount, tag_name), (handles[payee], amount, tag_name)]
        link = entry_hash_of_legs(link, *parts, legs, (None, policy))  # the general definition
        own = two_leg_suffix(
            *parts, handles[payer], handles[payee], amount, tag_name, chain_tail(None, policy)
        )
        unlinked.append(
            (*run[len(unlinked)][:10], own, *run[len(unlinked)][11:])
        )  # as the plain loop leaves it
    linked, _, head = link_deferred((first - 1, bytes(prev)), unlinked, [])
    assert [(bytes(r[9]), bytes(r[10])) for r in linked] == [(bytes(r[9]), bytes(r[10])) for r in run]
    assert head == (run[-1][0], bytes(run[-1][10])) == (run[-1][0], link)
    with pytest.raises(ValueError, match="does not follow"):  # a gap
        link_deferred((first - 2, bytes(prev)), unlinked, [])


def test_store__refuses_unlinked_rows_that_do_not_follow_its_head(start, tmp_path) -> None:
    db, _, _ = start
    path, store = copy_of(db, tmp_path)
    try:
        seq, link = store.head()
        row = (seq + 2, "x", 4, 2, 2, 3, 1, 0, b"\0" * 64, b"\1" * 32, 2, None)  # seq + 1 is missing
        change = ChangeSet(plain_entries=[row], head=(seq + 2, None), links_deferred=True)  # type: ignore[arg-type]
        with pytest.raises(InvariantViolation), store.transaction() as tx:
            tx.write(change)
        assert store.head() == (seq, link)
        assert store.operation("x") is None
    finally:
        store.close()
    checks(path)


@pytest.mark.parametrize("verified", [True, False])
def test_signature_in_upper_case__the_journal_still_checks(start, tmp_path, verified) -> None:
    """A signature's hex in capitals verifies (hex is hex), and the row stores its bytes: the link covers the
    signature's text as stored, so `tenge check`, which re-derives it from the bytes, agrees with it. It did
    not: the link covered the capitals, and check reported a tampered entry."""
    db, keys, now = start
    path, store = copy_of(db, tmp_path)
    ledger, w = ledger_on(store, keys, Clock(now), committer=False)
    op = w.build("aigerim", Transfer("aigerim", "cafe", 7), "upper")
    op = Operation(op.id, op.signer, op.body, op.signature.upper())
    assert ledger.apply_many([op], verified=[verified])[0].code.value == "ok"
    store.close()
    checks(path)


def _upserted(monkeypatch) -> list[int]:
    """A list that gets, for each change set written, how many bucket moves it hands over without stored rows:
    its bucket upserts, or its plain rows when the store moves the buckets by their legs (legs_from_rows); by
    the committer (handed to it here: it writes in its own process) or by the store in this process."""
    from tenge_ledger.store.committer import Committer
    from tenge_ledger.store.sqlite import SqliteTx

    seen: list[int] = []
    write, submit = SqliteTx.write, Committer.submit

    def moves(change) -> int:
        return len(change.bucket_upserts) + (len(change.plain_entries) if change.legs_from_rows else 0)

    def written(self, change):
        seen.append(moves(change))
        return write(self, change)

    def submitted(self, change, expected):
        seen.append(moves(change))
        return submit(self, change, expected)

    monkeypatch.setattr(SqliteTx, "write", written)
    monkeypatch.setattr(Committer, "submit", submitted)
    return seen


def test_bucket_upserts__where_no_activity_is_kept_the_store_moves_the_buckets(
    start, tmp_path, monkeypatch
) -> None:
    """With no activity kept, the ledger keeps no bucket rows, with a committer or without: it hands each
    bucket's change as an upsert (or the plain rows' legs), and the rows come out as a store that takes no
    upserts writes them, the buckets' whole rows worked out by the ledger (test_committer compares the ways on
    random workloads); a ledger that keeps activity never upserts."""
    from tenge_ledger.store.sqlite import SqliteTx

    seen = _upserted(monkeypatch)
    with_committer, results, _ = _run(start, tmp_path, True, monkeypatch)
    assert any(seen)
    seen.clear()
    itself, expected, _ = _run(start, tmp_path, False, monkeypatch)
    assert any(seen) and results == expected
    seen.clear()
    monkeypatch.setattr(SqliteTx, "takes_bucket_upserts", False)
    (tmp_path / "rows").mkdir()
    whole_rows, expected, _ = _run(start, tmp_path / "rows", False, monkeypatch)
    assert not any(seen) and results == expected
    assert _tables(with_committer) == _tables(whole_rows) == _tables(itself)
    checks(with_committer)
    checks(itself)


@pytest.mark.parametrize("when", ["between calls", "mid-call"])
def test_bucket_upserts__activity_kept_later__the_rows_are_read_again(
    start, tmp_path, monkeypatch, when
) -> None:
    """After upserting, the ledger's bucket rows lag the store's. Once activity is kept (another process enables
    a set that reads windows), a chunk's snapshots need the rows: between calls the state is dropped and the
    rows read again; mid-call, the chunks held are written first and the rest goes the synchronous way. Either
    way each snapshot and each bucket row is what the journal gives (`tenge check` re-derives both)."""
    db, keys, now = start
    path, store = copy_of(db, tmp_path)
    calls = [0]

    def keep_activity() -> None:
        other = open_store(str(path))
        assert other.rebuild_window_filters(frozenset(), activity=True)
        other.close()

    def clock() -> int:
        calls[0] += 1
        if when == "mid-call" and calls[0] == 4:
            keep_activity()
        return now + 60 * calls[0]  # a new minute each chunk: each bucket's first move in it is snapshotted

    ledger, w = ledger_on(store, keys, clock)
    seen = _upserted(monkeypatch)
    first = [w.build("aigerim", Transfer("aigerim", "cafe", 1), f"a-{i}") for i in range(12)]
    assert all(r.code.value == "ok" for r in ledger.apply_many(first, verified=True, chunk=2))
    assert seen[0] > 0  # upserted while no activity was kept
    if when == "between calls":
        keep_activity()
    second = [w.build("cafe", Transfer("cafe", "bob", 1), f"b-{i}") for i in range(12)]
    assert all(r.code.value == "ok" for r in ledger.apply_many(second, verified=True, chunk=2))
    assert seen[-1] == 0  # the last chunk kept activity
    store.close()
    checks(path)
