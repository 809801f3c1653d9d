"""store/leaves.py on its own: new leaves placed as stored rows and runs, and any stored rows and runs (however
they overlap, as tampering leaves them) read back as the leaves they claim, in index order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tenge_ledger.core.hooks import EncodedTrace
from tenge_ledger.core.limits import trace_run_leaves_max
from tenge_ledger.store import leaves
from tenge_ledger.store.entries import leaf_payload, parse_leaf_payload


def _stored(name: str) -> EncodedTrace:
    return EncodedTrace(op_id=name, at=1, mode="transparent", payload=b"{}", leaf_hash=bytes(32))


def _journal(seqs: set[int]):
    """A read_range over journal rows `seqs` (the others gone), counting its calls."""
    calls: list[tuple[int, int]] = []

    def read(first: int, last: int):
        calls.append((first, last))
        return [(s, f"op-{s}", 100 + s, bytes([s % 256]) * 32) for s in range(first, last + 1) if s in seqs]

    return read, calls


def test_place__consecutive_seqs_are_one_run_and_records_keep_their_indexes() -> None:
    a, b = _stored("a"), _stored("b")
    stored, runs = leaves.place([5, 6, 7, a, 8, 9, 11, b], 41)
    assert [r[:2] for r in stored] == [(44, "a"), (48, "b")]
    assert runs == [(41, 5, 3), (45, 8, 2), (47, 11, 1)]
    assert leaves.place(list(range(3, 1003)), 7) == ([], [(7, 3, 1_000)])


def test_place__a_run_is_cut_at_the_longest_a_run_may_be() -> None:
    n = trace_run_leaves_max + 5
    assert leaves.place(list(range(1, n + 1)), 1) == (
        [], [(1, 1, trace_run_leaves_max), (1 + trace_run_leaves_max, 1 + trace_run_leaves_max, 5)]
    )  # fmt: skip


def test_run_leaves__a_gone_journal_row_gives_a_leaf_that_names_only_its_seq() -> None:
    read, calls = _journal({10, 12})
    got = list(leaves.run_leaves((3, 10, 3), read))
    assert [idx for idx, _ in got] == [3, 4, 5]
    assert [t.op_id for _, t in got] == ["op-10", "", "op-12"]
    assert parse_leaf_payload(got[0][1].payload) == (10, bytes([10]) * 32)
    assert got[1][1].payload == leaf_payload(11, b"") and parse_leaf_payload(got[1][1].payload) is None
    assert calls == [(10, 12)]  # one range query for the run


def test_run_leaves__a_long_run_reads_its_rows_a_range_at_a_time() -> None:
    n = 2 * leaves.JOURNAL_RANGE_ROWS + 3
    read, calls = _journal(set(range(1, n + 1)))
    assert sum(1 for _ in leaves.run_leaves((1, 1, n), read)) == n
    assert len(calls) == 3


_runs = st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40), st.integers(1, 6)), max_size=6)


@given(stored=st.sets(st.integers(1, 50), max_size=8), runs=_runs, after=st.integers(0, 50))
def test_merge__every_claimed_leaf_comes_out_once_per_claim_in_index_order(stored, runs, after) -> None:
    runs = sorted({r[0]: r for r in runs}.values())  # trace_runs.idx is its primary key
    read, _ = _journal(set(range(1, 60, 2)))
    rows = [(i, f"s-{i}", 1, "transparent", b"{}", bytes(32)) for i in sorted(stored) if i > after]
    got = [(idx, t.op_id) for idx, t in leaves.merge(rows, leaves.runs_after(runs, after), read)]
    claims = [(i, f"s-{i}") for i in stored] + [
        (idx + k, f"op-{seq + k}" if (seq + k) % 2 else "") for idx, seq, count in runs for k in range(count)
    ]
    assert sorted(got) == sorted(c for c in claims if c[0] > after)
    assert [idx for idx, _ in got] == sorted(idx for idx, _ in got)
