"""A chunk of plain untagged transfers hands its committer no bucket rows at all (ChangeSet.legs_from_rows): the
store moves each bucket by the two legs of the journal rows it writes, every payee credited and then every payer
debited. The balances and running flows must come out as the synchronous way writes them, also for an account
that is paid and then pays in one chunk from a bucket that had no row; and a payer without a row is refused, with
nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from bank_support import fresh_schema, pg_base_url
from committer_support import checks, copy_of, ledger_on
from conftest import Clock, build_ledger
from test_plain_transfer import _tables, make_base

from tenge_ledger.core import limits
from tenge_ledger.core.errors import InvariantViolation
from tenge_ledger.core.records import Operation, Transfer
from tenge_ledger.store.base import ChangeSet
from tenge_ledger.store.committer import Committer


@pytest.fixture(scope="module")
def start(tmp_path_factory) -> tuple[Path, Path, int]:
    return make_base(tmp_path_factory.mktemp("legs"))


def _workload(w) -> list[Operation]:
    """Chunks of three: roads (whose money is all tagged 'edu', so it has no untagged row) is paid and pays on
    in each chunk, between people who pay one another back and forth; one chunk has a tagged transfer (which
    the store is handed as bucket rows, not legs)."""
    ops = []
    for i in range(8):
        ops.append(w.build("aigerim", Transfer("aigerim", "roads", 500 + i), f"in-{i}"))
        ops.append(w.build("roads", Transfer("roads", "bob", 400 + i), f"on-{i}"))
        if i == 5:
            ops.append(w.build("roads", Transfer("roads", "cafe", 3, "edu"), "tagged"))
        else:
            ops.append(w.build("bob", Transfer("bob", "aigerim", 7 * i + 1), f"back-{i}"))
    return ops


def _run(start, folder: Path, committer: bool, monkeypatch) -> tuple[Path, list, list[bool]]:
    db, keys, now = start
    path, store = copy_of(db, folder, f"{committer}.db")
    ledger, w = ledger_on(store, keys, Clock(now), committer)
    handed: list[bool] = []
    submit = Committer.submit

    def submitted(self, change, expected):
        handed.append(change.legs_from_rows)
        return submit(self, change, expected)

    monkeypatch.setattr(Committer, "submit", submitted)
    results = ledger.apply_many(_workload(w), verified=True, chunk=3)
    store.close()
    return path, [(r.op_id, r.code.value, r.message, r.seq) for r in results], handed


def test_legs_from_rows__balances_and_flows_as_the_synchronous_way_writes_them(
    start, tmp_path, monkeypatch
) -> None:
    # this workload's chunks touch about a bucket a row, which goes by upserts (limits): by legs here
    monkeypatch.setattr(limits, "legs_buckets_per_row_twice", 0)
    piped, results, handed = _run(start, tmp_path, True, monkeypatch)
    itself, expected, _ = _run(start, tmp_path, False, monkeypatch)
    assert results == expected
    assert all(code == "ok" for _, code, _, _ in results)
    assert handed.count(True) == 7 and handed.count(False) == 1  # the tagged chunk's buckets go as rows
    assert _tables(piped) == _tables(itself)  # balances with their flows and minutes, row for row
    checks(piped)


def test_legs_from_rows__a_payer_without_a_balance_row_is_refused_and_nothing_written(
    start, tmp_path
) -> None:
    db, _, _ = start
    path, store = copy_of(db, tmp_path)
    head = store.head()
    with store.snapshot():
        (roads,) = store._conn.execute("SELECT id FROM accounts WHERE handle = 'roads'").fetchone()  # type: ignore[attr-defined]
        (cafe,) = store._conn.execute("SELECT id FROM accounts WHERE handle = 'cafe'").fetchone()  # type: ignore[attr-defined]
    seq = head[0] + 1
    # roads has no untagged row: a debit of it would move nothing, and the money would be created at cafe
    row = (seq, "made-up", 4, roads, roads, cafe, 5, 0, bytearray(64), bytearray(32), 2, None)
    change = ChangeSet(plain_entries=[row], head=(seq, bytes(32)), legs_from_rows=True)
    with pytest.raises(InvariantViolation, match="no balance row"), store.transaction() as tx:
        tx.write(change)
    assert store.head() == head
    assert store.operation("made-up") is None
    assert store.balances("cafe")[("cafe", "")] == 40_000
    store.close()
    checks(path)


@pytest.mark.skipif(not pg_base_url(), reason="needs $TENGE_TEST_PG_URL (.ci/run starts a server)")
def test_postgres__refuses_what_only_a_sqlite_committer_is_handed(tmp_path) -> None:
    """PostgreSQL has no committer: a change set that leaves links, bucket upserts or legs to the store is a bug
    on its way there, refused with nothing written."""
    with fresh_schema(pg_base_url()) as url:
        env = build_ledger(url, tmp_path / "keys")
        store = env.store
        try:
            head = store.head()
            for handed in (
                {"links_deferred": True},
                {"bucket_upserts": [(1, 0, 0, 1, 1, 0, 1, 0)]},
                {"legs_from_rows": True},
            ):
                with pytest.raises(InvariantViolation), store.transaction() as tx:
                    tx.write(ChangeSet(**handed))  # type: ignore[arg-type]
            assert store.head() == head
        finally:
            store.close()


def test_legs_from_rows__only_where_the_rows_touch_about_two_buckets_each(
    start, tmp_path, monkeypatch
) -> None:
    """Two statements a row cost more than an upsert a bucket where a chunk pays the same few accounts over and
    over: such a chunk goes by upserts, a chunk among as many accounts as it has legs by its rows' legs, and
    both leave the tables as the journal gives them."""
    db, keys, now = start
    path, store = copy_of(db, tmp_path)
    ledger, w = ledger_on(store, keys, Clock(now), True)
    handed: list[tuple[bool, int]] = []
    submit = Committer.submit

    def submitted(self, change, expected):
        handed.append((change.legs_from_rows, len(change.bucket_upserts)))
        return submit(self, change, expected)

    monkeypatch.setattr(Committer, "submit", submitted)
    same = [w.build("aigerim", Transfer("aigerim", "bob", 1 + i), f"same-{i}") for i in range(6)]
    apart = [
        w.build("cafe", Transfer("cafe", "roads", 1), "apart-1"),
        w.build("bob", Transfer("bob", "anon", 1), "apart-2"),
    ]
    results = ledger.apply_many(same + apart, verified=True, chunk=2)
    store.close()
    assert [r.code.value for r in results] == ["ok"] * 8
    # two rows moving two buckets: upserts; two rows moving four: their legs
    assert handed == [(False, 2)] * 3 + [(True, 0)]
    checks(path)
