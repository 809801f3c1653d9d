"""What Python's sqlite3 module costs the journal's write, apart from SQLite itself, measured in one run:

1. Binding. Rows of eight parameters of one type, inserted with `executemany` into a table without indexes in
   memory; each type's cost per row as a ratio against rows of eight ints (the floor of the same run). The
   module binds int, str and bytearray directly but offers `bytes` and `None` to its adapters first, which is
   why the journal's rows carry their blobs as bytearrays and a plain transfer's row leaves its NULL columns
   out (docs/journal.md).
2. A writer thread. Chunks written on a file database (WAL, synchronous=FULL, as the store) in line with a
   stretch of pure-Python work each, then by a thread while the main thread does that work: the ratio of the
   two wall times. Near 1 means no overlap (the thread waits for the GIL between rows).

    .venv/bin/python benchmarks/sqlite_binding.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import threading
import time

KINDS = {
    "ints": (1, 2, 3, 4, 5, 6, 7, 8),
    "str": ("a", "b", "c", "d", "e", "f", "g", "h"),
    "bytearray": tuple(bytearray(b"x" * 32) for _ in range(8)),
    "bytes": tuple(b"x" * 32 for _ in range(8)),
    "None": (None,) * 8,
}


def binding_us(rows: int) -> dict[str, float]:
    """Microseconds per row of eight parameters of each kind (best of three)."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a, b, c, d, e, f, g, h)")
    out = {}
    for name, row in KINDS.items():
        batch = [row] * rows
        best = float("inf")
        for _ in range(3):
            conn.execute("DELETE FROM t")
            start = time.perf_counter()
            conn.executemany("INSERT INTO t VALUES (?,?,?,?,?,?,?,?)", batch)
            best = min(best, time.perf_counter() - start)
        out[name] = best / rows * 1e6
    conn.close()
    return out


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1


def writer_thread_ratio(chunks: int = 20, rows: int = 1000, work_s: float = 0.015) -> tuple[float, float]:
    """(wall time in line, wall time with a writer thread), seconds, for the same chunks and the same work."""
    folder = tempfile.mkdtemp(prefix="tenge-bind-")
    path = os.path.join(folder, "w.db")
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE j (seq INTEGER PRIMARY KEY, op TEXT UNIQUE, a INTEGER, b BLOB)")
    data = [
        [(k * rows + i, f"op-{k}-{i}", i, bytearray(os.urandom(64))) for i in range(rows)]
        for k in range(2 * chunks)
    ]

    def write(k: int) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO j VALUES (?,?,?,?)", data[k])
        conn.execute("COMMIT")

    start = time.perf_counter()
    for k in range(chunks):
        write(k)
        _busy(work_s)
    in_line = time.perf_counter() - start
    start = time.perf_counter()
    for k in range(chunks, 2 * chunks):
        thread = threading.Thread(target=write, args=(k,))
        thread.start()
        _busy(work_s)
        thread.join()
    threaded = time.perf_counter() - start
    conn.close()
    return in_line, threaded


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    args = ap.parse_args()
    costs = binding_us(args.rows)
    floor = costs["ints"]
    print(f"binding, {args.rows:,} rows of eight parameters (executemany, in memory):")
    for name, us in costs.items():
        print(f"  {name:<10} {us:6.3f} us/row   {us / floor:5.2f}x the ints floor")
    in_line, threaded = writer_thread_ratio()
    print(
        f"writer thread: {threaded:.3f} s against {in_line:.3f} s in line for the same chunks and work "
        f"(ratio {threaded / in_line:.2f}; below 1 would mean the thread overlaps)"
    )


if __name__ == "__main__":
    main()
