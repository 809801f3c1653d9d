"""The trace log's leaves in the SQL stores (schema 6): stored records in `traces`, derived leaves in `trace_runs`.

A stored record (a rejection, an access, unmasking or journal-head record, every record of the sealing privacy
modes) is a `traces` row with its leaf index. A leaf derived from a journal row (trace/journal_leaf.py) keeps
nothing of its own: a chunk's applied operations are consecutive leaves naming consecutive journal rows, so one
`trace_runs` row (idx of the first leaf, seq of its journal row, count) stands for all of them. The store gives
leaf indexes itself: the next is one more than the last leaf of either table.

Reading merges both tables in leaf order and derives each run's leaves from its journal rows, one range query
per run (or per JOURNAL_RANGE_ROWS of it). Nothing here trusts the tables to agree: a leaf index claimed twice
(a stored row and a run, or two overlapping runs) comes out twice, a missing journal row gives a leaf that
names the seq with an empty link, and trace/verify.py names each."""

from __future__ import annotations

import hashlib
import heapq
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence

from ..core.hooks import EncodedTrace
from ..core.limits import trace_run_leaves_max
from .entries import leaf_payload

TRACE_COLUMNS = "idx, op_id, at, mode, payload, leaf_hash"  # a stored record's row
RUN_COLUMNS = "idx, seq, count"
DERIVED_MODE = "transparent"  # only the transparent mode derives leaves from the journal
JOURNAL_RANGE_ROWS = 8_192  # journal rows one range query of a run reads

# (idx, seq, count) of a run; (seq, op_id, at, link) of a journal row as a derived leaf reads it
Run = tuple[int, int, int]
LeafRow = tuple[int, str, int, bytes]
ReadRange = Callable[[int, int], Iterable[LeafRow]]  # journal rows first..last (inclusive), by seq


def runs_of(leaves: Iterable[tuple[int, int]]) -> list[Run]:
    """The runs of derived leaves (idx, seq) given in idx order: each stretch of consecutive indexes naming
    consecutive seqs, cut every trace_run_leaves_max leaves."""
    runs: list[Run] = []
    idx0 = seq0 = count = 0
    for idx, seq in leaves:
        if count and idx == idx0 + count and seq == seq0 + count and count < trace_run_leaves_max:
            count += 1
            continue
        if count:
            runs.append((idx0, seq0, count))
        idx0, seq0, count = idx, seq, 1
    if count:
        runs.append((idx0, seq0, count))
    return runs


def place(items: Sequence[EncodedTrace | int], first: int) -> tuple[list[tuple], list[Run]]:
    """New leaves from index `first` on, in order (a record to store, or the seq of a journal row the leaf is
    derived from): the stored records' rows (TRACE_COLUMNS) and the derived leaves' runs."""
    n = len(items)
    if n and type(items[0]) is int and n <= trace_run_leaves_max:
        seq: int = items[0]  # type: ignore[assignment]
        if items == list(range(seq, seq + n)):  # a chunk of applied operations (compared in C): one run
            return [], [(first, seq, n)]
    stored: list[tuple] = []
    derived: list[tuple[int, int]] = []
    for idx, t in enumerate(items, first):
        if type(t) is int:
            derived.append((idx, t))
        else:
            # bytearrays: the sqlite3 module binds them directly (bytes it first offers to adapters)
            payload, leaf = bytearray(t.payload), bytearray(t.leaf_hash)  # type: ignore[union-attr]
            stored.append((idx, t.op_id, t.at, t.mode, payload, leaf))  # type: ignore[union-attr]
    return stored, runs_of(derived)


def runs_after(runs: Iterable[Run], after: int) -> Iterator[Run]:
    """`runs` with the leaves up to index `after` cut off (and the runs that hold none after it left out)."""
    for idx, seq, count in runs:
        cut = after + 1 - idx
        if cut <= 0:
            yield idx, seq, count
        elif cut < count:
            yield after + 1, seq + cut, count - cut


def stored_trace(row: tuple) -> EncodedTrace:
    """A stored record from its row (TRACE_COLUMNS without idx)."""
    op_id, at, mode, payload, leaf_hash = row
    return EncodedTrace(op_id=op_id, at=at, mode=mode, payload=bytes(payload), leaf_hash=bytes(leaf_hash))


def derived_trace(seq: int, row: LeafRow | None) -> EncodedTrace:
    """The leaf derived from journal row `seq` (read as `row`, None when it is gone). With its row gone the leaf
    cannot be derived: the bytes say only which row it named, so the leaf no longer matches what a checkpoint
    signed and verification reports it."""
    if row is None:
        op_id, at, data = "", 0, leaf_payload(seq, b"")
    else:
        op_id, at, data = row[1], row[2], leaf_payload(seq, bytes(row[3]))
    return EncodedTrace(
        op_id=op_id, at=at, mode=DERIVED_MODE, payload=data,
        leaf_hash=hashlib.sha256(b"\x00" + data).digest(),  # RFC 6962 leaf hash, as trace/merkle.py
    )  # fmt: skip


def run_leaves(run: Run, read_range: ReadRange) -> Iterator[tuple[int, EncodedTrace]]:
    """(idx, leaf) of each leaf of a run, its journal rows read a range at a time."""
    idx, seq, count = run
    end = seq + count
    for first in range(seq, end, JOURNAL_RANGE_ROWS):
        last = min(first + JOURNAL_RANGE_ROWS, end) - 1
        rows = iter(read_range(first, last))
        row = next(rows, None)
        for s in range(first, last + 1):
            while row is not None and row[0] < s:
                row = next(rows, None)
            yield idx + s - seq, derived_trace(s, row if row is not None and row[0] == s else None)


def merge(
    stored: Iterable[tuple], runs: Iterable[Run], read_range: ReadRange
) -> Iterator[tuple[int, EncodedTrace]]:
    """(idx, leaf) of every leaf in index order: `stored` rows (TRACE_COLUMNS) and `runs`, each by idx. A run
    that overlaps nothing is expanded straight through (the common case); one that overlaps a stored row or
    another run is interleaved with them, so an index claimed twice comes out twice, side by side."""
    rows = iter(stored)
    pending = iter(runs)
    s = next(rows, None)
    run = next(pending, None)
    active: list[tuple[int, int, EncodedTrace, Iterator[tuple[int, EncodedTrace]]]] = []  # a heap
    tie = itertools.count()
    while True:
        if run is None and not active:
            if s is not None:
                yield s[0], stored_trace(s[1:])
                yield from ((r[0], stored_trace(r[1:])) for r in rows)
            return
        a = active[0][0] if active else math.inf
        si = s[0] if s is not None else math.inf
        ri = run[0] if run is not None else math.inf
        if si <= ri and si <= a:  # a stored record comes first at an index claimed twice
            yield si, stored_trace(s[1:])  # type: ignore[index]
            s = next(rows, None)
        elif ri <= a:
            following = next(pending, None)
            last = run[0] + run[2] - 1  # type: ignore[index]
            if last < si and last < a and (following is None or last < following[0]):
                yield from run_leaves(run, read_range)  # type: ignore[arg-type]
            else:
                _activate(active, tie, run_leaves(run, read_range))  # type: ignore[arg-type]
            run = following
        else:
            idx, _, trace, source = heapq.heappop(active)
            yield idx, trace
            _activate(active, tie, source)


def _activate(active: list, tie: Iterator[int], source: Iterator[tuple[int, EncodedTrace]]) -> None:
    item = next(source, None)
    if item is not None:
        heapq.heappush(active, (item[0], next(tie), item[1], source))


# One more than the last leaf of either table. Both halves read the last entry of a primary key: the run that
# starts last ends last, unless runs overlap, which only tampering makes (and verification names).
NEXT_LEAF_BASE = (
    "(SELECT COALESCE(MAX(idx), 0) FROM traces)",
    "(SELECT COALESCE((SELECT idx + count - 1 FROM trace_runs ORDER BY idx DESC LIMIT 1), 0))",
)
# Runs that hold a leaf after a given index (both placeholders take it): none starts before it less the
# longest a run may be.
RUNS_AFTER = (
    f"SELECT {RUN_COLUMNS} FROM trace_runs WHERE idx > {{m}} - {trace_run_leaves_max}"
    " AND idx + count - 1 > {m} ORDER BY idx"
)
STORED_AFTER = f"SELECT {TRACE_COLUMNS} FROM traces WHERE idx > {{m}} ORDER BY idx"
JOURNAL_RANGE = "SELECT seq, op_id, at, link FROM journal WHERE seq >= {m} AND seq <= {m} ORDER BY seq"
